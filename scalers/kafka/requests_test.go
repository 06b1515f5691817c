package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/kafka"
)

// loadCluster is a three-broker kfake cluster that counts, as the brokers see them, the requests it
// serves (by key) and the connections it accepts. Topics are seeded, every partition holds records, and
// every group has committed an offset behind the end of every partition of every topic.
type loadCluster struct {
	c      *kfake.Cluster
	addrs  string
	topics []string
	groups []string

	mu       sync.Mutex
	requests map[int16]int
	accepted atomic.Int64
}

func newLoadCluster(tb testing.TB, topics []string, partitions int32, groups []string) *loadCluster {
	tb.Helper()
	lc := &loadCluster{topics: topics, groups: groups, requests: map[int16]int{}}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(3),
		kfake.SeedTopics(partitions, topics...),
		kfake.ListenFn(lc.listen),
	)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	lc.c = c
	lc.addrs = strings.Join(c.ListenAddrs(), ",")

	// Fill the cluster with a client of its own, closed before counting starts.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	var recs []*kgo.Record
	for _, t := range topics {
		for p := range partitions {
			for range 3 {
				recs = append(recs, &kgo.Record{Topic: t, Partition: p, Value: []byte("x")})
			}
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		tb.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	for _, g := range groups {
		var os kadm.Offsets
		for _, t := range topics {
			for p := range partitions {
				os.Add(kadm.Offset{Topic: t, Partition: p, At: 1, LeaderEpoch: -1})
			}
		}
		resp, err := adm.CommitOffsets(ctx, g, os)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			tb.Fatal(err)
		}
	}

	// Count every request from now on. A control function that returns false observes a request without
	// handling it: kfake then serves the request as usual and keeps the function for the next one (only a
	// handled request drops it, so KeepControl is not needed).
	c.Control(func(req kmsg.Request) (kmsg.Response, error, bool) {
		lc.mu.Lock()
		lc.requests[req.Key()]++
		lc.mu.Unlock()
		return nil, nil, false
	})
	return lc
}

// listen is kfake's listener function, wrapped to count accepted connections.
func (lc *loadCluster) listen(network, address string) (net.Listener, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	return &countingListener{Listener: ln, accepted: &lc.accepted}, nil
}

type countingListener struct {
	net.Listener
	accepted *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return conn, err
}

// counts is what the brokers have seen so far.
type counts struct {
	requests    map[int16]int
	connections int64
}

func (lc *loadCluster) counts() counts {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return counts{requests: maps.Clone(lc.requests), connections: lc.accepted.Load()}
}

// since is what the brokers saw after before, by request name, with the total under "total".
func (lc *loadCluster) since(before counts) (map[string]int, int64) {
	now := lc.counts()
	byName := map[string]int{}
	for k, n := range now.requests {
		if d := n - before.requests[k]; d > 0 {
			byName[kmsg.NameForKey(k)] += d
			byName["total"] += d
		}
	}
	return byName, now.connections - before.connections
}

// leaders is how many brokers lead the partitions of topics.
func (lc *loadCluster) leaders(tb testing.TB, topics ...string) int {
	tb.Helper()
	set := map[int32]bool{}
	for _, t := range topics {
		for _, p := range lc.c.PartitionInfos(t) {
			set[lc.c.LeaderFor(t, p.Partition)] = true
		}
	}
	return len(set)
}

// coordinators is how many brokers coordinate groups.
func (lc *loadCluster) coordinators(groups ...string) int {
	set := map[int32]bool{}
	for _, g := range groups {
		set[lc.c.CoordinatorFor(g)] = true
	}
	return len(set)
}

// pollingInterval is the triggers' polling interval in these tests; triggers share readings taken within
// half of it (freshness), so ticks are spaced by more than that. A tick must also end within that half:
// one that takes longer (1,000 triggers on a busy machine) finds the reading stale part-way and takes a
// second one, which these tests would count as requests too many. 1 s leaves 500 ms (200 ms, leaving
// 100 ms, failed once on a loaded 2-core machine).
const pollingInterval = time.Second

