package controller

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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

// kafkaProgress is a Kafka trigger's progress over one second.
func kafkaProgress(advanced int64, rewound ...string) *scalers.Progress {
	return &scalers.Progress{Offsets: true, Advanced: advanced, Elapsed: time.Second, Rewound: rewound, RewoundPartitions: len(rewound)}
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

// Kafka consumers commit what they dead-letter: the committed rate is everything they finished, and the
// ratio is dead-lettered / committed. Every message failing is a ratio of 1.
func TestGuardKafkaRatio(t *testing.T) {
	cfg := guardConfig{DeadLetter: `topic "dlq"`, Window: time.Minute, MaxRatio: ptr(0.5), ReleaseAfter: time.Minute}
	lag := func(p *scalers.Progress) []guardTrigger {
		return []guardTrigger{{Name: "lag", Backlog: true, Progress: p}}
	}
	g := newGuard(cfg, "", t0)
	runGuard(t, g, []step{
		{at: 0, running: true, dead: []float64{0, 0}, trig: lag(&scalers.Progress{Offsets: true, Baseline: true}), reason: ReasonHealthy, changed: true},
		// 50 committed over 5 s = 10/s, of which 2/s dead-lettered: 0.2.
		{at: 5 * time.Second, running: true, dead: []float64{10, 2}, trig: lag(&scalers.Progress{Offsets: true, Advanced: 50, Elapsed: 5 * time.Second}), reason: ReasonHealthy, msg: "ratio 0.2 (limit 0.5)"},
		// Everything fails: 10/s committed, 10/s dead-lettered; over the window (2+10)/(10+10) = 0.6.
		{at: 10 * time.Second, running: true, dead: []float64{60, 10}, trig: lag(&scalers.Progress{Offsets: true, Advanced: 50, Elapsed: 5 * time.Second}), tripped: true, reason: ReasonDeadLetterRatio, changed: true, msg: "0.6 of the messages"},
	})
	// The rate is Advanced over the time between the readings it compares, not between ticks: a failed
	// sample in between does not inflate it.
	if rate, ok := finishedRate(lag(&scalers.Progress{Offsets: true, Advanced: 20, Elapsed: 2 * time.Second}), 3); !ok || rate != 10 {
		t.Errorf("finished rate = %v (known %t), want 10/s", rate, ok)
	}
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
		{at: 5 * time.Second, running: true, trig: []guardTrigger{{Name: "lag", Backlog: true, Progress: kafkaProgress(0, "orders/2 by 500")}}, tripped: true, reason: ReasonRewound, changed: true, msg: "on 1 partition(s) (orders/2 by 500)"},
		{at: 10 * time.Second, running: true, trig: []guardTrigger{{Name: "lag", Backlog: true, Progress: kafkaProgress(9)}}, tripped: true},
		{at: 15 * time.Second, running: true, trig: []guardTrigger{{Name: "lag", Backlog: true, Progress: kafkaProgress(9)}}, reason: ReasonHealthy, changed: true},
	})
}

