package e2e_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// The brokers of the chaos suite, each one a scenario can stop and start again at the same address.

// chaosKafka is a one-broker kfake cluster that keeps its topics and committed offsets in a directory,
// so that it can be closed (its port stops answering, every connection is cut) and started again on the
// same port with the same data. The backlog is the lag of the group "workers" on topic "orders" (10
// partitions), all of it on partition 0.
type chaosKafka struct {
	port int
	dir  string

	mu  sync.Mutex
	k   *kfake.Cluster
	cl  *kgo.Client
	adm *kadm.Client
	end int64 // records produced to partition 0
}

func newChaosKafka(t *testing.T) *chaosKafka {
	t.Helper()
	b := &chaosKafka{port: testenv.FreePort(t), dir: filepath.Join(t.TempDir(), "kafka")}
	b.start(t)
	var err error
	b.cl, err = kgo.NewClient(kgo.SeedBrokers(b.addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordDeliveryTimeout(5*time.Second), kgo.RetryTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	b.adm = kadm.NewClient(b.cl)
	t.Cleanup(func() {
		b.cl.Close()
		b.stop()
	})
	return b
}

func (b *chaosKafka) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)) }

// start starts the broker; the first start creates the topic, later ones load it from the directory.
func (b *chaosKafka) start(t *testing.T) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var k *kfake.Cluster
		k, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(b.port), kfake.DataDir(b.dir), kfake.SeedTopics(10, "orders"))
		if err == nil {
			b.mu.Lock()
			b.k = k
			b.mu.Unlock()
			return
		}
		if time.Now().After(deadline) {
			break
		}
	}
	t.Fatalf("starting kfake on port %d: %v", b.port, err)
}

// stop closes the broker: its port refuses connections until start.
func (b *chaosKafka) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.k != nil {
		b.k.Close()
		b.k = nil
	}
}

func (b *chaosKafka) trigger() ebbv1.Trigger {
	return ebbv1.Trigger{Name: "lag", Type: "kafka", Metadata: map[string]string{
		"bootstrapServers": b.addr(), "consumerGroup": "workers", "topic": "orders", "lagThreshold": strconv.Itoa(chaosThreshold),
	}}
}

func (b *chaosKafka) set(ctx context.Context, n int64) error {
	if more := n - b.end; more > 0 {
		recs := make([]*kgo.Record, more)
		for i := range recs {
			recs[i] = &kgo.Record{Topic: "orders", Partition: 0, Value: []byte("order")}
		}
		if err := b.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return err
		}
		b.end = n
	}
	var os kadm.Offsets
	for p := range int32(10) {
		at := int64(0)
		if p == 0 {
			at = b.end - n
		}
		os.Add(kadm.Offset{Topic: "orders", Partition: p, At: at, LeaderEpoch: -1})
	}
	resp, err := b.adm.CommitOffsets(ctx, "workers", os)
	if err == nil {
		err = resp.Error()
	}
	return err
}

// chaosRabbitMQ is a durable queue on a rabbitmq-server of the test's own (testenv.RabbitMQNode), which
// the scenario stops with SIGTERM and starts again with the same data: the backlog, persistent messages,
// must still be there. The test sets the backlog over a connection of its own, dialled again after a
// restart.
type chaosRabbitMQ struct {
	node  *testenv.RabbitMQNode
	queue string

	mu    sync.Mutex // guards conn and ch, which set replaces after a restart
	conn  *amqp.Connection
	ch    *amqp.Channel
	depth int64
}

// newChaosRabbitMQ starts the node, declares the queue and creates, in ct's namespace, the Secret and
// the TriggerAuthentication "rabbit" with the node's AMQP URL.
func newChaosRabbitMQ(t *testing.T, ct *chaosTarget) *chaosRabbitMQ {
	t.Helper()
	b := &chaosRabbitMQ{node: testenv.StartRabbitMQNode(t), queue: testenv.UniqueName(t, "chaos")}
	t.Cleanup(b.closeConn)
	ch, err := b.channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(b.queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := ct.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "rabbit", Namespace: ct.ns}, StringData: map[string]string{"host": b.node.URL}}); err != nil {
		t.Fatal(err)
	}
	if err := ct.c.Create(ctx, &ebbv1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "rabbit", Namespace: ct.ns},
		Spec: ebbv1.TriggerAuthenticationSpec{SecretTargetRef: []ebbv1.SecretTargetRef{{Parameter: "host", Name: "rabbit", Key: "host"}}}}); err != nil {
		t.Fatal(err)
	}
	return b
}

