package natsjetstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/natsjetstream"
)

// fullSample samples past the freshness window (half the 1 s interval): a new reading, Progress included.
func fullSample(t *testing.T, s scalers.Scaler) scalers.Sample {
	t.Helper()
	time.Sleep(600 * time.Millisecond)
	smp, err := sampleErr(t, s)
	if err != nil {
		t.Fatal(err)
	}
	return smp
}

// Progress follows the consumer's ack floor: the first sample is a baseline, acknowledged deliveries add
// up in Advanced, deliveries left unacknowledged do not move it (what the guard counts as stalled while
// messages wait), and a consumer recreated from the start of the stream is a rewind.
func TestProgress(t *testing.T) {
	url := sharedURL(t)
	j := js(t, url)
	name := testenv.UniqueName(t, "progress")
	stream(t, j, name, 1)
	c := consumer(t, j, name, "workers", 1)
	publish(t, j, name, 10)
	p := natsjetstream.NewPool()
	defer p.Close()
	s := newTrigger(t, p, md("natsServerURL", url, "stream", name, "consumer", "workers"), nil)

	if got := fullSample(t, s).Progress; got == nil || !got.Offsets || !got.Baseline {
		t.Fatalf("first Progress %+v, want an offsets baseline", got)
	}
	for _, m := range take(t, c, 3) {
		if err := m.DoubleAck(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	got := fullSample(t, s)
	if p := got.Progress; p.Baseline || p.Advanced != 3 || p.Elapsed <= 0 {
		t.Errorf("after 3 acks: Progress %+v, want Advanced 3", p)
	}
	take(t, c, 2) // delivered, never acknowledged
	got = fullSample(t, s)
	if p := got.Progress; p.Baseline || p.Advanced != 0 || got.Values[0] != 7 {
		t.Errorf("after 2 deliveries without acks: value %v, Progress %+v; want 7 and Advanced 0", got.Values, p)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := j.DeleteConsumer(ctx, name, "workers"); err != nil {
		t.Fatal(err)
	}
	consumer(t, j, name, "workers", 1)
	got = fullSample(t, s)
	if p := got.Progress; p.RewoundPartitions != 1 || len(p.Rewound) != 1 || p.Terms().Position != "ack floor" || p.Terms().Places != "" {
		t.Errorf("after the consumer was recreated: Progress %+v, want a rewind", p)
	} else {
		t.Logf("rewound: %s", p.Rewound[0])
	}
}

// A dead-letter stream that captures the server's max-delivery advisories: its depth and inflow come
// through the dead-letter reader, over the client protocol and from /jsz, in the reading the triggers
// share (one STREAM.INFO more per tick, nothing more for /jsz).
func TestDeadLetter(t *testing.T) {
	srv := testenv.StartNATS(t, testenv.NATSOptions{})
	j := js(t, srv.URL)
	stream(t, j, "work", 1)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := j.CreateStream(ctx, jetstream.StreamConfig{Name: "dlq", Subjects: []string{"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.work.*"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	c, err := j.CreateConsumer(ctx, "work", jetstream.ConsumerConfig{Durable: "workers", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 1, AckWait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}

	cnt := newCounter()
	p := natsjetstream.NewPool(natsjetstream.ObserveRequests(cnt.observe))
	defer p.Close()
	trigger := newTrigger(t, p, md("natsServerURL", srv.URL, "stream", "work", "consumer", "workers"), nil)
	readers := map[string]scalers.DeadLetterReader{}
	for mode, conn := range map[string][]string{"client": {"natsServerURL", srv.URL}, "monitoring": {"natsServerMonitoringEndpoint", srv.Monitor}} {
		r, err := p.NewDeadLetter(scalers.Config{TriggerName: "deadLetter", PollingInterval: time.Second, Metadata: md(conn[0], conn[1], "stream", "dlq")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.(interface{ Close() error }).Close() })
		readers[mode] = r
	}
	read := func(mode string) scalers.DeadLetters {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		got, err := readers[mode].Read(ctx)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		return got
	}
	for mode := range readers {
		if got := read(mode); got.Depth != 0 {
			t.Errorf("%s: empty dead-letter stream reads %+v", mode, got)
		}
	}

	// Five messages, each delivered once and never acknowledged: after the ack wait, the server finds
	// them at their delivery limit when a consumer next pulls, and sends a max-delivery advisory for each
	// into the dead-letter stream.
	publish(t, j, "work", 5)
	take(t, c, 5)
	start := time.Now()
	for mode := range readers {
		eventually(t, 10*time.Second, func() error {
			if b, err := c.Fetch(1, jetstream.FetchMaxWait(300*time.Millisecond)); err == nil {
				for range b.Messages() {
				}
			}
			if got := read(mode); got.Depth != 5 {
				return errorf("%s: depth %v, want 5", mode, got.Depth)
			}
			return nil
		})
	}
	t.Logf("5 advisories captured in %s", time.Since(start).Round(time.Millisecond))

	time.Sleep(600 * time.Millisecond)
	cnt.take()
	publishAdvisories(t, j, 10)
	time.Sleep(600 * time.Millisecond)
	for mode := range readers {
		got := read(mode)
		if got.Depth != 15 || got.InflowPerSecond <= 0 {
			t.Errorf("%s: after 10 more: %+v, want depth 15 and an inflow", mode, got)
		}
		t.Logf("%s: %+v", mode, got)
	}
	if _, err := sampleErr(t, trigger); err != nil {
		t.Fatal(err)
	}
	if got := cnt.take(); got["STREAM.INFO"] != 1 || got["GET /jsz"] != 1 || got["CONSUMER.INFO"] != 1 {
		t.Errorf("a tick of a trigger and two dead-letter readers: %s, want CONSUMER.INFO=1 STREAM.INFO=1 GET /jsz=1", describe(got))
	}
}

// publishAdvisories stores n messages in the dead-letter stream as if the server had sent them.
func publishAdvisories(t *testing.T, j jetstream.JetStream, n int) {
	t.Helper()
	for range n {
		if _, err := j.Publish(t.Context(), "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.work.workers", []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
}
