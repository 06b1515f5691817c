package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/ebbscale/ebb/metricstore"
	"github.com/ebbscale/ebb/scalers"
)

// polledTrigger is one trigger the poller samples.
type polledTrigger struct {
	Name   string
	Type   string
	Scaler scalers.Scaler
}

// pollSpec is what the poller runs for one ScaledConsumer.
type pollSpec struct {
	// Fingerprint identifies the spec (triggers, authentication, interval, fallback): the reconciler
	// replaces a running poll only when it changes.
	Fingerprint string
	Interval    time.Duration
	// FailureThreshold is fallback.failureThreshold; FallbackReplicas is nil without a fallback.
	FailureThreshold int32
	FallbackReplicas *int32
	Triggers         []polledTrigger
	// DeadLetter reads spec.deadLetter (nil without one). Guard configures the consumer-health guard (nil
	// when it is off); GuardTripped, when not empty, is the reason of a trip that status recorded before
	// this poll started, so a restart or a spec change does not release the guard.
	DeadLetter   scalers.DeadLetterReader
	Guard        *guardConfig
	GuardTripped string
	// Failing holds, by trigger name, the triggers whose last sample failed according to status when this
	// poll was built: a new poll (a restart of ebb, a new leader, a spec change) starts them failing, so
	// that a restart neither ends a fallback nor announces the failure again, and their first good sample
	// restarts the cooldown like any recovery.
	Failing map[string]failedSample
}

// failedSample is what status recorded of a trigger whose last sample failed.
type failedSample struct {
	Err      string
	Failures int32
}

// triggerState is the poller's view of one trigger.
type triggerState struct {
	Name string
	// MetricNames and Specs: one per metric the trigger serves.
	MetricNames []string
	Specs       []scalers.MetricSpec
	// Values of the last good sample, one per metric.
	Values []float64
	// Sampled is true once a sample succeeded.
	Sampled bool
	// Active: the last good sample was above an activation threshold.
	Active bool
	// LastActive is when a sample was last active (zero: not since the poll started).
	LastActive time.Time
	// Backlog: the last good sample reported work above zero (in its activation values).
	Backlog bool
	// Message is the last good sample's message (scalers.Sample.Message).
	Message             string
	LastPoll            time.Time
	Err                 error
	ConsecutiveFailures int32
	// FallbackDue: ConsecutiveFailures reached the failure threshold and a fallback is set.
	FallbackDue bool
	// Recovered is when the first good sample after a failed one was taken (zero: none since the poll
	// started).
	Recovered time.Time
}

// poller samples the triggers of every ScaledConsumer at its polling interval, writes the values to the
// metric store, and tells the controller when something it acts on changed (activity, a failure, the
// fallback threshold). One goroutine per ScaledConsumer; ticks are aligned to multiples of the interval so
// triggers with the same interval sample together and shared broker clients can batch them.
//
// poller is a manager.Runnable: it runs on the leader only, and stops every poll when the manager stops.
type poller struct {
	clock clock.Clock
	// stamps, when set, is the clock of the times activation decisions compare with their own clock: when
	// a trigger was last active, when it recovered (the reconciler's Clock; nil: clock).
	stamps  clock.PassiveClock
	store   *metricstore.Store
	metrics *Metrics
	notify  func(context.Context, types.NamespacedName, int)
	// refresh is how long a change only of numbers and texts status shows (values, messages, errors,
	// failure counts, the guard's numbers) waits before it wakes the controller: at most one such wake-up
	// per refresh (0: every change wakes it).
	refresh time.Duration

	base   context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	entries map[types.NamespacedName]*pollEntry
}

type pollEntry struct {
	spec   pollSpec
	cancel context.CancelFunc
	done   chan struct{}

	// replicas is the target's replica count as the controller last saw it (-1: not yet known).
	replicas atomic.Int32

	mu     sync.Mutex
	states []triggerState
	guard  *guard // nil when the guard is off
	// pending: numbers or texts status shows changed since the controller was last woken, at notified.
	pending  bool
	notified time.Time
}

