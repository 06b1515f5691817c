package rabbitmq

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ebbscale/ebb/scalers"
)

const (
	// A reading spreads its passive declares (one round trip each) over several channels of its one
	// connection, to keep several in flight: one channel per amqpQueuesPerChannel watched queues, at most
	// amqpMaxChannels. Each channel costs the server about 60 KiB; 16 read 1,000 queues in about 45 ms.
	amqpQueuesPerChannel = 64
	amqpMaxChannels      = 16
	// Reconnection backoff after a failed dial: it starts at backoffMin, doubles, and stays under
	// backoffMax (with ±20% jitter), so a trigger recovers within backoffMax of the server's return.
	backoffMin = 500 * time.Millisecond
	backoffMax = 10 * time.Second
)

// amqpDepths is one AMQP reading: the ready messages of each watched queue, or why there are none.
type amqpDepths struct {
	ready    map[string]int64
	queueErr map[string]error
}

// amqpServer is one AMQP connection shared by every trigger with the same server, credentials and vhost.
type amqpServer struct {
	key      string
	url      string // with credentials; never printed
	vhost    string
	tls      *tls.Config
	connName string
	// observe, when not nil, is told about each AMQP method a reading sends to server (host:port).
	observe scalers.RequestObserver
	server  string

	*scalers.Shared[*Scaler, string, amqpDepths]

	// mu guards the connection state below. Only the goroutine taking a reading dials and uses channels
	// (readings are single-flight), but close and the NotifyClose watcher run concurrently with it.
	mu        sync.Mutex
	conn      *amqp.Connection
	idle      []*amqp.Channel // open channels between readings
	closeErr  *amqp.Error     // why the last connection went away, until the next dial
	dialing   chan struct{}   // closed when the dial in progress ends; nil when none is
	nextDial  time.Time       // no dial before this (backoff)
	backoff   time.Duration
	dialErr   error // the last dial's error, while backing off
	closed    bool  // the pool released the server
	connected time.Time
}

func newAMQPServer(key, url, vhost, connName string, tc *tls.Config) *amqpServer {
	return &amqpServer{key: key, url: url, vhost: vhost, connName: connName, tls: tc, Shared: scalers.NewShared[*Scaler, string, amqpDepths]()}
}

// connection returns the open connection, dialing when there is none and the backoff allows. The dial
// runs on its own, bounded by dialTimeout rather than by ctx, and the attempt's outcome is kept for the
// next sample to report: a slow server may take longer than a short polling interval's deadline. A refused
// login is answered at once (see handshake.go). When the deadline passes during a dial that follows a
// failed one, the sample reports the last attempt's error (a wrong password stays a wrong password while
// the next attempt is under way) rather than "no answer".
func (a *amqpServer) connection(ctx context.Context, dialTimeout time.Duration) (*amqp.Connection, error) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil, errors.New("trigger closed")
	}
	if a.conn != nil && !a.conn.IsClosed() {
		conn := a.conn
		a.mu.Unlock()
		return conn, nil
	}
	a.conn, a.idle = nil, nil
	if a.dialing == nil {
		if now := time.Now(); now.Before(a.nextDial) && a.dialErr != nil {
			err := fmt.Errorf("%w (next connection attempt in %s)", a.dialErr, a.nextDial.Sub(now).Round(time.Millisecond))
			a.mu.Unlock()
			return nil, err
		}
		a.dialing = make(chan struct{})
		go a.dial(a.dialing, dialTimeout)
	}
	dialing := a.dialing
	a.mu.Unlock()
	select {
	case <-dialing:
	case <-ctx.Done():
		a.mu.Lock()
		last := a.dialErr
		a.mu.Unlock()
		if last != nil && !errors.Is(last, ErrUnreachable) {
			return nil, fmt.Errorf("%w (the last connection attempt's error; a new attempt is under way)", last)
		}
		return nil, fmt.Errorf("%w: connecting: no answer before the sample's deadline; the attempt goes on for up to %s: %w", ErrUnreachable, dialTimeout, ctx.Err())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conn == nil {
		return nil, a.dialErr
	}
	return a.conn, nil
}

