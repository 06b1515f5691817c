package rabbitmq

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ebbscale/ebb/scalers"
)

// Type is the trigger type.
const Type = "rabbitmq"

// defaultTimeout bounds a reading when the trigger sets no timeout and the caller's context has no
// deadline (the controller always gives one).
const defaultTimeout = 10 * time.Second

// Pool hands out the connections of every rabbitmq trigger: one AMQP connection per server, credentials
// and vhost; one HTTP client per management API and credentials, with one shared reading per vhost. It
// is the trigger type's factory: register Pool.New in the registry. The zero value is not usable; call
// NewPool.
type Pool struct {
	connName string
	now      func() time.Time
	observe  scalers.RequestObserver // nil: requests are not observed

	mu   sync.Mutex
	amqp map[string]*amqpServer
	mgmt map[string]*mgmtServer
}

// Option configures a Pool.
type Option func(*Pool)

// ConnectionName sets the client-provided name of the pool's AMQP connections, which RabbitMQ shows in
// its management UI and API. Default: "ebb".
func ConnectionName(name string) Option {
	return func(p *Pool) { p.connName = name }
}

// ObserveRequests makes the pool tell o about every request it sends: management API GETs (request
// "GET /api/<resource>", failed when no answer came or its status is not 2xx) and the AMQP methods of a
// reading ("connection.open", "channel.open", "queue.declare" for each passive declare). Default: none.
func ObserveRequests(o scalers.RequestObserver) Option {
	return func(p *Pool) { p.observe = o }
}

// NewPool returns an empty Pool.
func NewPool(opts ...Option) *Pool {
	p := &Pool{connName: "ebb", now: time.Now, amqp: map[string]*amqpServer{}, mgmt: map[string]*mgmtServer{}}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Connections is how many AMQP connections the pool holds open.
func (p *Pool) Connections() int {
	p.mu.Lock()
	servers := make([]*amqpServer, 0, len(p.amqp))
	for _, a := range p.amqp {
		servers = append(servers, a)
	}
	p.mu.Unlock()
	n := 0
	for _, a := range servers {
		if ok, _ := a.isConnected(); ok {
			n++
		}
	}
	return n
}

// Close closes every connection.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, a := range p.amqp {
		a.close()
		delete(p.amqp, k)
	}
	for k, m := range p.mgmt {
		m.client.CloseIdleConnections()
		delete(p.mgmt, k)
	}
}

// Scaler is one rabbitmq trigger.
type Scaler struct {
	md       metadata
	ep       endpoint
	pool     *Pool
	interval time.Duration
	timeout  time.Duration
	re       *regexp.Regexp // with useRegex
	version  uint64
	// deadLetter: this is a dead-letter queue's reader (NewDeadLetter), not a trigger.
	deadLetter bool
	// progress: report the consume rate (scalers.Config.Progress); over http it needs the averaged rates.
	progress bool

	// One of these, by protocol.
	amqp  *amqpServer
	vhost *vhostReader
}

var (
	_ scalers.Scaler         = (*Scaler)(nil)
	_ scalers.TriggerType    = (*Pool)(nil)
	_ scalers.DeadLetterType = (*Pool)(nil)
)

// New is the factory of the rabbitmq trigger type.
func (p *Pool) New(cfg scalers.Config) (scalers.Scaler, error) {
	s := &Scaler{pool: p, interval: cfg.PollingInterval, progress: cfg.Progress}
	if err := errors.Join(checkHostSource(cfg.Metadata, cfg.Auth), scalers.Parse(cfg.Metadata, cfg.Auth, &s.md)); err != nil {
		return nil, err
	}
	if err := p.attach(s); err != nil {
		return nil, err
	}
	return s, nil
}

