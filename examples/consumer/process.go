package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// outcome is what becomes of a message.
type outcome int

const (
	processed outcome = iota // done: its key goes to the results
	failed                   // dead-lettered
	duplicate                // its key was processed before by this process: acknowledged, nothing else
)

// processor paces the messages, decides their outcome and counts them. It is used by one goroutine;
// the counts may be read from others.
type processor struct {
	interval  time.Duration // between messages; 0: no pacing
	failRatio float64
	next      time.Time
	done      map[string]outcome

	processed, failed, duplicates atomic.Int64
}

func newProcessor(rate, failRatio float64) *processor {
	p := &processor{failRatio: failRatio, done: map[string]outcome{}}
	if rate > 0 {
		p.interval = time.Duration(float64(time.Second) / rate)
	}
	return p
}

// pace waits for the next message's turn, the simulated processing time, and reports false, without
// waiting, when ctx is done first.
func (p *processor) pace(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	if p.interval == 0 {
		return true
	}
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	p.next = p.next.Add(p.interval)
	t := time.NewTimer(time.Until(p.next))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// decide says what becomes of the message with this key, and remembers it: a key seen again is a
// duplicate. Whether a key fails depends on the key alone, so a redelivered message fails again.
func (p *processor) decide(key string) outcome {
	if _, ok := p.done[key]; ok {
		p.duplicates.Add(1)
		return duplicate
	}
	o := processed
	if fails(key, p.failRatio) {
		o = failed
		p.failed.Add(1)
	} else {
		p.processed.Add(1)
	}
	p.done[key] = o
	return o
}

// fails reports whether key falls in the failing share ratio of the key space.
func fails(key string, ratio float64) bool {
	if ratio <= 0 {
		return false
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return float64(h.Sum64()%1_000_000) < ratio*1_000_000
}

func (p *processor) summary() string {
	return fmt.Sprintf("processed=%d failed=%d duplicates=%d", p.processed.Load(), p.failed.Load(), p.duplicates.Load())
}

// logEvery writes the counts to w every interval until stop is closed, and once more then.
func (p *processor) logEvery(w io.Writer, interval time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		var last int64
		for {
			select {
			case <-done:
				return
			case <-t.C:
				n := p.processed.Load() + p.failed.Load()
				fmt.Fprintf(w, "consumer: %s rate=%.1f/s\n", p.summary(), float64(n-last)/interval.Seconds())
				last = n
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// run consumes until ctx is done, then finishes the message in hand, commits or acknowledges what it
// processed and returns nil; it returns an error when the broker fails it.
func run(ctx context.Context, cfg config, out io.Writer) error {
	p := newProcessor(cfg.Rate, cfg.FailRatio)
	stop := p.logEvery(out, cfg.LogEvery)
	var err error
	switch cfg.Broker {
	case "kafka":
		err = runKafka(ctx, cfg, p, out)
	case "rabbitmq":
		err = runRabbitMQ(ctx, cfg, p, out)
	default:
		err = fmt.Errorf("unknown broker %q", cfg.Broker)
	}
	stop()
	fmt.Fprintf(out, "consumer: stopped: %s\n", p.summary())
	return err
}

// finishTimeout bounds the work after a stop: publishing what is in hand, committing, leaving the group.
// It fits in Kubernetes' default 30 s grace period.
const finishTimeout = 15 * time.Second
