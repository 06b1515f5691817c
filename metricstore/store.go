package metricstore

import (
	"cmp"
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

// Item is one Key with its Entry, as Snapshot returns and Replace takes them.
type Item struct {
	Key   Key
	Entry Entry
}

// Store is safe for concurrent use. The zero value is not usable; call New.
//
// Every change (Set, a Forget that drops something, Replace) increments the store's revision, so a reader
// can tell whether anything changed since it last looked (Revision, Snapshot) and wait for the next change
// (Changed).
type Store struct {
	mu      sync.RWMutex
	entries map[Key]Entry
	rev     uint64
	// changed is closed at the next change; it is made when the first waiter asks for it, so a store
	// nobody waits on allocates nothing per change.
	changed chan struct{}
}

// New returns an empty Store at revision 0.
func New() *Store {
	return &Store{entries: map[Key]Entry{}}
}

// bump records a change; s.mu is held for writing.
func (s *Store) bump() {
	s.rev++
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

// Set records the value for k.
func (s *Store) Set(k Key, e Entry) {
	s.mu.Lock()
	s.entries[k] = e
	s.bump()
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
// triggers change). It changes the revision only when it dropped something.
func (s *Store) Forget(namespace, scaledConsumer string, keep ...string) {
	s.mu.Lock()
	n := len(s.entries)
	for k := range s.entries {
		if k.Namespace == namespace && k.ScaledConsumer == scaledConsumer && !slices.Contains(keep, k.Metric) {
			delete(s.entries, k)
		}
	}
	if len(s.entries) != n {
		s.bump()
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

// HasMetric reports whether some ScaledConsumer has a metric of that name in the store.
func (s *Store) HasMetric(name string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for k := range s.entries {
		if k.Metric == name {
			return true
		}
	}
	return false
}

// Revision is the number of changes the store has seen.
func (s *Store) Revision() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev
}

// Snapshot returns every entry, sorted by key, and the revision they are at.
func (s *Store) Snapshot() (rev uint64, items []Item) {
	s.mu.RLock()
	items = make([]Item, 0, len(s.entries))
	for k, e := range s.entries {
		items = append(items, Item{Key: k, Entry: e})
	}
	rev = s.rev
	s.mu.RUnlock()
	slices.SortFunc(items, func(a, b Item) int { return compareKeys(a.Key, b.Key) })
	return rev, items
}

// Replace makes items the store's whole content, at once: a reader sees either the old content or the
// new. When a key appears more than once the last wins. It always changes the revision.
func (s *Store) Replace(items []Item) {
	entries := make(map[Key]Entry, len(items))
	for _, it := range items {
		entries[it.Key] = it.Entry
	}
	s.mu.Lock()
	s.entries = entries
	s.bump()
	s.mu.Unlock()
}

// Changed returns a channel that is closed once the store's revision is above after: at once when it is
// already. Any number of goroutines may wait on it; they share one channel per revision.
func (s *Store) Changed(after uint64) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rev > after {
		c := make(chan struct{})
		close(c)
		return c
	}
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.changed
}

func compareKeys(a, b Key) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.ScaledConsumer, b.ScaledConsumer), cmp.Compare(a.Metric, b.Metric))
}