// newTriggers makes n triggers on lc: trigger i watches group i%len(groups) and topic
// (i/len(groups))%len(topics), so n = len(groups)*len(topics) covers every pair once and larger n repeat
// pairs (several ScaledConsumers on the same group and topic).
func newTriggers(tb testing.TB, pool *kafka.Pool, lc *loadCluster, n int, interval time.Duration) []scalers.Scaler {
	tb.Helper()
	out := make([]scalers.Scaler, n)
	for i := range out {
		g := lc.groups[i%len(lc.groups)]
		t := lc.topics[(i/len(lc.groups))%len(lc.topics)]
		s, err := pool.New(scalers.Config{
			TriggerName:     "lag",
			Metadata:        map[string]string{"bootstrapServers": lc.addrs, "consumerGroup": g, "topic": t, "lagThreshold": "5"},
			PollingInterval: interval,
		})
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = s
	}
	tb.Cleanup(func() {
		for _, s := range out {
			_ = s.(interface{ Close() error }).Close()
		}
	})
	return out
}

// tick samples every trigger at once, as the controller's poller does on an aligned tick: one goroutine
// per trigger, each with its own timeout. It returns the first error and the values.
func tick(ctx context.Context, triggers []scalers.Scaler) ([]float64, error) {
	values := make([]float64, len(triggers))
	errs := make([]error, len(triggers))
	var wg sync.WaitGroup
	for i, s := range triggers {
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			got, err := s.Sample(sctx)
			if err == nil {
				values[i] = got.Values[0]
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return values, errors.Join(errs...)
}

// TestRequestsPerTick shows that a tick costs the cluster the same requests however many triggers watch
// it: one ListOffsets per partition leader, one OffsetFetch per group coordinator, and Metadata only when
// a topic's layout is not known yet; and that one client (at most four connections: three brokers and
// the seed) serves them all.
func TestRequestsPerTick(t *testing.T) {
	topics := make([]string, 10)
	for i := range topics {
		topics[i] = fmt.Sprintf("topic-%d", i)
	}
	groups := make([]string, 10)
	for i := range groups {
		groups[i] = fmt.Sprintf("group-%d", i)
	}
	lc := newLoadCluster(t, topics, 10, groups)

	for _, tc := range []struct {
		triggers int
		// topics and groups the triggers watch
		topics, groups []string
	}{
		{triggers: 1, topics: topics[:1], groups: groups[:1]},
		{triggers: 100, topics: topics, groups: groups},
		{triggers: 1000, topics: topics, groups: groups},
	} {
		t.Run(fmt.Sprintf("triggers=%d", tc.triggers), func(t *testing.T) {
			pool := kafka.NewPool()
			t.Cleanup(pool.Close)
			before := lc.counts()
			triggers := newTriggers(t, pool, lc, tc.triggers, pollingInterval)
			if got := pool.Clusters(); got != 1 {
				t.Fatalf("pool holds %d clients, want 1", got)
			}

			// The first tick also finds the brokers, the group coordinators and the topics' layout.
			start := time.Now()
			values, err := tick(t.Context(), triggers)
			if err != nil {
				t.Fatal(err)
			}
			first, _ := lc.since(before)
			t.Logf("first tick: %v in %v", first, time.Since(start))
			// 10 partitions, 3 records each, committed at 1: lag 20, capped at partitions x threshold = 50.
			for i, v := range values {
				if v != 20 {
					t.Fatalf("trigger %d: lag %v, want 20", i, v)
				}
			}
			if first["Metadata"] == 0 {
				t.Errorf("first tick sent no Metadata request; how were the partitions found?")
			}
			// Even the first tick stays within the target, besides one ApiVersions per new connection.
			if n := first["total"] - first["ApiVersions"]; n > 10 {
				t.Errorf("first tick: %d requests besides ApiVersions, want at most 10", n)
			}

			leaders, coordinators := lc.leaders(t, tc.topics...), lc.coordinators(tc.groups...)
			want := map[string]int{"ListOffsets": leaders, "OffsetFetch": coordinators, "total": leaders + coordinators}
			for i := range 3 {
				time.Sleep(pollingInterval/2 + 10*time.Millisecond) // past the freshness window: a new reading
				before := lc.counts()
				start := time.Now()
				if _, err := tick(t.Context(), triggers); err != nil {
					t.Fatal(err)
				}
				took := time.Since(start)
				got, _ := lc.since(before)
				t.Logf("tick %d: %v in %v", i+2, got, took)
				if diff := cmp.Diff(got, want); diff != "" {
					t.Errorf("tick %d: requests by key (-got +want):\n%s", i+2, diff)
				}
				if got["total"] > 10 {
					t.Errorf("tick %d: %d requests, want at most 10 (DESIGN.md's target for 1,000 triggers)", i+2, got["total"])
				}
			}
			if _, conns := lc.since(before); conns > 4 {
				t.Errorf("the pool opened %d connections, want at most 4 (three brokers and the seed)", conns)
			} else {
				t.Logf("connections: %d", conns)
			}
		})
	}
}

// TestMetadataOnlyForNewLayout shows that Metadata is asked again when a topic nobody watched before must
// be laid out (and only for it), not on every tick.
func TestMetadataOnlyForNewLayout(t *testing.T) {
	lc := newLoadCluster(t, []string{"a", "b"}, 10, []string{"g"}) // g committed on a and b
	pool := kafka.NewPool()
	t.Cleanup(pool.Close)
	triggers := newTriggers(t, pool, lc, 1, pollingInterval) // g on a

	// Metadata requests by the topics they name; "by-id" stands for topics asked by ID.
	metadata := make(chan []string, 10)
	lc.c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		var topics []string
		for _, t := range req.(*kmsg.MetadataRequest).Topics {
			if t.Topic != nil {
				topics = append(topics, *t.Topic)
			} else {
				topics = append(topics, "by-id")
			}
		}
		select {
		case metadata <- topics:
		default:
		}
		return nil, nil, false
	})
	asked := func() [][]string {
		var out [][]string
		for {
			select {
			case ts := <-metadata:
				out = append(out, ts)
			default:
				return out
			}
		}
	}
	check := func(when string, want [][]string) {
		t.Helper()
		if diff := cmp.Diff(asked(), want); diff != "" {
			t.Errorf("%s: Metadata requests by topics (-got +want):\n%s", when, diff)
		}
	}

	for i := range 3 {
		if _, err := tick(t.Context(), triggers); err != nil {
			t.Fatal(err)
		}
		var want [][]string
		if i == 0 {
			// The layout of a; then franz-go asks the name of b, which OffsetFetch (v10) answered by topic
			// ID only, and caches it.
			want = [][]string{{"a"}, {"by-id"}}
		}
		check(fmt.Sprintf("tick %d", i+1), want)
		time.Sleep(pollingInterval/2 + 10*time.Millisecond)
	}

	s, err := pool.New(scalers.Config{
		TriggerName:     "lag",
		Metadata:        map[string]string{"bootstrapServers": lc.addrs, "consumerGroup": "g", "topic": "b"},
		PollingInterval: pollingInterval,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.(interface{ Close() error }).Close() })
	triggers = append(triggers, s)
	for i := range 2 {
		if _, err := tick(t.Context(), triggers); err != nil {
			t.Fatal(err)
		}
		var want [][]string
		if i == 0 {
			want = [][]string{{"b"}}
		}
		check(fmt.Sprintf("tick %d after adding a trigger on b", i+1), want)
		time.Sleep(pollingInterval/2 + 10*time.Millisecond)
	}
}
