package rabbitmq_test

import (
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ebbscale/ebb/scalers/rabbitmq"
)

// A dead-letter queue filled by rejected messages: the source queue (with x-dead-letter-exchange) and the
// dead-letter queue are watched like any other queue, a trigger can target the dead-letter queue itself,
// and Pool.DeadLetter reports its depth and inflow from the same shared reading of the vhost.
func TestDeadLetterQueue(t *testing.T) {
	b := requireBroker(t)
	vhost := b.vhost()
	conn := b.conn(vhost)
	ch := channel(t, conn)
	declare(t, ch, "orders.dlq", nil)
	declare(t, ch, "orders", amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "orders.dlq"})

	// A consumer that fails every message, and a steady producer of 20 messages a second.
	const perSecond = 20
	deadLettering(t, conn, ch, "orders", 1, perSecond)

	pool := rabbitmq.NewPool()
	t.Cleanup(pool.Close)
	source := newTrigger(t, pool.New, b.httpHost(vhost), map[string]string{"queueName": "orders"}, 500*time.Millisecond)
	dlq := newTrigger(t, pool.New, b.httpHost(vhost), map[string]string{"queueName": "orders.dlq", "value": "100", "mode": "QueueLength"}, 500*time.Millisecond)
	if _, _, err := pool.DeadLetter(t.Context(), "no-such-vhost", "orders.dlq"); err == nil {
		t.Error("DeadLetter on a vhost no trigger reads: no error")
	} else {
		isErr(t, err, rabbitmq.ErrNotWatched)
	}

	// The dead-letter queue grows at the producer's rate; the failing consumer keeps the source empty.
	var depth int64
	var inflow float64
	eventually(t, 40*time.Second, func() error {
		if got := sample(t, source); got.Values[0] > 5 {
			return fmt.Errorf("source queue holds %v messages; the consumer should keep it near empty", got.Values)
		}
		var err error
		depth, inflow, err = pool.DeadLetter(t.Context(), vhost, "orders.dlq")
		if err != nil {
			return err
		}
		if inflow < perSecond*0.8 || inflow > perSecond*1.2 {
			return fmt.Errorf("dead-letter inflow %.1f/s, want %d/s ± 20%% (depth %d)", inflow, perSecond, depth)
		}
		return nil
	})
	if depth < 100 {
		t.Errorf("dead-letter depth %d after the inflow settled, want at least 100 (15 s at %d/s)", depth, perSecond)
	}
	// The trigger on the dead-letter queue reads the same depth, from the same reading.
	got := sample(t, dlq)
	if d, _, err := pool.DeadLetter(t.Context(), vhost, "orders.dlq"); err != nil || got.Values[0] != float64(d) {
		t.Errorf("trigger on the dead-letter queue reads %v, DeadLetter depth %d (err %v): want the same", got.Values, d, err)
	}
	// Scaler.DeadLetter names the server through a trigger; an AMQP trigger cannot say.
	if _, in, err := dlq.(*rabbitmq.Scaler).DeadLetter(t.Context(), "orders.dlq"); err != nil || in <= 0 {
		t.Errorf("Scaler.DeadLetter: inflow %v, err %v", in, err)
	}
	src, err := pool.QueueStats(t.Context(), vhost, "orders")
	if err != nil || !src.HasDeadLetterExchange || src.DeadLetterExchange != "" {
		t.Errorf("source queue stats %+v (err %v): want the default exchange as its dead-letter exchange", src, err)
	}
	if q, err := pool.QueueStats(t.Context(), vhost, "orders.dlq"); err != nil || q.HasDeadLetterExchange {
		t.Errorf("dead-letter queue stats %+v (err %v): want no dead-letter exchange of its own", q, err)
	}
	if _, _, err := pool.DeadLetter(t.Context(), vhost, "orders.nope"); err == nil {
		t.Error("DeadLetter of a missing queue: no error")
	} else {
		isErr(t, err, rabbitmq.ErrQueueNotFound)
	}
	t.Logf("dead-letter queue: depth %d, inflow %.1f/s", depth, inflow)
}