// dial opens a connection and records the outcome; it closes done when finished.
func (a *amqpServer) dial(done chan struct{}, timeout time.Duration) {
	cfg := amqp.Config{
		Vhost:      a.vhost,
		Dial:       dialer(timeout, a.tls),
		Properties: amqp.NewConnectionProperties(),
		ChannelMax: amqpMaxChannels + 4,
	}
	cfg.Properties.SetClientConnectionName(a.connName)
	start := time.Now()
	url, err := plainURL(a.url)
	var conn *amqp.Connection
	if err == nil {
		conn, err = amqp.DialConfig(url, cfg)
	}
	a.observed("connection.open", start, err)

	a.mu.Lock()
	defer a.mu.Unlock()
	defer close(done)
	a.dialing = nil
	switch {
	case err != nil:
		err = classify(err)
		if a.closeErr != nil && errors.Is(err, ErrUnreachable) {
			err = fmt.Errorf("%w; the last connection was closed: %w", err, a.closeErr)
		}
		a.backoff = min(max(2*a.backoff, backoffMin), backoffMax)
		a.nextDial = time.Now().Add(time.Duration(float64(a.backoff) * (0.8 + 0.4*rand.Float64())))
		a.dialErr = err
	case a.closed:
		go func() { _ = conn.CloseDeadline(time.Now().Add(time.Second)) }()
	default:
		a.conn, a.backoff, a.dialErr, a.closeErr, a.connected = conn, 0, nil, nil, time.Now()
		go a.watch(conn, conn.NotifyClose(make(chan *amqp.Error, 1)))
	}
}

// watch forgets conn when it closes, keeping the server's reason for the next error message. The next
// reading dials again at once (a dropped connection is not a failed dial: no backoff yet).
func (a *amqpServer) watch(conn *amqp.Connection, notify <-chan *amqp.Error) {
	e, ok := <-notify
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conn == conn {
		a.conn, a.idle = nil, nil
		if ok {
			a.closeErr = e
		}
	}
}

// close closes the connection; the server is not used again.
func (a *amqpServer) close() {
	a.mu.Lock()
	conn := a.conn
	a.conn, a.idle, a.closed = nil, nil, true
	a.mu.Unlock()
	if conn != nil {
		_ = conn.CloseDeadline(time.Now().Add(time.Second))
	}
}

// takeChannels returns up to n open channels, reusing idle ones.
func (a *amqpServer) takeChannels(conn *amqp.Connection, n int) ([]*amqp.Channel, error) {
	a.mu.Lock()
	var chs []*amqp.Channel
	for len(chs) < n && len(a.idle) > 0 {
		ch := a.idle[len(a.idle)-1]
		a.idle = a.idle[:len(a.idle)-1]
		if !ch.IsClosed() {
			chs = append(chs, ch)
		}
	}
	a.mu.Unlock()
	for len(chs) < n {
		start := time.Now()
		ch, err := conn.Channel()
		a.observed("channel.open", start, err)
		if err != nil {
			for _, c := range chs {
				_ = c.Close()
			}
			return nil, err
		}
		chs = append(chs, ch)
	}
	return chs, nil
}

// putChannels keeps the channels that are still open for the next reading of the same connection, and
// closes idle ones beyond those (the reading needed fewer than before).
func (a *amqpServer) putChannels(conn *amqp.Connection, chs []*amqp.Channel) {
	a.mu.Lock()
	var extra []*amqp.Channel
	for _, ch := range chs {
		if ch != nil && !ch.IsClosed() && a.conn == conn {
			a.idle = append(a.idle, ch)
		}
	}
	if len(a.idle) > len(chs) {
		extra = a.idle[len(chs):]
		a.idle = a.idle[:len(chs):len(chs)]
	}
	a.mu.Unlock()
	for _, ch := range extra {
		_ = ch.Close()
	}
}

