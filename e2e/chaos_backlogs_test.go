package e2e_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
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
	"github.com/ebbscale/ebb/internal/dev/tcprelay"
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

// chaosRabbitMQ is a queue on the machine's RabbitMQ that ebb reaches through a relay of the test's own
// (tcprelay): stopping the relay cuts every connection ebb has and refuses new ones, which is what ebb
// sees of a stopped server, without stopping the server other tests share. The test itself sets the
// backlog over a direct connection.
type chaosRabbitMQ struct {
	queue, relayAddr string

	mu    sync.Mutex
	relay *tcprelay.Relay
	ch    *amqp.Channel
	depth int64
}

// newChaosRabbitMQ declares the queue, starts the relay and creates, in ct's namespace, the Secret and
// the TriggerAuthentication "rabbit" with the AMQP URL through the relay.
func newChaosRabbitMQ(t *testing.T, ct *chaosTarget) *chaosRabbitMQ {
	t.Helper()
	conn := testenv.DialRabbitMQ(t)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	b := &chaosRabbitMQ{queue: testenv.UniqueName(t, "chaos"), ch: ch}
	if _, err := ch.QueueDeclare(b.queue, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = ch.QueueDelete(b.queue, false, false, false) })
	u, err := url.Parse(testenv.RabbitMQURL)
	if err != nil {
		t.Fatal(err)
	}
	if b.relay, err = tcprelay.Start("127.0.0.1:0", u.Host); err != nil {
		t.Fatal(err)
	}
	b.relayAddr = b.relay.Addr()
	t.Cleanup(b.stop)
	u.Host = b.relayAddr
	ctx := t.Context()
	if err := ct.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "rabbit", Namespace: ct.ns}, StringData: map[string]string{"host": u.String()}}); err != nil {
		t.Fatal(err)
	}
	if err := ct.c.Create(ctx, &ebbv1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "rabbit", Namespace: ct.ns},
		Spec: ebbv1.TriggerAuthenticationSpec{SecretTargetRef: []ebbv1.SecretTargetRef{{Parameter: "host", Name: "rabbit", Key: "host"}}}}); err != nil {
		t.Fatal(err)
	}
	return b
}

// stop closes the relay and every connection through it.
func (b *chaosRabbitMQ) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.relay != nil {
		_ = b.relay.Close()
		b.relay = nil
	}
}

// start listens again on the same address.
func (b *chaosRabbitMQ) start(t *testing.T) {
	t.Helper()
	u, err := url.Parse(testenv.RabbitMQURL)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tcprelay.Start(b.relayAddr, u.Host)
	if err != nil {
		t.Fatalf("restarting the relay on %s: %v", b.relayAddr, err)
	}
	b.mu.Lock()
	b.relay = r
	b.mu.Unlock()
}

func (b *chaosRabbitMQ) trigger() ebbv1.Trigger {
	return ebbv1.Trigger{Name: "depth", Type: "rabbitmq", AuthenticationRef: &ebbv1.AuthenticationRef{Name: "rabbit"},
		Metadata: map[string]string{"queueName": b.queue, "mode": "QueueLength", "value": strconv.Itoa(chaosThreshold), "protocol": "amqp"}}
}

func (b *chaosRabbitMQ) set(ctx context.Context, n int64) error {
	for ; b.depth < n; b.depth++ {
		if err := b.ch.PublishWithContext(ctx, "", b.queue, false, false, amqp.Publishing{Body: []byte("order")}); err != nil {
			return err
		}
	}
	for ; b.depth > n; b.depth-- {
		_, ok, err := b.ch.Get(b.queue, true)
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
