package controller_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/controller"
	"github.com/ebbscale/ebb/metricstore"
	"github.com/ebbscale/ebb/scalers/scalertest"
)

// hpaMetrics lists an HPA's external metrics as "name selector target".
func hpaMetrics(hpa *autoscalingv2.HorizontalPodAutoscaler) []string {
	var out []string
	for _, m := range hpa.Spec.Metrics {
		if m.External == nil {
			out = append(out, string(m.Type))
			continue
		}
		out = append(out, fmt.Sprintf("%s %s %s %s", m.External.Metric.Name, metav1.FormatLabelSelector(m.External.Metric.Selector), m.External.Target.Type, m.External.Target.AverageValue))
	}
	return out
}

func TestHPAFollowsScaledConsumer(t *testing.T) {
	h := newHarness(t)
	h.deployment("orders", 1)
	h.set("lag", 0)
	h.set("depth", 0)
	sc := h.scaledConsumer("orders", "orders", "lag", "depth")
	sc.Spec.MinReplicas, sc.Spec.MaxReplicas = ptr[int32](2), ptr[int32](7)
	h.create(sc)

	h.waitCondition("orders", ebbv1.ConditionReady, metav1.ConditionTrue, controller.ReasonHPAReady)
	hpa := h.hpa("ebb-orders")
	if hpa == nil {
		t.Fatal("HPA ebb-orders was not created")
	}
	want := []string{"lag ebb.dev/scaledconsumer=orders AverageValue 10", "depth ebb.dev/scaledconsumer=orders AverageValue 10"}
	if diff := cmp.Diff(hpaMetrics(hpa), want); diff != "" {
		t.Errorf("HPA metrics (-got +want):\n%s", diff)
	}
	if *hpa.Spec.MinReplicas != 2 || hpa.Spec.MaxReplicas != 7 || hpa.Spec.ScaleTargetRef.Name != "orders" {
		t.Errorf("HPA bounds/target = %d..%d %s, want 2..7 orders", *hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas, hpa.Spec.ScaleTargetRef.Name)
	}
	if !metav1.IsControlledBy(hpa, h.getSC("orders")) {
		t.Errorf("HPA owners = %v, want the ScaledConsumer as controller", hpa.OwnerReferences)
	}

	// Removing a trigger removes its metric; a new target and behavior follow too.
	h.update("orders", func(sc *ebbv1.ScaledConsumer) {
		sc.Spec.Triggers = sc.Spec.Triggers[:1]
		sc.Spec.Triggers[0].Metadata["target"] = "25"
		sc.Spec.HPA = &ebbv1.HPAConfig{Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
			ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr[int32](60)},
		}}
	})
	h.eventually(10*time.Second, func() (bool, string) {
		hpa = h.hpa("ebb-orders")
		got := hpaMetrics(hpa)
		return cmp.Equal(got, []string{"lag ebb.dev/scaledconsumer=orders AverageValue 25"}), fmt.Sprintf("HPA metrics %v", got)
	})
	if b := hpa.Spec.Behavior; b == nil || b.ScaleDown == nil || *b.ScaleDown.StabilizationWindowSeconds != 60 {
		t.Errorf("HPA behavior = %+v, want scaleDown window 60", b)
	}
	// The removed trigger's metric is gone from the store as well.
	if _, ok := h.store.Get(metricstore.Key{Namespace: h.ns, ScaledConsumer: "orders", Metric: "depth"}); ok {
		t.Error("metric depth of a removed trigger is still in the store")
	}

	// spec.hpa.name renames: the new HPA exists, the old one is deleted.
	h.update("orders", func(sc *ebbv1.ScaledConsumer) { sc.Spec.HPA.Name = "orders-hpa" })
	h.eventually(10*time.Second, func() (bool, string) {
		return h.hpa("orders-hpa") != nil && h.hpa("ebb-orders") == nil, "waiting for orders-hpa to replace ebb-orders"
	})

	// Deleting the ScaledConsumer deletes its HPA (owner reference, garbage collector) and its values.
	if err := h.c.Delete(t.Context(), h.getSC("orders")); err != nil {
		t.Fatal(err)
	}
	h.eventually(30*time.Second, func() (bool, string) {
		return h.hpa("orders-hpa") == nil, "HPA orders-hpa still exists after its ScaledConsumer was deleted"
	})
	h.eventually(5*time.Second, func() (bool, string) {
		_, ok := h.store.Get(metricstore.Key{Namespace: h.ns, ScaledConsumer: "orders", Metric: "lag"})
		return !ok, "the deleted ScaledConsumer's value is still in the store"
	})
}

