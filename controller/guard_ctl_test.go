package controller_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/controller"
	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/scalertest"
)

// withDeadLetter gives sc a "test" dead-letter reader with key k, limited to maxPerMinute.
func (h *harness) withDeadLetter(sc *ebbv1.ScaledConsumer, k string, maxPerMinute string) {
	q := resource.MustParse(maxPerMinute)
	sc.Spec.DeadLetter = &ebbv1.DeadLetter{
		Type: scalertest.Type, Metadata: map[string]string{"key": h.ns + "/" + k},
		MaxInflowPerMinute: &q, Window: &metav1.Duration{Duration: time.Second},
	}
	sc.Spec.Guard = &ebbv1.Guard{ReleaseAfter: &metav1.Duration{Duration: 2 * time.Second}}
}

func (h *harness) hpaMax(name string) (int32, string) {
	hpa := h.hpa(name)
	if hpa == nil {
		return 0, "no HPA " + name
	}
	return hpa.Spec.MaxReplicas, fmt.Sprintf("HPA %s maxReplicas=%d", name, hpa.Spec.MaxReplicas)
}

// The guard trips on dead-letter inflow: ConsumersHealthy=False with the numbers, an event, the HPA's
// maxReplicas held at the replicas of the moment, status.guard.heldReplicas; it releases after
// releaseAfter of good readings and gives the HPA its maxReplicas back.
func TestGuardHoldsHPAMaxReplicas(t *testing.T) {
	h := newHarness(t)
	h.deployment("worker", 3)
	h.set("lag", 25)
	h.src.SetDeadLetter(h.ns+"/dlq", 0, 0)
	sc := h.scaledConsumer("worker", "worker", "lag")
	sc.Spec.MinReplicas = ptr[int32](1)
	sc.Spec.MaxReplicas = ptr[int32](10)
	h.withDeadLetter(sc, "dlq", "30")
	h.create(sc)
	c := h.waitCondition("worker", ebbv1.ConditionConsumersHealthy, metav1.ConditionTrue, controller.ReasonHealthy)
	if !strings.Contains(c.Message, "dead-letter queue (test): 0 waiting, 0/min in (limit 30)") {
		t.Errorf("healthy message = %q, want the dead-letter numbers and limit", c.Message)
	}
	h.eventually(10*time.Second, func() (bool, string) { n, msg := h.hpaMax("ebb-worker"); return n == 10, msg })

	// 2 messages/s = 120/min into the dead-letter queue.
	h.src.SetDeadLetter(h.ns+"/dlq", 50, 2)
	c = h.waitCondition("worker", ebbv1.ConditionConsumersHealthy, metav1.ConditionFalse, controller.ReasonDeadLetterInflow)
	// The window (1 s) averages the samples before and after the change, so the number varies.
	if !regexp.MustCompile(`^holding scale-up at 3 replicas \(scale-down still allowed\): dead-letter queue \(test\) receives [0-9.]+ messages/min \(limit 30\) over 1s`).MatchString(c.Message) {
		t.Errorf("tripped message = %q", c.Message)
	}
	h.waitEvent("worker", controller.ReasonDeadLetterInflow)
	h.eventually(10*time.Second, func() (bool, string) { n, msg := h.hpaMax("ebb-worker"); return n == 3, msg })
	h.eventually(10*time.Second, func() (bool, string) {
		got := testutil.ToFloat64(h.metrics.MaxReplicas.WithLabelValues(h.ns, "worker"))
		return got == 3, fmt.Sprintf("ebb_scaledconsumer_max_replicas = %v while held, want 3", got)
	})
	fingerprint, _ := controller.PollFingerprint(h.rec, types.NamespacedName{Namespace: h.ns, Name: "worker"})
	g := h.getSC("worker").Status.Guard
	if g == nil || g.HeldReplicas == nil || *g.HeldReplicas != 3 || g.DeadLetterDepth != "50" {
		t.Errorf("status.guard = %+v, want heldReplicas 3 and depth 50", g)
	}
	// Scale-down stays possible: the HPA's minReplicas is untouched.
	if hpa := h.hpa("ebb-worker"); *hpa.Spec.MinReplicas != 1 {
		t.Errorf("HPA minReplicas = %d while held, want 1", *hpa.Spec.MinReplicas)
	}
	// A spec change that rebuilds the poll (a new polling interval) keeps the trip and the held count.
	h.update("worker", func(sc *ebbv1.ScaledConsumer) {
		sc.Spec.PollingInterval = &metav1.Duration{Duration: 150 * time.Millisecond}
	})
	h.eventually(10*time.Second, func() (bool, string) {
		fp, _ := controller.PollFingerprint(h.rec, types.NamespacedName{Namespace: h.ns, Name: "worker"})
		return fp != "" && fp != fingerprint, "the poll was not rebuilt"
	})
	time.Sleep(500 * time.Millisecond) // a few ticks of the new poll
	if c := h.waitCondition("worker", ebbv1.ConditionConsumersHealthy, metav1.ConditionFalse, controller.ReasonDeadLetterInflow); !strings.Contains(c.Message, "at 3 replicas") {
		t.Errorf("after the rebuild: %q", c.Message)
	}
	if n, msg := h.hpaMax("ebb-worker"); n != 3 {
		t.Errorf("after the rebuild: %s, want 3", msg)
	}

	// Fixed: inflow 0; after releaseAfter (2 s) the guard releases.
	h.src.SetDeadLetter(h.ns+"/dlq", 50, 0)
	h.waitCondition("worker", ebbv1.ConditionConsumersHealthy, metav1.ConditionTrue, controller.ReasonHealthy)
	h.waitEvent("worker", "ConsumersHealthy")
	h.eventually(10*time.Second, func() (bool, string) { n, msg := h.hpaMax("ebb-worker"); return n == 10, msg })
	h.eventually(10*time.Second, func() (bool, string) {
		got := testutil.ToFloat64(h.metrics.MaxReplicas.WithLabelValues(h.ns, "worker"))
		return got == 10, fmt.Sprintf("ebb_scaledconsumer_max_replicas = %v after release, want 10", got)
	})
	if g := h.getSC("worker").Status.Guard; g == nil || g.HeldReplicas != nil {
		t.Errorf("status.guard after release = %+v, want no heldReplicas", g)
	}
	if got := testutil.ToFloat64(h.metrics.GuardTripped.WithLabelValues(h.ns, "worker")); got != 0 {
		t.Errorf("ebb_guard_tripped after release = %v, want 0", got)
	}
	if got := testutil.ToFloat64(h.metrics.GuardTrips.WithLabelValues(h.ns, "worker", controller.ReasonDeadLetterInflow)); got != 1 {
		t.Errorf("ebb_guard_trips_total = %v, want 1", got)
	}
}

