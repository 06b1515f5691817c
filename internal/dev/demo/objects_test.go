package demo_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ebbscale/ebb/internal/dev/demo"
)

// The samples decode strictly into the objects the docs describe.
func TestSamples(t *testing.T) {
	for name, want := range map[string][]string{
		"kafka.yaml":    {"Deployment default/orders-consumer", "ScaledConsumer default/orders"},
		"nats.yaml":     {"Deployment default/tasks-consumer", "ScaledConsumer default/tasks"},
		"rabbitmq.yaml": {"Secret default/rabbitmq-guest", "TriggerAuthentication default/rabbitmq-guest", "Deployment default/jobs-consumer", "ScaledConsumer default/jobs"},
	} {
		t.Run(name, func(t *testing.T) {
			objs, err := demo.Sample(name)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(names(objs), want); diff != "" {
				t.Errorf("objects (-got +want):\n%s", diff)
			}
		})
	}
	if _, err := demo.Sample("nope.yaml"); err == nil {
		t.Error("Sample(nope.yaml) succeeded")
	}
}

func names(objs []client.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetObjectKind().GroupVersionKind().Kind+" "+o.GetNamespace()+"/"+o.GetName())
	}
	return out
}

// The demo's consumer pods run the example consumer, loaded on the node, on the sample's group and topic.
func TestRealConsumer(t *testing.T) {
	objs, err := demo.Sample(demo.SampleFile)
	if err != nil {
		t.Fatal(err)
	}
	var d *appsv1.Deployment
	for _, o := range objs {
		if o, ok := o.(*appsv1.Deployment); ok {
			d = o
		}
	}
	demo.RealConsumer(d, "ebb.local/consumer:v1", []string{"198.18.0.1:9092", "198.18.0.1:9093"}, "orders", "orders", 12.5)
	want := corev1.Container{
		Name: "consumer", Image: "ebb.local/consumer:v1", ImagePullPolicy: corev1.PullNever,
		Env: []corev1.EnvVar{
			{Name: "CONSUMER_BROKER", Value: "kafka"},
			{Name: "CONSUMER_BROKERS", Value: "198.18.0.1:9092,198.18.0.1:9093"},
			{Name: "CONSUMER_TOPIC", Value: "orders"},
			{Name: "CONSUMER_GROUP", Value: "orders"},
			{Name: "CONSUMER_RATE", Value: "12.5"},
			{Name: "CONSUMER_ID", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		},
	}
	if diff := cmp.Diff(d.Spec.Template.Spec.Containers, []corev1.Container{want}); diff != "" {
		t.Errorf("containers (-got +want):\n%s", diff)
	}
	if *d.Spec.Replicas != 0 {
		t.Errorf("replicas = %d, want the sample's 0", *d.Spec.Replicas)
	}
}

func TestRunningPods(t *testing.T) {
	pod := func(phase corev1.PodPhase, deleting bool) corev1.Pod {
		p := corev1.Pod{Status: corev1.PodStatus{Phase: phase}}
		if deleting {
			p.DeletionTimestamp = &metav1.Time{}
		}
		return p
	}
	tests := []struct {
		name string
		pods []corev1.Pod
		want int
	}{
		{name: "none", want: 0},
		{name: "running", pods: []corev1.Pod{pod(corev1.PodRunning, false), pod(corev1.PodRunning, false)}, want: 2},
		{name: "pending-is-not-running", pods: []corev1.Pod{pod(corev1.PodPending, false), pod(corev1.PodRunning, false)}, want: 1},
		{name: "terminating-is-not-running", pods: []corev1.Pod{pod(corev1.PodRunning, true), pod(corev1.PodSucceeded, false)}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := demo.RunningPods(tt.pods); got != tt.want {
				t.Errorf("RunningPods() = %d, want %d", got, tt.want)
			}
		})
	}
}
