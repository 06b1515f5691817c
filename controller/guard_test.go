package controller

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/scalers"
)

var (
	t0      = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	errTest = errors.New("connection refused")
)

// step is one tick fed to a guard, and what the guard must say after it.
type step struct {
	at      time.Duration // since t0
	dead    []float64     // depth, inflow/s; nil: no dead-letter sample
	deadErr error
	running bool
	trig    []guardTrigger
	// want
	tripped bool
	reason  string
	changed bool
	// msg, when set, must be in the message.
	msg string
}

func runGuard(t *testing.T, g *guard, steps []step) {
	t.Helper()
	for i, s := range steps {
		in := guardInput{Now: t0.Add(s.at), ConsumersRunning: s.running, DeadLetter: s.dead, DeadLetterErr: s.deadErr, Triggers: s.trig}
		changed := g.observe(in)
		v := g.View()
		if v.Tripped != s.tripped || (s.reason != "" && v.Reason != s.reason) || changed != s.changed {
			t.Fatalf("step %d (t=%s): tripped=%t reason=%s changed=%t, want tripped=%t reason=%s changed=%t; message: %s",
				i, s.at, v.Tripped, v.Reason, changed, s.tripped, s.reason, s.changed, v.Message)
		}
		if s.msg != "" && !strings.Contains(v.Message, s.msg) {
			t.Fatalf("step %d: message %q does not say %q", i, v.Message, s.msg)
		}
	}
}

func kafkaProgress(advanced int64, rewound ...string) *scalers.Progress {
	return &scalers.Progress{Offsets: true, Advanced: advanced, Rewound: rewound}
}

func TestGuardDeadLetterInflowTripsAndReleases(t *testing.T) {
	cfg := guardConfig{DeadLetter: `queue "dlq"`, Window: 10 * time.Second, MaxInflowPerMinute: ptr(30.0), ReleaseAfter: 20 * time.Second}
	g := newGuard(cfg, "", t0)
	runGuard(t, g, []step{
		// 0.2/s = 12/min: within the limit.
		{at: 0, dead: []float64{5, 0.2}, reason: ReasonHealthy, changed: true, msg: "12/min in (limit 30)"},
		// 2/s: the 10 s window's mean is (0.2+2)/2 = 1.1/s = 66/min.
		{at: 5 * time.Second, dead: []float64{20, 2}, tripped: true, reason: ReasonDeadLetterInflow, changed: true, msg: "66 messages/min (limit 30)"},
		{at: 10 * time.Second, dead: []float64{30, 2}, tripped: true, reason: ReasonDeadLetterInflow, msg: "120 messages/min"},
		// Fixed: inflow 0; the window still holds the 2/s sample of t=10s until it ages out at t=20s.
		{at: 15 * time.Second, dead: []float64{30, 0}, tripped: true, reason: ReasonDeadLetterInflow},
		{at: 20 * time.Second, dead: []float64{30, 0}, tripped: true, reason: ReasonDeadLetterInflow, msg: "releasing after 20s"},
		// Good since t=15s (the last bad tick): release at t=35s, not before.
		{at: 30 * time.Second, dead: []float64{30, 0}, tripped: true, reason: ReasonDeadLetterInflow},
		{at: 35 * time.Second, dead: []float64{30, 0}, reason: ReasonHealthy, changed: true, msg: "30 waiting"},
	})
}

func TestGuardDeadLetterErrorsNeitherTripNorRelease(t *testing.T) {
	cfg := guardConfig{DeadLetter: `queue "dlq"`, Window: 10 * time.Second, MaxInflowPerMinute: ptr(30.0), ReleaseAfter: 5 * time.Second}
	g := newGuard(cfg, "", t0)
	runGuard(t, g, []step{
		{at: 0, dead: []float64{0, 5}, tripped: true, reason: ReasonDeadLetterInflow, changed: true},
		// Unreadable: the window's old sample still counts until it ages out.
		{at: 5 * time.Second, deadErr: errTest, tripped: true, reason: ReasonDeadLetterInflow, msg: "unreadable"},
		{at: 11 * time.Second, deadErr: errTest, tripped: true, msg: "unreadable"},
	})
}

func TestGuardDeadLetterRatio(t *testing.T) {
	cfg := guardConfig{DeadLetter: `queue "dlq"`, Window: 30 * time.Second, MaxRatio: ptr(0.5), ReleaseAfter: 10 * time.Second}
	rabbit := func(rate float64) []guardTrigger {
		return []guardTrigger{{Name: "q", Backlog: true, Progress: &scalers.Progress{HasConsumeRate: true, ConsumeRate: rate}}}
	}
	g := newGuard(cfg, "", t0)
	runGuard(t, g, []step{
		// 1 dead-lettered for 9 acknowledged: 0.1.
		{at: 0, dead: []float64{0, 1}, trig: rabbit(9), reason: ReasonHealthy, changed: true, msg: "ratio 0.1 (limit 0.5)"},
		// Then 9 for 1: over the window (1+9)/(1+9+9+1) = 0.5, not above.
		{at: 5 * time.Second, dead: []float64{0, 9}, trig: rabbit(1), reason: ReasonHealthy},
		{at: 10 * time.Second, dead: []float64{0, 9}, trig: rabbit(1), tripped: true, reason: ReasonDeadLetterRatio, changed: true, msg: "0.63 of the messages"},
	})

	// Without a consume rate the ratio cannot be judged: it does not trip, and says why.
	g = newGuard(cfg, "", t0)
	runGuard(t, g, []step{
		{at: 0, dead: []float64{0, 100}, trig: []guardTrigger{{Name: "q", Backlog: true}}, reason: ReasonHealthy, changed: true, msg: "maxRatio cannot be judged"},
	})
}

