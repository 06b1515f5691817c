package controller

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/metricstore"
	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/cron"
)

// TestCronWindowEnd: the end of a cron window goes through the cooldown like any other trigger going
// quiet (KEDA #6787 scaled to zero at the end itself). A real cron trigger is sampled by the poller and
// decided on by decideActivation, all on one fake clock: the window wakes the target, its end holds the
// target for cooldownPeriod from the last sample inside the window, then ebb scales to idleReplicas or
// zero. Berlin is UTC+1 in December; the window is 09:00-17:00 on weekdays.
func TestCronWindowEnd(t *testing.T) {
	at := func(hhmmss string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04:05", "2026-12-07 "+hhmmss, time.UTC) // a Monday
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	type step struct {
		at      string // UTC
		current int32  // the target's replicas (the HPA sizes it between ebb's actions)
		scale   *int32 // what ebb sets through /scale, nil: nothing
		reason  string
		message string // the trigger's status message
	}
	closed := "outside the window; the next opens at 2026-12-08T09:00:00+01:00 (Europe/Berlin)"
	open := "in a window (4 replicas) until 2026-12-07T17:00:00+01:00 (Europe/Berlin)"
	tests := []struct {
		name  string
		min   int32
		idle  *int32
		steps []step
	}{
		{
			name: "to-zero", min: 0,
			steps: []step{
				{at: "07:59:55", current: 0, message: "outside the window; the next opens at 2026-12-07T09:00:00+01:00 (Europe/Berlin)"},
				{at: "08:00:00", current: 0, scale: ptr(int32(1)), reason: ReasonActivated, message: open},
				{at: "15:59:55", current: 4, message: open},
				{at: "16:00:00", current: 4, message: closed}, // the end: the HPA goes to 1, ebb holds
				{at: "16:04:50", current: 1, message: closed},
				{at: "16:04:55", current: 1, scale: ptr(int32(0)), reason: ReasonCooledDown, message: closed},
			},
		},
		{
			name: "to-idle", min: 2, idle: ptr(int32(1)),
			steps: []step{
				{at: "08:00:00", current: 1, scale: ptr(int32(2)), reason: ReasonActivated, message: open},
				{at: "15:59:55", current: 4, message: open},
				{at: "16:00:00", current: 4, message: closed},
				{at: "16:04:55", current: 2, scale: ptr(int32(1)), reason: ReasonCooledDown, message: closed},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(at(tt.steps[0].at))
			s, err := cron.NewType(cron.WithClock(clk)).New(scalers.Config{TriggerName: "hours", Metadata: map[string]string{
				"timezone": "Europe/Berlin", "start": "0 9 * * 1-5", "end": "0 17 * * 1-5", "desiredReplicas": "4",
			}})
			if err != nil {
				t.Fatal(err)
			}
			p := newPoller(clk, metricstore.New(), NewMetrics(nil), func(context.Context, types.NamespacedName, int) {})
			key := types.NamespacedName{Namespace: "shop", Name: "orders"}
			e := &pollEntry{
				spec:   pollSpec{Interval: 5 * time.Second, Triggers: []polledTrigger{{Name: "hours", Type: cron.Type, Scaler: s}}},
				states: []triggerState{{Name: "hours", Specs: s.Metrics(), MetricNames: []string{"hours"}}},
			}
			sc := &ebbv1.ScaledConsumer{Spec: ebbv1.ScaledConsumerSpec{
				MinReplicas: &tt.min, IdleReplicas: tt.idle, CooldownPeriod: &metav1.Duration{Duration: 5 * time.Minute},
			}}
			sc.CreationTimestamp = metav1.NewTime(at("00:00:00"))
			r := &Reconciler{Clock: clk}
			for _, st := range tt.steps {
				clk.SetTime(at(st.at))
				p.tick(t.Context(), key, e)
				states := p.statesOf(e)
				res := decideActivation(r.activationInput(sc, st.current, states, false, nil))
				if res.LastActive != nil {
					sc.Status.LastActiveTime = &metav1.Time{Time: *res.LastActive}
				}
				r.setTriggerStatus(sc, states)
				if got := sc.Status.Triggers[0].Message; got != st.message {
					t.Errorf("%s: message %q, want %q", st.at, got, st.message)
				}
				switch {
				case (res.Scale == nil) != (st.scale == nil) || res.Scale != nil && *res.Scale != *st.scale:
					t.Errorf("%s at %d replicas: scale %v (%s: %s), want %v", st.at, st.current, deref(res.Scale), res.Reason, res.Message, deref(st.scale))
				case st.scale != nil && res.Reason != st.reason:
					t.Errorf("%s: reason %s, want %s", st.at, res.Reason, st.reason)
				case st.scale == nil && st.current > 0 && !res.Active && res.RecheckAfter <= 0:
					t.Errorf("%s: holding without a time to look again: %s", st.at, res.Message)
				}
			}
		})
	}
}

// statesOf is a copy of e's trigger states, as poller.States gives them.
func (p *poller) statesOf(e *pollEntry) []triggerState {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]triggerState(nil), e.states...)
}

func deref(p *int32) any {
	if p == nil {
		return "nothing"
	}
	return *p
}
