package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// rabbitQueues declares queue, dead-lettering into queue+".dlq", and the results queue, deleted at the end.
func rabbitQueues(t *testing.T, queue string) *amqp.Channel {
	t.Helper()
	ch, err := testenv.DialRabbitMQ(t).Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	declare := []struct {
		name string
		args amqp.Table
	}{
		{queue + ".dlq", nil},
		{queue + ".results", nil},
		{queue, amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue + ".dlq"}},
	}
	for _, q := range declare {
		if _, err := ch.QueueDeclare(q.name, true, false, false, false, q.args); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, q := range declare {
			_, _ = ch.QueueDelete(q.name, false, false, false)
		}
	})
	return ch
}

// publishRabbit publishes one message a key, each confirmed.
func publishRabbit(t *testing.T, ch *amqp.Channel, queue string, keys []string) {
	t.Helper()
	for _, k := range keys {
		if err := publish(t.Context(), ch, queue, amqp.Publishing{MessageId: k, Body: []byte("payload " + k)}); err != nil {
			t.Fatal(err)
		}
	}
}

// readRabbit tallies the messages of a queue by message ID, in the background.
func readRabbit(t *testing.T, queue string) *tally {
	t.Helper()
	conn := testenv.DialRabbitMQ(t)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume(queue, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := newTally()
	var wg sync.WaitGroup
	wg.Go(func() {
		for d := range ds {
			r.add(d.MessageId)
		}
	})
	t.Cleanup(func() { _ = conn.Close(); wg.Wait() }) // before DialRabbitMQ's cleanup: ends the reader
	return r
}

// TestRabbitMQ: every message is processed once into the results or rejected into the queue's
// dead-letter queue, about the fail ratio of them, and a duplicate is skipped.
func TestRabbitMQ(t *testing.T) {
	queue := testenv.UniqueName(t, "orders")
	ch := rabbitQueues(t, queue)
	keys := keysN("k", 300)
	publishRabbit(t, ch, queue, keys)
	publishRabbit(t, ch, queue, keys[:10])
	results, dlq := readRabbit(t, queue+".results"), readRabbit(t, queue+".dlq")

	out, stop := runInProcess(t, config{Broker: "rabbitmq", URL: testenv.RabbitMQURL, Queue: queue, FailRatio: 0.25,
		Results: queue + ".results", ID: "one", Prefetch: 20, LogEvery: 100 * time.Millisecond})
	waitFor(t, 30*time.Second, "every key in the results or the dead letters", func() bool {
		return results.distinct()+dlq.distinct() >= len(keys)
	})
	waitFor(t, 10*time.Second, "the duplicates counted", func() bool { return strings.Contains(out.String(), "duplicates=10") })
	stop()

	checkOutcomes(t, keys, results, dlq, 0.25)
}

// TestRabbitMQDeadLetterQueue: with --dead-letter the consumer publishes failed messages there itself.
func TestRabbitMQDeadLetterQueue(t *testing.T) {
	queue := testenv.UniqueName(t, "dl")
	ch := rabbitQueues(t, queue)
	own := queue + ".own-dlq"
	// Declared here as the consumer declares it: a passive declare of a missing queue would close ch.
	if _, err := ch.QueueDeclare(own, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = ch.QueueDelete(own, false, false, false) })
	keys := keysN("d", 100)
	publishRabbit(t, ch, queue, keys)
	_, stop := runInProcess(t, config{Broker: "rabbitmq", URL: testenv.RabbitMQURL, Queue: queue, FailRatio: 1,
		DeadLetter: own, ID: "one", Prefetch: 20, LogEvery: time.Second})
	// Passive declares count ready messages only; nothing consumes the consumer's own dead-letter queue.
	waitFor(t, 30*time.Second, "every message in the consumer's dead-letter queue", func() bool {
		q, err := ch.QueueDeclarePassive(own, true, false, false, false, nil)
		return err == nil && q.Messages == len(keys)
	})
	stop()
}

// TestRabbitMQSIGTERM: a replica stopped mid-stream exits 0 soon, and what it had not acked goes to the
// next one: every key ends in the results.
func TestRabbitMQSIGTERM(t *testing.T) {
	queue := testenv.UniqueName(t, "term")
	ch := rabbitQueues(t, queue)
	keys := keysN("s", 200)
	publishRabbit(t, ch, queue, keys)
	results := readRabbit(t, queue+".results")
	args := []string{"--broker", "rabbitmq", "--url", testenv.RabbitMQURL, "--queue", queue, "--rate", "200",
		"--results", queue + ".results", "--log-every", "200ms"}

	first := startProcess(t, append(args, "--id", "first")...)
	waitFor(t, 30*time.Second, "the first replica to process some", func() bool { return results.distinct() >= 40 })
	took := first.terminate(t)
	byFirst := results.distinct()
	if byFirst >= len(keys) {
		t.Fatalf("the first replica processed everything before SIGTERM; nothing tested")
	}
	second := startProcess(t, append(args, "--id", "second")...)
	waitFor(t, 30*time.Second, fmt.Sprintf("all %d keys in the results", len(keys)), func() bool {
		return results.distinct() >= len(keys)
	})
	second.terminate(t)
	n, got := results.snapshot()
	t.Logf("first replica: %d keys, stopped in %v; %d results for %d keys", byFirst, took, n, len(got))
}
