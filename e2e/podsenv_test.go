package e2e_test

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/internal/app"
	"github.com/ebbscale/ebb/internal/dev/devkafka"
	"github.com/ebbscale/ebb/internal/dev/ebbinstall"
	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// podsEnv is a cluster with a real node, ebb installed from manifests/ as two pods, and the brokers the
// pods can reach on the node address.
type podsEnv struct {
	*testenv.Env
	imgs      *testenv.Images
	kafka     string // bootstrap servers on the node address
	rabbitURL string // RabbitMQ's AMQP URL through a relay on the node address; empty without one
}

// startPodsEnv builds the ebb, pause and consumer images, starts a cluster with a real node and a Kafka
// broker on the node address, and installs ebb from manifests/ as two pods, waiting until they serve.
// With rabbit, RabbitMQ (which hack/ensure-rabbitmq.sh provides on 127.0.0.1) is relayed to the node
// address too. Everything stops when the test or benchmark ends.
func startPodsEnv(t testing.TB, rabbit bool) *podsEnv {
	t.Helper()
	testenv.RequireNode(t)
	if rabbit {
		testenv.RequireTCP(t, "RabbitMQ", "127.0.0.1:5672", "hack/ensure-rabbitmq.sh")
	}
	ctx := t.Context()
	imgs, err := testenv.BuildImages(ctx, t.TempDir(), "ebb", "pause", "consumer")
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.Start(t, localcluster.Options{Node: imgs.NodeOptions()})
	k, err := devkafka.Start(devkafka.Config{Host: localcluster.NodeIP.String(), DefaultPartitions: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	e := &podsEnv{Env: env, imgs: imgs, kafka: strings.Join(k.ListenAddrs(), ",")}
	if rabbit {
		relay := testenv.Relay(t, net.JoinHostPort(localcluster.NodeIP.String(), "0"), "127.0.0.1:5672")
		e.rabbitURL = "amqp://guest:guest@" + relay + "/"
	}

	start := time.Now()
	if err := ebbinstall.Apply(ctx, ebbinstall.Options{
		Kubectl: filepath.Join(env.BinDir, "kubectl"), Kubeconfig: env.Kubeconfig, Manifests: "../manifests",
		OverlayDir: filepath.Join(t.TempDir(), "overlay"), Image: imgs.Refs["ebb"],
	}); err != nil {
		t.Fatal(err)
	}
	if err := ebbinstall.WaitReady(ctx, env.Config, 3*time.Minute); err != nil {
		e.dumpEbb(t)
		t.Fatal(err)
	}
	t.Logf("ebb installed and serving in %s", time.Since(start).Round(100*time.Millisecond))
	return e
}

// checkInstall: two ebb pods Running and Ready under the ServiceAccount of the manifests, one of them
// holding the leader Lease.
func (e *podsEnv) checkInstall(t testing.TB) {
	pods := e.ebbPods(t)
	if len(pods) != 2 {
		t.Fatalf("ebb pods: %d, want 2", len(pods))
	}
	for _, p := range pods {
		if p.Spec.ServiceAccountName != "ebb" || p.Status.Phase != corev1.PodRunning || !podReady(&p) {
			t.Errorf("pod %s: service account %q, phase %s, ready %v; want ebb, Running, true", p.Name, p.Spec.ServiceAccountName, p.Status.Phase, podReady(&p))
		}
		if p.Spec.Containers[0].Image != e.imgs.Refs["ebb"] {
			t.Errorf("pod %s runs %s, want %s", p.Name, p.Spec.Containers[0].Image, e.imgs.Refs["ebb"])
		}
	}
	leader := e.leader(t, time.Minute)
	if leader != pods[0].Name && leader != pods[1].Name {
		t.Errorf("leader %q is neither ebb pod (%s, %s)", leader, pods[0].Name, pods[1].Name)
	}
}

func (e *podsEnv) ebbPods(t testing.TB) []corev1.Pod {
	t.Helper()
	list := &corev1.PodList{}
	if err := e.Client.List(t.Context(), list, client.InNamespace(ebbinstall.Namespace), client.MatchingLabels{"app.kubernetes.io/name": "ebb"}); err != nil {
		t.Fatal(err)
	}
	var live []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	return live
}

// leader waits for a live holder of ebb's leader Lease and returns its pod's name.
func (e *podsEnv) leader(t testing.TB, timeout time.Duration) string {
	t.Helper()
	var holder string
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		l := &coordinationv1.Lease{}
		if err := e.Client.Get(ctx, types.NamespacedName{Namespace: ebbinstall.Namespace, Name: app.DefaultLeaderElectionID}, l); err != nil || l.Spec.HolderIdentity == nil {
			return false, nil
		}
		holder, _, _ = strings.Cut(*l.Spec.HolderIdentity, "_")
		for _, p := range e.ebbPods(t) {
			if p.Name == holder {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no live ebb pod holds the leader Lease (last holder %q): %v", holder, err)
	}
	return holder
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// consumerDeployment runs the example consumer with env, at 0 replicas.
func (e *podsEnv) consumerDeployment(ns string, env map[string]string) *appsv1.Deployment {
	d := testenv.Deployment(ns, "consumer", 0)
	c := &d.Spec.Template.Spec.Containers[0]
	c.Image, c.ImagePullPolicy = e.imgs.Refs["consumer"], corev1.PullNever
	c.Command, c.Args = nil, nil
	for k, v := range env {
		c.Env = append(c.Env, corev1.EnvVar{Name: k, Value: v})
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: "CONSUMER_ID", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}})
	return d
}

func (e *podsEnv) newNamespace(t testing.TB, prefix string) string {
	t.Helper()
	ns := testenv.UniqueName(t, prefix)
	if err := e.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	return ns
}

func scaledConsumer(ns string, trigger ebbv1.Trigger) *ebbv1.ScaledConsumer {
	return &ebbv1.ScaledConsumer{
		ObjectMeta: metav1.ObjectMeta{Name: "consumer", Namespace: ns},
		Spec: ebbv1.ScaledConsumerSpec{
			ScaleTargetRef:  ebbv1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "consumer"},
			MaxReplicas:     ptr[int32](4),
			PollingInterval: &metav1.Duration{Duration: time.Second},
			CooldownPeriod:  &metav1.Duration{Duration: 5 * time.Second},
			Triggers:        []ebbv1.Trigger{trigger},
		},
	}
}

// dumpEbb logs ebb's pods and the tail of their logs, for a failure.
func (e *podsEnv) dumpEbb(t testing.TB) {
	t.Helper()
	kubectl := filepath.Join(e.BinDir, "kubectl")
	for _, args := range [][]string{
		{"get", "pods,deployments,hpa,scaledconsumers", "-A", "-o", "wide"},
		{"logs", "-n", ebbinstall.Namespace, "-l", "app.kubernetes.io/name=ebb", "--tail=40", "--prefix"},
		{"get", "events", "-A", "--sort-by=.lastTimestamp"},
	} {
		out, _ := exec.Command(kubectl, append([]string{"--kubeconfig", e.Kubeconfig}, args...)...).CombinedOutput()
		t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
	}
}

// keySet is a set of message keys, safe for concurrent use.
type keySet struct {
	mu   sync.Mutex
	keys map[string]bool
}

func newKeySet() *keySet { return &keySet{keys: map[string]bool{}} }

func (s *keySet) add(k string) {
	s.mu.Lock()
	s.keys[k] = true
	s.mu.Unlock()
}

func (s *keySet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}