// fetch takes one reading: a passive declare of every watched queue, spread over a few channels of the one
// connection. A missing queue closes its channel (404); the channel is replaced and the reading goes on.
// When the context ends first, the connection is closed (it is not answering) and the reading fails.
func (a *amqpServer) fetch(ctx context.Context, watches []string, dialTimeout time.Duration) (amqpDepths, error) {
	slices.Sort(watches)
	queues := slices.Compact(watches)
	out := amqpDepths{ready: make(map[string]int64, len(queues)), queueErr: map[string]error{}}
	conn, err := a.connection(ctx, dialTimeout)
	if err != nil {
		return out, err
	}
	if len(queues) == 0 {
		return out, nil
	}
	// An unresponsive server leaves calls waiting; closing the connection ends them.
	stop := context.AfterFunc(ctx, func() { _ = conn.CloseDeadline(time.Now().Add(200 * time.Millisecond)) })
	defer stop()

	chs, err := a.takeChannels(conn, min(amqpMaxChannels, (len(queues)+amqpQueuesPerChannel-1)/amqpQueuesPerChannel))
	if err != nil {
		return out, a.connErr(ctx, err)
	}
	type result struct {
		queue string
		ready int64
		err   error
	}
	results := make([]result, len(queues))
	var (
		wg      sync.WaitGroup
		connMu  sync.Mutex
		connErr error
	)
	for w := range chs {
		wg.Go(func() {
			for i := w; i < len(queues); i += len(chs) {
				q := queues[i]
				results[i].queue = q
				start := time.Now()
				info, err := chs[w].QueueDeclarePassive(q, false, false, false, false, nil)
				a.observed("queue.declare", start, err)
				if err == nil {
					results[i].ready = int64(info.Messages)
					continue
				}
				if conn.IsClosed() || connectionLevel(err) {
					connMu.Lock()
					if connErr == nil {
						connErr = err
					}
					connMu.Unlock()
					chs[w] = nil
					return
				}
				// A soft error (404, 403) closed this channel only: report it for the queue, open another.
				results[i].err = err
				start = time.Now()
				ch, cerr := conn.Channel()
				a.observed("channel.open", start, cerr)
				if cerr != nil {
					connMu.Lock()
					if connErr == nil {
						connErr = cerr
					}
					connMu.Unlock()
					chs[w] = nil
					return
				}
				chs[w] = ch
			}
		})
	}
	wg.Wait()
	a.putChannels(conn, chs)
	if connErr != nil {
		return out, a.connErr(ctx, connErr)
	}
	for _, r := range results {
		if r.err != nil {
			out.queueErr[r.queue] = fmt.Errorf("queue %q: %w", r.queue, classify(r.err))
			continue
		}
		out.ready[r.queue] = r.ready
	}
	return out, nil
}

// connErr explains a failure of the whole connection during a reading.
func (a *amqpServer) connErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: no answer before the sample's deadline (the connection is closed and will be opened again): %w", ErrUnreachable, ctx.Err())
	}
	a.mu.Lock()
	reason := a.closeErr
	a.mu.Unlock()
	err = classify(err)
	if reason != nil && !errors.Is(err, ErrQueueNotFound) {
		return fmt.Errorf("%w (the server closed the connection: %w)", err, reason)
	}
	return err
}

// isConnected reports whether the server holds an open connection, and since when (for tests).
func (a *amqpServer) isConnected() (bool, time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.conn != nil && !a.conn.IsClosed(), a.connected
}

// observed tells the pool's observer, if any, about an AMQP method sent at start.
func (a *amqpServer) observed(method string, start time.Time, err error) {
	if a.observe != nil {
		a.observe(a.server, method, time.Since(start), err)
	}
}
