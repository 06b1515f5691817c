package controller

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/scalers"
)

// guardConfig is the consumer-health guard's spec, defaults applied.
type guardConfig struct {
	// StalledAfterPolls: polls in a row with lag and no committed progress before a group is stalled
	// (0: stall detection off).
	StalledAfterPolls int32
	// ReleaseAfter is how long every signal must stay within its limit before the guard releases.
	ReleaseAfter time.Duration
	// DeadLetter names the dead-letter queue or topic in messages ("" when there is none); Window, and the
	// limits (nil: not set), are its spec.
	DeadLetter         string
	Window             time.Duration
	MaxInflowPerMinute *float64
	MaxRatio           *float64
}

// guardTrigger is what one trigger's sample of this tick tells the guard.
type guardTrigger struct {
	Name string
	// Backlog: the trigger's last good sample reported work.
	Backlog bool
	// Progress is this tick's (nil when the sample failed or the scaler reports none).
	Progress *scalers.Progress
	// Err is this tick's sample error (nil when it succeeded).
	Err error
}

// Index of each value in guardInput.DeadLetter.
const (
	deadLetterDepth = iota
	deadLetterInflow
)

// guardInput is one tick's observation.
type guardInput struct {
	Now time.Time
	// ConsumersRunning: the target has replicas. A group with no consumers is not stalled, it is idle.
	ConsumersRunning bool
	// DeadLetter is the dead-letter reader's sample, indexed by deadLetterDepth and deadLetterInflow (per
	// second); nil when there is none or it failed (DeadLetterErr).
	DeadLetter    []float64
	DeadLetterErr error
	Triggers      []guardTrigger
}

// guardSample is one tick inside the window: what entered the dead-letter queue, and what the consumers
// finished (dead-lettered messages included), per second.
type guardSample struct {
	at            time.Time
	inflow        float64
	finished      float64
	finishedKnown bool
}

// guardView is the guard's state as the reconciler and the metrics read it.
type guardView struct {
	// Observed: the guard has had at least one observation (before that, it has nothing to say).
	Observed bool
	// Watching: there is something to watch (a dead-letter queue, or a trigger that tracks offsets while
	// stall detection is on).
	Watching bool
	Tripped  bool
	// Reason and Message explain the state (the ConsumersHealthy condition's).
	Reason, Message string
	// Dead-letter numbers, when HasDeadLetter (HasRatio: the ratio could be computed).
	HasDeadLetter, HasRatio bool
	Depth, InflowPerMinute  float64
	Ratio                   float64
	// Stalled holds the polls in a row without progress of each trigger that tracks offsets.
	Stalled map[string]int32
}

// guard is the consumer-health guard's state machine for one ScaledConsumer. It is fed one observation
// per poll tick and trips when a signal crosses its limit: the dead-letter inflow or ratio over the
// window, a trigger whose consumers have a backlog but whose position (a Kafka group's committed offsets, a
// NATS JetStream consumer's ack floor: Progress) did not move for StalledAfterPolls polls, or a position
// that went backwards. It releases when no signal has crossed its limit for
// ReleaseAfter. It does no I/O and reads no clock: time comes with each observation.
type guard struct {
	cfg     guardConfig
	samples []guardSample
	stalled map[string]int32
	offsets map[string]string // triggers seen tracking a position, and what owns it ("group", "consumer")

	view    guardView
	lastBad time.Time

	// A guard seeded tripped (from status, after a restart) has not seen the evidence it tripped on: it
	// releases only once it could have seen it again, a window of dead-letter samples since started, or
	// StalledAfterPolls comparable polls of offsets for a stall.
	seeded      bool
	started     time.Time
	offsetPolls int32
}

// newGuard returns a guard. One that was tripped before (status says so, after a restart of ebb)
// starts tripped, and releases only after ReleaseAfter of good observations and enough of them to have
// seen the trouble again.
func newGuard(cfg guardConfig, trippedReason string, now time.Time) *guard {
	g := &guard{cfg: cfg, stalled: map[string]int32{}, offsets: map[string]string{}, started: now}
	if trippedReason != "" {
		g.seeded = true
		g.view.Tripped, g.view.Reason, g.lastBad = true, trippedReason, now
		g.view.Message = "tripped before ebb restarted; watching again"
	}
	return g
}

