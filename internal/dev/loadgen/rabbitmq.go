package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"golang.org/x/sync/semaphore"
)

// RabbitMQConfig configures a RabbitMQ sink.
type RabbitMQConfig struct {
	// URL is the server, amqp://user:password@host:port/vhost or amqps://... for TLS, as the rabbitmq
	// trigger's host.
	URL string
	// Username and Password, when set, override the URL's.
	Username, Password string
	// TLS configures an amqps:// connection. Default: the system's roots.
	TLS *tls.Config
	// Exchange receives the messages. Default: the default exchange, which routes to the queue named by
	// RoutingKey.
	Exchange string
	// RoutingKey routes the messages; with the default exchange, the queue's name.
	RoutingKey string
	// Declare declares RoutingKey as a durable classic queue first (with the default exchange only).
	Declare bool
	// Persistent marks messages persistent (delivery mode 2); confirms then wait for the disk.
	Persistent bool
	// MaxInflight bounds the messages published but not yet confirmed; Send blocks beyond it. Default
	// 1,000.
	MaxInflight int
}

// RabbitMQ is a Sink publishing to RabbitMQ with publisher confirms. Messages are mandatory: one that no
// queue takes is returned by the server and counts as failed, as does one the server nacks.
type RabbitMQ struct {
	conn       *amqp.Connection
	ch         *amqp.Channel
	exchange   string
	key        string
	persistent bool
	inflight   *semaphore.Weighted
	max        int64

	pubMu    sync.Mutex // a delivery tag and its publish go together
	mu       sync.Mutex
	pending  map[uint64]func(error) // by delivery tag
	returned map[string]bool        // message IDs the server returned
	closed   error
	stopped  chan struct{}
}

var _ Sink = (*RabbitMQ)(nil)

// NewRabbitMQ connects, declares the queue when asked, puts the channel in confirm mode and returns the
// sink. Close it.
func NewRabbitMQ(ctx context.Context, cfg RabbitMQConfig) (*RabbitMQ, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
		return nil, fmt.Errorf("rabbitmq: URL %q: want amqp://[user:password@]host[:port][/vhost], or amqps:// for TLS", cfg.URL)
	}
	if cfg.Username != "" || cfg.Password != "" {
		u.User = url.UserPassword(cfg.Username, cfg.Password)
	}
	if cfg.Exchange == "" && cfg.RoutingKey == "" {
		return nil, errors.New("rabbitmq: a queue (or an exchange) is required")
	}
	if cfg.Declare && cfg.Exchange != "" {
		return nil, errors.New("rabbitmq: declaring a queue works with the default exchange only")
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = 1_000
	}
	acfg := amqp.Config{Properties: amqp.NewConnectionProperties(), TLSClientConfig: cfg.TLS}
	acfg.Properties.SetClientConnectionName("ebb load")
	if d, ok := ctx.Deadline(); ok {
		acfg.Dial = amqp.DefaultDial(time.Until(d))
	}
	conn, err := amqp.DialConfig(u.String(), acfg)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: connecting to %s: %w", u.Redacted(), err)
	}
	r := &RabbitMQ{
		conn: conn, exchange: cfg.Exchange, key: cfg.RoutingKey, persistent: cfg.Persistent,
		inflight: semaphore.NewWeighted(int64(cfg.MaxInflight)), max: int64(cfg.MaxInflight),
		pending: map[uint64]func(error){}, returned: map[string]bool{}, stopped: make(chan struct{}),
	}
	if err := r.open(cfg); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return r, nil
}

func (r *RabbitMQ) open(cfg RabbitMQConfig) error {
	ch, err := r.conn.Channel()
	if err != nil {
		return fmt.Errorf("rabbitmq: opening a channel: %w", err)
	}
	if cfg.Declare {
		if _, err := ch.QueueDeclare(cfg.RoutingKey, true, false, false, false, nil); err != nil {
			return fmt.Errorf("rabbitmq: declaring queue %q: %w", cfg.RoutingKey, err)
		}
	}
	if err := ch.Confirm(false); err != nil {
		return fmt.Errorf("rabbitmq: confirm mode: %w", err)
	}
	r.ch = ch
	// Buffers as large as the messages in flight: the library must never block delivering to them.
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, cfg.MaxInflight))
	returns := ch.NotifyReturn(make(chan amqp.Return, cfg.MaxInflight))
	closes := ch.NotifyClose(make(chan *amqp.Error, 1))
	go r.watch(confirms, returns, closes)
	return nil
}

