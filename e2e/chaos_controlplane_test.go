package e2e_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// kube-apiserver and kube-controller-manager are frozen (SIGSTOP) for longer than the leader Lease's renew
// deadline, under a backlog, and resumed (SIGCONT). Meanwhile the backlog shrinks. Once they are back, ebb
// (`ebb run --leader-elect`, restarted as a container would be if it exits) must lead again and the target
// follow the new backlog; the invariant watcher runs throughout.
func TestChaosControlPlaneFrozen(t *testing.T) {
	t.Parallel()
	const frozen = 20 * time.Second
	env := testenv.Start(t, localcluster.Options{ControllerManager: true})
	port := testenv.FreePort(t)
	args := []string{"--leader-elect", "--leader-election-namespace=default"}
	p := ebbRun(t, env.Kubeconfig, port, args...)
	if err := env.RegisterExternalMetrics(t.Context(), port); err != nil {
		t.Fatalf("registering ebb run's metrics API: %v\n%s", err, p.Logs())
	}
	ct := newChaosTarget(t, env.Config, "freeze")
	w, _ := startWork(t, ct, newChaosKafka(t), 400, 10*time.Second, 0)
	waitUntil(t, time.Minute, "ebb leads", func() (bool, string) { return leading(p), "not yet" })
	time.Sleep(2 * time.Second)

	w.paused.Store(true)
	resumeAPI := env.Freeze(t, localcluster.KubeAPIServer)
	resumeKCM := env.Freeze(t, localcluster.KubeControllerManager)
	frozenAt := time.Now()
	w.setBacklog(t, 25) // the broker is up: the backlog shrinks while the control plane is frozen
	time.Sleep(time.Until(frozenAt.Add(frozen)))
	resumeAPI()
	resumeKCM()
	resumed := time.Now()

	restarts := 0
	// supervise restarts ebb when it exited (during the freeze or after it), as the kubelet restarts a
	// container.
	supervise := func() {
		if ok, err := p.Exited(); ok {
			restarts++
			t.Logf("ebb had exited (%v) when checked %s after the control plane resumed; restarting it", err, time.Since(resumed).Round(100*time.Millisecond))
			p = ebbRun(t, env.Kubeconfig, port, args...)
		}
	}
	waitUntil(t, time.Minute, "the API server answers", func() (bool, string) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		err := ct.c.Get(ctx, types.NamespacedName{Name: "default"}, &corev1.Namespace{})
		return err == nil, fmt.Sprint(err)
	})
	timing(t, "control plane resumed -> API server answers", time.Since(resumed))
	waitUntil(t, 2*time.Minute, "3 replicas", func() (bool, string) {
		supervise()
		got, err := ct.replicas(t.Context())
		return err == nil && got == need(25), fmt.Sprintf("replicas %d (err %v)", got, err)
	})
	timing(t, "control plane resumed -> target at the replicas the smaller backlog needs (3)", time.Since(resumed))
	waitUntil(t, 2*time.Minute, "ebb leads", func() (bool, string) {
		supervise()
		return leading(p), "not leading"
	})
	timing(t, "control plane resumed -> ebb leads", time.Since(resumed))
	t.Logf("chaos timing: ebb restarts after a %s freeze: %d", frozen, restarts)
}