// newPoller returns a poller writing to store; notify is called (from poll goroutines) when the controller
// should look at a ScaledConsumer again, with the priority of that look (priorityWake for what ebb may act
// on, priorityRoutine for numbers status shows). notify must return when its context ends, even if nobody
// listens.
func newPoller(clk clock.Clock, store *metricstore.Store, m *Metrics, notify func(context.Context, types.NamespacedName, int)) *poller {
	ctx, cancel := context.WithCancel(context.Background())
	return &poller{clock: clk, store: store, metrics: m, notify: notify, base: ctx, cancel: cancel, entries: map[types.NamespacedName]*pollEntry{}}
}

// Start blocks until ctx ends, then stops every poll. It makes poller a manager.Runnable.
func (p *poller) Start(ctx context.Context) error {
	<-ctx.Done()
	p.cancel()
	p.mu.Lock()
	keys := make([]types.NamespacedName, 0, len(p.entries))
	for k := range p.entries {
		keys = append(keys, k)
	}
	p.mu.Unlock()
	for _, k := range keys {
		p.Remove(k)
	}
	return nil
}

// Fingerprint returns the fingerprint of the poll running for key, if any.
func (p *poller) Fingerprint(key types.NamespacedName) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.entries[key]
	if !ok {
		return "", false
	}
	return e.spec.Fingerprint, true
}

// Ensure runs spec for key, replacing (and closing the scalers of) a poll with another fingerprint.
// Metrics the new spec does not serve are dropped from the store.
func (p *poller) Ensure(key types.NamespacedName, spec pollSpec) {
	states := make([]triggerState, len(spec.Triggers))
	var keep []string
	for i, t := range spec.Triggers {
		specs := t.Scaler.Metrics()
		states[i] = triggerState{Name: t.Name, Specs: specs}
		if f, ok := spec.Failing[t.Name]; ok {
			states[i].Err = errors.New(f.Err)
			states[i].ConsecutiveFailures = f.Failures
			states[i].FallbackDue = spec.FallbackReplicas != nil && f.Failures >= spec.FailureThreshold
		}
		for _, ms := range specs {
			n := scalers.MetricName(t.Name, ms)
			states[i].MetricNames = append(states[i].MetricNames, n)
			keep = append(keep, n)
		}
	}
	p.mu.Lock()
	old := p.entries[key]
	delete(p.entries, key)
	p.mu.Unlock()
	if old != nil {
		p.stop(old)
	}
	p.store.Forget(key.Namespace, key.Name, keep...)
	// The new poll writes its own series; a renamed or removed trigger's must not linger.
	p.metrics.forgetTriggers(key.Namespace, key.Name)
	p.metrics.forgetGuard(key.Namespace, key.Name)

	ctx, cancel := context.WithCancel(p.base)
	e := &pollEntry{spec: spec, cancel: cancel, done: make(chan struct{}), states: states}
	e.replicas.Store(-1)
	if old != nil {
		e.replicas.Store(old.replicas.Load())
	}
	if spec.Guard != nil {
		e.guard = newGuard(*spec.Guard, spec.GuardTripped, p.clock.Now())
		if old != nil {
			e.guard.carry(old.guard) // old is stopped: nothing else touches its guard
		}
	}
	p.mu.Lock()
	p.entries[key] = e
	p.mu.Unlock()
	go p.run(ctx, key, e)
}

// Remove stops the poll of key, closes its scalers and forgets its values.
func (p *poller) Remove(key types.NamespacedName) {
	p.mu.Lock()
	e := p.entries[key]
	delete(p.entries, key)
	p.mu.Unlock()
	if e != nil {
		p.stop(e)
	}
	p.store.Forget(key.Namespace, key.Name)
	p.metrics.forget(key.Namespace, key.Name)
}

