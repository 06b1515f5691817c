package cli_test

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/controller"
	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// Two `ebb run --leader-elect` processes; kube-apiserver is frozen (SIGSTOP) for 30 s, longer than the
// Lease lasts. The leader cannot renew, gives the Lease up and exits with an error saying so (restarted,
// as a container would be, it rejoins as a follower); the other process leads within a loose bound of the
// API server's return and writes the HPA; at no moment do both lead, and the HPA is not rewritten by the
// handover. The handover time is logged.
func TestLeaderLosesLeaseOnAPIServerFreeze(t *testing.T) {
	env := testenv.Start(t, localcluster.Options{})
	ctx := t.Context()
	run := func() *ebbProcess {
		return startEbbProcess(t, "run", "--kubeconfig="+env.Kubeconfig, "--leader-elect", "--leader-election-namespace=default",
			"--secure-port="+strconv.Itoa(testenv.FreePort(t)), "--bind-address=127.0.0.1", "--cert-dir="+t.TempDir())
	}
	a, b := run(), run()
	var leader, follower *ebbProcess
	waitFor(t, 60*time.Second, "no process became leader", func() bool {
		switch {
		case a.leading():
			leader, follower = a, b
		case b.leading():
			leader, follower = b, a
		}
		return leader != nil
	})

	// Both processes' view, sampled until the test ends: never two leaders at once.
	var both atomic.Int32
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if a.leading() && b.leading() {
				both.Add(1)
			}
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
		if n := both.Load(); n > 0 {
			t.Errorf("both processes reported leading in %d samples", n)
		}
	}()

	// A ScaledConsumer with an HPA (minReplicas 1 keeps one whatever the cron window says).
	ns := testenv.UniqueName(t, "freeze")
	sc := &ebbv1.ScaledConsumer{
		ObjectMeta: metav1.ObjectMeta{Name: "reports", Namespace: ns},
		Spec: ebbv1.ScaledConsumerSpec{
			ScaleTargetRef: ebbv1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "reports"},
			MinReplicas:    ptr(int32(1)),
			MaxReplicas:    ptr(int32(5)),
			Triggers: []ebbv1.Trigger{{Type: "cron", Metadata: map[string]string{
				"timezone": "UTC", "start": "0 8 * * 1-5", "end": "0 18 * * 1-5", "desiredReplicas": "2",
			}}},
		},
	}
	labels := map[string]string{"app": "reports"}
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "reports", Namespace: ns},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr(int32(1)),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "reports"}}},
				},
			},
		},
		sc,
	} {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	hpaKey := types.NamespacedName{Namespace: ns, Name: controller.HPAName(sc)}
	hpa := func() *autoscalingv2.HorizontalPodAutoscaler {
		h := &autoscalingv2.HorizontalPodAutoscaler{}
		if err := env.Client.Get(ctx, hpaKey, h); err != nil {
			return nil
		}
		return h
	}
	waitFor(t, 30*time.Second, "the leader made no HPA", func() bool { return hpa() != nil })
	before := hpa()

	resume := env.Freeze(t, localcluster.KubeAPIServer)
	frozen := time.Now()
	exited, err := leader.WaitExit(t, 60*time.Second)
	if !exited {
		resume()
		t.Fatal("the leader still runs 60 s into the API server's freeze")
	}
	lost := time.Since(frozen)
	if err == nil || !strings.Contains(leader.Logs(), "lost the leader Lease ebb-controller-leader") {
		t.Errorf("the leader exited with %v; want an error, and a log saying it lost the Lease", err)
	}
	if follower.leading() {
		t.Error("the follower leads while the API server is frozen")
	}
	time.Sleep(30*time.Second - time.Since(frozen))
	resume()
	resumed := time.Now()
	// What the Lease says once the API server answers: a renewal the old leader sent before giving up,
	// held up in the frozen server, may land now and make the follower wait for a whole lease duration.
	lease := &coordinationv1.Lease{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: "default", Name: "ebb-controller-leader"}, lease); err == nil &&
		lease.Spec.RenewTime != nil && lease.Spec.HolderIdentity != nil {
		t.Logf("after the freeze the Lease names %s, renewed %v into the freeze",
			strings.Fields(*lease.Spec.HolderIdentity)[0], lease.Spec.RenewTime.Sub(frozen).Round(100*time.Millisecond))
	}
	waitFor(t, 60*time.Second, "the follower did not take over after the API server came back", follower.leading)
	t.Logf("the leader gave the Lease up and exited %v into the freeze; the follower led %v after the API server came back",
		lost.Round(100*time.Millisecond), time.Since(resumed).Round(100*time.Millisecond))

	// The new leader writes the HPA: a new maxReplicas reaches it, and nothing else changed it meanwhile.
	if h := hpa(); h == nil || h.Generation != before.Generation {
		t.Errorf("the HPA was rewritten by the handover: %+v, before %+v", h, before)
	}
	patch := client.MergeFrom(sc.DeepCopy())
	sc.Spec.MaxReplicas = ptr(int32(6))
	if err := env.Client.Patch(ctx, sc, patch); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the new leader did not write maxReplicas 6 to the HPA", func() bool {
		h := hpa()
		return h != nil && h.Spec.MaxReplicas == 6
	})

	// Restarted, as a container is, the old leader follows.
	restarted := run()
	waitFor(t, 60*time.Second, "the restarted process serves no metrics", func() bool { return restarted.allMetrics() != "" })
	time.Sleep(5 * time.Second)
	if restarted.leading() || !follower.leading() {
		t.Errorf("after the restart: restarted process leads %v, the new leader leads %v", restarted.leading(), follower.leading())
	}
}

func ptr[T any](v T) *T { return &v }
