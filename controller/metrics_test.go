package controller_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
)

// The gauges behind "why is it at N replicas?" follow the target's /scale, the HPA's status and the spec,
// and go away with the HPA (paused) and with the ScaledConsumer.
func TestReplicaMetrics(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	h.deployment("worker", 0)
	h.set("lag", 25)
	sc := h.scaledConsumer("worker", "worker", "lag")
	sc.Spec.MaxReplicas = ptr(int32(7))
	h.create(sc)
	h.waitReplicas("worker", 1) // ebb wakes it; the HPA cannot scale further without a metrics API here

	// What the Deployment controller would write (there is none here): one replica running.
	d := &appsv1.Deployment{}
	if err := h.c.Get(ctx, types.NamespacedName{Namespace: h.ns, Name: "worker"}, d); err != nil {
		t.Fatal(err)
	}
	d.Status.Replicas = 1
	if err := h.c.Status().Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	// What the HPA controller would compute with a metrics API: 4 replicas. Without one it keeps the
	// desired replicas its status has, so 4 stays.
	hpaName := "ebb-worker"
	h.eventually(10*time.Second, func() (bool, string) {
		hpa := h.hpa(hpaName)
		if hpa == nil || hpa.Status.ObservedGeneration == nil {
			return false, "the HPA controller has not synced " + hpaName
		}
		hpa.Status.DesiredReplicas = 4
		if err := h.c.Status().Update(ctx, hpa); err != nil {
			return false, err.Error()
		}
		return true, ""
	})

	m := h.metrics
	gauges := func() map[string]float64 {
		got := map[string]float64{}
		for name, v := range map[string]*prometheus.GaugeVec{
			"hpaDesired": m.HPADesiredReplicas, "target": m.TargetReplicas, "current": m.TargetCurrentReplicas,
			"min": m.MinReplicas, "max": m.MaxReplicas,
		} {
			if testutil.CollectAndCount(v) > 0 {
				got[name] = testutil.ToFloat64(v.WithLabelValues(h.ns, "worker"))
			}
		}
		if testutil.CollectAndCount(m.TriggerTarget) > 0 {
			got["triggerTarget"] = testutil.ToFloat64(m.TriggerTarget.WithLabelValues(h.ns, "worker", "lag", "lag"))
		}
		return got
	}
	want := map[string]float64{"hpaDesired": 4, "target": 1, "current": 1, "min": 0, "max": 7, "triggerTarget": 10}
	h.eventually(10*time.Second, func() (bool, string) {
		diff := cmp.Diff(gauges(), want)
		return diff == "", fmt.Sprintf("replica metrics (-got +want):\n%s", diff)
	})

	// Paused: ebb removes the HPA, and with it the HPA's series.
	h.update("worker", func(sc *ebbv1.ScaledConsumer) {
		sc.Annotations = map[string]string{ebbv1.PausedAnnotation: "true"}
	})
	delete(want, "hpaDesired")
	h.eventually(10*time.Second, func() (bool, string) {
		diff := cmp.Diff(gauges(), want)
		return diff == "", fmt.Sprintf("replica metrics while paused (-got +want):\n%s", diff)
	})

	// Its target gone: ebb cannot say how many replicas it has, and the replica series go.
	if err := h.c.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	h.poke("worker")
	want = map[string]float64{"triggerTarget": 10}
	h.eventually(10*time.Second, func() (bool, string) {
		diff := cmp.Diff(gauges(), want)
		return diff == "", fmt.Sprintf("replica metrics without a target (-got +want):\n%s", diff)
	})

	// Deleted: nothing of it remains.
	if err := h.c.Delete(ctx, h.getSC("worker")); err != nil {
		t.Fatal(err)
	}
	h.eventually(10*time.Second, func() (bool, string) {
		got := gauges()
		return len(got) == 0, fmt.Sprintf("series left after the ScaledConsumer's deletion: %v", got)
	})
}

// ebb_trigger_consecutive_failures counts failed samples since the last good one, and a good sample
// resets it.
func TestTriggerFailureMetric(t *testing.T) {
	h := newHarness(t)
	h.deployment("worker", 1)
	h.set("lag", 5)
	h.create(h.scaledConsumer("worker", "worker", "lag"))
	failures := func() float64 {
		return testutil.ToFloat64(h.metrics.TriggerFailures.WithLabelValues(h.ns, "worker", "lag"))
	}
	h.waitCondition("worker", ebbv1.ConditionActive, metav1.ConditionTrue, "TriggerActive")
	if got := failures(); got != 0 {
		t.Errorf("consecutive failures while sampling fine = %v, want 0", got)
	}
	h.src.Fail(h.ns+"/lag", errors.New("broker unreachable"))
	h.eventually(10*time.Second, func() (bool, string) {
		got := failures()
		return got >= 3, fmt.Sprintf("consecutive failures = %v, want them to grow past 3", got)
	})
	h.set("lag", 5)
	h.eventually(10*time.Second, func() (bool, string) {
		got := failures()
		return got == 0, fmt.Sprintf("consecutive failures after a good sample = %v, want 0", got)
	})
}
