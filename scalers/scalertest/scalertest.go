// Package scalertest provides the "test" trigger type: a scaler whose value the test sets in memory. It
// exercises the controller and the metrics API where a broker would add nothing. It is never in the
// registry of the ebb binary.
//
// Metadata keys: key (required) names the value in the Source; target (default 1) and activation
// (default 0) are the metric's HPA target and activation threshold; metrics (default 1) is how many
// metrics the trigger serves (named m0, m1, ... when more than one), all with the same value.
//
// As a dead-letter type (scalers.DeadLetterType) its readers take key alone and reports the depth and inflow
// set with SetDeadLetter. SetProgress attaches a scalers.Progress to every sample of a key.
package scalertest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ebbscale/ebb/scalers"
)

// Type is the trigger type the Source registers.
const Type = "test"

// ErrNoValue is returned by Sample for a key that was never set.
var ErrNoValue = errors.New("no value set for this key")

// Source holds the values that "test" triggers read, by key. It is safe for concurrent use.
type Source struct {
	mu       sync.Mutex
	values   map[string]float64
	errs     map[string]error
	samples  map[string]int
	closed   map[string]int
	progress map[string]scalers.Progress
	dead     map[string][2]float64
}

// New returns an empty Source.
func New() *Source {
	return &Source{values: map[string]float64{}, errs: map[string]error{}, samples: map[string]int{}, closed: map[string]int{},
		progress: map[string]scalers.Progress{}, dead: map[string][2]float64{}}
}

// Set makes triggers with this key read v, and clears a failure set by Fail.
func (s *Source) Set(key string, v float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values[key] = v
	delete(s.errs, key)
}

// SetProgress makes every sample of triggers with this key carry p (a copy).
func (s *Source) SetProgress(key string, p scalers.Progress) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.progress[key] = p
}

// SetDeadLetter makes dead-letter readers with this key report depth and inflow (messages per second),
// and clears a failure set by Fail.
func (s *Source) SetDeadLetter(key string, depth, inflow float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dead[key] = [2]float64{depth, inflow}
	delete(s.errs, key)
}

// Fail makes triggers with this key fail with err until the next Set.
func (s *Source) Fail(key string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs[key] = err
}

// Samples reports how many times triggers with this key were sampled.
func (s *Source) Samples(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples[key]
}

// Closed reports how many scalers with this key were closed.
func (s *Source) Closed(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed[key]
}

// Register adds the "test" type to r, reading from s, and returns r.
func (s *Source) Register(r scalers.Registry) scalers.Registry {
	r[Type] = triggerType{s}
	return r
}

// triggerType is the "test" trigger type of a Source, a dead-letter type too.
type triggerType struct{ src *Source }

var (
	_ scalers.TriggerType    = triggerType{}
	_ scalers.DeadLetterType = triggerType{}
)

func (t triggerType) New(cfg scalers.Config) (scalers.Scaler, error) { return t.src.newScaler(cfg) }

func (t triggerType) NewDeadLetter(cfg scalers.Config) (scalers.DeadLetterReader, error) {
	var dl struct {
		Key string `ebb:"key"`
	}
	if err := scalers.ParseAs("a test dead-letter reader", cfg.Metadata, cfg.Auth, &dl); err != nil {
		return nil, err
	}
	return scalers.SampledDeadLetters("queue (test)", &scaler{src: t.src, md: metadata{Key: dl.Key}, deadLetter: true}), nil
}

type metadata struct {
	Key        string  `ebb:"key"`
	Target     float64 `ebb:"target,default=1,min=0.001"`
	Activation float64 `ebb:"activation,default=0,min=0"`
	Metrics    int     `ebb:"metrics,default=1,min=1,max=8"`
}

type scaler struct {
	src        *Source
	md         metadata
	deadLetter bool
}

func (s *Source) newScaler(cfg scalers.Config) (scalers.Scaler, error) {
	sc := &scaler{src: s}
	if err := scalers.Parse(cfg.Metadata, cfg.Auth, &sc.md); err != nil {
		return nil, err
	}
	return sc, nil
}

func (sc *scaler) Metrics() []scalers.MetricSpec {
	if sc.md.Metrics == 1 {
		return []scalers.MetricSpec{{Target: sc.md.Target, Activation: sc.md.Activation}}
	}
	specs := make([]scalers.MetricSpec, sc.md.Metrics)
	for i := range specs {
		specs[i] = scalers.MetricSpec{Name: fmt.Sprintf("m%d", i), Target: sc.md.Target, Activation: sc.md.Activation}
	}
	return specs
}

func (sc *scaler) Sample(ctx context.Context) (scalers.Sample, error) {
	if err := ctx.Err(); err != nil {
		return scalers.Sample{}, err
	}
	s := sc.src
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples[sc.md.Key]++
	if err := s.errs[sc.md.Key]; err != nil {
		return scalers.Sample{}, err
	}
	if sc.deadLetter {
		d, ok := s.dead[sc.md.Key]
		if !ok {
			return scalers.Sample{}, fmt.Errorf("dead-letter key %q: %w", sc.md.Key, ErrNoValue)
		}
		return scalers.Sample{Values: []float64{d[0], d[1]}}, nil
	}
	v, ok := s.values[sc.md.Key]
	if !ok {
		return scalers.Sample{}, fmt.Errorf("key %q: %w", sc.md.Key, ErrNoValue)
	}
	vals := make([]float64, sc.md.Metrics)
	for i := range vals {
		vals[i] = v
	}
	out := scalers.Sample{Values: vals}
	if p, ok := s.progress[sc.md.Key]; ok {
		p.Rewound = append([]string(nil), p.Rewound...)
		out.Progress = &p
	}
	return out, nil
}

func (sc *scaler) Close() error {
	sc.src.mu.Lock()
	defer sc.src.mu.Unlock()
	sc.src.closed[sc.md.Key]++
	return nil
}
