package controller_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/controller"
	"github.com/ebbscale/ebb/scalers"
)

// eventCounts counts the events about the named ScaledConsumer by reason, repeats folded into an event's
// series included.
func (h *harness) eventCounts(name string) map[string]int {
	h.t.Helper()
	list := &eventsv1.EventList{}
	if err := h.c.List(h.t.Context(), list, client.InNamespace(h.ns)); err != nil {
		h.t.Fatal(err)
	}
	n := map[string]int{}
	for _, e := range list.Items {
		if e.Regarding.Kind == "ScaledConsumer" && e.Regarding.Name == name {
			c := 1
			if e.Series != nil && int(e.Series.Count) > c {
				c = int(e.Series.Count)
			}
			n[e.Reason] += c
		}
	}
	return n
}

// eventNotes lists the reasons and notes of the events about the named ScaledConsumer.
func (h *harness) eventNotes(name string) []string {
	h.t.Helper()
	list := &eventsv1.EventList{}
	if err := h.c.List(h.t.Context(), list, client.InNamespace(h.ns)); err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Kind == "ScaledConsumer" && e.Regarding.Name == name {
			out = append(out, e.Reason+": "+e.Note)
		}
	}
	return out
}

// waitEventCount waits until the named ScaledConsumer has want events of reason, and checks it stays so.
func (h *harness) waitEventCount(name, reason string, want int) {
	h.t.Helper()
	h.eventually(10*time.Second, func() (bool, string) {
		got := h.eventCounts(name)
		return got[reason] == want, fmt.Sprintf("%d %s events, want %d; events: %v", got[reason], reason, want, got)
	})
}

// A broker outage that drives the HPA to fallback is announced: a Warning event when the trigger starts
// failing and one when fallback starts, a Normal event for each on the way back; one per transition, not
// one per poll, and none repeated by a restart of ebb (issue 16, item 5).
func TestOutageEvents(t *testing.T) {
	h := newHarness(t)
	h.deployment("worker", 2)
	h.set("lag", 5)
	sc := h.scaledConsumer("worker", "worker", "lag")
	sc.Spec.MinReplicas, sc.Spec.MaxReplicas = ptr[int32](1), ptr[int32](10)
	sc.Spec.Fallback = &ebbv1.Fallback{FailureThreshold: 3, Replicas: 4}
	h.create(sc)
	h.waitCondition("worker", ebbv1.ConditionFallback, metav1.ConditionFalse, controller.ReasonTriggersHealthy)

	h.src.Fail(h.ns+"/lag", errors.New("broker unreachable"))
	start := time.Now()
	note := h.waitEvent("worker", controller.ReasonTriggerFailing)
	t.Logf("TriggerFailing event %s after the failure (polling every 100 ms)", time.Since(start).Round(10*time.Millisecond))
	for _, want := range []string{`trigger "lag" is failing: broker unreachable`, "fallback.replicas=4"} {
		if !strings.Contains(note, want) {
			t.Errorf("TriggerFailing event = %q, want it to say %q", note, want)
		}
	}
	note = h.waitEvent("worker", controller.ReasonTriggersFailing)
	t.Logf("fallback event %s after the failure (failureThreshold 3)", time.Since(start).Round(10*time.Millisecond))
	for _, want := range []string{"entering fallback", "broker unreachable", "fallback.replicas=4"} {
		if !strings.Contains(note, want) {
			t.Errorf("fallback event = %q, want it to say %q", note, want)
		}
	}
	// Polls every 100 ms and status refreshes every 200 ms go on for a while: still one event each.
	time.Sleep(2 * time.Second)
	if got := h.eventCounts("worker"); got[controller.ReasonTriggerFailing] != 1 || got[controller.ReasonTriggersFailing] != 1 {
		t.Errorf("events after 2 s of outage: %v, want one TriggerFailing and one TriggersFailing", got)
	}
	if n := testutil.ToFloat64(h.metrics.FallbackEntries.WithLabelValues(h.ns, "worker")); n != 1 {
		t.Errorf("ebb_fallback_entries_total = %v, want 1", n)
	}

	// A restart of ebb mid-outage announces nothing again, and does not end the fallback.
	h.stop()
	h.start()
	time.Sleep(2 * time.Second)
	got := h.eventCounts("worker")
	if got[controller.ReasonTriggerFailing] != 1 || got[controller.ReasonTriggersFailing] != 1 || got[controller.ReasonFallbackEnded] != 0 || got[controller.ReasonTriggerRecovered] != 0 {
		t.Errorf("events after a restart mid-outage: %v, want the same one TriggerFailing and TriggersFailing, nothing else", got)
	}
	if c := meta.FindStatusCondition(h.getSC("worker").Status.Conditions, ebbv1.ConditionFallback); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Fallback condition after a restart mid-outage = %+v, want True", c)
	}

	// The broker is back.
	h.set("lag", 5)
	start = time.Now()
	note = h.waitEvent("worker", controller.ReasonFallbackEnded)
	t.Logf("FallbackEnded event %s after the broker came back", time.Since(start).Round(10*time.Millisecond))
	if !strings.Contains(note, "leaving fallback") {
		t.Errorf("FallbackEnded event = %q", note)
	}
	note = h.waitEvent("worker", controller.ReasonTriggerRecovered)
	if !strings.Contains(note, `trigger "lag" samples again (value 5)`) {
		t.Errorf("TriggerRecovered event = %q", note)
	}
	time.Sleep(time.Second)
	got = h.eventCounts("worker")
	if got[controller.ReasonFallbackEnded] != 1 || got[controller.ReasonTriggerRecovered] != 1 {
		t.Errorf("events after recovery: %v, want one FallbackEnded and one TriggerRecovered", got)
	}

	// A failure below the threshold (without a fallback it never reaches one) is announced too.
	h.update("worker", func(sc *ebbv1.ScaledConsumer) { sc.Spec.Fallback = nil })
	h.src.Fail(h.ns+"/lag", errors.New("access refused"))
	h.waitEventCount("worker", controller.ReasonTriggerFailing, 2)
	h.waitCondition("worker", ebbv1.ConditionFallback, metav1.ConditionFalse, controller.ReasonNoFallbackConfigured)
}