// States returns a copy of the trigger states of key (nil when key is not polled).
func (p *poller) States(key types.NamespacedName) []triggerState {
	p.mu.Lock()
	e := p.entries[key]
	p.mu.Unlock()
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]triggerState, len(e.states))
	for i, s := range e.states {
		s.Values = append([]float64(nil), s.Values...)
		out[i] = s
	}
	return out
}

// SetReplicas tells the poll of key the target's replica count: the guard counts a group as stalled only
// while it has consumers.
func (p *poller) SetReplicas(key types.NamespacedName, n int32) {
	p.mu.Lock()
	e := p.entries[key]
	p.mu.Unlock()
	if e != nil {
		e.replicas.Store(n)
	}
}

// Guard returns the consumer-health guard's state for key; ok is false when key is not polled or its
// guard is off.
func (p *poller) Guard(key types.NamespacedName) (v guardView, ok bool) {
	p.mu.Lock()
	e := p.entries[key]
	p.mu.Unlock()
	if e == nil {
		return guardView{}, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.guard == nil {
		return guardView{}, false
	}
	return e.guard.View(), true
}

// Len is the number of ScaledConsumers being polled.
func (p *poller) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries)
}

func (p *poller) stop(e *pollEntry) {
	e.cancel()
	<-e.done
	for _, t := range e.spec.Triggers {
		if c, ok := t.Scaler.(io.Closer); ok {
			_ = c.Close()
		}
	}
	if c, ok := e.spec.DeadLetter.(io.Closer); ok {
		_ = c.Close()
	}
}

func (p *poller) run(ctx context.Context, key types.NamespacedName, e *pollEntry) {
	defer close(e.done)
	for {
		p.tick(ctx, key, e)
		now := p.clock.Now()
		next := now.Truncate(e.spec.Interval).Add(e.spec.Interval)
		select {
		case <-ctx.Done():
			return
		case <-p.clock.After(next.Sub(now)):
		}
	}
}

// sampleTimeout bounds one sample: a polling interval, but at least 2 s and at most 30 s.
func sampleTimeout(interval time.Duration) time.Duration {
	return min(max(interval, 2*time.Second), 30*time.Second)
}

// staleAfter is when a value in the store counts as stale: three polling intervals, at least 10 s.
func staleAfter(interval time.Duration) time.Duration {
	return max(3*interval, 10*time.Second)
}

type sampleResult struct {
	values, activation []float64
	progress           *scalers.Progress
	message            string
	err                error
	took               time.Duration
}

func (p *poller) tick(ctx context.Context, key types.NamespacedName, e *pollEntry) {
	results := make([]sampleResult, len(e.spec.Triggers))
	var wg sync.WaitGroup
	for i, t := range e.spec.Triggers {
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, sampleTimeout(e.spec.Interval))
			defer cancel()
			start := p.clock.Now()
			s, err := t.Scaler.Sample(sctx)
			results[i] = sampleResult{values: s.Values, activation: s.ActivationValues, progress: s.Progress, message: s.Message, err: err, took: p.clock.Since(start)}
		})
	}
	var dead sampleResult
	if e.spec.DeadLetter != nil {
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, sampleTimeout(e.spec.Interval))
			defer cancel()
			d, err := e.spec.DeadLetter.Read(sctx)
			dead = sampleResult{err: err}
			if err == nil {
				dead.values = []float64{deadLetterDepth: d.Depth, deadLetterInflow: d.InflowPerSecond}
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // stopped mid-tick: the results belong to a poll that no longer runs
	}
	now := p.clock.Now()
	seen := now
	if p.stamps != nil {
		seen = p.stamps.Now()
	}
	changed, shown := false, false
	e.mu.Lock()
	for i, t := range e.spec.Triggers {
		prev := e.states[i]
		prev.Values = slices.Clone(prev.Values) // record reuses the slice
		changed = p.record(key, e, i, t, results[i], now, seen) || changed
		shown = shown || !sameShown(prev, e.states[i])
	}
	if e.guard != nil {
		prev := e.guard.View()
		changed = p.observeGuard(key, e, results, dead, now) || changed
		v := e.guard.View()
		changed = changed || prev.Observed != v.Observed || prev.Watching != v.Watching || prev.HasDeadLetter != v.HasDeadLetter || prev.HasRatio != v.HasRatio
		shown = shown || prev.Message != v.Message || prev.Depth != v.Depth || prev.InflowPerMinute != v.InflowPerMinute || prev.Ratio != v.Ratio
	}
	// A change status shows only as numbers or text waits for the refresh: a value that moves every tick
	// costs one wake-up (and one status write) per refresh, not one per tick.
	e.pending = e.pending || shown
	wake := changed || e.pending && now.Sub(e.notified) >= p.refresh
	if wake {
		e.pending, e.notified = false, now
	}
	e.mu.Unlock()
	switch {
	case changed:
		p.notify(ctx, key, priorityWake)
	case wake:
		p.notify(ctx, key, priorityRoutine)
	}
}

