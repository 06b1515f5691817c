package kafka_test

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ebbscale/ebb/internal/dev/devkafka"
	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/kafka"
)

// fixture is a three-broker kfake cluster with helpers to produce and commit.
type fixture struct {
	t     *testing.T
	c     *kfake.Cluster
	addrs string
	cl    *kgo.Client
	adm   *kadm.Client
}

func newFixture(t *testing.T, topics map[string]int32) *fixture {
	t.Helper()
	c, err := devkafka.Start(devkafka.Config{Brokers: 3, Topics: topics, NoAutoCreateTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return fixtureOf(t, c)
}

// fixtureOf wraps a running cluster; clientOpts (TLS, SASL) are what the fixture's own client needs.
func fixtureOf(t *testing.T, c *kfake.Cluster, clientOpts ...kgo.Opt) *fixture {
	t.Helper()
	addrs := strings.Join(c.ListenAddrs(), ",")
	opts := append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner())}, clientOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &fixture{t: t, c: c, addrs: addrs, cl: cl, adm: kadm.NewClient(cl)}
}

// produce writes n records to one partition.
func (f *fixture) produce(topic string, partition int32, n int) {
	f.t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Partition: partition, Value: []byte("x")}
	}
	if err := f.cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		f.t.Fatal(err)
	}
}

// commit sets the group's committed offset of one partition.
func (f *fixture) commit(group, topic string, partition int32, offset int64) {
	f.t.Helper()
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: topic, Partition: partition, At: offset, LeaderEpoch: -1})
	resp, err := f.adm.CommitOffsets(context.Background(), group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		f.t.Fatal(err)
	}
}

func newScaler(t *testing.T, pool *kafka.Pool, md map[string]string) scalers.Scaler {
	t.Helper()
	s, err := pool.New(scalers.Config{TriggerName: "lag", Metadata: md, PollingInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.(interface{ Close() error }).Close() })
	return s
}

