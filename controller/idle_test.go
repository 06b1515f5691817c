package controller_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
)

// TestIdleScaledConsumersSendNoRequests: ScaledConsumers whose numbers do not change cost no request to
// kube-apiserver once they settled, although their triggers are sampled every 100 ms and status refreshes
// every 200 ms (the harness's StatusRefresh): no status write, no read of /scale, no write of any kind.
func TestIdleScaledConsumersSendNoRequests(t *testing.T) {
	counter := &requestCounter{}
	h := newHarness(t, withRequestCounter(counter))

	// At zero: the trigger reads 0, so ebb scales the Deployment from 1 to 0 and stays there.
	h.deployment("zero", 1)
	h.set("zero", 0)
	h.create(h.scaledConsumer("zero", "zero", "zero"))
	// Backlog below the activation threshold: ebb holds the Deployment at 1.
	h.deployment("below", 1)
	h.set("below", 3)
	below := h.scaledConsumer("below", "below", "below")
	below.Spec.Triggers[0].Metadata["activation"] = "5"
	h.create(below)
	// A floor: minReplicas 2 keeps the Deployment up although the trigger reads 0.
	h.deployment("floor", 2)
	h.set("floor", 0)
	floor := h.scaledConsumer("floor", "floor", "floor")
	floor.Spec.MinReplicas = ptr[int32](2)
	h.create(floor)

	want := map[string]struct {
		replicas int32
		active   metav1.ConditionStatus
	}{
		"zero":  {0, metav1.ConditionFalse},
		"below": {1, metav1.ConditionFalse},
		"floor": {2, metav1.ConditionFalse},
	}
	for name, w := range want {
		h.waitReplicas(name, w.replicas)
		h.eventually(20*time.Second, func() (bool, string) {
			sc := h.getSC(name)
			ready := meta.FindStatusCondition(sc.Status.Conditions, ebbv1.ConditionReady)
			active := meta.FindStatusCondition(sc.Status.Conditions, ebbv1.ConditionActive)
			hpa := h.hpa("ebb-" + name)
			switch {
			case ready == nil || ready.Status != metav1.ConditionTrue || active == nil || active.Status != w.active:
				return false, fmt.Sprintf("%s: conditions %v", name, sc.Status.Conditions)
			case hpa == nil || hpa.Status.ObservedGeneration == nil || *hpa.Status.ObservedGeneration != hpa.Generation:
				return false, fmt.Sprintf("%s: the HPA controller has not synced HPA ebb-%s", name, name)
			case hpa.Status.CurrentReplicas != w.replicas:
				return false, fmt.Sprintf("%s: HPA status.currentReplicas %d, want %d", name, hpa.Status.CurrentReplicas, w.replicas)
			}
			return true, ""
		})
	}
	// Settled: what ebb still has to do after the conditions above (the last status write, the HPA's
	// status reaching ebb's cache) is done within a few polls.
	time.Sleep(2 * time.Second)
	settling := withoutWatches(counter.take())

	time.Sleep(3 * time.Second) // 30 polls of each trigger, 15 status refresh periods
	got := withoutWatches(counter.take())
	if diff := cmp.Diff(got, map[string]int{}); diff != "" {
		t.Errorf("requests in 3 s of steady state (-got +want):\n%s\nwhile settling:\n%s", diff, formatCounts(settling))
	}
}