// attach resolves where s reads and gives it the pool's shared connection or reading for it.
func (p *Pool) attach(s *Scaler) error {
	ep, err := s.md.endpoint()
	if err != nil {
		return err
	}
	if s.deadLetter && ep.protocol != protocolHTTP {
		return &scalers.FieldError{Key: "host", Msg: "a dead-letter queue's inflow comes from the management API: host must be its http(s):// URL (and protocol http or auto)"}
	}
	s.ep = ep
	s.timeout = time.Duration(s.md.Timeout)
	if s.timeout == 0 {
		s.timeout = defaultTimeout
	}
	if s.md.UseRegex {
		s.re = regexp.MustCompile(s.md.QueueName) // Validate compiled it
	}
	tc, err := tlsConfig(&s.md.TLS, ep)
	if err != nil {
		return err
	}
	key := serverKey(&s.md, ep)
	p.mu.Lock()
	defer p.mu.Unlock()
	if ep.protocol == protocolAMQP {
		a, ok := p.amqp[key]
		if !ok {
			a = newAMQPServer(key, amqpURL(ep), ep.vhost, p.connName, tc)
			a.observe, a.server = p.observe, hostOf(ep.server)
			p.amqp[key] = a
		}
		s.amqp = a
		s.version = a.Add(s, s.md.QueueName)
		return nil
	}
	m, ok := p.mgmt[key]
	if !ok {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tc
		tr.MaxIdleConnsPerHost = 4
		var rt http.RoundTripper = tr
		if p.observe != nil {
			rt = observedTransport{next: tr, server: hostOf(ep.server), observe: p.observe}
		}
		m = &mgmtServer{key: key, base: ep.server, user: ep.username, password: ep.password, client: &http.Client{Transport: rt}, vhosts: map[string]*vhostReader{}}
		p.mgmt[key] = m
	}
	s.vhost = m.reader(ep.vhost)
	// A dead-letter reader needs the averaged rates (its inflow), and a trigger asked for progress needs them
	// for its consume rate (the dead-letter ratio's denominator); any trigger on the vhost reports the consume
	// rate when its reading has them.
	s.version = s.vhost.Add(s, vhostWatch{pageSize: s.md.PageSize, rates: s.md.Mode == modeMessageRate || s.deadLetter || s.progress})
	return nil
}

// maxPageSize is the largest page of queues the management API gives (and pageSize's default): a
// dead-letter reader, which takes no pageSize, reads its vhost with it.
const maxPageSize = 500

// amqpURL is the dial URL: the server with the resolved credentials (the vhost goes in amqp.Config).
func amqpURL(ep endpoint) string {
	u := url.URL{Scheme: strings.SplitN(ep.server, "://", 2)[0], Host: strings.SplitN(ep.server, "://", 2)[1], Path: "/"}
	if ep.username != "" || ep.password != "" {
		u.User = url.UserPassword(ep.username, ep.password)
	}
	return u.String()
}

// serverKey identifies a connection (AMQP: server, credentials and vhost) or an HTTP client (server and
// credentials); secrets enter it only hashed.
func serverKey(md *metadata, ep endpoint) string {
	h := sha256.New()
	for _, s := range []string{ep.password, md.CA, md.Cert, md.Key} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	vhost := ""
	if ep.protocol == protocolAMQP {
		vhost = ep.vhost
	}
	return fmt.Sprintf("%s|%s|%q|%q|%t|%s", ep.protocol, ep.server, vhost, ep.username, md.UnsafeSSL, hex.EncodeToString(h.Sum(nil)))
}

func tlsConfig(t *scalers.TLS, ep endpoint) (*tls.Config, error) {
	if !ep.tls {
		return nil, nil
	}
	host := strings.SplitN(ep.server, "://", 2)[1]
	if i := strings.IndexByte(host, '/'); i >= 0 {
		host = host[:i]
	}
	if h, _, ok := strings.Cut(host, ":"); ok && !strings.HasPrefix(host, "[") {
		host = h
	}
	tc, err := t.Config()
	if err != nil {
		return nil, err
	}
	tc.ServerName = strings.Trim(host, "[]")
	return tc, nil
}

// Metrics is one metric: the queue length or the publish rate, with value as its per-replica target.
func (s *Scaler) Metrics() []scalers.MetricSpec {
	return []scalers.MetricSpec{{Target: s.md.Value, Activation: s.md.ActivationValue}}
}

// freshness is how old a shared reading may be for this trigger (scalers.Freshness).
func (s *Scaler) freshness() time.Duration { return scalers.Freshness(s.interval) }

// where names the server and vhost in messages, without credentials.
func (s *Scaler) where() string {
	return fmt.Sprintf("host %s, vhost %q", s.ep.server, s.ep.vhost)
}

