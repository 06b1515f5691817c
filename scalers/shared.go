package scalers

import (
	"context"
	"sync"
	"time"
)

// Reading is one batched look at a broker (a cluster, a server, a vhost), shared by every trigger that
// samples within its freshness window.
type Reading[T any] struct {
	// Started is when the reading began; Version is the watch set it covered.
	Started time.Time
	Version uint64
	// Seq numbers the readings of one source, so a trigger can tell a new reading from one it has seen.
	Seq uint64
	// Err is a failure of the whole reading (unreachable, authentication, ...), as fetch returned it.
	Err error
	Val T
}

// Shared coalesces the readings of one broker source: the triggers watching it (each, keyed by K, with a
// watch W) and the last reading taken for them. At most one reading is in flight; callers that arrive
// meanwhile wait for it. This is how a scaler costs the broker one request per tick however many
// triggers watch it. The zero value is not usable; call NewShared.
type Shared[K comparable, W, T any] struct {
	mu       sync.Mutex
	watches  map[K]W
	version  uint64
	last     *Reading[T]
	inflight chan struct{} // closed when the reading in flight completes
	seq      uint64
}

// MaxFreshness is the oldest a shared reading may be for any trigger (see Freshness).
const MaxFreshness = time.Second

// Freshness is how old a shared reading may be for a trigger polled every interval: half the interval, at
// most MaxFreshness (also when the interval is unknown), so triggers ticking together share one reading
// and none reads an old one.
func Freshness(interval time.Duration) time.Duration {
	if interval <= 0 {
		return MaxFreshness
	}
	return min(interval/2, MaxFreshness)
}

// NewShared returns a Shared with no watchers.
func NewShared[K comparable, W, T any]() *Shared[K, W, T] {
	return &Shared[K, W, T]{watches: map[K]W{}}
}

// Add registers k with its watch and returns the version a reading must cover to include it.
func (sh *Shared[K, W, T]) Add(k K, w W) uint64 {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.watches[k] = w
	sh.version++
	return sh.version
}

// Remove drops k and reports how many watchers remain.
func (sh *Shared[K, W, T]) Remove(k K) int {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	delete(sh.watches, k)
	sh.version++
	return len(sh.watches)
}

// Version is the version of the watch set now.
func (sh *Shared[K, W, T]) Version() uint64 {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.version
}

// Read returns a reading that started no earlier than notBefore, covers the watch set as of version and
// (when accept is not nil) has a value accept takes, taking a new one with fetch when needed. fetch gets the watches as of the reading's start, and a context
// bounded by the caller's deadline (or by timeout, when the caller has none) but not by its cancellation:
// other callers wait for the same reading.
func (sh *Shared[K, W, T]) Read(ctx context.Context, now func() time.Time, notBefore time.Time, version uint64, timeout time.Duration,
	accept func(T) bool, fetch func(ctx context.Context, watches []W) (T, error)) (*Reading[T], error) {
	for {
		sh.mu.Lock()
		if r := sh.last; r != nil && !r.Started.Before(notBefore) && r.Version >= version && (accept == nil || r.Err != nil || accept(r.Val)) {
			sh.mu.Unlock()
			return r, nil
		}
		if wait := sh.inflight; wait != nil {
			sh.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		done := make(chan struct{})
		sh.inflight = done
		started, ver := now(), sh.version
		watches := make([]W, 0, len(sh.watches))
		for _, w := range sh.watches {
			watches = append(watches, w)
		}
		sh.mu.Unlock()

		deadline := time.Now().Add(timeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		rctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
		val, err := fetch(rctx, watches)
		cancel()
		r := &Reading[T]{Started: started, Version: ver, Val: val, Err: err}

		sh.mu.Lock()
		sh.seq++
		r.Seq = sh.seq
		sh.last, sh.inflight = r, nil
		sh.mu.Unlock()
		close(done)
	}
}
