package rabbitmq_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/rabbitmq"
)

// The consumer-health guard's view of RabbitMQ: a dead-letter reader (Pool.NewDeadLetter) reports
// the dead-letter queue's depth and inflow, and a trigger on the source queue, read over http, reports
// the rate at which consumers acknowledge. Consumers that reject every other message of a 20/s stream
// dead-letter about 10/s and acknowledge about 10/s.
func TestDeadLetterReaderAndConsumeRate(t *testing.T) {
	b := requireBroker(t)
	vhost := b.vhost()
	conn := b.conn(vhost)
	ch := channel(t, conn)
	declare(t, ch, "work.dlq", nil)
	declare(t, ch, "work", amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "work.dlq"})

	const perSecond = 20
	deadLettering(t, conn, ch, "work", 2, perSecond)

	pool := rabbitmq.NewPool()
	t.Cleanup(pool.Close)
	source := newTrigger(t, pool.New, b.httpHost(vhost), map[string]string{"queueName": "work"}, 500*time.Millisecond)
	dl, err := pool.NewDeadLetter(scalers.Config{TriggerName: "deadLetter", PollingInterval: 500 * time.Millisecond,
		Metadata: map[string]string{"queueName": "work.dlq"}, Auth: map[string]string{"host": b.httpHost(vhost)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dl.(interface{ Close() error }).Close() })
	if got, want := dl.Name(), `queue "work.dlq"`; got != want {
		t.Fatalf("dead-letter reader name = %s, want %s", got, want)
	}

	within := func(what string, got, want float64) error {
		if got < want*0.7 || got > want*1.3 {
			return fmt.Errorf("%s = %.2f/s, want %.0f/s ± 30%%", what, got, want)
		}
		return nil
	}
	eventually(t, 40*time.Second, func() error {
		d := read(t, dl)
		if err := within("dead-letter inflow", d.InflowPerSecond, perSecond/2); err != nil {
			return err
		}
		if d.Depth < 10 {
			return fmt.Errorf("dead-letter depth %v, want it growing", d.Depth)
		}
		s := sample(t, source)
		if s.Progress == nil || !s.Progress.HasConsumeRate {
			return fmt.Errorf("source trigger progress = %+v, want a consume rate", s.Progress)
		}
		return within("consume rate", s.Progress.ConsumeRate, perSecond/2)
	})
}

func TestDeadLetterReaderConfig(t *testing.T) {
	b := requireBroker(t)
	pool := rabbitmq.NewPool()
	t.Cleanup(pool.Close)
	tests := []struct {
		name  string
		md    map[string]string
		host  string
		words []string
	}{
		{name: "amqp-host", md: map[string]string{"queueName": "q.dlq"}, host: b.amqpHost("/"), words: []string{"host:", "management API"}},
		{name: "scaling-keys", md: map[string]string{"queueName": "q.dlq", "mode": "QueueLength", "value": "5", "useRegex": "true"}, host: b.httpHost("/"),
			words: []string{"mode: not a key of a rabbitmq dead-letter queue", "value: not a key", "useRegex: not a key"}},
		{name: "no-queue", md: map[string]string{}, host: b.httpHost("/"), words: []string{"queueName"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pool.NewDeadLetter(scalers.Config{Metadata: tc.md, Auth: map[string]string{"host": tc.host}})
			var fe *scalers.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error = %v, want a field error", err)
			}
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}

	// A missing dead-letter queue is an error of that reader.
	dl, err := pool.NewDeadLetter(scalers.Config{Metadata: map[string]string{"queueName": "no.such.dlq"}, Auth: map[string]string{"host": b.httpHost("/")}})
	if err != nil {
		t.Fatal(err)
	}
	defer dl.(interface{ Close() error }).Close()
	_, err = readErr(t, dl)
	isErr(t, err, rabbitmq.ErrQueueNotFound)
}
