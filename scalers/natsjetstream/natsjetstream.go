package natsjetstream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ebbscale/ebb/scalers"
)

// Type is the trigger type.
const Type = "nats-jetstream"

// defaultTimeout bounds a reading when the caller's context has no deadline (the controller always gives
// one).
const defaultTimeout = 10 * time.Second

// Pool hands out the server connections of every nats-jetstream trigger: one NATS connection per server
// set and credentials, one HTTP client per set of monitoring endpoints, each with one shared reading per
// tick. It is the trigger type's factory. The zero value is not usable; call NewPool.
type Pool struct {
	observe scalers.RequestObserver // nil: requests are not observed
	now     func() time.Time

	mu      sync.Mutex
	servers map[string]*server
}

// Option configures a Pool.
type Option func(*Pool)

// ObserveRequests makes the pool tell o about every request it sends: "Connect" for a connection
// attempt, the JetStream API request ("CONSUMER.LIST", "CONSUMER.INFO", "STREAM.INFO") for the client
// protocol, "GET /jsz" for a monitoring endpoint. Default: none.
func ObserveRequests(o scalers.RequestObserver) Option {
	return func(p *Pool) { p.observe = o }
}

// NewPool returns an empty Pool.
func NewPool(opts ...Option) *Pool {
	p := &Pool{now: time.Now, servers: map[string]*server{}}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Connections is how many NATS connections the pool holds open.
func (p *Pool) Connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, s := range p.servers {
		if s.client != nil && s.client.connected() {
			n++
		}
	}
	return n
}

// Close closes every connection.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, s := range p.servers {
		s.close()
		delete(p.servers, k)
	}
}

// Scaler is one nats-jetstream trigger, or a dead-letter stream's reader.
type Scaler struct {
	md       metadata
	pool     *Pool
	srv      *server
	version  uint64
	interval time.Duration
	// deadLetter: this reads a dead-letter stream's depth and inflow (NewDeadLetter), not a consumer.
	deadLetter bool

	mu      sync.Mutex
	lastSeq uint64 // the reading the last sample was computed from
	last    scalers.Sample
	// prev is the consumer's (or, for a dead-letter reader, the stream's) state at the previous sample and
	// prevAt when its reading started (zero before the first).
	prev   entry
	prevAt time.Time
}

var (
	_ scalers.Scaler         = (*Scaler)(nil)
	_ scalers.TriggerType    = (*Pool)(nil)
	_ scalers.DeadLetterType = (*Pool)(nil)
)

// New is the factory of the nats-jetstream trigger type.
func (p *Pool) New(cfg scalers.Config) (scalers.Scaler, error) {
	s := &Scaler{pool: p, interval: cfg.PollingInterval}
	if err := scalers.Parse(cfg.Metadata, cfg.Auth, &s.md); err != nil {
		return nil, err
	}
	if err := p.attach(s, watch{stream: s.md.Stream, consumer: s.md.Consumer}); err != nil {
		return nil, err
	}
	return s, nil
}

// attach gives s the pool's shared server for its connection and registers its watch.
func (p *Pool) attach(s *Scaler, w watch) error {
	key := serverKey(&s.md.Connection)
	p.mu.Lock()
	defer p.mu.Unlock()
	srv, ok := p.servers[key]
	if !ok {
		var err error
		if srv, err = newServer(key, &s.md.Connection, p.observe); err != nil {
			return err
		}
		p.servers[key] = srv
	}
	s.srv = srv
	s.version = srv.Add(s, w)
	return nil
}

// serverKey identifies a server set (or monitoring endpoints) and credentials; secrets enter it only
// hashed.
func serverKey(c *Connection) string {
	h := sha256.New()
	for _, s := range []string{c.Password, c.Token, c.NKeySeed, c.Creds, c.CA, c.Cert, c.Key} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	if c.monitoring() {
		eps := slices.Clone(c.MonitoringEndpoints)
		slices.Sort(eps)
		return fmt.Sprintf("jsz|%s|%t|%q|%q|%t|%s", strings.Join(eps, ","), c.UseHTTPS, c.Account, c.AccountID, c.UnsafeSSL, hex.EncodeToString(h.Sum(nil)))
	}
	urls := slices.Clone(c.ServerURL)
	slices.Sort(urls)
	return fmt.Sprintf("nats|%s|%q|%s|%t|%s", strings.Join(urls, ","), c.Username, c.Mode, c.UnsafeSSL, hex.EncodeToString(h.Sum(nil)))
}

// Metrics is one metric: the consumer's pending plus ack-pending messages, with lagThreshold as its
// per-replica target.
func (s *Scaler) Metrics() []scalers.MetricSpec {
	return []scalers.MetricSpec{{Target: s.md.LagThreshold, Activation: s.md.ActivationLagThreshold}}
}

// freshness is how old a shared reading may be for this trigger (scalers.Freshness).
func (s *Scaler) freshness() time.Duration { return scalers.Freshness(s.interval) }

// Sample reads the consumer's backlog from a reading shared with every trigger on the same server set.
func (s *Scaler) Sample(ctx context.Context) (scalers.Sample, error) {
	r, err := s.srv.Read(ctx, s.pool.now, s.pool.now().Add(-s.freshness()), s.version, defaultTimeout, nil, s.srv.fetch)
	if err != nil {
		return scalers.Sample{}, fmt.Errorf("%s: %w", s.md.where(), classify(err))
	}
	if r.Err != nil {
		return scalers.Sample{}, fmt.Errorf("%s: %w", s.md.where(), classify(r.Err))
	}
	if s.deadLetter {
		return s.sampleDeadLetter(r)
	}
	k := watch{stream: s.md.Stream, consumer: s.md.Consumer}
	e, err := r.Val.lookup(k)
	if err != nil {
		return scalers.Sample{}, fmt.Errorf("%s: stream %q, consumer %q: %w", s.md.where(), k.stream, k.consumer, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Seq == s.lastSeq {
		// Sampled again within the freshness window: the same reading, the same answer, and no progress
		// to report (it would look like an ack floor that did not move).
		return s.copyLast(), nil
	}
	s.lastSeq = r.Seq
	s.last = scalers.Sample{Values: []float64{float64(e.pending + e.ackPending)}}
	out := s.copyLast()
	out.Progress = s.progress(e, r.Started)
	return out, nil
}

// copyLast is the last sample again, without its Progress.
func (s *Scaler) copyLast() scalers.Sample {
	return scalers.Sample{Values: slices.Clone(s.last.Values)}
}

// Close releases the trigger's share of its server connection.
func (s *Scaler) Close() error {
	p := s.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.srv.Remove(s) == 0 {
		s.srv.close()
		if p.servers[s.srv.key] == s.srv {
			delete(p.servers, s.srv.key)
		}
	}
	return nil
}