func TestScaleToZeroAndBack(t *testing.T) {
	h := newHarness(t)
	h.deployment("worker", 1)
	h.set("lag", 0)
	sc := h.scaledConsumer("worker", "worker", "lag")
	sc.Spec.CooldownPeriod = &metav1.Duration{Duration: 5 * time.Minute}
	h.create(sc)

	// Never active and no initial cooldown: idle from the start, so ebb takes it to zero.
	h.waitReplicas("worker", 0)
	h.waitEvent("worker", controller.ReasonCooledDown)

	// Activity wakes it to max(minReplicas, 1).
	h.set("lag", 5)
	h.waitReplicas("worker", 1)
	note := h.waitEvent("worker", controller.ReasonActivated)
	if !strings.Contains(note, "from 0 to 1") {
		t.Errorf("Activated event note = %q, want it to say from 0 to 1", note)
	}
	h.waitCondition("worker", ebbv1.ConditionActive, metav1.ConditionTrue, "TriggerActive")
	last := h.getSC("worker").Status.LastActiveTime
	if last == nil {
		t.Fatal("status.lastActiveTime not set while active")
	}

	// Idle again: held at 1 through the cooldown (on the fake clock), then back to 0.
	h.set("lag", 0)
	c := h.waitCondition("worker", ebbv1.ConditionActive, metav1.ConditionFalse, "NoActivity")
	if !strings.Contains(c.Message, "cooling down") {
		t.Errorf("Active condition message = %q, want it to say it is cooling down", c.Message)
	}
	if got := h.replicas("worker"); got != 1 {
		t.Fatalf("replicas during cooldown = %d, want 1", got)
	}
	h.clock.Step(5*time.Minute + time.Second)
	h.poke("worker")
	h.waitReplicas("worker", 0)

	// What ebb did is in its metrics: two scale-ins, one wake-up, the last value, no errors.
	m := h.metrics
	got := map[string]float64{
		"activated":  testutil.ToFloat64(m.ScaleActions.WithLabelValues(h.ns, "worker", controller.ReasonActivated)),
		"cooledDown": testutil.ToFloat64(m.ScaleActions.WithLabelValues(h.ns, "worker", controller.ReasonCooledDown)),
		"value":      testutil.ToFloat64(m.TriggerValue.WithLabelValues(h.ns, "worker", "lag", "lag")),
		"active":     testutil.ToFloat64(m.TriggerActive.WithLabelValues(h.ns, "worker", "lag")),
		"errors":     testutil.ToFloat64(m.TriggerErrors.WithLabelValues(h.ns, "worker", "lag")),
		"ready":      testutil.ToFloat64(m.Condition.WithLabelValues(h.ns, "worker", ebbv1.ConditionReady)),
	}
	want := map[string]float64{"activated": 1, "cooledDown": 2, "value": 0, "active": 0, "errors": 0, "ready": 1}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("metrics (-got +want):\n%s", diff)
	}
}

func TestBacklogBelowActivationHoldsScaleToZero(t *testing.T) {
	h := newHarness(t)
	h.deployment("worker", 2)
	h.set("lag", 3)
	sc := h.scaledConsumer("worker", "worker", "lag")
	sc.Spec.Triggers[0].Metadata["activation"] = "5"
	h.create(sc)
	c := h.waitCondition("worker", ebbv1.ConditionActive, metav1.ConditionFalse, "NoActivity")
	if !strings.Contains(c.Message, "backlog") {
		t.Errorf("Active condition message = %q, want it to say backlog holds the scale-in", c.Message)
	}
	if got := h.replicas("worker"); got != 2 {
		t.Fatalf("replicas with backlog below activation = %d, want 2 (untouched)", got)
	}
	h.set("lag", 0)
	h.waitReplicas("worker", 0)
}