// Time without a good reading is not idle time (issue 16, item 6): after an outage the cooldown starts
// again from the first good sample, even when the last activity is long past, and a restart of ebb — during
// the outage or after it — does not shorten it.
func TestCooldownRestartsAfterOutage(t *testing.T) {
	h := newHarness(t)
	h.deployment("worker", 0)
	h.set("lag", 50)
	sc := h.scaledConsumer("worker", "worker", "lag")
	sc.Spec.CooldownPeriod = &metav1.Duration{Duration: 5 * time.Minute}
	h.create(sc)
	h.waitReplicas("worker", 1)
	h.waitCondition("worker", ebbv1.ConditionActive, metav1.ConditionTrue, controller.ReasonTriggerActive)

	// The broker dies and stays down for an hour (on the clock); it comes back with an empty queue.
	h.src.Fail(h.ns+"/lag", errors.New("broker unreachable"))
	h.waitCondition("worker", ebbv1.ConditionFallback, metav1.ConditionFalse, controller.ReasonNoFallbackConfigured)
	h.clock.Step(time.Hour)
	h.set("lag", 0)
	waitCooling := func(what string) {
		t.Helper()
		h.eventually(10*time.Second, func() (bool, string) {
			c := meta.FindStatusCondition(h.getSC("worker").Status.Conditions, ebbv1.ConditionActive)
			return c != nil && c.Reason == controller.ReasonNoActivity && strings.Contains(c.Message, "cooling down"),
				fmt.Sprintf("%s: Active condition %+v, want NoActivity and cooling down; replicas %d; events %v", what, c, h.replicas("worker"), h.eventNotes("worker"))
		})
		time.Sleep(500 * time.Millisecond) // a few polls and reconciles: nothing may scale it in
		if got := h.replicas("worker"); got != 1 {
			t.Fatalf("%s: replicas = %d, want 1 until a whole cooldown of good samples has passed", what, got)
		}
	}
	waitCooling("after the outage")

	// ebb restarts mid-cooldown: the cooldown still runs from the end of the outage.
	h.clock.Step(4 * time.Minute)
	h.stop()
	h.start()
	waitCooling("restarted 4 minutes into the cooldown")

	// Another outage, and ebb restarts while the broker is down; it is back before the new ebb samples.
	h.src.Fail(h.ns+"/lag", errors.New("broker unreachable"))
	h.eventually(10*time.Second, func() (bool, string) {
		st := h.getSC("worker").Status.Triggers
		return len(st) == 1 && st[0].LastError != "", fmt.Sprintf("trigger status %+v, want the error", st)
	})
	h.stop()
	h.clock.Step(time.Hour)
	h.set("lag", 0)
	h.start()
	waitCooling("restarted during an outage")

	h.clock.Step(5*time.Minute + time.Second)
	h.poke("worker")
	h.waitReplicas("worker", 0)
}

// A tripped guard does not release while its trigger cannot be read: failed polls are not good readings
// (issue 16, item 9). It releases releaseAfter after the trigger is back and its group moves.
func TestGuardHoldsThroughTriggerOutage(t *testing.T) {
	h := newHarness(t)
	h.deployment("worker", 2)
	h.set("lag", 40)
	h.src.SetProgress(h.ns+"/lag", scalers.Progress{Offsets: true})
	sc := h.scaledConsumer("worker", "worker", "lag")
	sc.Spec.MinReplicas, sc.Spec.MaxReplicas = ptr[int32](1), ptr[int32](10)
	sc.Spec.Guard = &ebbv1.Guard{StalledAfterPolls: ptr[int32](5), ReleaseAfter: &metav1.Duration{Duration: time.Second}}
	h.create(sc)
	h.waitCondition("worker", ebbv1.ConditionConsumersHealthy, metav1.ConditionFalse, controller.ReasonStalled)

	// The broker dies for three times releaseAfter: the guard holds, and says why.
	h.src.Fail(h.ns+"/lag", errors.New("broker unreachable"))
	h.eventually(10*time.Second, func() (bool, string) {
		c := meta.FindStatusCondition(h.getSC("worker").Status.Conditions, ebbv1.ConditionConsumersHealthy)
		return c != nil && strings.Contains(c.Message, `trigger "lag" unreadable: broker unreachable`), fmt.Sprintf("ConsumersHealthy = %+v, want it to say the trigger is unreadable", c)
	})
	time.Sleep(3 * time.Second)
	if c := meta.FindStatusCondition(h.getSC("worker").Status.Conditions, ebbv1.ConditionConsumersHealthy); c == nil || c.Status != metav1.ConditionFalse {
		t.Fatalf("ConsumersHealthy after 3 s of outage with releaseAfter 1s = %+v, want still False (Stalled)", c)
	}
	if n, msg := h.hpaMax("ebb-worker"); n != 2 {
		t.Errorf("during the outage: %s, want scale-up held at 2", msg)
	}

	// Back, and the group moves: released.
	h.set("lag", 40)
	h.src.SetProgress(h.ns+"/lag", scalers.Progress{Offsets: true, Advanced: 10})
	h.waitCondition("worker", ebbv1.ConditionConsumersHealthy, metav1.ConditionTrue, controller.ReasonHealthy)
}