// The messages use the words of the trigger's Progress: Kafka's (the default) or another trigger's, such
// as a NATS JetStream consumer's ack floor, which has one position and no partitions.
func TestGuardWords(t *testing.T) {
	floor := &scalers.ProgressWords{Owner: "consumer", Backlog: "pending or unacknowledged messages", Position: "ack floor"}
	words := func(p *scalers.Progress) *scalers.Progress { p.Words = floor; return p }
	for _, tc := range []struct {
		name string
		p    *scalers.Progress
		want string
	}{
		{name: "kafka-stalled", p: kafkaProgress(0),
			want: `trigger "t": the group has lag but its committed offsets have not moved for 2 polls`},
		{name: "kafka-rewound", p: kafkaProgress(0, "orders/2 by 500"),
			want: `trigger "t": the group's committed offsets went backwards on 1 partition(s) (orders/2 by 500)`},
		{name: "nats-stalled", p: words(kafkaProgress(0)),
			want: `trigger "t": the consumer has pending or unacknowledged messages but its ack floor has not moved for 2 polls`},
		{name: "nats-rewound", p: words(kafkaProgress(0, "orders/workers by 7")),
			want: `trigger "t": the consumer's ack floor went backwards (orders/workers by 7)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGuard(guardConfig{StalledAfterPolls: 2, ReleaseAfter: time.Second}, "", t0)
			if tc.p.RewoundPartitions == 0 {
				g.observe(guardInput{Now: t0, ConsumersRunning: true, Triggers: []guardTrigger{{Name: "t", Backlog: true, Progress: tc.p}}})
			}
			g.observe(guardInput{Now: t0.Add(time.Second), ConsumersRunning: true, Triggers: []guardTrigger{{Name: "t", Backlog: true, Progress: tc.p}}})
			if v := g.View(); !v.Tripped || v.Message != tc.want {
				t.Errorf("tripped=%t message %q, want %q", v.Tripped, v.Message, tc.want)
			}
		})
	}

	// Healthy, with both kinds: the summary names both owners.
	g := newGuard(guardConfig{StalledAfterPolls: 2, ReleaseAfter: time.Second}, "", t0)
	g.observe(guardInput{Now: t0, ConsumersRunning: true, Triggers: []guardTrigger{
		{Name: "k", Backlog: true, Progress: kafkaProgress(1)}, {Name: "n", Backlog: true, Progress: words(kafkaProgress(1))}}})
	if v, want := g.View(), "no consumer or group stalled (limit 2 polls) or rewound"; v.Message != want {
		t.Errorf("message %q, want %q", v.Message, want)
	}
}

// A guard seeded tripped (after a restart of ebb) releases only after releaseAfter and after it could have
// seen its trouble again: stalledAfterPolls comparable polls for a stall, a window for the dead-letter queue.
func TestGuardSeededTrippedNeedsEvidence(t *testing.T) {
	cfg := guardConfig{StalledAfterPolls: 30, ReleaseAfter: 10 * time.Second}
	g := newGuard(cfg, ReasonStalled, t0)
	lag := func(p *scalers.Progress) []guardTrigger {
		return []guardTrigger{{Name: "lag", Backlog: true, Progress: p}}
	}
	steps := []step{{at: 0, running: true, trig: lag(&scalers.Progress{Offsets: true, Baseline: true}), tripped: true, reason: ReasonStalled}}
	// Still stalled after the restart: 29 comparable polls without progress do not release it at
	// releaseAfter (10 s), and the 30th trips it for real (no change: it was tripped for that reason).
	for i := 1; i < 30; i++ {
		steps = append(steps, step{at: time.Duration(i) * time.Second, running: true, trig: lag(kafkaProgress(0)), tripped: true, reason: ReasonStalled})
	}
	runGuard(t, g, steps)
	g = newGuard(cfg, ReasonStalled, t0)
	steps = steps[:1]
	// Moving after the restart: released once 30 polls could have seen a stall, not at 10 s.
	for i := 1; i < 30; i++ {
		steps = append(steps, step{at: time.Duration(i) * time.Second, running: true, trig: lag(kafkaProgress(5)), tripped: true, reason: ReasonStalled})
	}
	steps = append(steps, step{at: 30 * time.Second, running: true, trig: lag(kafkaProgress(5)), reason: ReasonHealthy, changed: true})
	runGuard(t, g, steps)

	dl := guardConfig{DeadLetter: `queue "dlq"`, Window: time.Minute, MaxInflowPerMinute: ptr(10.0), ReleaseAfter: 10 * time.Second}
	g = newGuard(dl, ReasonDeadLetterInflow, t0)
	runGuard(t, g, []step{
		{at: 15 * time.Second, dead: []float64{0, 0}, tripped: true, reason: ReasonDeadLetterInflow},
		{at: 59 * time.Second, dead: []float64{0, 0}, tripped: true, reason: ReasonDeadLetterInflow},
		{at: 60 * time.Second, dead: []float64{0, 0}, reason: ReasonHealthy, changed: true},
	})
}

// Two signals over their limits: the reason stays the one that tripped the guard while it is still bad.
func TestGuardReasonDoesNotFlap(t *testing.T) {
	cfg := guardConfig{DeadLetter: `queue "dlq"`, Window: time.Second, MaxInflowPerMinute: ptr(10.0), StalledAfterPolls: 1, ReleaseAfter: time.Minute}
	stalled := []guardTrigger{{Name: "lag", Backlog: true, Progress: kafkaProgress(0)}}
	moving := []guardTrigger{{Name: "lag", Backlog: true, Progress: kafkaProgress(1)}}
	g := newGuard(cfg, "", t0)
	runGuard(t, g, []step{
		{at: 0, running: true, dead: []float64{0, 1}, trig: moving, tripped: true, reason: ReasonDeadLetterInflow, changed: true},
		{at: 2 * time.Second, running: true, dead: []float64{0, 1}, trig: stalled, tripped: true, reason: ReasonDeadLetterInflow, msg: "have not moved"},
		{at: 4 * time.Second, running: true, dead: []float64{0, 0}, trig: stalled, tripped: true, reason: ReasonStalled, changed: true},
		{at: 6 * time.Second, running: true, dead: []float64{0, 1}, trig: stalled, tripped: true, reason: ReasonStalled},
	})
}

// A guard rebuilt with the same dead-letter queue (a new trigger, a new interval) goes on where the old
// one was.
func TestGuardCarry(t *testing.T) {
	cfg := guardConfig{DeadLetter: `queue "dlq"`, Window: time.Minute, MaxInflowPerMinute: ptr(10.0), StalledAfterPolls: 3, ReleaseAfter: time.Minute}
	old := newGuard(cfg, "", t0)
	old.observe(guardInput{Now: t0, ConsumersRunning: true, DeadLetter: []float64{3, 1}, Triggers: []guardTrigger{{Name: "lag", Backlog: true, Progress: kafkaProgress(0)}}})
	if v := old.View(); !v.Tripped {
		t.Fatalf("old guard not tripped: %s", v.Message)
	}
	g := newGuard(cfg, ReasonDeadLetterInflow, t0.Add(time.Second))
	g.carry(old)
	if g.seeded || len(g.samples) != 1 || g.stalled["lag"] != 1 || !g.View().Observed {
		t.Fatalf("carried guard: seeded=%t samples=%d stalled=%v observed=%t", g.seeded, len(g.samples), g.stalled, g.View().Observed)
	}
	// Another dead-letter queue: nothing to carry.
	other := cfg
	other.DeadLetter = `queue "other"`
	g = newGuard(other, "", t0)
	g.carry(old)
	if len(g.samples) != 0 || g.View().Observed {
		t.Fatalf("carried across dead-letter queues: %d samples", len(g.samples))
	}
}

func TestEventNote(t *testing.T) {
	long := strings.Repeat("é", 600) // 1,200 bytes
	got := eventNote(long)
	if len(got) > 1024 || !strings.HasSuffix(got, "...") || !utf8.ValidString(got) {
		t.Errorf("eventNote: %d bytes, valid UTF-8 %t", len(got), utf8.ValidString(got))
	}
	if eventNote("short") != "short" {
		t.Error("a short note changed")
	}
}

func TestGuardNothingToWatch(t *testing.T) {
	g := newGuard(guardConfig{StalledAfterPolls: 24, ReleaseAfter: time.Minute}, "", t0)
	g.observe(guardInput{Now: t0, ConsumersRunning: true, Triggers: []guardTrigger{{Name: "q", Backlog: true, Progress: &scalers.Progress{HasConsumeRate: true}}}})
	if v := g.View(); v.Watching {
		t.Fatalf("watching with no dead-letter queue and no offsets: %+v", v)
	}
}

// A tripped guard whose trigger cannot be read does not know whether the consumers recovered: a failed
// sample is not a good reading, and the release clock starts again from the next good one (issue 16,
// item 9: the release timer used to run through a broker outage).
func TestGuardFailedSamplesDoNotRelease(t *testing.T) {
	cfg := guardConfig{StalledAfterPolls: 2, ReleaseAfter: 10 * time.Second}
	lag := func(p *scalers.Progress) []guardTrigger {
		return []guardTrigger{{Name: "lag", Backlog: true, Progress: p}}
	}
	down := []guardTrigger{{Name: "lag", Backlog: true, Err: errTest}}
	g := newGuard(cfg, "", t0)
	runGuard(t, g, []step{
		{at: 0, running: true, trig: lag(&scalers.Progress{Offsets: true, Baseline: true}), reason: ReasonHealthy, changed: true},
		{at: 1 * time.Second, running: true, trig: lag(kafkaProgress(0))},
		{at: 2 * time.Second, running: true, trig: lag(kafkaProgress(0)), tripped: true, reason: ReasonStalled, changed: true},
		// The broker dies at t=3s and stays down for 30 s: three times releaseAfter, no release.
		{at: 3 * time.Second, running: true, trig: down, tripped: true, reason: ReasonStalled, msg: `trigger "lag" unreadable`},
		{at: 14 * time.Second, running: true, trig: down, tripped: true, reason: ReasonStalled},
		{at: 33 * time.Second, running: true, trig: down, tripped: true, reason: ReasonStalled, msg: "still holding"},
		// Back, and the group moves: releaseAfter of good readings from the last failed one (t=33s).
		{at: 34 * time.Second, running: true, trig: lag(kafkaProgress(5)), tripped: true, reason: ReasonStalled, msg: "releasing after 10s"},
		{at: 42 * time.Second, running: true, trig: lag(kafkaProgress(5)), tripped: true, reason: ReasonStalled},
		{at: 43 * time.Second, running: true, trig: lag(kafkaProgress(5)), reason: ReasonHealthy, changed: true},
	})

	// A failing trigger the guard does not watch (no offsets, no ratio to judge) does not hold it.
	dl := guardConfig{DeadLetter: `queue "dlq"`, Window: 5 * time.Second, MaxInflowPerMinute: ptr(10.0), ReleaseAfter: 10 * time.Second}
	cron := []guardTrigger{{Name: "cron", Err: errTest}}
	g = newGuard(dl, "", t0)
	runGuard(t, g, []step{
		{at: 0, dead: []float64{0, 1}, tripped: true, reason: ReasonDeadLetterInflow, changed: true},
		{at: 6 * time.Second, dead: []float64{0, 0}, trig: cron, tripped: true},
		{at: 16 * time.Second, dead: []float64{0, 0}, trig: cron, reason: ReasonHealthy, changed: true},
	})
}
