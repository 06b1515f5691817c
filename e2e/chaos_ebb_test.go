package e2e_test

import (
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// The scenarios that break ebb itself run the ebb binary (`ebb run`, controller and metrics API in one
// process), each on a control plane of its own: they register the metrics API of their own processes.

// ebbRun starts `ebb run` with kubeconfig and its metrics API on port (the APIService points there; a
// restarted process takes the same port) and the extra flags.
func ebbRun(t *testing.T, kubeconfig string, port int, extra ...string) *testenv.EbbProcess {
	t.Helper()
	args := append([]string{"run", "--kubeconfig=" + kubeconfig, "--secure-port=" + strconv.Itoa(port),
		"--bind-address=127.0.0.1", "--cert-dir=" + t.TempDir()}, extra...)
	return testenv.StartEbb(t, args...)
}

// tokenKubeconfig writes a kubeconfig for env that authenticates as the ServiceAccount default/ebb, bound
// to cluster-admin, with a token: a follower mirrors the leader's values only with a token the leader can
// review, as in a cluster.
func tokenKubeconfig(t *testing.T, env *testenv.Env) string {
	t.Helper()
	ctx := t.Context()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "ebb", Namespace: "default"}}
	if err := env.Client.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "ebb-chaos"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "ebb", Namespace: "default"}},
	}); err != nil {
		t.Fatal(err)
	}
	expiry := int64(3600)
	tok, err := env.Kube.CoreV1().ServiceAccounts("default").CreateToken(ctx, "ebb",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, ai := range cfg.AuthInfos {
		*ai = clientcmdapi.AuthInfo{Token: tok.Status.Token}
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// leading reports whether p holds the leader Lease, from its /metrics.
func leading(p *testenv.EbbProcess) bool {
	resp, err := http.Get(p.MetricsURL + "/metrics")
	if err != nil {
		return false
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return err == nil && strings.Contains(string(b), "\n"+`leader_election_master_status{name="ebb-controller-leader"} 1`)
}

// ebb is killed (SIGKILL) in the middle of a cooldown and started again at once: the target must not go
// to zero before cooldownPeriod has passed since the last activity (the restart does not shorten the
// cooldown), and does go to zero after it.
func TestChaosEbbKilledMidCooldown(t *testing.T) {
	t.Parallel()
	const cooldown = 20 * time.Second
	env := testenv.Start(t, localcluster.Options{ControllerManager: true})
	port := testenv.FreePort(t)
	p := ebbRun(t, env.Kubeconfig, port)
	if err := env.RegisterExternalMetrics(t.Context(), port); err != nil {
		t.Fatalf("registering ebb run's metrics API: %v\n%s", err, p.Logs())
	}
	ct := newChaosTarget(t, env.Config, "cooldown")
	w, _ := startWork(t, ct, newChaosKafka(t), 30, cooldown, 0)
	w.paused.Store(true)

	w.setBacklog(t, 0)
	drained := time.Now()
	timing(t, "backlog drained -> HPA at its minimum (1)", ct.waitReplicas(time.Minute, 1))
	time.Sleep(time.Until(drained.Add(cooldown / 4)))
	if got, err := ct.replicas(t.Context()); err != nil || got == 0 {
		t.Fatalf("%s after the backlog drained, before ebb was killed: %d replicas (err %v); the cooldown is %s", time.Since(drained), got, err, cooldown)
	}
	p.Kill(t)
	killed := time.Since(drained)
	time.Sleep(2 * time.Second)
	p = ebbRun(t, env.Kubeconfig, port)
	restarted := time.Since(drained)
	t.Logf("ebb killed %s and restarted %s after the backlog drained", killed.Round(100*time.Millisecond), restarted.Round(100*time.Millisecond))

	// The last active sample came about one polling interval before the drain (more on a slow machine);
	// a restart that lost the cooldown would scale to zero soon after it, well before this.
	earliest := cooldown - 3*time.Second
	ct.waitReplicas(cooldown+time.Minute, 0)
	zero := time.Since(drained)
	timing(t, "backlog drained (ebb killed and restarted meanwhile) -> scaled to zero, cooldown "+cooldown.String(), zero)
	if zero < earliest {
		t.Errorf("scaled to zero %s after the backlog drained, before the %s cooldown had passed (ebb was restarted %s after)", zero, cooldown, restarted)
	}
	if ok, err := p.Exited(); ok {
		t.Errorf("the restarted ebb exited: %v", err)
	}
}

// Two `ebb run --leader-elect` processes under a backlog the consumers are working off; the leader is
// killed (SIGKILL: it releases no Lease); the follower takes over once the Lease expires and scaling goes
// on: a smaller backlog is followed and a drained one scaled to zero. The metrics API the HPA reads is
// the follower's, which mirrors the leader's values until it leads.
func TestChaosLeaderFailover(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, localcluster.Options{ControllerManager: true})
	le := []string{"--leader-elect", "--leader-election-namespace=default"}
	ports := []int{testenv.FreePort(t), testenv.FreePort(t)}
	kubeconfig := tokenKubeconfig(t, env)
	procs := []*testenv.EbbProcess{ebbRun(t, kubeconfig, ports[0], le...), ebbRun(t, kubeconfig, ports[1], le...)}
	leader := -1
	waitUntil(t, time.Minute, "a leader", func() (bool, string) {
		for i, p := range procs {
			if leading(p) {
				leader = i
				return true, "process " + strconv.Itoa(i)
			}
		}
		return false, "no process leads"
	})
	follower := 1 - leader
	if err := env.RegisterExternalMetrics(t.Context(), ports[follower]); err != nil {
		t.Fatalf("registering the follower's metrics API: %v\n%s", err, procs[follower].Logs())
	}
	ct := newChaosTarget(t, env.Config, "failover")
	w, _ := startWork(t, ct, newChaosKafka(t), 400, 5*time.Second, 0)
	time.Sleep(3 * time.Second)

	procs[leader].Kill(t)
	killed := time.Now()
	timing(t, "leader killed -> follower leads", waitUntil(t, time.Minute, "the follower leads", func() (bool, string) {
		return leading(procs[follower]), "not yet"
	}))

	w.paused.Store(true)
	w.setBacklog(t, 25)
	timing(t, "after failover, backlog 25 -> target at 3", ct.waitReplicas(time.Minute, need(25)))
	w.setBacklog(t, 0)
	timing(t, "after failover, backlog drained -> scaled to zero (cooldown 5s)", ct.waitReplicas(time.Minute, 0))
	timing(t, "leader killed -> new leader scaled to zero", time.Since(killed))
	if ok, err := procs[follower].Exited(); ok {
		t.Errorf("the new leader exited: %v", err)
	}
}
