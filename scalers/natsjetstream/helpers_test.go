package natsjetstream_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/natsjetstream"
)

// sharedURL is the machine's NATS server (hack/ensure-nats.sh); the test fails when it is not there.
func sharedURL(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(testenv.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	testenv.RequireTCP(t, "NATS", u.Host, "hack/ensure-nats.sh")
	return testenv.NATSURL
}

// js connects an outside client to urls (comma-separated) for the test's own setup.
func js(t *testing.T, urls string, opts ...nats.Option) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", urls, err)
	}
	t.Cleanup(nc.Close)
	j, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// stream creates a stream of replicas on subject <name>.> and deletes it when the test ends.
func stream(t *testing.T, j jetstream.JetStream, name string, replicas int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := j.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Replicas: replicas, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatalf("create stream %s: %v", name, err)
	}
	t.Cleanup(func() { _ = j.DeleteStream(context.Background(), name) })
}

// consumer creates a durable pull consumer with explicit acks.
func consumer(t *testing.T, j jetstream.JetStream, streamName, name string, replicas int) jetstream.Consumer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := j.CreateConsumer(ctx, streamName, jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy, Replicas: replicas, AckWait: time.Minute})
	if err != nil {
		t.Fatalf("create consumer %s/%s: %v", streamName, name, err)
	}
	return c
}

// publish publishes n messages to the stream and waits for each acknowledgement.
func publish(t *testing.T, j jetstream.JetStream, streamName string, n int) {
	t.Helper()
	for i := range n {
		if _, err := j.Publish(t.Context(), streamName+".m", fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatalf("publish to %s: %v", streamName, err)
		}
	}
}

// take fetches n messages from c without acknowledging them.
func take(t *testing.T, c jetstream.Consumer, n int) []jetstream.Msg {
	t.Helper()
	batch, err := c.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for m := range batch.Messages() {
		out = append(out, m)
	}
	if len(out) != n {
		t.Fatalf("fetched %d messages, want %d (%v)", len(out), n, batch.Error())
	}
	return out
}

func md(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// newTrigger builds a trigger of pool, closed when the test ends.
func newTrigger(t *testing.T, p *natsjetstream.Pool, meta, auth map[string]string) scalers.Scaler {
	t.Helper()
	s, err := p.New(scalers.Config{TriggerName: "t", Metadata: meta, Auth: auth, PollingInterval: time.Second})
	if err != nil {
		t.Fatalf("New(%v): %v", meta, err)
	}
	t.Cleanup(func() { _ = s.(interface{ Close() error }).Close() })
	return s
}

func sampleErr(t *testing.T, s scalers.Scaler) (scalers.Sample, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	return s.Sample(ctx)
}

// eventually retries check until it passes or timeout ends, then fails with its last error.
func eventually(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// valueIs checks that s samples want.
func valueIs(s scalers.Scaler, want float64) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		smp, err := s.Sample(ctx)
		if err != nil {
			return err
		}
		if smp.Values[0] != want {
			return fmt.Errorf("value %v, want %v", smp.Values[0], want)
		}
		return nil
	}
}

func isErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want one wrapping %q", err, want)
	}
}

// counter counts the requests a pool observes, by kind.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func newCounter() *counter { return &counter{n: map[string]int{}} }

func (c *counter) observe(_, request string, _ time.Duration, _ error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[request]++
}

// take returns the counts so far and starts again from zero.
func (c *counter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.n
	c.n = map[string]int{}
	return out
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func describe(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// tick samples every trigger at once, as the poller does, and fails on any error.
func tick(t *testing.T, triggers []scalers.Scaler) []float64 {
	t.Helper()
	out := make([]float64, len(triggers))
	errs := make([]error, len(triggers))
	var wg sync.WaitGroup
	for i, s := range triggers {
		wg.Go(func() {
			smp, err := sampleErr(t, s)
			if err == nil {
				out[i] = smp.Values[0]
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("tick: %v", err)
	}
	return out
}

// natsOpts are the test client's options for the same credentials a trigger gets.
func natsOpts(auth map[string]string) []nats.Option {
	switch {
	case auth["username"] != "":
		return []nats.Option{nats.UserInfo(auth["username"], auth["password"])}
	case auth["token"] != "":
		return []nats.Option{nats.Token(auth["token"])}
	case auth["nkeySeed"] != "":
		kp, err := nkeys.FromSeed([]byte(auth["nkeySeed"]))
		if err != nil {
			panic(err)
		}
		pub, _ := kp.PublicKey()
		return []nats.Option{nats.Nkey(pub, kp.Sign)}
	}
	return nil
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
