package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDecideActivation(t *testing.T) {
	// t0 is when the ScaledConsumer was created; unless a case says otherwise it is now an hour later.
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	now := t0.Add(time.Hour)
	at := func(d time.Duration) *time.Time { return ptr(t0.Add(d)) }

	var (
		idle      = triggerView{Sampled: true}
		active    = triggerView{Sampled: true, Active: true, Backlog: true}
		backlog   = triggerView{Sampled: true, Backlog: true} // work below the activation threshold
		failing   = triggerView{Sampled: true, Failing: true}
		unsampled = triggerView{}
		// activeFailing was active on its last good sample, and its latest sample failed.
		activeFailing = triggerView{Sampled: true, Active: true, Backlog: true, Failing: true}
		fallbackDue   = triggerView{Sampled: true, Failing: true, FallbackDue: true}
	)

	tests := []struct {
		name string
		// in is completed in the loop: Now defaults to now, Created to t0, Cooldown to 5m.
		in   activationInput
		want activationResult // Message is checked with msg, not here
		// msg is a word Message must contain; empty when Message must be empty.
		msg string
	}{
		// Waking up.
		{
			name: "wake-from-zero-min-0",
			in:   activationInput{Min: 0, Current: 0, Triggers: []triggerView{active}},
			want: activationResult{Scale: ptr(int32(1)), Reason: ReasonActivated, Active: true, LastActive: &now},
			msg:  "waking",
		},
		{
			name: "wake-from-zero-min-3",
			in:   activationInput{Min: 3, Current: 0, Triggers: []triggerView{active}},
			want: activationResult{Scale: ptr(int32(3)), Reason: ReasonActivated, Active: true, LastActive: &now},
			msg:  "waking",
		},
		{
			name: "wake-when-one-of-two-triggers-is-active",
			in:   activationInput{Min: 0, Current: 0, Triggers: []triggerView{idle, active}},
			want: activationResult{Scale: ptr(int32(1)), Reason: ReasonActivated, Active: true, LastActive: &now},
			msg:  "waking",
		},
		{
			name: "wake-from-idle-replicas",
			in:   activationInput{Min: 3, Idle: ptr(int32(1)), Current: 1, Triggers: []triggerView{active}},
			want: activationResult{Scale: ptr(int32(3)), Reason: ReasonActivated, Active: true, LastActive: &now},
			msg:  "waking",
		},
		{
			name: "wake-from-below-idle-replicas",
			in:   activationInput{Min: 3, Idle: ptr(int32(1)), Current: 0, Triggers: []triggerView{active}},
			want: activationResult{Scale: ptr(int32(3)), Reason: ReasonActivated, Active: true, LastActive: &now},
			msg:  "waking",
		},
		{
			name: "no-wake-above-idle-replicas",
			in:   activationInput{Min: 3, Idle: ptr(int32(1)), Current: 2, Triggers: []triggerView{active}},
			want: activationResult{Active: true, LastActive: &now},
		},
		{
			name: "no-wake-when-running",
			in:   activationInput{Min: 0, Current: 4, Triggers: []triggerView{active}},
			want: activationResult{Active: true, LastActive: &now},
		},
		{
			name: "no-wake-when-the-active-trigger-fails",
			in:   activationInput{Min: 0, Current: 0, Triggers: []triggerView{activeFailing}},
			want: activationResult{},
		},

		// Fallback.
		{
			name: "fallback-from-zero",
			in:   activationInput{Min: 0, Fallback: ptr(int32(4)), Current: 0, Triggers: []triggerView{fallbackDue}},
			want: activationResult{Scale: ptr(int32(4)), Reason: ReasonFallback},
			msg:  "fallback",
		},
		{
			name: "fallback-from-idle-replicas",
			in:   activationInput{Min: 3, Idle: ptr(int32(1)), Fallback: ptr(int32(4)), Current: 1, Triggers: []triggerView{idle, fallbackDue}},
			want: activationResult{Scale: ptr(int32(4)), Reason: ReasonFallback},
			msg:  "fallback",
		},
		{
			name: "no-fallback-before-the-failure-threshold",
			in:   activationInput{Min: 0, Fallback: ptr(int32(4)), Current: 0, Triggers: []triggerView{failing}},
			want: activationResult{},
		},
		{
			name: "no-fallback-without-spec-fallback",
			in:   activationInput{Min: 0, Current: 0, Triggers: []triggerView{fallbackDue}},
			want: activationResult{},
		},
		{
			// Above zero the HPA drives the target to fallback replicas through the metrics; ebb only holds.
			name: "no-fallback-when-running",
			in:   activationInput{Min: 0, Fallback: ptr(int32(4)), Current: 2, Triggers: []triggerView{fallbackDue}},
			want: activationResult{},
			msg:  "failing",
		},
		{
			name: "activity-beats-fallback",
			in:   activationInput{Min: 0, Fallback: ptr(int32(4)), Current: 0, Triggers: []triggerView{active, fallbackDue}},
			want: activationResult{Scale: ptr(int32(1)), Reason: ReasonActivated, Active: true, LastActive: &now},
			msg:  "waking",
		},

		// Cooldown.
		{
			name: "cooldown-not-due",
			in:   activationInput{Min: 0, Current: 3, LastActive: at(58 * time.Minute), Triggers: []triggerView{idle}},
			want: activationResult{LastActive: at(58 * time.Minute), RecheckAfter: 3 * time.Minute},
			msg:  "cooling down",
		},
		{
			name: "cooldown-due-to-zero",
			in:   activationInput{Min: 0, Current: 3, LastActive: at(55 * time.Minute), Triggers: []triggerView{idle}},
			want: activationResult{Scale: ptr(int32(0)), Reason: ReasonCooledDown, LastActive: at(55 * time.Minute)},
			msg:  "from 3 to 0",
		},
		{
			name: "cooldown-due-to-idle-replicas",
			in:   activationInput{Min: 3, Idle: ptr(int32(1)), Current: 3, LastActive: at(10 * time.Minute), Triggers: []triggerView{idle}},
			want: activationResult{Scale: ptr(int32(1)), Reason: ReasonCooledDown, LastActive: at(10 * time.Minute)},
			msg:  "from 3 to 1",
		},
		{
			name: "custom-cooldown",
			in: activationInput{Min: 0, Current: 3, Cooldown: 30 * time.Minute, LastActive: at(50 * time.Minute),
				Triggers: []triggerView{idle, idle}},
			want: activationResult{LastActive: at(50 * time.Minute), RecheckAfter: 20 * time.Minute},
			msg:  "cooling down",
		},
		{
			name: "never-to-zero-when-min-is-positive",
			in:   activationInput{Min: 3, Current: 3, LastActive: at(0), Triggers: []triggerView{idle}},
			want: activationResult{LastActive: at(0)},
		},
		{
			name: "already-at-zero",
			in:   activationInput{Min: 0, Current: 0, LastActive: at(0), Triggers: []triggerView{idle}},
			want: activationResult{LastActive: at(0)},
		},
		{
			name: "already-at-idle-replicas",
			in:   activationInput{Min: 3, Idle: ptr(int32(1)), Current: 1, LastActive: at(0), Triggers: []triggerView{idle}},
			want: activationResult{LastActive: at(0)},
		},

		// Holding at the current replicas even though the cooldown is over.
		{
			name: "hold-when-a-trigger-fails",
			in:   activationInput{Min: 0, Current: 3, LastActive: at(0), Triggers: []triggerView{idle, failing}},
			want: activationResult{LastActive: at(0)},
			msg:  "failing",
		},
		{
			name: "hold-on-backlog-below-activation",
			in:   activationInput{Min: 0, Current: 3, LastActive: at(0), Triggers: []triggerView{idle, backlog}},
			want: activationResult{LastActive: at(0)},
			msg:  "backlog",
		},
		{
			name: "hold-on-backlog-below-activation-to-idle-replicas",
			in:   activationInput{Min: 3, Idle: ptr(int32(1)), Current: 3, LastActive: at(0), Triggers: []triggerView{backlog}},
			want: activationResult{LastActive: at(0)},
			msg:  "backlog",
		},
		{
			name: "hold-until-every-trigger-is-sampled",
			in:   activationInput{Min: 0, Current: 3, LastActive: at(0), Triggers: []triggerView{idle, unsampled}},
			want: activationResult{LastActive: at(0)},
			msg:  "first sample",
		},
		{
			name: "hold-without-triggers",
			in:   activationInput{Min: 0, Current: 3, LastActive: at(0)},
			want: activationResult{LastActive: at(0)},
			msg:  "first sample",
		},

		// The initial cooldown, counted from creation.
		{
			name: "never-active-no-initial-cooldown",
			in:   activationInput{Min: 0, Current: 2, Now: t0, Triggers: []triggerView{idle}},
			want: activationResult{Scale: ptr(int32(0)), Reason: ReasonCooledDown},
			msg:  "since creation",
		},
		{
			name: "never-active-initial-cooldown-not-due",
			in:   activationInput{Min: 0, Current: 2, InitialCooldown: 90 * time.Minute, Triggers: []triggerView{idle}},
			want: activationResult{RecheckAfter: 30 * time.Minute},
			msg:  "cooling down",
		},
		{
			name: "never-active-initial-cooldown-due",
			in:   activationInput{Min: 0, Current: 2, InitialCooldown: 30 * time.Minute, Triggers: []triggerView{idle}},
			want: activationResult{Scale: ptr(int32(0)), Reason: ReasonCooledDown},
			msg:  "since creation",
		},
		{
			name: "initial-cooldown-later-than-last-active-wins",
			in: activationInput{Min: 0, Current: 2, InitialCooldown: 90 * time.Minute, LastActive: at(10 * time.Minute),
				Triggers: []triggerView{idle}},
			want: activationResult{LastActive: at(10 * time.Minute), RecheckAfter: 30 * time.Minute},
			msg:  "cooling down",
		},
		{
			name: "last-active-later-than-initial-cooldown-wins",
			in: activationInput{Min: 0, Current: 2, InitialCooldown: 30 * time.Minute, Cooldown: 15 * time.Minute,
				LastActive: at(50 * time.Minute), Triggers: []triggerView{idle}},
			want: activationResult{LastActive: at(50 * time.Minute), RecheckAfter: 5 * time.Minute},
			msg:  "cooling down",
		},
		{
			name: "last-active-later-than-initial-cooldown-due",
			in: activationInput{Min: 0, Current: 2, InitialCooldown: 30 * time.Minute, Cooldown: 15 * time.Minute,
				LastActive: at(50 * time.Minute), Now: t0.Add(65 * time.Minute), Triggers: []triggerView{idle}},
			want: activationResult{Scale: ptr(int32(0)), Reason: ReasonCooledDown, LastActive: at(50 * time.Minute)},
			msg:  "from 2 to 0",
		},

		// lastActiveTime.
		{
			name: "last-active-moves-to-now-when-active",
			in:   activationInput{Min: 0, Current: 2, LastActive: at(0), Triggers: []triggerView{idle, active}},
			want: activationResult{Active: true, LastActive: &now},
		},
		{
			name: "last-active-kept-when-idle",
			in:   activationInput{Min: 0, Current: 0, LastActive: at(10 * time.Minute), Triggers: []triggerView{idle}},
			want: activationResult{LastActive: at(10 * time.Minute)},
		},
		{
			name: "last-active-kept-when-the-active-trigger-fails",
			in:   activationInput{Min: 0, Current: 2, LastActive: at(0), Triggers: []triggerView{activeFailing}},
			want: activationResult{LastActive: at(0)},
			msg:  "failing",
		},

		// Pause annotations.
		{
			name: "paused-does-not-wake",
			in:   activationInput{Min: 0, Current: 0, Paused: true, Triggers: []triggerView{active}},
			want: activationResult{Active: true, LastActive: &now},
		},
		{
			name: "paused-does-not-cool-down",
			in:   activationInput{Min: 0, Current: 3, Paused: true, LastActive: at(0), Triggers: []triggerView{idle}},
			want: activationResult{LastActive: at(0)},
		},
		{
			name: "paused-does-not-fall-back",
			in:   activationInput{Min: 0, Current: 0, Paused: true, Fallback: ptr(int32(4)), Triggers: []triggerView{fallbackDue}},
			want: activationResult{},
		},
		{
			name: "paused-replicas-scales",
			in:   activationInput{Min: 0, Current: 5, Paused: true, PausedReplicas: ptr(int32(2)), LastActive: at(0), Triggers: []triggerView{idle}},
			want: activationResult{Scale: ptr(int32(2)), Reason: ReasonPausedReplicas, LastActive: at(0)},
			msg:  "paused-replicas=2",
		},
		{
			name: "paused-replicas-already-there",
			in:   activationInput{Min: 0, Current: 2, Paused: true, PausedReplicas: ptr(int32(2)), LastActive: at(0), Triggers: []triggerView{idle}},
			want: activationResult{LastActive: at(0)},
		},
		{
			name: "paused-replicas-zero-beats-activity",
			in:   activationInput{Min: 0, Current: 3, Paused: true, PausedReplicas: ptr(int32(0)), Triggers: []triggerView{active}},
			want: activationResult{Scale: ptr(int32(0)), Reason: ReasonPausedReplicas, Active: true, LastActive: &now},
			msg:  "paused-replicas=0",
		},
		{
			name: "paused-replicas-zero-does-not-wake",
			in:   activationInput{Min: 0, Current: 0, Paused: true, PausedReplicas: ptr(int32(0)), Triggers: []triggerView{active}},
			want: activationResult{Active: true, LastActive: &now},
		},
		{
			name: "paused-replicas-beats-fallback",
			in: activationInput{Min: 0, Current: 0, Paused: true, PausedReplicas: ptr(int32(1)), Fallback: ptr(int32(4)),
				Triggers: []triggerView{fallbackDue}},
			want: activationResult{Scale: ptr(int32(1)), Reason: ReasonPausedReplicas},
			msg:  "paused-replicas=1",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if in.Now.IsZero() {
				in.Now = now
			}
			if in.Created.IsZero() {
				in.Created = t0
			}
			if in.Cooldown == 0 {
				in.Cooldown = 5 * time.Minute
			}
			got := decideActivation(in)
			msg := got.Message
			got.Message = ""
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("decideActivation (-got +want):\n%s", diff)
			}
			switch {
			case tc.msg == "" && msg != "":
				t.Errorf("Message = %q, want none", msg)
			case !strings.Contains(msg, tc.msg):
				t.Errorf("Message = %q, want it to mention %q", msg, tc.msg)
			}
		})
	}
}