func TestMinReplicasNeverZero(t *testing.T) {
	h := newHarness(t)
	h.deployment("worker", 0)
	h.set("lag", 1)
	sc := h.scaledConsumer("worker", "worker", "lag")
	sc.Spec.MinReplicas = ptr[int32](3)
	sc.Spec.MaxReplicas = ptr[int32](5)
	h.create(sc)
	h.waitReplicas("worker", 3)
	// Idle for longer than any cooldown: minReplicas > 0 without idleReplicas keeps it up.
	h.set("lag", 0)
	h.waitCondition("worker", ebbv1.ConditionActive, metav1.ConditionFalse, "NoActivity")
	h.clock.Step(time.Hour)
	h.poke("worker")
	h.waitCondition("worker", ebbv1.ConditionReady, metav1.ConditionTrue, controller.ReasonHPAReady)
	time.Sleep(300 * time.Millisecond) // a few polls and reconciles; nothing may scale it down
	if got := h.replicas("worker"); got != 3 {
		t.Fatalf("replicas = %d, want 3 (minReplicas)", got)
	}
	// With idleReplicas, it goes to idle, not zero, and the HPA (whose minReplicas is 3) is removed so
	// that it cannot raise the target again; activity brings both back.
	h.update("worker", func(sc *ebbv1.ScaledConsumer) { sc.Spec.IdleReplicas = ptr[int32](1) })
	h.waitReplicas("worker", 1)
	h.waitCondition("worker", ebbv1.ConditionReady, metav1.ConditionTrue, controller.ReasonIdle)
	if h.hpa("ebb-worker") != nil {
		t.Error("HPA still exists while the target is parked at idleReplicas")
	}
	h.set("lag", 8)
	h.waitReplicas("worker", 3)
	h.waitCondition("worker", ebbv1.ConditionReady, metav1.ConditionTrue, controller.ReasonHPAReady)
	if h.hpa("ebb-worker") == nil {
		t.Error("HPA not back after activity")
	}
}

func TestRestartKeepsCooldown(t *testing.T) {
	h := newHarness(t)
	h.deployment("worker", 0)
	h.set("lag", 50)
	sc := h.scaledConsumer("worker", "worker", "lag")
	sc.Spec.CooldownPeriod = &metav1.Duration{Duration: 10 * time.Minute}
	h.create(sc)
	h.waitReplicas("worker", 1)
	h.waitCondition("worker", ebbv1.ConditionActive, metav1.ConditionTrue, "TriggerActive")
	last := h.getSC("worker").Status.LastActiveTime.Time

	// ebb stops; time passes; the backlog drains while it is down; a new ebb starts mid-cooldown.
	h.stop()
	h.set("lag", 0)
	h.clock.SetTime(last.Add(6 * time.Minute))
	h.start()
	c := h.waitCondition("worker", ebbv1.ConditionActive, metav1.ConditionFalse, "NoActivity")
	due := last.Add(10 * time.Minute).UTC().Format(time.RFC3339)
	if !strings.Contains(c.Message, due) {
		t.Errorf("after restart, Active condition = %q, want the cooldown to end at %s (lastActiveTime + cooldown)", c.Message, due)
	}
	if got := h.replicas("worker"); got != 1 {
		t.Fatalf("replicas right after restart = %d, want 1", got)
	}
	h.clock.SetTime(last.Add(10*time.Minute + time.Second))
	h.poke("worker")
	h.waitReplicas("worker", 0)
}