// carry takes over what old learned (its window, stall counts and state) when the spec changed in a way
// that keeps them meaningful: the same dead-letter queue and window. A guard rebuilt for a new trigger or
// interval then goes on where the old one was, instead of starting blind.
func (g *guard) carry(old *guard) {
	if old == nil || old.cfg.DeadLetter != g.cfg.DeadLetter || old.cfg.Window != g.cfg.Window {
		return
	}
	g.samples = slices.Clone(old.samples)
	for k, v := range old.stalled {
		g.stalled[k] = v
	}
	for k, v := range old.offsets {
		g.offsets[k] = v
	}
	g.view, g.lastBad = old.View(), old.lastBad
	g.seeded, g.started, g.offsetPolls = old.seeded, old.started, old.offsetPolls
}

// signal is one limit crossed.
type signal struct{ reason, msg string }

// observe folds one tick in and reports whether the tripped state or its reason changed.
func (g *guard) observe(in guardInput) bool {
	before := g.view
	g.view.Observed = true
	g.view.Stalled = map[string]int32{}
	var bad []signal
	var notes []string

	// Dead-letter inflow and ratio, over the window.
	if g.cfg.DeadLetter != "" {
		if in.DeadLetter != nil {
			s := guardSample{at: in.Now, inflow: in.DeadLetter[deadLetterInflow]}
			s.finished, s.finishedKnown = finishedRate(in.Triggers, s.inflow)
			g.samples = append(g.samples, s)
			g.view.HasDeadLetter = true
			g.view.Depth = in.DeadLetter[deadLetterDepth]
		} else if in.DeadLetterErr != nil {
			notes = append(notes, fmt.Sprintf("dead-letter %s unreadable: %v", g.cfg.DeadLetter, in.DeadLetterErr))
		}
		cut := in.Now.Add(-g.cfg.Window)
		g.samples = slices.DeleteFunc(g.samples, func(s guardSample) bool { return !s.at.After(cut) })
		if len(g.samples) > 0 {
			var inflow, inflowKnown, finished float64
			known := 0
			for _, s := range g.samples {
				inflow += s.inflow
				if s.finishedKnown {
					known++
					inflowKnown += s.inflow
					finished += s.finished
				}
			}
			g.view.InflowPerMinute = inflow / float64(len(g.samples)) * 60
			g.view.HasRatio = known > 0
			g.view.Ratio = 0
			if finished > 0 {
				g.view.Ratio = min(inflowKnown/finished, 1)
			}
			if lim := g.cfg.MaxInflowPerMinute; lim != nil && g.view.InflowPerMinute > *lim {
				bad = append(bad, signal{ReasonDeadLetterInflow, fmt.Sprintf("dead-letter %s receives %s messages/min (limit %s) over %s",
					g.cfg.DeadLetter, num(g.view.InflowPerMinute), num(*lim), g.cfg.Window)})
			}
			if lim := g.cfg.MaxRatio; lim != nil && g.view.HasRatio && g.view.Ratio > *lim {
				bad = append(bad, signal{ReasonDeadLetterRatio, fmt.Sprintf("%s of the messages consumers finished went to dead-letter %s (limit %s) over %s",
					num(g.view.Ratio), g.cfg.DeadLetter, num(*lim), g.cfg.Window)})
			}
			if g.cfg.MaxRatio != nil && !g.view.HasRatio {
				notes = append(notes, "maxRatio cannot be judged: no trigger reports a consume rate (kafka and nats-jetstream triggers do; rabbitmq triggers do when they read the management API, protocol http)")
			}
		}
	}

	// Stalled and rewound groups.
	for _, t := range in.Triggers {
		p := t.Progress
		if p == nil || !p.Offsets {
			if n, ok := g.stalled[t.Name]; ok {
				g.view.Stalled[t.Name] = n // a failed sample tells nothing: keep the count
			}
			continue
		}
		w := p.Terms()
		g.offsets[t.Name] = w.Owner
		if p.RewoundPartitions > 0 {
			more, on := "", ""
			if extra := p.RewoundPartitions - len(p.Rewound); extra > 0 {
				more = fmt.Sprintf(" and %d more", extra)
			}
			if w.Places != "" {
				on = fmt.Sprintf(" on %d %s", p.RewoundPartitions, w.Places)
			}
			bad = append(bad, signal{ReasonRewound, fmt.Sprintf("trigger %q: the %s's %s went backwards%s (%s%s)",
				t.Name, w.Owner, w.Position, on, strings.Join(p.Rewound, ", "), more)})
		}
		switch {
		case p.Baseline:
		case in.ConsumersRunning && t.Backlog && p.Advanced == 0:
			g.stalled[t.Name]++
		default:
			g.stalled[t.Name] = 0
		}
		if !p.Baseline {
			g.offsetPolls++
		}
		n := g.stalled[t.Name]
		g.view.Stalled[t.Name] = n
		if g.cfg.StalledAfterPolls > 0 && n >= g.cfg.StalledAfterPolls {
			bad = append(bad, signal{ReasonStalled, fmt.Sprintf("trigger %q: the %s has %s but its %s %s not moved for %d polls",
				t.Name, w.Owner, w.Backlog, w.Position, cond(w.Plural, "have", "has"), n)})
		}
	}
	g.view.Watching = g.cfg.DeadLetter != "" || (g.cfg.StalledAfterPolls > 0 && len(g.offsets) > 0)

	// A tripped guard that cannot read its dead-letter queue, or a trigger it watches (one that tracks a
	// position, or any trigger while a ratio is judged: they give its denominator), does not know whether
	// the consumers recovered: a failed reading is not a good one, and the release clock starts again from
	// the next good reading.
	blind := g.cfg.DeadLetter != "" && in.DeadLetter == nil
	for _, t := range in.Triggers {
		_, tracked := g.offsets[t.Name]
		if t.Err != nil && (tracked || g.cfg.DeadLetter != "" && g.cfg.MaxRatio != nil) {
			blind = true
			notes = append(notes, fmt.Sprintf("trigger %q unreadable: %v", t.Name, t.Err))
		}
	}
	switch {
	case len(bad) > 0:
		g.lastBad = in.Now
		g.view.Tripped = true
		// Keep the reason while its signal is still bad: two signals near their limits would otherwise
		// flip it (and send an event) tick after tick.
		reason := bad[0].reason
		msgs := make([]string, 0, len(bad))
		for _, b := range bad {
			if b.reason == g.view.Reason {
				reason = b.reason
			}
			msgs = append(msgs, b.msg)
		}
		g.view.Reason = reason
		g.view.Message = strings.Join(append(msgs, notes...), "; ")
	case g.view.Tripped && blind:
		g.lastBad = in.Now
		g.view.Message = joinNonEmpty("still holding: "+strings.Join(notes, "; "), g.summary())
	case g.view.Tripped && (in.Now.Sub(g.lastBad) < g.cfg.ReleaseAfter || !g.sawEnough(in.Now)):
		g.view.Message = joinNonEmpty(fmt.Sprintf("every signal is within its limit since %s; releasing after %s of that",
			g.lastBad.UTC().Format(time.RFC3339), g.cfg.ReleaseAfter), g.summary(), strings.Join(notes, "; "))
	default:
		g.view.Tripped, g.seeded = false, false
		g.view.Reason = ReasonHealthy
		g.view.Message = joinNonEmpty(g.summary(), strings.Join(notes, "; "))
	}
	return before.Tripped != g.view.Tripped || before.Reason != g.view.Reason
}

