package rabbitmq

import (
	"context"
	"sync"
	"time"
)

// reading is one batched look at a server (AMQP) or a vhost (http), shared by every trigger that samples
// within its freshness window.
type reading[T any] struct {
	// started is when the reading began; version is the watch set it covered.
	started time.Time
	version uint64
	// seq numbers the readings of one source, so a trigger can tell a new reading from one it has seen.
	seq uint64
	// err is a failure of the whole reading (unreachable, authentication, missing vhost), classified.
	err error
	val T
}

// shared coalesces the readings of one source: the triggers watching it (each with a watch W) and the last
// reading taken for them. At most one reading is in flight; callers that arrive meanwhile wait for it.
type shared[W, T any] struct {
	mu       sync.Mutex
	watches  map[*Scaler]W
	version  uint64
	last     *reading[T]
	inflight chan struct{} // closed when the reading in flight completes
	seq      uint64
}

func newShared[W, T any]() *shared[W, T] {
	return &shared[W, T]{watches: map[*Scaler]W{}}
}

// add registers s with its watch and returns the version a reading must cover to include it.
func (sh *shared[W, T]) add(s *Scaler, w W) uint64 {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.watches[s] = w
	sh.version++
	return sh.version
}

// remove drops s and reports how many watchers remain.
func (sh *shared[W, T]) remove(s *Scaler) int {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	delete(sh.watches, s)
	sh.version++
	return len(sh.watches)
}

// currentVersion is the version of the watch set now.
func (sh *shared[W, T]) currentVersion() uint64 {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.version
}

// read returns a reading that started no earlier than notBefore, covers the watch set as of version and
// (when accept is not nil) has a value accept takes, taking a new one with fetch when needed. fetch gets the watches as of the reading's start, and a context
// bounded by the caller's deadline (or by timeout, when the caller has none) but not by its cancellation:
// other callers wait for the same reading.
func (sh *shared[W, T]) read(ctx context.Context, now func() time.Time, notBefore time.Time, version uint64, timeout time.Duration,
	accept func(T) bool, fetch func(ctx context.Context, watches []W) (T, error)) (*reading[T], error) {
	for {
		sh.mu.Lock()
		if r := sh.last; r != nil && !r.started.Before(notBefore) && r.version >= version && (accept == nil || r.err != nil || accept(r.val)) {
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
		r := &reading[T]{started: started, version: ver, val: val, err: err}

		sh.mu.Lock()
		sh.seq++
		r.seq = sh.seq
		sh.last, sh.inflight = r, nil
		sh.mu.Unlock()
		close(done)
	}
}
