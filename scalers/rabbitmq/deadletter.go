package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ebbscale/ebb/scalers"
)

// NewDeadLetter builds the reader of a dead-letter queue (scalers.DeadLetterType): its depth and inflow
// (see Pool.DeadLetter), from the shared reading of its vhost over the management API, which the triggers
// on that vhost read too.
func (p *Pool) NewDeadLetter(cfg scalers.Config) (scalers.DeadLetterReader, error) {
	var dl deadLetterMetadata
	if err := errors.Join(checkHostSource(cfg.Metadata, cfg.Auth), scalers.ParseAs("a rabbitmq dead-letter queue", cfg.Metadata, cfg.Auth, &dl)); err != nil {
		return nil, err
	}
	s := &Scaler{pool: p, interval: cfg.PollingInterval, deadLetter: true, md: dl.trigger()}
	if err := p.attach(s); err != nil {
		return nil, err
	}
	return scalers.SampledDeadLetters(fmt.Sprintf("queue %q", s.md.QueueName), s), nil
}

// DeadLetter reports a dead-letter queue's depth (ready plus unacknowledged messages) and inflow (messages
// per second entering it, dead-lettered or published, smoothed; see QueueStats.InflowRate), for the
// consumer-health guard: a dead-letter queue that grows means consumers are failing, and adding more of
// them only fills it faster.
//
// It reads from the same shared per-vhost reading the http triggers use (the management API lists every
// queue of a vhost, so any queue of a watched vhost is in it at no extra cost), taking a new one when the
// last is older than a second. The vhost must be read by an http trigger of this pool on exactly one
// management API; otherwise the error wraps ErrNotWatched, or says which servers read it. Use
// Scaler.DeadLetter to name the server through a trigger.
func (p *Pool) DeadLetter(ctx context.Context, vhost, queue string) (depth int64, inflowPerSecond float64, err error) {
	q, err := p.QueueStats(ctx, vhost, queue)
	return q.Messages, q.InflowRate, err
}

// QueueStats reports one queue of a vhost as the shared reading of that vhost sees it (see DeadLetter for
// which readings qualify): depth, rates, and its dead-letter exchange, if any.
func (p *Pool) QueueStats(ctx context.Context, vhost, queue string) (QueueStats, error) {
	p.mu.Lock()
	var (
		readers []*vhostReader
		servers []string
	)
	for _, m := range p.mgmt {
		m.mu.Lock()
		if v, ok := m.vhosts[vhost]; ok {
			readers = append(readers, v)
			servers = append(servers, m.base)
		}
		m.mu.Unlock()
	}
	p.mu.Unlock()
	switch len(readers) {
	case 0:
		return QueueStats{}, fmt.Errorf("queue %q: %w %q", queue, ErrNotWatched, vhost)
	case 1:
		return queueStats(ctx, p, readers[0], queue)
	}
	slices.Sort(servers)
	return QueueStats{}, fmt.Errorf("queue %q: vhost %q is read on several management APIs (%s, or with other credentials); use Scaler.DeadLetter", queue, vhost, strings.Join(servers, ", "))
}

// DeadLetter reports the depth and inflow (see Pool.DeadLetter) of queue, a dead-letter queue in the
// trigger's vhost on the trigger's server. The trigger must use protocol http.
func (s *Scaler) DeadLetter(ctx context.Context, queue string) (depth int64, inflowPerSecond float64, err error) {
	if s.vhost == nil {
		return 0, 0, fmt.Errorf("dead-letter queue %q: the dead-letter inflow comes from the management API, and this trigger uses AMQP", queue)
	}
	q, err := queueStats(ctx, s.pool, s.vhost, queue)
	return q.Messages, q.InflowRate, err
}

func queueStats(ctx context.Context, p *Pool, v *vhostReader, queue string) (QueueStats, error) {
	v.ratesWanted.Store(time.Now().Add(ratesInterest).UnixNano())
	r, err := v.Read(ctx, p.now, p.now().Add(-scalers.MaxFreshness), v.Version(), defaultTimeout, withRates, v.fetch)
	if err != nil {
		return QueueStats{}, fmt.Errorf("host %s, vhost %q: %w", v.srv.base, v.vhost, classify(err))
	}
	if r.Err != nil {
		return QueueStats{}, fmt.Errorf("host %s, vhost %q: %w", v.srv.base, v.vhost, r.Err)
	}
	q, ok := r.Val.queues[queue]
	if !ok {
		return QueueStats{}, fmt.Errorf("host %s, vhost %q: queue %q: %w", v.srv.base, v.vhost, queue, ErrQueueNotFound)
	}
	return q, nil
}