// sameShown says whether two states of a trigger show the same in status (its poll time aside).
func sameShown(a, b triggerState) bool {
	errText := func(s triggerState) string {
		if s.Err == nil {
			return ""
		}
		return s.Err.Error()
	}
	return slices.Equal(a.Values, b.Values) && a.Message == b.Message && errText(a) == errText(b) &&
		a.ConsecutiveFailures == b.ConsecutiveFailures && a.Active == b.Active && a.Sampled == b.Sampled &&
		a.LastActive.Equal(b.LastActive) // status.lastActiveTime, which moves at every sample while active
}

// observeGuard feeds the tick to the consumer-health guard and exports what it sees; it reports whether
// the controller should look again (the guard tripped, released, or changed its reason). e.mu is held.
func (p *poller) observeGuard(key types.NamespacedName, e *pollEntry, results []sampleResult, dead sampleResult, now time.Time) bool {
	in := guardInput{Now: now, ConsumersRunning: e.replicas.Load() > 0, DeadLetterErr: dead.err}
	if dead.err == nil && dead.values != nil {
		in.DeadLetter = dead.values
	}
	for i, st := range e.states {
		// record ran for this tick: st.Err is this tick's error.
		gt := guardTrigger{Name: st.Name, Backlog: st.Backlog, Err: st.Err}
		if results[i].err == nil {
			gt.Progress = results[i].progress
		}
		in.Triggers = append(in.Triggers, gt)
	}
	wasTripped := e.guard.view.Tripped
	changed := e.guard.observe(in)
	v := e.guard.view
	m := p.metrics
	if v.HasDeadLetter {
		m.DeadLetterDepth.WithLabelValues(key.Namespace, key.Name).Set(v.Depth)
		m.DeadLetterInflow.WithLabelValues(key.Namespace, key.Name).Set(v.InflowPerMinute)
	}
	if v.HasRatio {
		m.DeadLetterRatio.WithLabelValues(key.Namespace, key.Name).Set(v.Ratio)
	}
	for name, n := range v.Stalled {
		m.StalledPolls.WithLabelValues(key.Namespace, key.Name, name).Set(float64(n))
	}
	tripped := 0.0
	if v.Tripped {
		tripped = 1
		if !wasTripped {
			m.GuardTrips.WithLabelValues(key.Namespace, key.Name, v.Reason).Inc()
		}
	}
	m.GuardTripped.WithLabelValues(key.Namespace, key.Name).Set(tripped)
	if dead.err != nil {
		log.FromContext(p.base).V(1).Info("dead-letter sample failed", "scaledconsumer", key, "error", dead.err)
	}
	return changed
}

