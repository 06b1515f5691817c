package e2e_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/controller"
	"github.com/ebbscale/ebb/internal/dev/testenv"
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

// A JetStream consumer with a backlog whose ack floor stops moving is stalled: the guard trips and
// replicas stop growing though the backlog grows; once acknowledgements resume it releases and the HPA
// scales up.
func TestGuardStalledNATS(t *testing.T) {
	u, err := url.Parse(testenv.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	testenv.RequireTCP(t, "NATS", u.Host, "hack/ensure-nats.sh")
	b := newNATSBacklog(t, testenv.NATSURL)
	g := newGuardEnv(t, 1)
	ctx := t.Context()
	b.set(t, 15)
	tr := b.trigger()
	if err := g.c.Create(ctx, &ebbv1.ScaledConsumer{
		ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: g.ns},
		Spec: ebbv1.ScaledConsumerSpec{
			ScaleTargetRef:  ebbv1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "consumer"},
			MinReplicas:     ptr[int32](1),
			MaxReplicas:     ptr[int32](8),
			PollingInterval: &metav1.Duration{Duration: 500 * time.Millisecond},
			Triggers:        []ebbv1.Trigger{tr},
			Guard:           &ebbv1.Guard{StalledAfterPolls: ptr[int32](6), ReleaseAfter: &metav1.Duration{Duration: 5 * time.Second}},
		},
	}); err != nil {
		t.Fatal(err)
	}

	// Healthy consumers: every 400 ms 10 more messages arrive and 10 are acknowledged; the backlog stays
	// near 15 and the HPA gives 2 replicas.
	var mu sync.Mutex
	step := int64(10) // what the consumers acknowledge per round; 0 while wedged
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for runCtx.Err() == nil {
			mu.Lock()
			if step > 0 {
				b.set(t, b.backlog+10)
				b.set(t, b.backlog-step)
			}
			mu.Unlock()
			select {
			case <-runCtx.Done():
			case <-time.After(400 * time.Millisecond):
			}
		}
	})
	t.Cleanup(func() { stop(); wg.Wait() })
	g.waitHealth(30*time.Second, metav1.ConditionTrue, controller.ReasonHealthy)
	g.waitFor(30*time.Second, "2 replicas on a backlog near 15", func() (bool, string) { return g.replicas() == 2, fmt.Sprintf("%d replicas", g.replicas()) })

	// Wedged: nothing is acknowledged while the backlog stays; after 6 polls the consumer is stalled.
	mu.Lock()
	step = 0
	mu.Unlock()
	g.waitHealth(30*time.Second, metav1.ConditionFalse, controller.ReasonStalled)
	if c := g.health(); !strings.Contains(c.Message, "holding scale-up at 2 replicas") || !strings.Contains(c.Message, `trigger "pending"`) {
		t.Errorf("stalled message = %q", c.Message)
	}
	// The backlog grows to 80 (8 replicas' worth); the replicas stay at 2.
	mu.Lock()
	b.set(t, 80)
	mu.Unlock()
	g.holds(6*time.Second, 2, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return b.backlog > 50, fmt.Sprintf("backlog %d", b.backlog)
	})

	// Acknowledgements resume, 2 per round against 10 arriving: the backlog stays high, the consumer is no
	// longer stalled; the guard releases after 5 s and the HPA scales up on the backlog.
	mu.Lock()
	step = 2
	mu.Unlock()
	g.waitHealth(60*time.Second, metav1.ConditionTrue, controller.ReasonHealthy)
	g.waitFor(60*time.Second, "the HPA scales up again", func() (bool, string) {
		n, hi := g.replicas(), g.hpaMax()
		return n >= 5 && hi == 8, fmt.Sprintf("%d replicas, HPA maxReplicas %d", n, hi)
	})
}