// sample takes a new sample of s, without its Progress.
func sample(t *testing.T, s scalers.Scaler) scalers.Sample {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	time.Sleep(5 * time.Millisecond) // a new reading: the previous one is older than the freshness window
	got, err := s.Sample(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got.Progress = nil // the lag tests compare values; progress_test.go tests Progress
	return got
}

func TestLagBasics(t *testing.T) {
	f := newFixture(t, map[string]int32{"orders": 4})
	f.produce("orders", 0, 30)
	f.produce("orders", 1, 10)
	f.produce("orders", 2, 5)
	f.commit("g", "orders", 0, 10) // lag 20
	f.commit("g", "orders", 1, 10) // lag 0
	// partition 2: no commit, latest -> 1; partition 3: empty, no commit -> 1
	pool := kafka.NewPool()
	s := newScaler(t, pool, map[string]string{"bootstrapServers": f.addrs, "consumerGroup": "g", "topic": "orders"})
	got := sample(t, s)
	if want := 22.0; got.Values[0] != want {
		t.Errorf("lag = %v, want %v", got.Values[0], want)
	}
}

// newTrigger builds a trigger whose every sample (a few milliseconds apart) takes a new reading.
func newTrigger(t *testing.T, pool *kafka.Pool, md, auth map[string]string) scalers.Scaler {
	t.Helper()
	s, err := pool.New(scalers.Config{TriggerName: "lag", Metadata: md, Auth: auth, PollingInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.(io.Closer).Close() })
	return s
}

// values is a Sample of one metric: what the HPA sees and what activity is judged on.
func values(hpa, activation float64) scalers.Sample {
	return scalers.Sample{Values: []float64{hpa}, ActivationValues: []float64{activation}}
}

// Every lag parameter, end to end against a three-broker cluster. The expected lags are worked out from
// what the test produced and committed.
func TestLag(t *testing.T) {
	const (
		orders0, orders1, orders2, orders3 = 30, 10, 5, 0 // records produced per partition of "orders"
		payments0, payments1               = 8, 4
		pair0, pair1                       = 13, 12
	)
	f := newFixture(t, map[string]int32{"orders": 4, "payments": 2, "audit": 3, "pair": 2})
	for topic, counts := range map[string][]int{
		"orders":   {orders0, orders1, orders2, orders3},
		"payments": {payments0, payments1},
		"audit":    {6, 6, 6},
		"pair":     {pair0, pair1},
	} {
		for p, n := range counts {
			if n > 0 {
				f.produce(topic, int32(p), n)
			}
		}
	}
	// "committed" read 10 records of each of the first two partitions of "orders" and none of the others.
	f.commit("committed", "orders", 0, 10)
	f.commit("committed", "orders", 1, 10)
	// "multi" committed on "orders" and "payments", never on "audit".
	f.commit("multi", "orders", 0, 25)
	f.commit("multi", "payments", 1, 1)
	f.commit("pair", "pair", 0, 0)
	f.commit("pair", "pair", 1, 0)

	// What "committed" has left on "orders", by partition, with offsetResetPolicy latest (1 for a
	// partition without a commit) and earliest (all of it).
	latest := []float64{orders0 - 10, orders1 - 10, 1, 1}
	earliest := []float64{orders0 - 10, orders1 - 10, orders2, orders3}
	sum := func(xs ...float64) float64 {
		var s float64
		for _, x := range xs {
			s += x
		}
		return s
	}

	tests := []struct {
		name     string
		metadata map[string]string
		want     scalers.Sample
		// wantMetric, when set, is the metric the trigger serves.
		wantMetric *scalers.MetricSpec
	}{
		{
			name:     "topic-latest",
			metadata: map[string]string{"topic": "orders", "consumerGroup": "committed"},
			want:     values(sum(latest...), sum(latest...)), // 22: below the cap of 4 partitions x 10
		},
		{
			name:     "topic-earliest",
			metadata: map[string]string{"topic": "orders", "consumerGroup": "committed", "offsetResetPolicy": "earliest"},
			want:     values(sum(earliest...), sum(earliest...)),
		},
		{
			name:     "scale-to-zero-on-invalid-offset",
			metadata: map[string]string{"topic": "orders", "consumerGroup": "committed", "scaleToZeroOnInvalidOffset": "true"},
			want:     values(latest[0]+latest[1], latest[0]+latest[1]),
		},
		{
			name:     "scale-to-zero-on-invalid-offset-earliest",
			metadata: map[string]string{"topic": "orders", "consumerGroup": "committed", "scaleToZeroOnInvalidOffset": "true", "offsetResetPolicy": "earliest"},
			want:     values(latest[0]+latest[1], latest[0]+latest[1]),
		},
		{
			// Partitions 0 and 2 have 21 to read, but 2 partitions x 10 caps what the HPA sees.
			name:     "partition-limitation",
			metadata: map[string]string{"topic": "orders", "consumerGroup": "committed", "partitionLimitation": "0,2"},
			want:     capped(values(2*10, latest[0]+latest[2]), 2, "10", "20"),
		},
		{
			name:     "partition-limitation-range",
			metadata: map[string]string{"topic": "orders", "consumerGroup": "committed", "partitionLimitation": "1-3"},
			want:     values(sum(latest[1:]...), sum(latest[1:]...)),
		},
		{
			// 22 to read, capped at 4 partitions x 3; activity is judged on all 22 (and the controller
			// compares it with activationLagThreshold).
			name:       "lag-threshold-and-activation",
			metadata:   map[string]string{"topic": "orders", "consumerGroup": "committed", "lagThreshold": "3", "activationLagThreshold": "50"},
			want:       capped(values(4*3, sum(latest...)), 4, "3", "12"),
			wantMetric: &scalers.MetricSpec{Target: 3, Activation: 50},
		},
		{
			name:     "allow-idle-consumers",
			metadata: map[string]string{"topic": "orders", "consumerGroup": "committed", "lagThreshold": "3", "allowIdleConsumers": "true"},
			want:     values(sum(latest...), sum(latest...)),
		},
		{
			// Partitions 0, 2 and 3 have lag (1 for no commit), partition 1 none: the cap is 3 x 3.
			name:     "limit-to-partitions-with-lag",
			metadata: map[string]string{"topic": "orders", "consumerGroup": "committed", "lagThreshold": "3", "limitToPartitionsWithLag": "true"},
			want:     capped(values(3*3, sum(latest...)), 3, "3", "9"),
		},
		{
			// 22 to read at 10 per replica: 3 replicas would do, but 3 does not divide 4 partitions.
			name:     "ensure-even-distribution",
			metadata: map[string]string{"topic": "orders", "consumerGroup": "committed", "ensureEvenDistributionOfPartitions": "true"},
			want:     values(4*10, sum(latest...)),
		},
		{
			// At 12 per replica 2 replicas do, and 2 divides 4.
			name:     "ensure-even-distribution-factor",
			metadata: map[string]string{"topic": "orders", "consumerGroup": "committed", "ensureEvenDistributionOfPartitions": "true", "lagThreshold": "12"},
			want:     values(2*12, sum(latest...)),
		},
		{
			// No topic: every topic the group committed on ("orders" and "payments", not "audit"), all
			// their partitions.
			name:     "all-topics-the-group-committed",
			metadata: map[string]string{"consumerGroup": "multi"},
			want:     values((orders0-25)+1+1+1+1+(payments1-1), (orders0-25)+1+1+1+1+(payments1-1)),
		},
		{
			name:     "all-topics-the-group-committed-earliest",
			metadata: map[string]string{"consumerGroup": "multi", "offsetResetPolicy": "earliest"},
			want: values((orders0-25)+orders1+orders2+orders3+payments0+(payments1-1),
				(orders0-25)+orders1+orders2+orders3+payments0+(payments1-1)),
		},
		{
			// A group that never committed, with a topic: KEDA's lag for uncommitted partitions, no error.
			name:     "unknown-group-latest",
			metadata: map[string]string{"topic": "orders", "consumerGroup": "never"},
			want:     values(4*1, 4*1),
		},
		{
			name:     "unknown-group-earliest",
			metadata: map[string]string{"topic": "orders", "consumerGroup": "never", "offsetResetPolicy": "earliest"},
			want:     capped(values(4*10, orders0+orders1+orders2+orders3), 4, "10", "40"),
		},
		{
			// Lag 25 at 10 per replica on 2 partitions: ebb caps at 2 x 10 (2 replicas). KEDA's integer
			// division (25/10 = 2, not above 2) leaves 25, and the HPA asks for 3.
			name:     "cap-divides-exactly",
			metadata: map[string]string{"topic": "pair", "consumerGroup": "pair"},
			want:     capped(values(2*10, pair0+pair1), 2, "10", "20"),
		},
	}
	pool := kafka.NewPool()
	t.Cleanup(pool.Close)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md := map[string]string{"bootstrapServers": f.addrs}
			for k, v := range tc.metadata {
				md[k] = v
			}
			s := newTrigger(t, pool, md, nil)
			if diff := cmp.Diff(sample(t, s), tc.want); diff != "" {
				t.Errorf("sample (-got +want):\n%s", diff)
			}
			if tc.wantMetric != nil {
				if diff := cmp.Diff(s.Metrics(), []scalers.MetricSpec{*tc.wantMetric}); diff != "" {
					t.Errorf("Metrics (-got +want):\n%s", diff)
				}
			}
		})
	}
}