func TestFallback(t *testing.T) {
	h := newHarness(t)
	h.deployment("worker", 0)
	h.set("lag", 0)
	sc := h.scaledConsumer("worker", "worker", "lag")
	sc.Spec.MaxReplicas = ptr[int32](10)
	sc.Spec.Fallback = &ebbv1.Fallback{FailureThreshold: 3, Replicas: 4}
	h.create(sc)
	h.waitCondition("worker", ebbv1.ConditionFallback, metav1.ConditionFalse, "TriggersHealthy")

	h.src.Fail(h.ns+"/lag", errors.New("broker unreachable"))
	c := h.waitCondition("worker", ebbv1.ConditionFallback, metav1.ConditionTrue, "TriggersFailing")
	for _, want := range []string{"broker unreachable", "fallback.replicas=4"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("Fallback condition message = %q, want it to contain %q", c.Message, want)
		}
	}
	// From zero, ebb scales to the fallback replicas itself; the HPA is held there by the metric value.
	h.waitReplicas("worker", 4)
	h.waitEvent("worker", controller.ReasonFallback)
	e, ok := h.store.Get(metricstore.Key{Namespace: h.ns, ScaledConsumer: "worker", Metric: "lag"})
	if !ok || e.Value != 40 {
		t.Errorf("stored value during fallback = %v (ok=%v), want 40 (4 replicas x target 10)", e.Value, ok)
	}
	st := h.getSC("worker").Status.Triggers
	if len(st) != 1 || st[0].ConsecutiveFailures < 3 || !strings.Contains(st[0].LastError, "broker unreachable") {
		t.Errorf("trigger status = %+v, want >= 3 failures and the error", st)
	}

	// The next good sample clears it.
	h.set("lag", 7)
	h.waitCondition("worker", ebbv1.ConditionFallback, metav1.ConditionFalse, "TriggersHealthy")
	h.eventually(5*time.Second, func() (bool, string) {
		e, _ := h.store.Get(metricstore.Key{Namespace: h.ns, ScaledConsumer: "worker", Metric: "lag"})
		return e.Value == 7, fmt.Sprintf("stored value %v, want 7", e.Value)
	})
}

func TestPause(t *testing.T) {
	h := newHarness(t)
	h.deployment("worker", 2)
	h.set("lag", 100)
	h.create(h.scaledConsumer("worker", "worker", "lag"))
	h.waitCondition("worker", ebbv1.ConditionReady, metav1.ConditionTrue, controller.ReasonHPAReady)

	h.update("worker", func(sc *ebbv1.ScaledConsumer) { sc.Annotations = map[string]string{ebbv1.PausedAnnotation: "true"} })
	h.waitCondition("worker", ebbv1.ConditionPaused, metav1.ConditionTrue, controller.ReasonPaused)
	h.eventually(10*time.Second, func() (bool, string) { return h.hpa("ebb-worker") == nil, "HPA still exists while paused" })
	// Idle while paused: nothing scales it to zero.
	h.set("lag", 0)
	h.waitCondition("worker", ebbv1.ConditionActive, metav1.ConditionFalse, "NoActivity")
	h.clock.Step(time.Hour)
	h.poke("worker")
	time.Sleep(300 * time.Millisecond)
	if got := h.replicas("worker"); got != 2 {
		t.Fatalf("replicas while paused = %d, want 2", got)
	}

	h.update("worker", func(sc *ebbv1.ScaledConsumer) {
		sc.Annotations = map[string]string{ebbv1.PausedReplicasAnnotation: "5"}
	})
	h.waitReplicas("worker", 5)
	h.waitEvent("worker", controller.ReasonPausedReplicas)
	h.waitCondition("worker", ebbv1.ConditionPaused, metav1.ConditionTrue, controller.ReasonPausedReplicas)

	h.update("worker", func(sc *ebbv1.ScaledConsumer) {
		sc.Annotations = map[string]string{ebbv1.PausedReplicasAnnotation: "five"}
	})
	c := h.waitCondition("worker", ebbv1.ConditionReady, metav1.ConditionFalse, controller.ReasonInvalidPause)
	if !strings.Contains(c.Message, `"five"`) {
		t.Errorf("Ready message = %q, want it to quote the bad value", c.Message)
	}

	// Resuming brings the HPA back, and the idle target goes to zero.
	h.update("worker", func(sc *ebbv1.ScaledConsumer) { sc.Annotations = nil })
	h.waitCondition("worker", ebbv1.ConditionPaused, metav1.ConditionFalse, "NotPaused")
	if h.hpa("ebb-worker") == nil {
		t.Error("HPA not recreated after resume")
	}
	h.waitReplicas("worker", 0)
}

