package cli_test

import (
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/controller"
	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// ebbProcess is a running `ebb` command.
type ebbProcess struct{ *testenv.EbbProcess }

// startEbbProcess runs the ebb binary with args (testenv.StartEbb).
func startEbbProcess(t *testing.T, args ...string) *ebbProcess {
	t.Helper()
	return &ebbProcess{testenv.StartEbb(t, args...)}
}

// metricValue returns the value of the sample whose line starts with series on the process's /metrics, or
// "" when it has none.
func (p *ebbProcess) metricValue(series string) string {
	for _, line := range strings.Split(p.allMetrics(), "\n") {
		if strings.HasPrefix(line, series+" ") {
			return strings.TrimSpace(strings.TrimPrefix(line, series))
		}
	}
	return ""
}

func (p *ebbProcess) leading() bool {
	return p.metricValue(`leader_election_master_status{name="ebb-controller-leader"}`) == "1"
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("after %s: %s", timeout, what)
}

// Two `ebb controller` processes with leader election: one leads and acts, the other waits; when the
// leader stops, the other takes over and acts.
func TestControllerLeaderElection(t *testing.T) {
	env := testenv.Start(t, localcluster.Options{})
	ctx := t.Context()
	args := []string{"controller", "--kubeconfig=" + env.Kubeconfig, "--leader-elect", "--leader-election-namespace=default"}
	a := startEbbProcess(t, args...)
	b := startEbbProcess(t, args...)
	var leader, follower *ebbProcess
	waitFor(t, 30*time.Second, "no process became leader", func() bool {
		switch {
		case a.leading():
			leader, follower = a, b
		case b.leading():
			leader, follower = b, a
		}
		return leader != nil
	})
	if follower.leading() {
		t.Fatal("both processes lead")
	}
	lease := &coordinationv1.Lease{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: "default", Name: "ebb-controller-leader"}, lease); err != nil {
		t.Fatal(err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Fatalf("Lease has no holder: %+v", lease.Spec)
	}

	ns := testenv.UniqueName(t, "le")
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	// The binary knows no "none" trigger type: the controller that acts marks the ScaledConsumer Ready=False.
	createSC := func(name string) {
		t.Helper()
		if err := env.Client.Create(ctx, &ebbv1.ScaledConsumer{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: ebbv1.ScaledConsumerSpec{
				ScaleTargetRef: ebbv1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
				Triggers:       []ebbv1.Trigger{{Type: "none"}},
			},
		}); err != nil {
			t.Fatal(err)
		}
	}
	reconciled := func(name string) func() bool {
		return func() bool {
			sc := &ebbv1.ScaledConsumer{}
			if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, sc); err != nil {
				return false
			}
			c := meta.FindStatusCondition(sc.Status.Conditions, ebbv1.ConditionReady)
			return c != nil && c.Reason == controller.ReasonInvalidTrigger && strings.Contains(c.Message, `unknown trigger type "none"`)
		}
	}
	reconciles := func(p *ebbProcess) string {
		return p.metricValue(`controller_runtime_reconcile_total{controller="scaledconsumer",result="success"}`)
	}
	createSC("first")
	waitFor(t, 20*time.Second, "the leader did not reconcile the first ScaledConsumer", reconciled("first"))
	if got := reconciles(follower); got != "" && got != "0" {
		t.Errorf("the follower reconciled %s times", got)
	}

	leader.Stop(t)
	waitFor(t, 30*time.Second, "the follower did not take over", follower.leading)
	createSC("second")
	waitFor(t, 20*time.Second, "the new leader did not reconcile the second ScaledConsumer", reconciled("second"))
	if got := reconciles(follower); got == "" || got == "0" {
		t.Errorf("the new leader's reconcile count is %q", got)
	}
}

// `ebb run` serves the external metrics API behind the aggregator and the controller's and the metrics
// API's Prometheus metrics on one endpoint.
func TestRunServesBothRoles(t *testing.T) {
	env := testenv.Start(t, localcluster.Options{})
	port := testenv.FreePort(t)
	p := startEbbProcess(t, "run", "--kubeconfig="+env.Kubeconfig, "--secure-port="+strconv.Itoa(port), "--bind-address=127.0.0.1", "--cert-dir="+t.TempDir())
	if err := env.RegisterExternalMetrics(t.Context(), port); err != nil {
		t.Fatalf("registering ebb run's metrics API: %v\n%s", err, p.Logs())
	}
	// A query without ebb's selector is refused with a message saying what to send.
	out, err := exec.CommandContext(t.Context(), env.BinDir+"/kubectl", "--kubeconfig", env.Kubeconfig, "get", "--raw",
		"/apis/external.metrics.k8s.io/v1beta1/namespaces/default/lag").CombinedOutput()
	if err == nil || !strings.Contains(string(out), ebbv1.ScaledConsumerLabel) {
		t.Errorf("kubectl get --raw without a selector: err %v, output %s; want a Bad Request naming %s", err, out, ebbv1.ScaledConsumerLabel)
	}
	waitFor(t, 10*time.Second, "the request is not counted on /metrics", func() bool {
		return p.metricValue(`ebb_metricsapi_requests_total{code="bad_request",metric="_unknown"}`) == "1" // no ScaledConsumer serves "lag"
	})
	all := p.allMetrics()
	if !strings.Contains(all, "ebb_hpa_apply_duration_seconds") {
		t.Errorf("the controller's metrics are missing from /metrics")
	}
	if !strings.Contains(all, `ebb_build_info{goversion="go`) {
		t.Errorf("ebb_build_info is missing from /metrics")
	}
}

// allMetrics is the process's /metrics page ("" when unreachable).
func (p *ebbProcess) allMetrics() string {
	resp, err := http.Get(p.MetricsURL + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}