// excludePersistentLag across samples: a partition whose committed offset did not move since the
// previous sample counts toward activity but not toward the HPA's value.
func TestExcludePersistentLag(t *testing.T) {
	f := newFixture(t, map[string]int32{"slow": 2})
	f.produce("slow", 0, 20)
	f.produce("slow", 1, 20)
	f.commit("stuck", "slow", 0, 5)
	f.commit("stuck", "slow", 1, 5)
	pool := kafka.NewPool()
	t.Cleanup(pool.Close)
	s := newTrigger(t, pool, map[string]string{
		"bootstrapServers": f.addrs, "consumerGroup": "stuck", "topic": "slow",
		"lagThreshold": "100", "excludePersistentLag": "true",
	}, nil)

	steps := []struct {
		name   string
		before func()
		want   scalers.Sample
	}{
		{name: "first-sample-counts-all", want: values((20-5)+(20-5), (20-5)+(20-5))},
		{
			name:   "partition-1-moves-partition-0-stuck",
			before: func() { f.commit("stuck", "slow", 1, 10); f.produce("slow", 0, 5) },
			want:   values(20-10, (25-5)+(20-10)),
		},
		{name: "both-stuck", want: values(0, (25-5)+(20-10))},
		{
			name:   "partition-0-moves-partition-1-stuck",
			before: func() { f.commit("stuck", "slow", 0, 15) },
			want:   values(25-15, (25-15)+(20-10)),
		},
	}
	for _, step := range steps {
		if step.before != nil {
			step.before()
		}
		if diff := cmp.Diff(sample(t, s), step.want); diff != "" {
			t.Errorf("%s: sample (-got +want):\n%s", step.name, diff)
		}
	}

	// Two samples close together share one reading, and so one answer: the second must not take the
	// unchanged offsets of the same reading for persistent lag.
	again, err := pool.New(scalers.Config{TriggerName: "lag", PollingInterval: 10 * time.Second, Metadata: map[string]string{
		"bootstrapServers": f.addrs, "consumerGroup": "stuck", "topic": "slow", "lagThreshold": "100", "excludePersistentLag": "true",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = again.(io.Closer).Close() })
	first, second := sample(t, again), sample(t, again)
	if diff := cmp.Diff(second, first); diff != "" {
		t.Errorf("second sample from the same reading (-got +want):\n%s", diff)
	}
}

// A group consumed and committed by an outside client, Debian's kcat (librdkafka) in balanced-consumer
// mode, has the lag that kcat's own report of what it read implies.
func TestLagOfGroupCommittedByKcat(t *testing.T) {
	kcat := testenv.LookPath(t, "kcat", "hack/ensure-tools.sh")
	produced := []int64{12, 9, 7}
	f := newFixture(t, map[string]int32{"events": int32(len(produced))})
	var total int64
	for p, n := range produced {
		f.produce("events", int32(p), int(n))
		total += n
	}

	const consumed = 10
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, kcat, "-b", f.addrs, "-G", "kcat-group", "-o", "beginning",
		"-c", strconv.Itoa(consumed), "-q", "-f", "%p %o\n", "events").Output()
	if err != nil {
		t.Fatalf("kcat -G: %v\n%s", err, out)
	}
	// kcat printed partition and offset of every record it read; it commits the offset after the last
	// one read of each partition.
	next := map[int32]int64{}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != consumed {
		t.Fatalf("kcat read %d records, want %d:\n%s", len(lines), consumed, out)
	}
	for _, line := range lines {
		var p int32
		var o int64
		if _, err := fmt.Sscanf(line, "%d %d", &p, &o); err != nil {
			t.Fatalf("kcat output %q: %v", line, err)
		}
		next[p] = max(next[p], o+1)
	}
	waitCommitted(t, f, "kcat-group", "events", next)

	var wantLatest float64
	for p, n := range produced {
		if c, ok := next[int32(p)]; ok {
			wantLatest += float64(n - c)
		} else {
			wantLatest++ // no commit: 1 with offsetResetPolicy latest
		}
	}
	pool := kafka.NewPool()
	t.Cleanup(pool.Close)
	for _, tc := range []struct {
		name   string
		policy string
		want   float64
	}{
		{name: "earliest", policy: "earliest", want: float64(total - consumed)},
		{name: "latest", policy: "latest", want: wantLatest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTrigger(t, pool, map[string]string{
				"bootstrapServers": f.addrs, "consumerGroup": "kcat-group", "topic": "events",
				"lagThreshold": "100", "offsetResetPolicy": tc.policy,
			}, nil)
			if diff := cmp.Diff(sample(t, s), values(tc.want, tc.want)); diff != "" {
				t.Errorf("sample (-got +want):\n%s", diff)
			}
		})
	}
}

// waitCommitted waits until group's committed offsets on topic are want.
func waitCommitted(t *testing.T, f *fixture, group, topic string, want map[int32]int64) {
	t.Helper()
	var got map[int32]int64
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		offsets, err := f.adm.FetchOffsets(t.Context(), group)
		if err != nil {
			continue // the group may not exist yet
		}
		got = map[int32]int64{}
		for p, o := range offsets[topic] {
			got[p] = o.At
		}
		if cmp.Equal(got, want) {
			return
		}
	}
	t.Fatalf("committed offsets of %s on %s (-got +want):\n%s", group, topic, cmp.Diff(got, want))
}

// capped is want with the message of a lag capped at partitions x threshold.
func capped(want scalers.Sample, partitions int, threshold, lag string) scalers.Sample {
	want.Message = fmt.Sprintf("lag capped at %d partitions x lagThreshold %s = %s (the HPA never asks for more replicas than partitions; allowIdleConsumers lifts the cap)", partitions, threshold, lag)
	return want
}
