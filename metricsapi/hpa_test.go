package metricsapi_test

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/metricsapi"
	"github.com/ebbscale/ebb/metricstore"
)

// The real HPA controller (kube-controller-manager) reads an external metric from ebb's provider through
// the aggregator, with the selector ebb's HPAs use, and scales a Deployment that has no pods running (there is no kubelet): 1234 / 100 per replica, capped at 5.
func TestHPAControllerScalesOnExternalMetric(t *testing.T) {
	env := testenv.Start(t, localcluster.Options{ControllerManager: true})
	st := metricstore.New()
	st.Set(metricstore.Key{Namespace: "default", ScaledConsumer: "consumer", Metric: "queue-depth"}, metricstore.Entry{Value: 1234, Time: time.Now()})
	port := startAdapter(t, env, metricsapi.NewProvider(st))
	if err := env.RegisterExternalMetrics(t.Context(), port); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	labels := map[string]string{"app": "consumer"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "consumer", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "consumer"}}},
			},
		},
	}
	if _, err := env.Kube.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "consumer", Namespace: "default"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "consumer"},
			MinReplicas:    ptr.To[int32](1),
			MaxReplicas:    5,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ExternalMetricSourceType,
				External: &autoscalingv2.ExternalMetricSource{
					Metric: autoscalingv2.MetricIdentifier{Name: "queue-depth", Selector: &metav1.LabelSelector{
						MatchLabels: map[string]string{"ebb.dev/scaledconsumer": "consumer"}}},
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: resource.NewQuantity(100, resource.DecimalSI)},
				},
			}},
		},
	}
	if _, err := env.Kube.AutoscalingV2().HorizontalPodAutoscalers("default").Create(ctx, hpa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var replicas int32
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		d, err := env.Kube.AppsV1().Deployments("default").Get(ctx, "consumer", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		replicas = *d.Spec.Replicas
		return replicas == 5, nil
	})
	if err != nil {
		h, _ := env.Kube.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctx, "consumer", metav1.GetOptions{})
		t.Fatalf("deployment at %d replicas, want 5 (HPA status: %+v): %v", replicas, h.Status, err)
	}
	if !env.ControllerManagerRunning() {
		t.Error("kube-controller-manager is not running")
	}
}