// A Kafka-style trigger whose committed offsets stop moving while it has lag trips the guard (Stalled)
// only while the target has replicas.
func TestGuardStalledOnlyWithConsumers(t *testing.T) {
	h := newHarness(t)
	h.deployment("worker", 0)
	h.set("lag", 40)
	h.src.SetProgress(h.ns+"/lag", scalers.Progress{Offsets: true})
	sc := h.scaledConsumer("worker", "worker", "lag")
	sc.Spec.MinReplicas = ptr[int32](0)
	sc.Spec.MaxReplicas = ptr[int32](10)
	sc.Spec.Guard = &ebbv1.Guard{StalledAfterPolls: ptr[int32](5), ReleaseAfter: &metav1.Duration{Duration: time.Second}}
	// Paused at 0: the group has lag and does not move, but nobody consumes, so it is not stalled.
	sc.Annotations = map[string]string{ebbv1.PausedReplicasAnnotation: "0"}
	h.create(sc)
	h.waitCondition("worker", ebbv1.ConditionConsumersHealthy, metav1.ConditionTrue, controller.ReasonHealthy)
	time.Sleep(time.Second) // 10 polls
	if got := testutil.ToFloat64(h.metrics.StalledPolls.WithLabelValues(h.ns, "worker", "lag")); got != 0 {
		t.Errorf("ebb_consumer_stalled_polls at zero replicas = %v, want 0", got)
	}
	if c := h.waitCondition("worker", ebbv1.ConditionConsumersHealthy, metav1.ConditionTrue, controller.ReasonHealthy); !strings.Contains(c.Message, "no group stalled") {
		t.Errorf("message = %q", c.Message)
	}

	// Consumers run (2 replicas) and commit nothing: stalled after 5 polls.
	h.update("worker", func(sc *ebbv1.ScaledConsumer) { sc.Annotations[ebbv1.PausedReplicasAnnotation] = "2" })
	h.waitReplicas("worker", 2)
	h.update("worker", func(sc *ebbv1.ScaledConsumer) { delete(sc.Annotations, ebbv1.PausedReplicasAnnotation) })
	c := h.waitCondition("worker", ebbv1.ConditionConsumersHealthy, metav1.ConditionFalse, controller.ReasonStalled)
	if !strings.Contains(c.Message, `trigger "lag"`) || !strings.Contains(c.Message, "holding scale-up at 2 replicas") {
		t.Errorf("stalled message = %q", c.Message)
	}
	h.eventually(10*time.Second, func() (bool, string) { n, msg := h.hpaMax("ebb-worker"); return n == 2, msg })

	// Commits move again: released after a second.
	h.src.SetProgress(h.ns+"/lag", scalers.Progress{Offsets: true, Advanced: 10})
	h.waitCondition("worker", ebbv1.ConditionConsumersHealthy, metav1.ConditionTrue, controller.ReasonHealthy)
	h.eventually(10*time.Second, func() (bool, string) { n, msg := h.hpaMax("ebb-worker"); return n == 10, msg })
}

