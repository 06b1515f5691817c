package e2e_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/internal/testenv"
	"github.com/ebbscale/ebb/scalers/builtin"
)

// TestWholeLoopNATS runs the loop on a JetStream consumer's pending and ack-pending messages on the
// machine's nats-server (hack/ensure-nats.sh), through the ebb binary's own trigger registry.
func TestWholeLoopNATS(t *testing.T) {
	u, err := url.Parse(testenv.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	testenv.RequireTCP(t, "NATS", u.Host, "hack/ensure-nats.sh")
	runLoop(t, builtin.Registry(builtin.Options{}), newNATSBacklog(t, testenv.NATSURL))
}

// natsBacklog puts messages in a stream of its own for the durable pull consumer "workers": publishing
// adds pending messages, fetching and acknowledging takes them away.
type natsBacklog struct {
	url, stream string
	js          jetstream.JetStream
	cons        jetstream.Consumer
	backlog     int64
}

func newNATSBacklog(t *testing.T, natsURL string) *natsBacklog {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	b := &natsBacklog{url: natsURL, stream: testenv.UniqueName(t, "loop"), js: js}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: b.stream, Subjects: []string{b.stream + ".>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), b.stream) })
	if b.cons, err = js.CreateConsumer(ctx, b.stream, jetstream.ConsumerConfig{Durable: "workers", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *natsBacklog) trigger() ebbv1.Trigger {
	return ebbv1.Trigger{Name: "pending", Type: "nats-jetstream", Metadata: map[string]string{
		"natsServerURL": b.url, "stream": b.stream, "consumer": "workers", "lagThreshold": "10",
	}}
}

func (b *natsBacklog) set(t *testing.T, n int64) {
	t.Helper()
	for ; b.backlog < n; b.backlog++ {
		if _, err := b.js.Publish(t.Context(), b.stream+".orders", []byte("order")); err != nil {
			t.Fatal(err)
		}
	}
	for b.backlog > n {
		batch, err := b.cons.Fetch(int(min(b.backlog-n, 500)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			if err := m.DoubleAck(t.Context()); err != nil {
				t.Fatal(err)
			}
			b.backlog--
		}
		if err := batch.Error(); err != nil {
			t.Fatal(fmt.Errorf("fetch from %s: %w", b.stream, err))
		}
	}
}
