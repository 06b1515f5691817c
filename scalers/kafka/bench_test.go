package kafka_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/kafka"
)

// The benchmarks run kfake in the same process, so time, allocations and heap include the broker's side
// of every request; they compare like with like (ebb against the same requests sent directly, and N
// triggers against one). docs/benchmarks.md records the results.

// BenchmarkPartitionTick is one trigger's tick over one topic of 1,000 and 10,000 partitions ("ebb"),
// against the requests such a tick needs at the least, sent directly with franz-go over a warmed client
// ("raw": one OffsetFetch for the group, then one ListOffsets per partition leader, as ebb sends them).
// "ebb-vs-raw" alternates the two in one loop, so both see the same machine load, and reports their
// median times and the ratio of the medians (x-raw). Goal: x-raw at most 1.5 at 10,000 partitions.
func BenchmarkPartitionTick(b *testing.B) {
	for _, partitions := range []int32{1000, 10000} {
		b.Run(fmt.Sprintf("partitions=%d", partitions), func(b *testing.B) {
			lc := newLoadCluster(b, []string{"big"}, partitions, []string{"g"})
			b.Run("raw", func(b *testing.B) {
				raw := newRawTicker(b, lc, "g", "big", partitions)
				b.ReportAllocs()
				for b.Loop() {
					raw()
				}
			})
			b.Run("ebb", func(b *testing.B) {
				sample := newEbbTicker(b, lc, "g", "big", partitions)
				b.ReportAllocs()
				for b.Loop() {
					sample()
				}
			})
			b.Run("ebb-vs-raw", func(b *testing.B) {
				raw := newRawTicker(b, lc, "g", "big", partitions)
				sample := newEbbTicker(b, lc, "g", "big", partitions)
				var raws, ebbs []time.Duration
				for b.Loop() {
					start := time.Now()
					raw()
					mid := time.Now()
					sample()
					raws, ebbs = append(raws, mid.Sub(start)), append(ebbs, time.Since(mid))
				}
				r, e := median(raws), median(ebbs)
				b.ReportMetric(float64(r)/1e6, "raw-ms")
				b.ReportMetric(float64(e)/1e6, "ebb-ms")
				b.ReportMetric(float64(e)/float64(r), "x-raw")
			})
		})
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// newEbbTicker returns a function that samples one trigger on group and topic, after a first, warming
// sample.
func newEbbTicker(b *testing.B, lc *loadCluster, group, topic string, partitions int32) func() {
	pool := kafka.NewPool()
	b.Cleanup(pool.Close)
	// A polling interval this short makes the freshness window (half of it) zero: every Sample takes a
	// new reading, so the benchmark needs no sleep between ticks.
	s, err := pool.New(scalers.Config{
		TriggerName:     "lag",
		Metadata:        map[string]string{"bootstrapServers": lc.addrs, "consumerGroup": group, "topic": topic},
		PollingInterval: time.Nanosecond,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.(interface{ Close() error }).Close() })
	want := float64(2 * partitions) // 3 records per partition, committed at 1
	sample := func() {
		got, err := s.Sample(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if got.Values[0] != want {
			b.Fatalf("lag %v, want %v", got.Values[0], want)
		}
	}
	sample()
	return sample
}

// newRawTicker returns a function that sends what one tick of a trigger on group and topic needs, and
// nothing else, over a client warmed by a first tick (brokers, coordinator and leaders known).
func newRawTicker(b *testing.B, lc *loadCluster, group, topic string, partitions int32) func() {
	cl, err := kgo.NewClient(kgo.SeedBrokers(lc.c.ListenAddrs()...), kgo.MetadataMinAge(30*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	raw := func() { rawTick(b, cl, group, topic, partitions) }
	raw()
	return raw
}

// rawTick sends what one tick of a trigger on group and topic needs, and nothing else.
func rawTick(b *testing.B, cl *kgo.Client, group, topic string, partitions int32) {
	ctx := context.Background()
	of := kmsg.NewPtrOffsetFetchRequest()
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	of.Groups = append(of.Groups, rg)
	for _, shard := range cl.RequestSharded(ctx, of) {
		if shard.Err != nil {
			b.Fatal(shard.Err)
		}
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rt.Partitions = make([]kmsg.ListOffsetsRequestTopicPartition, 0, partitions)
	for p := range partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = -1
		rp.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	lo.Topics = append(lo.Topics, rt)
	for _, shard := range cl.RequestSharded(ctx, lo) {
		if shard.Err != nil {
			b.Fatal(shard.Err)
		}
		for _, t := range shard.Resp.(*kmsg.ListOffsetsResponse).Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}

// BenchmarkTriggers is a tick of 1, 100, 1,000 and 10,000 triggers on one cluster (three brokers, 10
// topics of 10 partitions, 10 groups; trigger i watches group i%10 and topic (i/10)%10), all sampling at
// once as the poller does. Besides time and allocations per tick it reports what the brokers saw per
// tick (requests/tick, of which Metadata by wall-clock minute in metadata/min), the connections the pool
// opened in all (conns), and what the pool and its triggers hold after a GC: heap (heap-MiB) and
// goroutines (including kfake's two per connection).
func BenchmarkTriggers(b *testing.B) {
	topics := make([]string, 10)
	for i := range topics {
		topics[i] = fmt.Sprintf("topic-%d", i)
	}
	groups := make([]string, 10)
	for i := range groups {
		groups[i] = fmt.Sprintf("group-%d", i)
	}
	lc := newLoadCluster(b, topics, 10, groups)
	// Triggers share a reading taken within half their polling interval (the freshness window), so ticks
	// are spaced by more than that. The controller's intervals are seconds; here an interval is a few
	// times one tick's length, enough for a tick's Sample calls to fall in one window on a busy machine
	// while the sleeps between ticks stay short.
	for _, tc := range []struct {
		n        int
		interval time.Duration
	}{{1, 4 * time.Millisecond}, {100, 50 * time.Millisecond}, {1000, 200 * time.Millisecond}, {10000, time.Second}} {
		n, interval := tc.n, tc.interval
		b.Run(fmt.Sprintf("triggers=%d", n), func(b *testing.B) {
			heapBefore, goroutinesBefore := heapAfterGC(), runtime.NumGoroutine()
			before := lc.counts()
			pool := kafka.NewPool()
			b.Cleanup(pool.Close)
			triggers := newTriggers(b, pool, lc, n, interval)
			if _, err := tick(context.Background(), triggers); err != nil { // cold: finds brokers and layout
				b.Fatal(err)
			}
			heap, goroutines := heapAfterGC()-heapBefore, runtime.NumGoroutine()-goroutinesBefore
			runtime.KeepAlive(triggers)

			var (
				warm      counts
				warmStart time.Time
			)
			b.ReportAllocs()
			first := true
			for b.Loop() {
				b.StopTimer()
				time.Sleep(interval/2 + time.Millisecond)
				if first {
					warm, warmStart, first = lc.counts(), time.Now(), false
				}
				b.StartTimer()
				if _, err := tick(context.Background(), triggers); err != nil {
					b.Fatal(err)
				}
			}
			requests, _ := lc.since(warm)
			_, conns := lc.since(before)
			b.ReportMetric(float64(requests["total"])/float64(b.N), "requests/tick")
			// Metadata comes only when a topic's layout is 30 s old (metadataRefresh), not with ticks.
			b.ReportMetric(float64(requests["Metadata"])/time.Since(warmStart).Minutes(), "metadata/min")
			b.ReportMetric(float64(conns), "conns")
			b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
			b.ReportMetric(float64(goroutines), "goroutines")
		})
	}
}

func heapAfterGC() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