// The cooldown counts from the LastActive ebb returned: a result fed back as the next input (as the
// reconciler does through status.lastActiveTime) cools down exactly Cooldown after the last activity.
func TestDecideActivationSequence(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	active := []triggerView{{Sampled: true, Active: true, Backlog: true}}
	idle := []triggerView{{Sampled: true}}
	steps := []struct {
		name     string
		at       time.Duration
		triggers []triggerView
		current  int32
		want     *int32 // the scale ebb sets, nil for none
		wantWhy  string
	}{
		{name: "idle-at-zero", at: 0, triggers: idle, current: 0},
		{name: "wakes", at: time.Minute, triggers: active, current: 0, want: ptr(int32(1)), wantWhy: ReasonActivated},
		{name: "hpa-sizes", at: 2 * time.Minute, triggers: active, current: 6},
		{name: "cooling", at: 3 * time.Minute, triggers: idle, current: 6},
		{name: "still-cooling", at: 7*time.Minute - time.Second, triggers: idle, current: 6},
		{name: "cooled-down", at: 7 * time.Minute, triggers: idle, current: 6, want: ptr(int32(0)), wantWhy: ReasonCooledDown},
		{name: "stays-at-zero", at: 8 * time.Minute, triggers: idle, current: 0},
	}
	var lastActive *time.Time
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			res := decideActivation(activationInput{
				Now: t0.Add(s.at), Created: t0, Cooldown: 5 * time.Minute,
				LastActive: lastActive, Current: s.current, Triggers: s.triggers,
			})
			lastActive = res.LastActive
			if diff := cmp.Diff(res.Scale, s.want); diff != "" {
				t.Errorf("Scale (-got +want):\n%s", diff)
			}
			if res.Reason != s.wantWhy {
				t.Errorf("Reason = %q, want %q", res.Reason, s.wantWhy)
			}
		})
	}
}