func TestGuardOffAndNothingToWatch(t *testing.T) {
	h := newHarness(t)
	h.deployment("a", 1)
	h.deployment("b", 1)
	h.set("lag", 1)
	a := h.scaledConsumer("a", "a", "lag")
	a.Spec.Guard = &ebbv1.Guard{Enabled: ptr(false)}
	h.withDeadLetter(a, "dlq", "1")
	a.Spec.Guard.Enabled = ptr(false)
	h.create(a)
	h.create(h.scaledConsumer("b", "b", "lag"))
	h.waitCondition("a", ebbv1.ConditionConsumersHealthy, metav1.ConditionUnknown, controller.ReasonGuardDisabled)
	c := h.waitCondition("b", ebbv1.ConditionConsumersHealthy, metav1.ConditionUnknown, controller.ReasonNothingToWatch)
	if !strings.Contains(c.Message, "spec.deadLetter") {
		t.Errorf("message = %q, want it to say what could be watched", c.Message)
	}
	// Disabled, the dead-letter reader is built only to check it (its key was never set, and nothing
	// failed); a bad one is still refused.
	h.waitCondition("a", ebbv1.ConditionReady, metav1.ConditionTrue, controller.ReasonHPAReady)
	h.update("a", func(sc *ebbv1.ScaledConsumer) { sc.Spec.DeadLetter.Metadata["queueName"] = "typo" })
	if c := h.waitCondition("a", ebbv1.ConditionReady, metav1.ConditionFalse, controller.ReasonInvalidDeadLetter); !strings.Contains(c.Message, "queueName") {
		t.Errorf("message = %q, want it to name queueName", c.Message)
	}
}

func TestGuardBadDeadLetter(t *testing.T) {
	h := newHarness(t)
	h.deployment("a", 1)
	h.set("lag", 1)
	sc := h.scaledConsumer("a", "a", "lag")
	h.withDeadLetter(sc, "dlq", "1")
	sc.Spec.DeadLetter.Metadata["queueName"] = "x"
	h.create(sc)
	c := h.waitCondition("a", ebbv1.ConditionReady, metav1.ConditionFalse, controller.ReasonInvalidDeadLetter)
	for _, want := range []string{"queueName: not a key of a test dead-letter reader"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("message = %q, want it to contain %q", c.Message, want)
		}
	}
	h.waitEvent("a", controller.ReasonInvalidDeadLetter)

	h.update("a", func(sc *ebbv1.ScaledConsumer) { sc.Spec.DeadLetter.Type = "nope" })
	c = h.waitCondition("a", ebbv1.ConditionReady, metav1.ConditionFalse, controller.ReasonInvalidDeadLetter)
	if !strings.Contains(c.Message, `deadLetter.type "nope"`) {
		t.Errorf("message = %q, want it to name deadLetter.type", c.Message)
	}
}

// A TriggerAuthentication that only spec.deadLetter uses is watched like a trigger's: the ScaledConsumer
// hears of its creation at once, not at the 30 s recheck of a missing TriggerAuthentication.
func TestDeadLetterAuthenticationWatched(t *testing.T) {
	h := newHarness(t)
	h.deployment("a", 1)
	h.set("lag", 1)
	sc := h.scaledConsumer("a", "a", "lag")
	h.withDeadLetter(sc, "dlq", "1")
	sc.Spec.DeadLetter.AuthenticationRef = &ebbv1.AuthenticationRef{Name: "dlq-creds"}
	h.create(sc)
	c := h.waitCondition("a", ebbv1.ConditionReady, metav1.ConditionFalse, controller.ReasonAuthenticationNotFound)
	if !strings.Contains(c.Message, `deadLetter: TriggerAuthentication "dlq-creds" not found`) {
		t.Errorf("Ready message = %q, want it to name the deadLetter's TriggerAuthentication", c.Message)
	}
	// The Secret first (Secrets are not watched), then the TriggerAuthentication, which sets the reader's key.
	h.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "dlq-secret", Namespace: h.ns}, StringData: map[string]string{"k": h.ns + "/dlq"}})
	start := time.Now()
	h.create(&ebbv1.TriggerAuthentication{
		ObjectMeta: metav1.ObjectMeta{Name: "dlq-creds", Namespace: h.ns},
		Spec:       ebbv1.TriggerAuthenticationSpec{SecretTargetRef: []ebbv1.SecretTargetRef{{Parameter: "key", Name: "dlq-secret", Key: "k"}}},
	})
	h.waitCondition("a", ebbv1.ConditionReady, metav1.ConditionTrue, controller.ReasonHPAReady)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Ready %s after the TriggerAuthentication appeared, want it within seconds (a watch, not the recheck)", took)
	}
}