func TestGuardKafkaConsumeRateFromOffsets(t *testing.T) {
	cfg := guardConfig{DeadLetter: `topic "dlq"`, Window: time.Minute, MaxRatio: ptr(0.5), ReleaseAfter: time.Minute}
	g := newGuard(cfg, "", t0)
	runGuard(t, g, []step{
		{at: 0, running: true, dead: []float64{0, 0}, trig: []guardTrigger{{Name: "lag", Backlog: true, Progress: &scalers.Progress{Offsets: true, Baseline: true}}}, reason: ReasonHealthy, changed: true},
		// 50 committed in 5 s = 10/s, against 40/s dead-lettered: 0.8.
		{at: 5 * time.Second, running: true, dead: []float64{200, 40}, trig: []guardTrigger{{Name: "lag", Backlog: true, Progress: kafkaProgress(50)}}, tripped: true, reason: ReasonDeadLetterRatio, changed: true, msg: "0.8 of the messages"},
	})
}

func TestGuardStalled(t *testing.T) {
	cfg := guardConfig{StalledAfterPolls: 3, ReleaseAfter: 10 * time.Second}
	lag := func(p *scalers.Progress) []guardTrigger {
		return []guardTrigger{{Name: "lag", Backlog: true, Progress: p}}
	}
	g := newGuard(cfg, "", t0)
	runGuard(t, g, []step{
		{at: 0, running: true, trig: lag(&scalers.Progress{Offsets: true, Baseline: true}), reason: ReasonHealthy, changed: true},
		{at: 1 * time.Second, running: true, trig: lag(kafkaProgress(0))},
		{at: 2 * time.Second, running: true, trig: lag(kafkaProgress(0))},
		// A failed sample tells nothing: the count holds.
		{at: 3 * time.Second, running: true, trig: lag(nil)},
		{at: 4 * time.Second, running: true, trig: lag(kafkaProgress(0)), tripped: true, reason: ReasonStalled, changed: true, msg: "have not moved for 3 polls"},
		// Scaled to zero: nobody to be stalled; the count resets, the release clock runs.
		{at: 5 * time.Second, running: false, trig: lag(kafkaProgress(0)), tripped: true},
		{at: 15 * time.Second, running: true, trig: lag(kafkaProgress(7)), reason: ReasonHealthy, changed: true},
	})
	if n := g.View().Stalled["lag"]; n != 0 {
		t.Errorf("stalled polls after progress = %d, want 0", n)
	}

	// No backlog: offsets that do not move are not stalled.
	g = newGuard(cfg, "", t0)
	for i := range 10 {
		if g.observe(guardInput{Now: t0.Add(time.Duration(i) * time.Second), ConsumersRunning: true,
			Triggers: []guardTrigger{{Name: "lag", Backlog: false, Progress: kafkaProgress(0)}}}) && i > 0 {
			t.Fatalf("tick %d changed the guard", i)
		}
	}
	if v := g.View(); v.Tripped {
		t.Fatalf("tripped without backlog: %s", v.Message)
	}

	// Stall detection off.
	g = newGuard(guardConfig{StalledAfterPolls: 0, ReleaseAfter: time.Second}, "", t0)
	for i := range 10 {
		g.observe(guardInput{Now: t0.Add(time.Duration(i) * time.Second), ConsumersRunning: true, Triggers: lag(kafkaProgress(0))})
	}
	if v := g.View(); v.Tripped || v.Watching {
		t.Fatalf("stall detection off: tripped=%t watching=%t", v.Tripped, v.Watching)
	}
}

func TestGuardRewound(t *testing.T) {
	cfg := guardConfig{StalledAfterPolls: 100, ReleaseAfter: 10 * time.Second}
	g := newGuard(cfg, "", t0)
	runGuard(t, g, []step{
		{at: 0, running: true, trig: []guardTrigger{{Name: "lag", Backlog: true, Progress: kafkaProgress(3)}}, reason: ReasonHealthy, changed: true},
		{at: 5 * time.Second, running: true, trig: []guardTrigger{{Name: "lag", Backlog: true, Progress: kafkaProgress(0, "orders/2 by 500")}}, tripped: true, reason: ReasonRewound, changed: true, msg: "orders/2 by 500"},
		{at: 10 * time.Second, running: true, trig: []guardTrigger{{Name: "lag", Backlog: true, Progress: kafkaProgress(9)}}, tripped: true},
		{at: 15 * time.Second, running: true, trig: []guardTrigger{{Name: "lag", Backlog: true, Progress: kafkaProgress(9)}}, reason: ReasonHealthy, changed: true},
	})
}

func TestGuardSeededTrippedHoldsUntilReleaseAfter(t *testing.T) {
	cfg := guardConfig{StalledAfterPolls: 3, ReleaseAfter: 10 * time.Second}
	g := newGuard(cfg, ReasonStalled, t0)
	runGuard(t, g, []step{
		{at: 1 * time.Second, running: true, trig: []guardTrigger{{Name: "lag", Backlog: true, Progress: kafkaProgress(5)}}, tripped: true, reason: ReasonStalled},
		{at: 10 * time.Second, running: true, trig: []guardTrigger{{Name: "lag", Backlog: true, Progress: kafkaProgress(5)}}, reason: ReasonHealthy, changed: true},
	})
}

func TestGuardNothingToWatch(t *testing.T) {
	g := newGuard(guardConfig{StalledAfterPolls: 24, ReleaseAfter: time.Minute}, "", t0)
	g.observe(guardInput{Now: t0, ConsumersRunning: true, Triggers: []guardTrigger{{Name: "q", Backlog: true, Progress: &scalers.Progress{HasConsumeRate: true}}}})
	if v := g.View(); v.Watching {
		t.Fatalf("watching with no dead-letter queue and no offsets: %+v", v)
	}
}