func foreignHPA(ns, name, target string) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: target},
			MinReplicas:    ptr[int32](1),
			MaxReplicas:    3,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: resource.NewQuantity(1, resource.DecimalSI)},
			}}},
		},
	}
}

func TestForeignHPARefusedThenAdopted(t *testing.T) {
	h := newHarness(t)
	h.deployment("worker", 1)
	h.set("lag", 0)
	h.create(foreignHPA(h.ns, "worker-cpu", "worker"))
	h.create(h.scaledConsumer("worker", "worker", "lag"))
	c := h.waitCondition("worker", ebbv1.ConditionReady, metav1.ConditionFalse, controller.ReasonForeignHPA)
	if !strings.Contains(c.Message, "spec.hpa.name: worker-cpu") {
		t.Errorf("Ready message = %q, want it to say how to adopt", c.Message)
	}
	h.waitEvent("worker", controller.ReasonForeignHPA)
	if h.hpa("ebb-worker") != nil {
		t.Error("ebb created its own HPA beside a foreign one")
	}
	if got := h.replicas("worker"); got != 1 {
		t.Errorf("replicas = %d, want 1: a refused ScaledConsumer must not scale", got)
	}

	h.update("worker", func(sc *ebbv1.ScaledConsumer) { sc.Spec.HPA = &ebbv1.HPAConfig{Name: "worker-cpu"} })
	h.waitCondition("worker", ebbv1.ConditionReady, metav1.ConditionTrue, controller.ReasonHPAReady)
	hpa := h.hpa("worker-cpu")
	if !metav1.IsControlledBy(hpa, h.getSC("worker")) {
		t.Errorf("adopted HPA owners = %v, want the ScaledConsumer", hpa.OwnerReferences)
	}
	if diff := cmp.Diff(hpaMetrics(hpa), []string{"lag ebb.dev/scaledconsumer=worker AverageValue 10"}); diff != "" {
		t.Errorf("adopted HPA metrics (-got +want):\n%s", diff)
	}
}

func TestHPANameTaken(t *testing.T) {
	h := newHarness(t)
	h.deployment("worker", 1)
	h.deployment("other", 1)
	h.set("lag", 0)
	h.create(foreignHPA(h.ns, "ebb-worker", "other"))
	h.create(h.scaledConsumer("worker", "worker", "lag"))
	h.waitCondition("worker", ebbv1.ConditionReady, metav1.ConditionFalse, controller.ReasonHPANameTaken)
	if got := h.hpa("ebb-worker").Spec.ScaleTargetRef.Name; got != "other" {
		t.Errorf("the foreign HPA was changed: it targets %s", got)
	}
}

func TestTargetConflict(t *testing.T) {
	h := newHarness(t)
	h.deployment("worker", 1)
	h.set("lag", 0)
	h.create(h.scaledConsumer("first", "worker", "lag"))
	h.waitCondition("first", ebbv1.ConditionReady, metav1.ConditionTrue, controller.ReasonHPAReady)
	h.create(h.scaledConsumer("second", "worker", "lag"))
	c := h.waitCondition("second", ebbv1.ConditionReady, metav1.ConditionFalse, controller.ReasonTargetConflict)
	if !strings.Contains(c.Message, "ScaledConsumer first") {
		t.Errorf("Ready message = %q, want it to name the other ScaledConsumer", c.Message)
	}
	if h.hpa("ebb-second") != nil {
		t.Error("the refused ScaledConsumer got an HPA")
	}
	// When the first goes, the second takes over.
	if err := h.c.Delete(t.Context(), h.getSC("first")); err != nil {
		t.Fatal(err)
	}
	h.waitCondition("second", ebbv1.ConditionReady, metav1.ConditionTrue, controller.ReasonHPAReady)
}

