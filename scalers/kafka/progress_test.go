package kafka_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/kafka"
)

// fullSample takes a new sample, Progress included.
func fullSample(t *testing.T, s scalers.Scaler) scalers.Sample {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	time.Sleep(60 * time.Millisecond) // past the freshness window (half the 100 ms interval): a new reading
	got, err := s.Sample(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// fullRead reads a dead-letter topic past the freshness window, as fullSample samples a trigger.
func fullRead(t *testing.T, r scalers.DeadLetterReader) scalers.DeadLetters {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	time.Sleep(60 * time.Millisecond)
	got, err := r.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// Progress follows the group's committed offsets from one sample to the next: the first is a baseline,
// then forward moves add up in Advanced and a move backwards is named in Rewound.
func TestProgress(t *testing.T) {
	f := newFixture(t, map[string]int32{"orders": 2})
	f.produce("orders", 0, 50)
	f.produce("orders", 1, 50)
	f.commit("g", "orders", 0, 10)
	f.commit("g", "orders", 1, 10)
	s := newScaler(t, kafka.NewPool(), map[string]string{"bootstrapServers": f.addrs, "consumerGroup": "g", "topic": "orders"})

	steps := []struct {
		name   string
		commit func()
		want   scalers.Progress
	}{
		{"baseline", func() {}, scalers.Progress{Offsets: true, Baseline: true}},
		{"unmoved", func() {}, scalers.Progress{Offsets: true}},
		{"advanced", func() { f.commit("g", "orders", 0, 15); f.commit("g", "orders", 1, 17) }, scalers.Progress{Offsets: true, Advanced: 5 + 7}},
		{"rewound", func() { f.commit("g", "orders", 1, 2); f.commit("g", "orders", 0, 20) }, scalers.Progress{Offsets: true, Advanced: 5, Rewound: []string{"orders/1 by 15"}, RewoundPartitions: 1}},
	}
	for _, st := range steps {
		st.commit()
		got := fullSample(t, s)
		if got.Progress == nil {
			t.Fatalf("%s: no Progress", st.name)
		}
		if !got.Progress.Baseline && got.Progress.Elapsed <= 0 {
			t.Errorf("%s: elapsed %s, want the time between the readings", st.name, got.Progress.Elapsed)
		}
		got.Progress.Elapsed = 0
		if diff := cmp.Diff(*got.Progress, st.want); diff != "" {
			t.Errorf("%s: progress (-got +want):\n%s", st.name, diff)
		}
	}
}

// A dead-letter reader of a topic reports its depth (end - start offsets, so deleted records do not count)
// and its inflow per second between samples.
func TestDeadLetterTopic(t *testing.T) {
	f := newFixture(t, map[string]int32{"orders.dlq": 3})
	pool := kafka.NewPool()
	s, err := pool.NewDeadLetter(scalers.Config{TriggerName: "deadLetter", PollingInterval: 100 * time.Millisecond,
		Metadata: map[string]string{"bootstrapServers": f.addrs, "topic": "orders.dlq"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.(interface{ Close() error }).Close()
	if got, want := s.Name(), `topic "orders.dlq"`; got != want {
		t.Errorf("name = %s, want %s", got, want)
	}
	f.produce("orders.dlq", 0, 4)
	f.produce("orders.dlq", 2, 6)
	start := time.Now()
	first := fullRead(t, s)
	if first.Depth != 10 || first.InflowPerSecond != 0 {
		t.Fatalf("first sample = %+v, want depth 10 and inflow 0 (no earlier sample)", first)
	}

	time.Sleep(200 * time.Millisecond)
	f.produce("orders.dlq", 1, 30)
	// Records deleted from the start leave the depth; the inflow counts what arrived at the end.
	var del kadm.Offsets
	del.Add(kadm.Offset{Topic: "orders.dlq", Partition: 2, At: 5, LeaderEpoch: -1})
	if resp, err := f.adm.DeleteRecords(context.Background(), del); err != nil || resp.Error() != nil {
		t.Fatalf("DeleteRecords: %v %v", err, resp.Error())
	}
	second := fullRead(t, s)
	elapsed := time.Since(start).Seconds()
	if second.Depth != 4+30+1 {
		t.Errorf("depth = %v, want 35", second.Depth)
	}
	// 30 records over the time between the starts of the two readings: at least the 0.2 s slept, at most
	// the time since before the first.
	if in := second.InflowPerSecond; in < 30/elapsed || in > 30/0.2 {
		t.Errorf("inflow = %v/s, want 30 records over 0.2..%.2f s", in, elapsed)
	}
}

func TestDeadLetterTopicKeys(t *testing.T) {
	pool := kafka.NewPool()
	_, err := pool.NewDeadLetter(scalers.Config{Metadata: map[string]string{"bootstrapServers": "127.0.0.1:1", "consumerGroup": "g", "lagThreshold": "5"}})
	var fe *scalers.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error = %v, want field errors", err)
	}
	for _, want := range []string{"consumerGroup: not a key of a kafka dead-letter topic", "lagThreshold: not a key", "topic: required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), `"-"`) {
		t.Errorf("error %q shows the internal placeholder group", err)
	}
}

// A trigger without a topic follows every topic its group commits: when the group starts on a second
// topic the partition list changes, and the moves on the first are still counted (the second's first
// commits are not progress: there is nothing to compare them with).
func TestProgressWhenPartitionsChange(t *testing.T) {
	f := newFixture(t, map[string]int32{"a": 2, "b": 1})
	f.produce("a", 0, 20)
	f.produce("b", 0, 20)
	f.commit("g", "a", 0, 5)
	s := newScaler(t, kafka.NewPool(), map[string]string{"bootstrapServers": f.addrs, "consumerGroup": "g"})
	fullSample(t, s) // baseline
	f.commit("g", "a", 0, 8)
	f.commit("g", "b", 0, 4)
	got := fullSample(t, s).Progress
	if got == nil || got.Advanced != 3 || got.RewoundPartitions != 0 {
		t.Fatalf("progress = %+v, want 3 advanced on a/0 and nothing for b's first commit", got)
	}
	f.commit("g", "b", 0, 10)
	if got := fullSample(t, s).Progress; got == nil || got.Advanced != 6 {
		t.Fatalf("progress = %+v, want 6 advanced on b/0", got)
	}
}
