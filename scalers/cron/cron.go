package cron

import (
	"context"
	"fmt"
	"sync"
	"time"
	_ "time/tzdata" // ebb's image has no zoneinfo; timezone must work anywhere

	"k8s.io/utils/clock"

	"github.com/ebbscale/ebb/scalers"
)

// Type is the trigger type's name in a ScaledConsumer.
const Type = "cron"

// Target is the HPA's AverageValue target of a cron trigger's metric. Inside a window the value is
// desiredReplicas, so the HPA computes ceil(desiredReplicas / 1) = desiredReplicas replicas whatever the
// current count (an AverageValue target divides the value, not the value per replica).
const Target = 1

// Option configures a TriggerType.
type Option func(*TriggerType)

// WithClock makes the trigger type's scalers read the time from c. Default: the real clock. Tests (and
// nothing else) pass a clock they move, to open and close windows without waiting for them.
func WithClock(c clock.PassiveClock) Option {
	return func(t *TriggerType) { t.clock = c }
}

// TriggerType builds cron triggers. It holds no connection: a cron trigger reads only the clock.
type TriggerType struct {
	clock clock.PassiveClock
}

// NewType returns the cron trigger type.
func NewType(opts ...Option) *TriggerType {
	t := &TriggerType{clock: clock.RealClock{}}
	for _, o := range opts {
		o(t)
	}
	return t
}

var (
	_ scalers.TriggerType = (*TriggerType)(nil)
	_ scalers.Scaler      = (*Scaler)(nil)
)

// New implements scalers.TriggerType: it parses the trigger's metadata.
func (t *TriggerType) New(cfg scalers.Config) (scalers.Scaler, error) {
	m, err := parse(cfg.Metadata, cfg.Auth)
	if err != nil {
		return nil, err
	}
	return &Scaler{
		clock:    t.clock,
		window:   window{start: m.Start, end: m.End, loc: m.Timezone.loc},
		replicas: m.DesiredReplicas,
	}, nil
}

// Scaler is one cron trigger.
type Scaler struct {
	clock    clock.PassiveClock
	window   window
	replicas int32

	mu sync.Mutex
	// cached is the window's state from at (a time) until cached.Next: the schedules are searched once
	// per opening and closing, not at every sample.
	cached state
	at     time.Time
}

// Metrics implements scalers.Scaler: one metric, with an AverageValue target of 1, active above 0.
func (s *Scaler) Metrics() []scalers.MetricSpec {
	return []scalers.MetricSpec{{Target: Target, Activation: 0}}
}

// Sample implements scalers.Scaler: desiredReplicas inside a window, 0 outside it, and a message that
// says when the window next closes or opens.
func (s *Scaler) Sample(context.Context) (scalers.Sample, error) {
	now := s.clock.Now()
	st := s.state(now)
	v := 0.0
	if st.Open {
		v = float64(s.replicas)
	}
	return scalers.Sample{Values: []float64{v}, Message: s.message(st)}, nil
}

// state is the window's state at now, from the cache while it holds.
func (s *Scaler) state(now time.Time) state {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at.IsZero() || now.Before(s.at) || (!s.cached.Next.IsZero() && !now.Before(s.cached.Next)) {
		s.cached, s.at = s.window.at(now), now
	}
	return s.cached
}

func (s *Scaler) message(st state) string {
	when := func(t time.Time) string {
		return fmt.Sprintf("%s (%s)", t.In(s.window.loc).Format(time.RFC3339), s.window.loc)
	}
	switch {
	case st.Open && st.Next.IsZero():
		return fmt.Sprintf("in a window (%d replicas); no end ahead", s.replicas)
	case st.Open:
		return fmt.Sprintf("in a window (%d replicas) until %s", s.replicas, when(st.Next))
	case st.Next.IsZero():
		return "outside the window; no start ahead"
	default:
		return "outside the window; the next opens at " + when(st.Next)
	}
}