// Sample reads the trigger's queue(s) from a reading shared with every trigger on the same connection
// (AMQP) or vhost (http).
func (s *Scaler) Sample(ctx context.Context) (scalers.Sample, error) {
	notBefore := s.pool.now().Add(-s.freshness())
	if s.amqp != nil {
		fetch := func(ctx context.Context, queues []string) (amqpDepths, error) {
			return s.amqp.fetch(ctx, queues, s.timeout)
		}
		r, err := s.amqp.Read(ctx, s.pool.now, notBefore, s.version, s.timeout, nil, fetch)
		if err != nil {
			return scalers.Sample{}, fmt.Errorf("%s: %w", s.where(), classify(err))
		}
		if r.Err != nil {
			return scalers.Sample{}, fmt.Errorf("%s: %w", s.where(), r.Err)
		}
		if err := r.Val.queueErr[s.md.QueueName]; err != nil {
			return scalers.Sample{}, fmt.Errorf("%s: %w", s.where(), err)
		}
		ready, ok := r.Val.ready[s.md.QueueName]
		if !ok {
			return scalers.Sample{}, fmt.Errorf("%s: queue %q: not in this reading", s.where(), s.md.QueueName)
		}
		return scalers.Sample{Values: []float64{float64(ready)}}, nil
	}
	r, err := s.readVhost(ctx, notBefore)
	if err != nil {
		return scalers.Sample{}, err
	}
	if s.deadLetter {
		q, ok := r.Val.queues[s.md.QueueName]
		if !ok {
			return scalers.Sample{}, fmt.Errorf("%s: dead-letter queue %q: %w", s.where(), s.md.QueueName, ErrQueueNotFound)
		}
		return scalers.Sample{Values: []float64{float64(q.Messages), q.InflowRate}}, nil
	}
	matched, err := s.match(r.Val.queues)
	if err != nil {
		return scalers.Sample{}, fmt.Errorf("%s: %w", s.where(), err)
	}
	depth := aggregate(s.md.Operation, matched, func(q QueueStats) float64 {
		if s.md.ExcludeUnacknowledged {
			return float64(q.Ready)
		}
		return float64(q.Messages)
	})
	var progress *scalers.Progress
	if r.Val.rates {
		progress = &scalers.Progress{HasConsumeRate: true, ConsumeRate: aggregate("sum", matched, func(q QueueStats) float64 { return q.ConsumeRate })}
	}
	if s.md.Mode == modeQueueLength {
		return scalers.Sample{Values: []float64{depth}, Progress: progress}, nil
	}
	rate := aggregate(s.md.Operation, matched, func(q QueueStats) float64 { return q.PublishRate })
	raw := aggregate(s.md.Operation, matched, func(q QueueStats) float64 { return q.RawPublishRate })
	// Activity reacts to the unsmoothed rate (waking up is cheap, and should be quick) and, as in KEDA, to
	// messages waiting, which also keep the target from scaling to zero.
	return scalers.Sample{Values: []float64{rate}, ActivationValues: []float64{max(rate, raw, depth)}, Progress: progress}, nil
}

func (s *Scaler) readVhost(ctx context.Context, notBefore time.Time) (*scalers.Reading[vhostQueues], error) {
	var accept func(vhostQueues) bool
	if s.md.Mode == modeMessageRate || s.deadLetter || s.progress {
		accept = withRates
	}
	r, err := s.vhost.Read(ctx, s.pool.now, notBefore, s.version, s.timeout, accept, s.vhost.fetch)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.where(), classify(err))
	}
	if r.Err != nil {
		return nil, fmt.Errorf("%s: %w", s.where(), r.Err)
	}
	return r, nil
}

// match returns the stats of the trigger's queue, or of every queue its regular expression matches
// (none is not an error: the value is 0).
func (s *Scaler) match(queues map[string]QueueStats) ([]QueueStats, error) {
	if s.re == nil {
		q, ok := queues[s.md.QueueName]
		if !ok {
			return nil, fmt.Errorf("queue %q: %w", s.md.QueueName, ErrQueueNotFound)
		}
		return []QueueStats{q}, nil
	}
	names := make([]string, 0, len(queues))
	for name := range queues {
		if s.re.MatchString(name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	out := make([]QueueStats, len(names))
	for i, n := range names {
		out[i] = queues[n]
	}
	return out, nil
}

// withRates accepts a reading with the averaged rates.
func withRates(v vhostQueues) bool { return v.rates }

// aggregate applies operation (sum, avg, max) to f over qs; 0 for none.
func aggregate(operation string, qs []QueueStats, f func(QueueStats) float64) float64 {
	if len(qs) == 0 {
		return 0
	}
	var sum, hi float64
	for _, q := range qs {
		v := f(q)
		sum += v
		hi = max(hi, v)
	}
	switch operation {
	case "avg":
		return sum / float64(len(qs))
	case "max":
		return hi
	}
	return sum
}

// Close releases the trigger's share of its connection or HTTP client.
func (s *Scaler) Close() error {
	p := s.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.amqp != nil {
		if s.amqp.Remove(s) == 0 {
			s.amqp.close()
			if p.amqp[s.amqp.key] == s.amqp {
				delete(p.amqp, s.amqp.key)
			}
		}
		return nil
	}
	m := s.vhost.srv
	if s.vhost.Remove(s) == 0 {
		m.mu.Lock()
		if m.vhosts[s.vhost.vhost] == s.vhost {
			delete(m.vhosts, s.vhost.vhost)
		}
		empty := len(m.vhosts) == 0
		m.mu.Unlock()
		if empty && p.mgmt[m.key] == m {
			m.client.CloseIdleConnections()
			delete(p.mgmt, m.key)
		}
	}
	return nil
}