// sawEnough says whether a guard seeded tripped has watched long enough to have seen its trouble again.
func (g *guard) sawEnough(now time.Time) bool {
	if !g.seeded {
		return true
	}
	switch g.view.Reason {
	case ReasonDeadLetterInflow, ReasonDeadLetterRatio:
		return now.Sub(g.started) >= g.cfg.Window
	case ReasonStalled:
		return g.offsetPolls >= g.cfg.StalledAfterPolls
	}
	return true
}

// finishedRate is the rate at which the consumers finished messages this tick, dead-lettered ones
// included: the committed offsets' advance (Kafka commits what it dead-letters), or the acknowledge
// rate plus the dead-letter inflow (RabbitMQ does not count a rejected message as acknowledged).
func finishedRate(ts []guardTrigger, inflow float64) (float64, bool) {
	rate, known, acked := 0.0, false, false
	for _, t := range ts {
		p := t.Progress
		switch {
		case p == nil:
		case p.HasConsumeRate:
			rate += p.ConsumeRate
			known, acked = true, true
		case p.Offsets && !p.Baseline && p.Elapsed > 0:
			rate += float64(p.Advanced) / p.Elapsed.Seconds()
			known = true
		}
	}
	if acked {
		rate += inflow
	}
	return rate, known
}

// summary says what the guard sees when nothing is wrong.
func (g *guard) summary() string {
	var parts []string
	if g.cfg.DeadLetter != "" && g.view.HasDeadLetter {
		s := fmt.Sprintf("dead-letter %s: %s waiting, %s/min in", g.cfg.DeadLetter, num(g.view.Depth), num(g.view.InflowPerMinute))
		if g.cfg.MaxInflowPerMinute != nil {
			s += fmt.Sprintf(" (limit %s)", num(*g.cfg.MaxInflowPerMinute))
		}
		if g.view.HasRatio {
			s += fmt.Sprintf(", ratio %s", num(g.view.Ratio))
			if g.cfg.MaxRatio != nil {
				s += fmt.Sprintf(" (limit %s)", num(*g.cfg.MaxRatio))
			}
		}
		parts = append(parts, s)
	}
	if g.cfg.StalledAfterPolls > 0 && len(g.offsets) > 0 {
		owners := slices.Sorted(maps.Values(g.offsets))
		parts = append(parts, fmt.Sprintf("no %s stalled (limit %d polls) or rewound", strings.Join(slices.Compact(owners), " or "), g.cfg.StalledAfterPolls))
	}
	return strings.Join(parts, "; ")
}

