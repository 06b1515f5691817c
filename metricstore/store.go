package metricstore

import (
	"slices"
	"sync"
	"time"
)

// Key identifies one metric of one ScaledConsumer.
type Key struct {
	Namespace      string
	ScaledConsumer string
	// Metric is the external metric name the HPA asks for.
	Metric string
}

// Entry is the value served for a Key.
type Entry struct {
	// Value is what the HPA sees.
	Value float64
	// Time is when Value was sampled.
	Time time.Time
	// StaleAfter is the age beyond which Value is stale: the poller that writes it has stopped sampling
	// (a few polling intervals). Zero means the value never goes stale.
	StaleAfter time.Duration
	// Fallback, when not nil, is served instead of a stale Value: the value that drives the HPA to the
	// ScaledConsumer's fallback replicas.
	Fallback *float64
}

// Stale reports whether e is older than its StaleAfter at now.
func (e Entry) Stale(now time.Time) bool {
	return e.StaleAfter > 0 && now.Sub(e.Time) > e.StaleAfter
}

// Store is safe for concurrent use. The zero value is not usable; call New.
type Store struct {
	mu      sync.RWMutex
	entries map[Key]Entry
}

// New returns an empty Store.
func New() *Store {
	return &Store{entries: map[Key]Entry{}}
}

// Set records the value for k.
func (s *Store) Set(k Key, e Entry) {
	s.mu.Lock()
	s.entries[k] = e
	s.mu.Unlock()
}

// Get returns the value for k.
func (s *Store) Get(k Key) (Entry, bool) {
	s.mu.RLock()
	e, ok := s.entries[k]
	s.mu.RUnlock()
	return e, ok
}

// Forget drops every metric of a ScaledConsumer (when it is deleted) except those named in keep (when its
// triggers change).
func (s *Store) Forget(namespace, scaledConsumer string, keep ...string) {
	s.mu.Lock()
	for k := range s.entries {
		if k.Namespace == namespace && k.ScaledConsumer == scaledConsumer && !slices.Contains(keep, k.Metric) {
			delete(s.entries, k)
		}
	}
	s.mu.Unlock()
}

// MetricNames lists the distinct metric names in the store, sorted.
func (s *Store) MetricNames() []string {
	s.mu.RLock()
	seen := make(map[string]struct{}, len(s.entries))
	for k := range s.entries {
		seen[k.Metric] = struct{}{}
	}
	s.mu.RUnlock()
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
