package testenv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ebbscale/ebb/internal/dev/testenv"
)

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// RabbitMQ over AMQP with publisher confirms, and its management API seeing the same queue depth.
func TestRabbitMQ(t *testing.T) {
	testenv.RequireTCP(t, "RabbitMQ", hostOf(t, testenv.RabbitMQURL), "hack/ensure-rabbitmq.sh")
	conn, err := amqp.Dial(testenv.RabbitMQURL)
	if err != nil {
		t.Fatalf("dial RabbitMQ: %v", err)
	}
	defer func() { _ = conn.Close() }()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	queue := testenv.UniqueName(t, "testenv")
	if _, err := ch.QueueDeclare(queue, false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = ch.QueueDelete(queue, false, false, false) })
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	const n = 5
	for i := range n {
		dc, err := ch.PublishWithDeferredConfirmWithContext(t.Context(), "", queue, false, false,
			amqp.Publishing{Body: fmt.Appendf(nil, "m%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := dc.WaitContext(t.Context()); !ok || err != nil {
			t.Fatalf("publish %d not confirmed: %v", i, err)
		}
	}
	q, err := ch.QueueDeclarePassive(queue, false, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != n {
		t.Errorf("passive declare: %d messages, want %d", q.Messages, n)
	}

	// The management API sees the depth within its (fast, per ensure-rabbitmq.sh) statistics interval.
	api, err := url.Parse(testenv.RabbitMQHTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	var depth int
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		depth = mgmtQueueDepth(t, api, "/", queue)
		if depth == n {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if depth != n {
		t.Errorf("management API: queue depth %d, want %d", depth, n)
	}

	var got []string
	for range n {
		d, ok, err := ch.Get(queue, true)
		if err != nil || !ok {
			t.Fatalf("get: ok=%v err=%v", ok, err)
		}
		got = append(got, string(d.Body))
	}
	if diff := cmp.Diff(got, []string{"m0", "m1", "m2", "m3", "m4"}); diff != "" {
		t.Errorf("consumed (-got +want):\n%s", diff)
	}
}

// mgmtQueueDepth returns the queue's depth as the management API reports it, or -1 while it does not
// know the queue yet.
func mgmtQueueDepth(t *testing.T, api *url.URL, vhost, queue string) int {
	t.Helper()
	base := *api
	base.User = nil
	path := "/api/queues/" + url.PathEscape(vhost) + "/" + url.PathEscape(queue)
	u := strings.TrimSuffix(base.String(), "/") + path
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	pass, _ := api.User.Password()
	req.SetBasicAuth(api.User.Username(), pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("management API not reachable (%v); run hack/ensure-rabbitmq.sh", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode == http.StatusNotFound {
		return -1 // not in the management database yet
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("management API: GET %s: %s", path, resp.Status)
	}
	var body struct {
		Messages int `json:"messages"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Messages
}

// NATS JetStream: a stream, acknowledged publishes, a pull consumer that sees them pending and reads them.
func TestNATSJetStream(t *testing.T) {
	testenv.RequireTCP(t, "NATS", hostOf(t, testenv.NATSURL), "hack/ensure-nats.sh")
	nc, err := nats.Connect(testenv.NATSURL)
	if err != nil {
		t.Fatalf("connect NATS: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	name := testenv.UniqueName(t, "testenv")
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatalf("create stream (is JetStream enabled? run hack/ensure-nats.sh): %v", err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
	const n = 5
	for i := range n {
		if _, err := js.Publish(ctx, name+".orders", fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "workers", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumPending != n {
		t.Errorf("consumer pending = %d, want %d", info.NumPending, n)
	}
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, string(m.Data()))
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(got, []string{"m0", "m1", "m2", "m3", "m4"}); diff != "" {
		t.Errorf("fetched (-got +want):\n%s", diff)
	}
}
