package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Sink is where Run sends messages: a broker client.
type Sink interface {
	// Send hands one message to the broker client and returns without waiting for the broker. It calls
	// done exactly once, from any goroutine, when the broker confirmed the message (nil) or refused or
	// lost it. An error from Send itself means the message was not taken; done is then not called. Send
	// may block while too many messages are outstanding.
	Send(ctx context.Context, payload []byte, done func(error)) error
	// Flush waits until done was called for every message sent.
	Flush(ctx context.Context) error
}

// Stats are the counts of a run so far.
type Stats struct {
	// Elapsed is the time since the start.
	Elapsed time.Duration
	// Sent counts the messages the client took, Confirmed those the broker acknowledged, Failed those
	// refused, lost or not taken.
	Sent, Confirmed, Failed int64
	// Due is the number of messages the schedule had made due by Elapsed.
	Due int64
	// FirstError is the first failure, if any.
	FirstError error
}

// Rate is the achieved rate: confirmed messages per second of Elapsed.
func (s Stats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Confirmed) / s.Elapsed.Seconds()
}

// Options are the knobs of Run beyond the schedule.
type Options struct {
	// Payload is the body of every message. Default: empty.
	Payload []byte
	// Progress, when set, is called every ProgressEvery with the counts so far, from Run's goroutine.
	Progress func(Stats)
	// ProgressEvery is the interval of Progress. Default 1s.
	ProgressEvery time.Duration
	// FlushTimeout bounds the wait for outstanding confirmations after ctx ended (Ctrl-C), so that the
	// summary still counts what the broker confirmed. Default 5s.
	FlushTimeout time.Duration
}

// ErrFailed is returned by Run, wrapped with the counts, when any message failed.
var ErrFailed = errors.New("messages failed")

// Run sends the messages sched makes due, at the times they are due, to sink, until the schedule ends or
// ctx does, then waits for every outstanding confirmation. It returns the final counts; the error is
// ErrFailed (wrapped) when a message failed, nil when ctx ended the run early without failures.
func Run(ctx context.Context, sink Sink, sched Schedule, opts Options) (Stats, error) {
	if err := sched.Validate(); err != nil {
		return Stats{}, fmt.Errorf("load schedule: %w", err)
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = time.Second
	}
	if opts.FlushTimeout <= 0 {
		opts.FlushTimeout = 5 * time.Second
	}
	var (
		c        counters
		start    = time.Now()
		progress = time.NewTicker(opts.ProgressEvery)
		timer    = time.NewTimer(time.Hour)
		due, n   int64 // n: messages handed to Send, taken or not
	)
	timer.Stop()
	defer progress.Stop()
	defer timer.Stop()
	report := func() {
		if opts.Progress != nil {
			opts.Progress(c.stats(time.Since(start), due))
		}
	}
	done := func(err error) {
		if err != nil {
			c.fail(err)
			return
		}
		c.confirmed.Add(1)
	}
send:
	for {
		el := time.Since(start)
		due = sched.Due(el)
		for ; n < due; n++ {
			if ctx.Err() != nil {
				break send
			}
			select {
			case <-progress.C:
				report()
			default:
			}
			if err := sink.Send(ctx, opts.Payload, done); err != nil {
				if ctx.Err() != nil {
					break send
				}
				c.fail(err)
				continue
			}
			c.sent.Add(1)
		}
		next, ok := sched.Next(el)
		if !ok {
			break
		}
		timer.Reset(time.Until(start.Add(next)))
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				break send
			case <-timer.C:
				waiting = false
			case <-progress.C:
				report()
			}
		}
	}
	fctx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), opts.FlushTimeout)
		defer cancel()
	}
	ferr := sink.Flush(fctx)
	st := c.stats(time.Since(start), due)
	if ferr != nil {
		return st, fmt.Errorf("waiting for confirmations: %w", ferr)
	}
	if st.Failed > 0 {
		return st, fmt.Errorf("%w: %d (%d sent, %d confirmed); the first: %w", ErrFailed, st.Failed, st.Sent, st.Confirmed, st.FirstError)
	}
	return st, nil
}

type counters struct {
	sent, confirmed, failed atomic.Int64
	mu                      sync.Mutex
	first                   error
}

func (c *counters) fail(err error) {
	c.failed.Add(1)
	c.mu.Lock()
	if c.first == nil {
		c.first = err
	}
	c.mu.Unlock()
}

func (c *counters) stats(elapsed time.Duration, due int64) Stats {
	c.mu.Lock()
	first := c.first
	c.mu.Unlock()
	return Stats{Elapsed: elapsed, Sent: c.sent.Load(), Confirmed: c.confirmed.Load(), Failed: c.failed.Load(), Due: due, FirstError: first}
}