func TestBadTriggersDoNotStopOthers(t *testing.T) {
	h := newHarness(t)
	h.deployment("good", 1)
	h.deployment("bad", 1)
	h.set("lag", 0)

	bad := h.scaledConsumer("bad", "bad", "lag")
	bad.Spec.Triggers = append(bad.Spec.Triggers,
		ebbv1.Trigger{Name: "typo", Type: "kafak"},
		ebbv1.Trigger{Name: "meta", Type: scalertest.Type, Metadata: map[string]string{"key": "x", "targte": "5"}},
	)
	h.create(bad)
	h.create(h.scaledConsumer("good", "good", "lag"))

	c := h.waitCondition("bad", ebbv1.ConditionReady, metav1.ConditionFalse, controller.ReasonInvalidTrigger)
	for _, want := range []string{`unknown trigger type "kafak"`, "targte", `did you mean "target"`} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("Ready message = %q, want it to contain %q", c.Message, want)
		}
	}
	if note := h.waitEvent("bad", controller.ReasonInvalidTrigger); !strings.Contains(note, "kafak") {
		t.Errorf("event note = %q, want the parser's message", note)
	}
	h.waitCondition("good", ebbv1.ConditionReady, metav1.ConditionTrue, controller.ReasonHPAReady)
	h.waitReplicas("good", 0)
	if got := h.replicas("bad"); got != 1 {
		t.Errorf("a ScaledConsumer with bad triggers scaled its target to %d", got)
	}

	// Fixing it makes it work.
	h.update("bad", func(sc *ebbv1.ScaledConsumer) { sc.Spec.Triggers = sc.Spec.Triggers[:1] })
	h.waitCondition("bad", ebbv1.ConditionReady, metav1.ConditionTrue, controller.ReasonHPAReady)
}

func TestAuthentication(t *testing.T) {
	h := newHarness(t)
	h.deployment("worker", 1)
	h.set("lag", 0)
	sc := h.scaledConsumer("worker", "worker", "lag")
	sc.Spec.Triggers[0].AuthenticationRef = &ebbv1.AuthenticationRef{Name: "creds"}
	h.create(sc)
	c := h.waitCondition("worker", ebbv1.ConditionReady, metav1.ConditionFalse, controller.ReasonAuthenticationNotFound)
	if !strings.Contains(c.Message, `TriggerAuthentication "creds" not found`) {
		t.Errorf("Ready message = %q", c.Message)
	}

	// The TriggerAuthentication appears, its Secret does not exist yet: still not ready, now naming the Secret.
	h.create(&ebbv1.TriggerAuthentication{
		ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: h.ns},
		Spec:       ebbv1.TriggerAuthenticationSpec{SecretTargetRef: []ebbv1.SecretTargetRef{{Parameter: "activation", Name: "s", Key: "k"}}},
	})
	h.eventually(10*time.Second, func() (bool, string) {
		c := h.waitCondition("worker", ebbv1.ConditionReady, metav1.ConditionFalse, controller.ReasonAuthenticationNotFound)
		return strings.Contains(c.Message, `Secret "s" not found`), fmt.Sprintf("Ready message = %q, want it to name the missing Secret", c.Message)
	})
	// The Secret's value reaches the scaler's parser: activation 1000 means lag 500 is not active. Its
	// creation alone wakes the ScaledConsumer (the Secret watch), well before the 30 s recheck.
	h.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: h.ns}, StringData: map[string]string{"k": "1000"}})
	h.waitCondition("worker", ebbv1.ConditionReady, metav1.ConditionTrue, controller.ReasonHPAReady)
	h.set("lag", 500)
	h.eventually(10*time.Second, func() (bool, string) {
		st := h.getSC("worker").Status.Triggers
		return len(st) == 1 && st[0].Value == "500" && !st[0].Active, fmt.Sprintf("triggers = %+v, want value 500, not active", st)
	})
	h.set("lag", 1001)
	h.waitCondition("worker", ebbv1.ConditionActive, metav1.ConditionTrue, "TriggerActive")
}