// The cooldown runs from the last active sample the poller saw, not from the time of the decision, and
// status.lastActiveTime never moves backwards.
func TestLastActiveFromSamples(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	sampled := t0.Add(-25 * time.Second)
	older := t0.Add(-time.Hour)
	newer := t0.Add(-5 * time.Second)
	tests := []struct {
		name   string
		status *time.Time
		views  []triggerView
		want   time.Time
	}{
		{name: "active-uses-sample-time", views: []triggerView{{Sampled: true, Active: true, LastActive: sampled}}, want: sampled},
		{name: "newest-trigger-wins", views: []triggerView{{Sampled: true, LastActive: older}, {Sampled: true, Active: true, LastActive: sampled}}, want: sampled},
		{name: "status-newer-kept", status: &newer, views: []triggerView{{Sampled: true, LastActive: sampled}}, want: newer},
		{name: "no-sample-time-active-uses-now", views: []triggerView{{Sampled: true, Active: true}}, want: t0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := decideActivation(activationInput{Now: t0, Created: older, Cooldown: time.Minute, LastActive: tc.status, Current: 1, Triggers: tc.views})
			if res.LastActive == nil || !res.LastActive.Equal(tc.want) {
				t.Errorf("LastActive = %v, want %v", res.LastActive, tc.want)
			}
		})
	}
	// Idle after an active sample 25 s ago with a 60 s cooldown: 35 s left, counted from the sample.
	res := decideActivation(activationInput{Now: t0, Created: older, Cooldown: time.Minute, Current: 1,
		Triggers: []triggerView{{Sampled: true, LastActive: sampled}}})
	if res.Scale != nil || res.RecheckAfter != 35*time.Second {
		t.Errorf("decision = scale %v, recheck %v; want no scale and a recheck in 35s", res.Scale, res.RecheckAfter)
	}
}

