package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/ebbscale/ebb/scalers/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/semaphore"
)

// KafkaConfig configures a Kafka sink.
type KafkaConfig struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// Topic receives the messages.
	Topic string
	// Partitions, when > 0, creates Topic with this many partitions (and the brokers' default replication
	// factor) if it does not exist. 0: the topic must exist, or the brokers create it on first use when
	// they allow that.
	Partitions int32
	// SASL is none, plaintext, scram_sha256 or scram_sha512, as the kafka trigger's sasl parameter.
	// Default none.
	SASL string
	// Username and Password authenticate with SASL.
	Username, Password string
	// TLS, when set, connects with TLS.
	TLS *tls.Config
	// MaxInflight bounds the messages sent but not yet confirmed; Send blocks beyond it. Default 10,000.
	MaxInflight int
	// DeliveryTimeout fails a message the brokers did not take within it. Default 30s.
	DeliveryTimeout time.Duration
}

// Kafka is a Sink producing to a Kafka topic with franz-go: acknowledged by all in-sync replicas,
// idempotent, spread round-robin over the topic's partitions, without keys.
type Kafka struct {
	cl       *kgo.Client
	topic    string
	inflight *semaphore.Weighted
	max      int64
}

var _ Sink = (*Kafka)(nil)

// NewKafka connects to the brokers (failing when none answers within ctx's deadline or 10s), creates the
// topic when asked, and returns the sink. Close it.
func NewKafka(ctx context.Context, cfg KafkaConfig) (*Kafka, error) {
	if len(cfg.Brokers) == 0 || cfg.Topic == "" {
		return nil, errors.New("kafka: brokers and a topic are required")
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = 10_000
	}
	if cfg.DeliveryTimeout <= 0 {
		cfg.DeliveryTimeout = 30 * time.Second
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.MaxBufferedRecords(cfg.MaxInflight + 1), // Send's own bound comes first, so Produce never blocks
		kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout),
		kgo.AllowAutoTopicCreation(),
	}
	mech, err := kafka.SASLMechanism(cfg.SASL, cfg.Username, cfg.Password)
	switch {
	case err != nil:
		return nil, fmt.Errorf("kafka: %w", err)
	case mech == nil && (cfg.Username != "" || cfg.Password != ""):
		return nil, errors.New("kafka: a username or password needs a SASL mechanism")
	case mech != nil:
		opts = append(opts, kgo.SASL(mech))
	}
	if cfg.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(cfg.TLS))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("kafka: no broker of %v answers: %w", cfg.Brokers, err)
	}
	if cfg.Partitions > 0 {
		resp, err := kadm.NewClient(cl).CreateTopic(pctx, cfg.Partitions, -1, nil, cfg.Topic)
		if err == nil && resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
			err = resp.Err
		}
		if err != nil {
			cl.Close()
			return nil, fmt.Errorf("kafka: creating topic %s: %w", cfg.Topic, err)
		}
	}
	return &Kafka{cl: cl, topic: cfg.Topic, inflight: semaphore.NewWeighted(int64(cfg.MaxInflight)), max: int64(cfg.MaxInflight)}, nil
}

// Send implements Sink.
func (k *Kafka) Send(ctx context.Context, payload []byte, done func(error)) error {
	if err := k.inflight.Acquire(ctx, 1); err != nil {
		return err
	}
	// The record outlives ctx: a run interrupted with Ctrl-C still counts what the brokers confirm.
	k.cl.Produce(context.WithoutCancel(ctx), &kgo.Record{Value: payload}, func(_ *kgo.Record, err error) {
		done(err)
		k.inflight.Release(1)
	})
	return nil
}

// Flush implements Sink.
func (k *Kafka) Flush(ctx context.Context) error {
	if err := k.inflight.Acquire(ctx, k.max); err != nil {
		return err
	}
	k.inflight.Release(k.max)
	return nil
}

// Close closes the client; messages still buffered fail.
func (k *Kafka) Close() { k.cl.Close() }