func TestStatusTriggers(t *testing.T) {
	h := newHarness(t)
	h.deployment("worker", 1)
	h.set("lag", 12.5)
	h.create(h.scaledConsumer("worker", "worker", "lag"))
	h.eventually(10*time.Second, func() (bool, string) {
		st := h.getSC("worker").Status
		ok := len(st.Triggers) == 1 && st.Triggers[0].Value == "12.5" && st.Triggers[0].Active && st.Triggers[0].LastPollTime != nil && st.HPAName == "ebb-worker"
		return ok, fmt.Sprintf("status = %+v", st)
	})
	// Values keep flowing to status (at most once per status refresh).
	h.set("lag", 30)
	h.eventually(10*time.Second, func() (bool, string) {
		st := h.getSC("worker").Status.Triggers
		return len(st) == 1 && st[0].Value == "30", fmt.Sprintf("triggers = %+v", st)
	})
}

func ptr[T any](v T) *T { return &v }

func TestTargetProblems(t *testing.T) {
	h := newHarness(t)
	h.set("lag", 0)
	h.create(h.scaledConsumer("missing", "nowhere", "lag"))
	c := h.waitCondition("missing", ebbv1.ConditionReady, metav1.ConditionFalse, controller.ReasonTargetNotFound)
	if !strings.Contains(c.Message, "Deployment nowhere not found") {
		t.Errorf("Ready message = %q", c.Message)
	}
	// A ConfigMap has no /scale.
	h.create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: h.ns}})
	sc := h.scaledConsumer("noscale", "cm", "lag")
	sc.Spec.ScaleTargetRef = ebbv1.ScaleTargetRef{APIVersion: "v1", Kind: "ConfigMap", Name: "cm"}
	h.create(sc)
	h.waitCondition("noscale", ebbv1.ConditionReady, metav1.ConditionFalse, controller.ReasonTargetNotScalable)
	// A kind the API server does not serve.
	sc = h.scaledConsumer("nokind", "x", "lag")
	sc.Spec.ScaleTargetRef = ebbv1.ScaleTargetRef{APIVersion: "example.com/v1", Kind: "Widget", Name: "x"}
	h.create(sc)
	h.waitCondition("nokind", ebbv1.ConditionReady, metav1.ConditionFalse, controller.ReasonTargetNotFound)
}

// An HPA the API server refuses (a behavior the CRD accepts but HPA validation does not) is reported, and
// does not stop ebb from waking a target at zero: activation goes through /scale, not the HPA.
func TestHPARefusedStillWakes(t *testing.T) {
	h := newHarness(t)
	h.deployment("worker", 0)
	h.set("lag", 50)
	sc := h.scaledConsumer("worker", "worker", "lag")
	sc.Spec.HPA = &ebbv1.HPAConfig{Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
		ScaleUp: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr[int32](4000)}, // the HPA allows 3600
	}}
	h.create(sc)
	c := h.waitCondition("worker", ebbv1.ConditionReady, metav1.ConditionFalse, controller.ReasonHPAApplyFailed)
	if !strings.Contains(c.Message, "stabilizationWindowSeconds") {
		t.Errorf("Ready message = %q, want the API server's reason", c.Message)
	}
	h.waitReplicas("worker", 1)
}

// spec.hpa.name adopts only an HPA of the same target: naming another workload's HPA is refused and
// leaves it alone.
func TestAdoptionOnlyOfSameTarget(t *testing.T) {
	h := newHarness(t)
	h.deployment("orders", 1)
	h.deployment("payments", 3)
	h.set("lag", 0)
	h.create(foreignHPA(h.ns, "payments", "payments"))
	sc := h.scaledConsumer("orders", "orders", "lag")
	sc.Spec.HPA = &ebbv1.HPAConfig{Name: "payments"}
	h.create(sc)
	c := h.waitCondition("orders", ebbv1.ConditionReady, metav1.ConditionFalse, controller.ReasonHPANameTaken)
	if !strings.Contains(c.Message, "Deployment payments") {
		t.Errorf("Ready message = %q, want it to say what the HPA scales", c.Message)
	}
	hpa := h.hpa("payments")
	if hpa.Spec.ScaleTargetRef.Name != "payments" || len(hpa.OwnerReferences) != 0 {
		t.Errorf("HPA payments was changed: target %s, owners %v", hpa.Spec.ScaleTargetRef.Name, hpa.OwnerReferences)
	}
}