// Time without a good reading is not idle time (issue 16, item 6): after an outage the cooldown starts
// again from the first good sample, however long ago the last activity was; and a restart of ebb, which
// knows the cooldown only from status.lastActiveTime, does not shorten it.
func TestCooldownAfterOutage(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	active := triggerView{Sampled: true, Active: true, Backlog: true}
	idle := triggerView{Sampled: true}
	failing := triggerView{Sampled: true, Failing: true}
	steps := []struct {
		name    string
		at      time.Duration
		trigger triggerView
		current int32
		want    *int32 // the scale ebb sets, nil for none
		msg     string // a word the message must contain, when set
	}{
		{name: "active", at: time.Minute, trigger: func() triggerView { v := active; v.LastActive = at(time.Minute); return v }(), current: 3},
		{name: "idle-cooling", at: 2 * time.Minute, trigger: func() triggerView { v := idle; v.LastActive = at(time.Minute); return v }(), current: 3, msg: "cooling down"},
		// The broker dies at 3m and stays down for an hour: ebb holds, whatever the cooldown says.
		{name: "outage", at: 3 * time.Minute, trigger: func() triggerView { v := failing; v.LastActive = at(time.Minute); return v }(), current: 3, msg: "failing"},
		{name: "outage-long", at: 63 * time.Minute, trigger: func() triggerView { v := failing; v.LastActive = at(time.Minute); return v }(), current: 3, msg: "failing"},
		// Back at 64m, idle: the last activity was 63 minutes ago, but the cooldown restarts now.
		{name: "back-idle", at: 64 * time.Minute, trigger: func() triggerView {
			v := idle
			v.LastActive, v.Recovered = at(time.Minute), at(64*time.Minute)
			return v
		}(), current: 3, msg: "samples recovered at"},
		{name: "still-cooling", at: 68 * time.Minute, trigger: func() triggerView {
			v := idle
			v.LastActive, v.Recovered = at(time.Minute), at(64*time.Minute)
			return v
		}(), current: 3, msg: "cooling down"},
		// ebb restarts at 68m30s: a fresh poll has no recovery to report, status.lastActiveTime has it.
		{name: "restarted-still-cooling", at: 68*time.Minute + 30*time.Second, trigger: idle, current: 3, msg: "cooling down"},
		{name: "cooled-down", at: 69 * time.Minute, trigger: idle, current: 3, want: ptr(int32(0))},
	}
	var lastActive *time.Time
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			res := decideActivation(activationInput{
				Now: t0.Add(s.at), Created: t0, Cooldown: 5 * time.Minute,
				LastActive: lastActive, Current: s.current, Triggers: []triggerView{s.trigger},
			})
			lastActive = res.LastActive
			if diff := cmp.Diff(res.Scale, s.want); diff != "" {
				t.Errorf("Scale (-got +want):\n%s\nmessage: %s", diff, res.Message)
			}
			if !strings.Contains(res.Message, s.msg) {
				t.Errorf("Message = %q, want it to mention %q", res.Message, s.msg)
			}
		})
	}
}
