package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ebbscale/ebb/internal/dev/devkafka"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

func startKafka(t *testing.T) string {
	t.Helper()
	c, err := devkafka.Start(devkafka.Config{DefaultPartitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// produceKafka produces keys to topic, acknowledged.
func produceKafka(t *testing.T, addr, topic string, keys []string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(keys))
	for i, k := range keys {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte("payload " + k)}
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// readKafka tallies the records of a topic by key, from its start, in the background.
func readKafka(t *testing.T, addr, topic string) *tally {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := newTally()
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(rec *kgo.Record) { r.add(string(rec.Key)) })
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait(); cl.Close() })
	return r
}

// TestKafka: every message produced is processed once into the results or dead-lettered, about the
// fail ratio of them dead-lettered, and a duplicate is skipped.
func TestKafka(t *testing.T) {
	addr := startKafka(t)
	topic := testenv.UniqueName(t, "orders")
	keys := keysN("k", 400)
	produceKafka(t, addr, topic, keys)
	produceKafka(t, addr, topic, keys[:20]) // duplicates

	results, dlq := readKafka(t, addr, topic+".results"), readKafka(t, addr, topic+".dlq")
	out, stop := runInProcess(t, config{Broker: "kafka", Brokers: addr, Topic: topic, Group: "g", FailRatio: 0.25,
		DeadLetter: topic + ".dlq", Results: topic + ".results", ID: "one", Prefetch: 50, LogEvery: 100 * time.Millisecond})
	waitFor(t, 30*time.Second, "every key in the results or the dead letters", func() bool {
		return results.distinct()+dlq.distinct() >= len(keys)
	})
	waitFor(t, 10*time.Second, "the duplicates counted", func() bool { return strings.Contains(out.String(), "duplicates=20") })
	stop()

	checkOutcomes(t, keys, results, dlq, 0.25)
	if !strings.Contains(out.String(), "consumer: processed=") {
		t.Errorf("no progress line in\n%s", out.String())
	}
}

// TestKafkaRate: --rate bounds the processing rate of a replica, loosely.
func TestKafkaRate(t *testing.T) {
	addr := startKafka(t)
	topic := testenv.UniqueName(t, "rate")
	produceKafka(t, addr, topic, keysN("r", 500))
	results := readKafka(t, addr, topic+".results")
	_, stop := runInProcess(t, config{Broker: "kafka", Brokers: addr, Topic: topic, Group: "g", Rate: 40,
		DeadLetter: topic + ".dlq", Results: topic + ".results", ID: "one", Prefetch: 10, LogEvery: time.Second})
	waitFor(t, 20*time.Second, "a first result", func() bool { return results.distinct() > 0 })
	start := time.Now()
	first := results.distinct()
	time.Sleep(2 * time.Second)
	n := results.distinct() - first
	stop()
	want := 40 * time.Since(start).Seconds()
	if float64(n) < want*0.4 || float64(n) > want*1.5+10 {
		t.Errorf("%d processed in %v at --rate 40, want about %.0f", n, time.Since(start).Round(time.Millisecond), want)
	}
}

// TestKafkaSIGTERM: a replica stopped mid-stream exits 0 soon, having committed what it processed, and
// the next one processes the rest: every key ends in the results.
func TestKafkaSIGTERM(t *testing.T) {
	addr := startKafka(t)
	topic := testenv.UniqueName(t, "term")
	keys := keysN("s", 300)
	produceKafka(t, addr, topic, keys)
	results := readKafka(t, addr, topic+".results")
	args := []string{"--broker", "kafka", "--brokers", addr, "--topic", topic, "--group", "g", "--rate", "200",
		"--results", topic + ".results", "--log-every", "200ms"}

	first := startProcess(t, append(args, "--id", "first")...)
	waitFor(t, 30*time.Second, "the first replica to process some", func() bool { return results.distinct() >= 50 })
	took := first.terminate(t)
	if took > 20*time.Second {
		t.Errorf("stopping took %v", took)
	}
	processedByFirst := results.distinct()
	if processedByFirst >= len(keys) {
		t.Fatalf("the first replica processed everything before SIGTERM; nothing tested")
	}
	second := startProcess(t, append(args, "--id", "second")...)
	waitFor(t, 30*time.Second, fmt.Sprintf("all %d keys in the results", len(keys)), func() bool {
		return results.distinct() >= len(keys)
	})
	second.terminate(t)
	_, got := results.snapshot()
	for _, k := range keys {
		if got[k] == 0 {
			t.Errorf("key %s never processed", k)
		}
	}
	t.Logf("first replica: %d keys, stopped in %v; results records: %d for %d keys", processedByFirst, took, func() int { n, _ := results.snapshot(); return n }(), len(got))
}