// record folds one sample into the trigger's state and the store; it reports whether the controller should
// look again; seen is now on the decisions' clock. e.mu is held.
func (p *poller) record(key types.NamespacedName, e *pollEntry, i int, t polledTrigger, r sampleResult, now, seen time.Time) bool {
	st := &e.states[i]
	prev := *st
	p.metrics.PollDuration.WithLabelValues(t.Type).Observe(r.took.Seconds())
	if r.err == nil && len(r.values) != len(st.Specs) {
		r.err = fmt.Errorf("scaler returned %d values for %d metrics", len(r.values), len(st.Specs))
	}
	if r.err == nil && r.activation != nil && len(r.activation) != len(st.Specs) {
		r.err = fmt.Errorf("scaler returned %d activation values for %d metrics", len(r.activation), len(st.Specs))
	}
	if r.activation == nil {
		r.activation = r.values
	}
	st.LastPoll = now
	if r.err != nil {
		if errors.Is(r.err, context.DeadlineExceeded) {
			r.err = fmt.Errorf("sample timed out after %s: %w", sampleTimeout(e.spec.Interval), r.err)
		}
		st.Err = r.err
		st.ConsecutiveFailures++
		p.metrics.TriggerErrors.WithLabelValues(key.Namespace, key.Name, t.Name).Inc()
		log.FromContext(p.base).V(1).Info("trigger sample failed", "scaledconsumer", key, "trigger", t.Name, "failures", st.ConsecutiveFailures, "error", r.err)
	} else {
		if prev.Err != nil {
			st.Recovered = seen
		}
		st.Err, st.ConsecutiveFailures, st.Sampled = nil, 0, true
		st.Values = append(st.Values[:0], r.values...)
		st.Message = r.message
		st.Backlog, st.Active = false, false
		for j, v := range r.activation {
			st.Active = st.Active || v > st.Specs[j].Activation
			st.Backlog = st.Backlog || v > 0
		}
		if st.Active {
			st.LastActive = seen
		}
		for j, v := range r.values {
			p.metrics.TriggerValue.WithLabelValues(key.Namespace, key.Name, t.Name, st.MetricNames[j]).Set(v)
			p.metrics.TriggerTarget.WithLabelValues(key.Namespace, key.Name, t.Name, st.MetricNames[j]).Set(st.Specs[j].Target)
		}
		active := 0.0
		if st.Active {
			active = 1
		}
		p.metrics.TriggerActive.WithLabelValues(key.Namespace, key.Name, t.Name).Set(active)
	}
	st.FallbackDue = e.spec.FallbackReplicas != nil && st.ConsecutiveFailures >= e.spec.FailureThreshold
	p.metrics.TriggerFailures.WithLabelValues(key.Namespace, key.Name, t.Name).Set(float64(st.ConsecutiveFailures))

	for j, ms := range st.Specs {
		entry := metricstore.Entry{Time: now, StaleAfter: staleAfter(e.spec.Interval)}
		if e.spec.FallbackReplicas != nil {
			entry.Fallback = ptr(float64(*e.spec.FallbackReplicas) * ms.Target)
		}
		switch {
		case r.err == nil:
			entry.Value = r.values[j]
		case st.FallbackDue:
			// Serve the value that makes the HPA compute fallback.replicas: replicas x target.
			entry.Value = *entry.Fallback
		default:
			continue // keep the last good value; it goes stale if failures persist
		}
		p.store.Set(metricstore.Key{Namespace: key.Namespace, ScaledConsumer: key.Name, Metric: st.MetricNames[j]}, entry)
	}

	// A changed error text alone does not wake the controller at once: during an outage, messages that
	// name the broker tried would otherwise cost a reconcile and a status write every tick. tick wakes it
	// for the text at most once per refresh.
	return !prev.Sampled && st.Sampled ||
		prev.Active != st.Active ||
		(prev.Err == nil) != (st.Err == nil) ||
		prev.FallbackDue != st.FallbackDue ||
		prev.LastPoll.IsZero()
}
