package testenv_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// A test's own RabbitMQ node: stopped, it refuses connections; started again, it still has its durable
// queue and the persistent messages in it.
func TestRabbitMQNodeRestart(t *testing.T) {
	n := testenv.StartRabbitMQNode(t)
	ch := rabbitChannel(t, n.URL)
	const queue = "orders"
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	const msgs = 5
	for i := range msgs {
		dc, err := ch.PublishWithDeferredConfirmWithContext(t.Context(), "", queue, false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: fmt.Appendf(nil, "m%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := dc.WaitContext(t.Context()); !ok || err != nil {
			t.Fatalf("publish %d not confirmed: %v", i, err)
		}
	}

	n.Stop()
	if conn, err := amqp.Dial(n.URL); err == nil {
		_ = conn.Close()
		t.Fatal("a stopped node accepted a connection")
	}

	n.Start()
	ch = rabbitChannel(t, n.URL)
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("the durable queue after the restart: %v", err)
	}
	if q.Messages != msgs {
		t.Errorf("after the restart: %d messages, want %d", q.Messages, msgs)
	}
	var got []string
	for range q.Messages {
		d, ok, err := ch.Get(queue, true)
		if err != nil || !ok {
			t.Fatalf("get: ok=%v err=%v", ok, err)
		}
		got = append(got, string(d.Body))
	}
	if diff := cmp.Diff(got, []string{"m0", "m1", "m2", "m3", "m4"}); diff != "" {
		t.Errorf("consumed after the restart (-got +want):\n%s", diff)
	}
}

// rabbitChannel dials url and opens a channel; both close when the test ends.
func rabbitChannel(t *testing.T, url string) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}
