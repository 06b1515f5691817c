package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/semaphore"
)

// NATSConfig configures a NATS JetStream sink.
type NATSConfig struct {
	// URLs are the servers, nats:// or tls://, comma-separated (the trigger's natsServerURL).
	URLs string
	// Subject receives the messages; a stream must capture it (or Stream create one).
	Subject string
	// Stream, when set, is created (memory storage off: file storage) on Subject when it does not exist.
	Stream string
	// Username and Password, Token, or CredsFile (a .creds file's path) log in.
	Username, Password, Token, CredsFile string
	// TLS configures the connection when the servers want TLS or a URL is tls://. Default: the system's
	// roots.
	TLS *tls.Config
	// MaxInflight bounds the messages published but not yet acknowledged; Send blocks beyond it. Default
	// 1,000.
	MaxInflight int
}

// NATS is a Sink publishing to a JetStream stream with acknowledged asynchronous publishes: a message is
// confirmed when the stream stored it; one no stream captures, or the server refuses, fails.
type NATS struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	subject  string
	inflight *semaphore.Weighted
	max      int64
}

var _ Sink = (*NATS)(nil)

// NewNATS connects, creates the stream when asked and it is missing, and returns the sink. Close it.
func NewNATS(ctx context.Context, cfg NATSConfig) (*NATS, error) {
	if cfg.Subject == "" {
		return nil, errors.New("nats: a subject is required")
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = 1_000
	}
	opts := []nats.Option{nats.Name("ebb load"), nats.Timeout(10 * time.Second)}
	switch {
	case cfg.Username != "" || cfg.Password != "":
		opts = append(opts, nats.UserInfo(cfg.Username, cfg.Password))
	case cfg.Token != "":
		opts = append(opts, nats.Token(cfg.Token))
	case cfg.CredsFile != "":
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.TLS != nil {
		opts = append(opts, nats.Secure(cfg.TLS))
	}
	nc, err := nats.Connect(cfg.URLs, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats: connecting to %s: %w", cfg.URLs, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(cfg.MaxInflight))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: %w", err)
	}
	if cfg.Stream != "" {
		_, err := js.Stream(ctx, cfg.Stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: cfg.Stream, Subjects: []string{cfg.Subject}})
		}
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("nats: stream %q: %w", cfg.Stream, err)
		}
	}
	return &NATS{nc: nc, js: js, subject: cfg.Subject, inflight: semaphore.NewWeighted(int64(cfg.MaxInflight)), max: int64(cfg.MaxInflight)}, nil
}

// Send implements Sink.
func (n *NATS) Send(ctx context.Context, payload []byte, done func(error)) error {
	if err := n.inflight.Acquire(ctx, 1); err != nil {
		return err
	}
	f, err := n.js.PublishAsync(n.subject, payload)
	if err != nil {
		n.inflight.Release(1)
		return fmt.Errorf("nats: publish to %s: %w", n.subject, err)
	}
	go func() {
		defer n.inflight.Release(1)
		select {
		case <-f.Ok():
			done(nil)
		case err := <-f.Err():
			if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) {
				err = fmt.Errorf("nats: no stream captures subject %s (create one, or pass --stream): %w", n.subject, err)
			}
			done(err)
		}
	}()
	return nil
}

// Flush implements Sink.
func (n *NATS) Flush(ctx context.Context) error {
	if err := n.inflight.Acquire(ctx, n.max); err != nil {
		return err
	}
	n.inflight.Release(n.max)
	return nil
}

// Close closes the connection; unacknowledged messages fail.
func (n *NATS) Close() { n.nc.Close() }