// watch settles messages. The library hands a message's return to its listener before the ack that
// follows it, from one goroutine, so the returns buffered when an ack arrives include that message's.
func (r *RabbitMQ) watch(confirms <-chan amqp.Confirmation, returns <-chan amqp.Return, closes <-chan *amqp.Error) {
	defer close(r.stopped)
	drainReturns := func() {
		for {
			select {
			case ret, ok := <-returns:
				if !ok {
					return
				}
				r.mu.Lock()
				r.returned[ret.MessageId] = true
				r.mu.Unlock()
			default:
				return
			}
		}
	}
	for c := range confirms {
		drainReturns()
		r.mu.Lock()
		done := r.pending[c.DeliveryTag]
		delete(r.pending, c.DeliveryTag)
		id := strconv.FormatUint(c.DeliveryTag, 10)
		wasReturned := r.returned[id]
		delete(r.returned, id)
		r.mu.Unlock()
		if done == nil {
			continue
		}
		switch {
		case !c.Ack:
			done(errors.New("rabbitmq: the server nacked the message"))
		case wasReturned:
			done(fmt.Errorf("rabbitmq: no queue took the message (exchange %q, routing key %q)", r.exchange, r.key))
		default:
			done(nil)
		}
		r.inflight.Release(1)
	}
	// The channel closed: whatever is still pending will never be confirmed.
	err := errors.New("rabbitmq: channel closed before the server confirmed the message")
	select {
	case e, ok := <-closes:
		if ok && e != nil {
			err = fmt.Errorf("rabbitmq: channel closed before the server confirmed the message: %w", e)
		}
	default:
	}
	r.mu.Lock()
	r.closed = err
	pending := r.pending
	r.pending = map[uint64]func(error){}
	r.mu.Unlock()
	for _, done := range pending {
		done(err)
		r.inflight.Release(1)
	}
}

// Send implements Sink.
func (r *RabbitMQ) Send(ctx context.Context, payload []byte, done func(error)) error {
	if err := r.inflight.Acquire(ctx, 1); err != nil {
		return err
	}
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	r.mu.Lock()
	if r.closed != nil {
		err := r.closed
		r.mu.Unlock()
		r.inflight.Release(1)
		return err
	}
	tag := r.ch.GetNextPublishSeqNo()
	r.pending[tag] = done
	r.mu.Unlock()
	msg := amqp.Publishing{Body: payload, MessageId: strconv.FormatUint(tag, 10)}
	if r.persistent {
		msg.DeliveryMode = amqp.Persistent
	}
	if err := r.ch.PublishWithContext(ctx, r.exchange, r.key, true, false, msg); err != nil {
		r.mu.Lock()
		_, still := r.pending[tag]
		delete(r.pending, tag)
		r.mu.Unlock()
		if !still {
			return nil // the closing channel failed it already, through done
		}
		r.inflight.Release(1)
		return fmt.Errorf("rabbitmq: publishing: %w", err)
	}
	return nil
}

// Flush implements Sink.
func (r *RabbitMQ) Flush(ctx context.Context) error {
	if err := r.inflight.Acquire(ctx, r.max); err != nil {
		return err
	}
	r.inflight.Release(r.max)
	return nil
}

// Close closes the channel and the connection; unconfirmed messages fail.
func (r *RabbitMQ) Close() error {
	err := r.conn.Close()
	<-r.stopped
	if err != nil && !errors.Is(err, amqp.ErrClosed) {
		return fmt.Errorf("rabbitmq: closing: %w", err)
	}
	return nil
}