// channel returns the test's channel, with publisher confirms, dialling the node again when the last
// one was closed (by a stop).
func (b *chaosRabbitMQ) channel() (*amqp.Channel, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil && !b.ch.IsClosed() {
		return b.ch, nil
	}
	if b.conn != nil {
		_ = b.conn.Close()
		b.conn = nil
	}
	conn, err := amqp.DialConfig(b.node.URL, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	b.conn, b.ch = conn, ch
	return ch, nil
}

func (b *chaosRabbitMQ) closeConn() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil {
		_ = b.conn.Close()
		b.conn, b.ch = nil, nil
	}
}

// stop stops the server; every connection, ebb's too, is closed.
func (b *chaosRabbitMQ) stop() { b.node.Stop() }

// start starts the server again with the same data and checks that the backlog survived.
func (b *chaosRabbitMQ) start(t *testing.T) {
	t.Helper()
	b.node.Start()
	ch, err := b.channel()
	if err != nil {
		t.Fatalf("dialling the restarted server: %v", err)
	}
	q, err := ch.QueueDeclarePassive(b.queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("the durable queue after the restart: %v", err)
	}
	if int64(q.Messages) != b.depth {
		t.Errorf("after the restart the queue holds %d messages, want the %d from before", q.Messages, b.depth)
	}
}

func (b *chaosRabbitMQ) trigger() ebbv1.Trigger {
	return ebbv1.Trigger{Name: "depth", Type: "rabbitmq", AuthenticationRef: &ebbv1.AuthenticationRef{Name: "rabbit"},
		Metadata: map[string]string{"queueName": b.queue, "mode": "QueueLength", "value": strconv.Itoa(chaosThreshold), "protocol": "amqp"}}
}

// set publishes persistent messages, each confirmed (so that it is on disk before a stop), or takes
// messages off the queue, until it holds n.
func (b *chaosRabbitMQ) set(ctx context.Context, n int64) error {
	ch, err := b.channel()
	if err != nil {
		return err
	}
	for ; b.depth < n; b.depth++ {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", b.queue, false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("order")})
		if err != nil {
			return err
		}
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			return fmt.Errorf("publish to %s not confirmed: %w", b.queue, err)
		}
		if !ok {
			return fmt.Errorf("publish to %s refused (nack)", b.queue)
		}
	}
	for ; b.depth > n; b.depth-- {
		_, ok, err := ch.Get(b.queue, true)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("queue %s is empty, want %d messages", b.queue, b.depth)
		}
	}
	return nil
}

// chaosNATS is a JetStream stream with file storage and the durable consumer "workers" on a nats-server
// of the test's own, which it can kill and start again with the same store.
type chaosNATS struct {
	srv     *testenv.NATSServer
	stream  string
	js      jetstream.JetStream
	cons    jetstream.Consumer
	backlog int64
}

func newChaosNATS(t *testing.T) *chaosNATS {
	t.Helper()
	b := &chaosNATS{srv: testenv.StartNATS(t, testenv.NATSOptions{}), stream: testenv.UniqueName(t, "chaos")}
	nc, err := nats.Connect(b.srv.URL, nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if b.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: b.stream, Subjects: []string{b.stream + ".>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if b.cons, err = b.js.CreateConsumer(ctx, b.stream, jetstream.ConsumerConfig{Durable: "workers", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *chaosNATS) trigger() ebbv1.Trigger {
	return ebbv1.Trigger{Name: "pending", Type: "nats-jetstream", Metadata: map[string]string{
		"natsServerURL": b.srv.URL, "stream": b.stream, "consumer": "workers", "lagThreshold": strconv.Itoa(chaosThreshold),
	}}
}

func (b *chaosNATS) set(ctx context.Context, n int64) error {
	for ; b.backlog < n; b.backlog++ {
		if _, err := b.js.Publish(ctx, b.stream+".orders", []byte("order")); err != nil {
			return err
		}
	}
	for b.backlog > n {
		batch, err := b.cons.Fetch(int(min(b.backlog-n, 500)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return err
		}
		for m := range batch.Messages() {
			if err := m.DoubleAck(ctx); err != nil {
				return err
			}
			b.backlog--
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("fetch from %s: %w", b.stream, err)
		}
	}
	return nil
}