// View returns a copy of the guard's state.
func (g *guard) View() guardView {
	v := g.view
	v.Stalled = make(map[string]int32, len(g.view.Stalled))
	for k, n := range g.view.Stalled {
		v.Stalled[k] = n
	}
	return v
}

func cond(c bool, yes, no string) string {
	if c {
		return yes
	}
	return no
}

func joinNonEmpty(parts ...string) string {
	return strings.Join(slices.DeleteFunc(parts, func(s string) bool { return s == "" }), "; ")
}

// num formats a number for a person: at most two decimals, no trailing zeros.
func num(v float64) string {
	return strconv.FormatFloat(float64(int64(v*100+0.5))/100, 'f', -1, 64)
}

// setGuardStatus writes the guard's state into status: the ConsumersHealthy condition, status.guard (its
// numbers, and the replica count it holds scale-up at), and an event when it trips or releases. current
// is the target's replica count: a guard that trips holds the HPA's maxReplicas there.
func (r *Reconciler) setGuardStatus(sc *ebbv1.ScaledConsumer, current int32) {
	key := client.ObjectKeyFromObject(sc)
	old := meta.FindStatusCondition(sc.Status.Conditions, ebbv1.ConditionConsumersHealthy)
	wasTripped := old != nil && old.Status == metav1.ConditionFalse
	v, ok := r.poller.Guard(key)
	switch {
	case !ok && sc.Spec.Guard != nil && sc.Spec.Guard.Enabled != nil && !*sc.Spec.Guard.Enabled:
		sc.Status.Guard = nil
		r.setCondition(sc, ebbv1.ConditionConsumersHealthy, metav1.ConditionUnknown, ReasonGuardDisabled, "the consumer-health guard is off (spec.guard.enabled: false)")
		return
	case !ok || !v.Observed:
		return // not polled, or no tick since the poll (re)started: what status says stands
	case !v.Watching && !v.Tripped:
		sc.Status.Guard = nil
		r.setCondition(sc, ebbv1.ConditionConsumersHealthy, metav1.ConditionUnknown, ReasonNothingToWatch,
			"nothing to watch: no spec.deadLetter, and no trigger follows its consumers' position (kafka and nats-jetstream triggers do) for stall detection")
		return
	}
	gs := &ebbv1.GuardStatus{}
	if v.HasDeadLetter {
		gs.DeadLetterDepth = num(v.Depth)
		gs.DeadLetterInflowPerMinute = num(v.InflowPerMinute)
	}
	if v.HasRatio {
		gs.DeadLetterRatio = num(v.Ratio)
	}
	if !v.Tripped {
		sc.Status.Guard = gs
		r.setCondition(sc, ebbv1.ConditionConsumersHealthy, metav1.ConditionTrue, ReasonHealthy, orText(v.Message, "watching; nothing wrong"))
		if wasTripped {
			r.Recorder.Eventf(sc, nil, corev1.EventTypeNormal, ReasonGuardReleased, "Guard", "%s", eventNote("released: scale-up may resume; "+v.Message))
		}
		return
	}
	// Held where the HPA can hold: within [max(minReplicas, 1), maxReplicas].
	held := min(max(current, minReplicas(sc), 1), maxReplicas(sc))
	if sc.Status.Guard != nil && sc.Status.Guard.HeldReplicas != nil {
		held = *sc.Status.Guard.HeldReplicas
	}
	gs.HeldReplicas = ptr(held)
	sc.Status.Guard = gs
	msg := fmt.Sprintf("holding scale-up at %d replicas (scale-down still allowed): %s", held, v.Message)
	r.setCondition(sc, ebbv1.ConditionConsumersHealthy, metav1.ConditionFalse, v.Reason, msg)
	if !wasTripped || old.Reason != v.Reason {
		r.Recorder.Eventf(sc, nil, corev1.EventTypeWarning, v.Reason, "Guard", "%s", eventNote(msg))
	}
}

// eventNote keeps a note within the 1 kB events.k8s.io/v1 allows (a longer one is refused, and lost).
func eventNote(s string) string {
	const limit = 1024
	if len(s) <= limit {
		return s
	}
	cut := limit - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
