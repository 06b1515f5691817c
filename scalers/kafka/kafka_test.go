package kafka_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ebbscale/ebb/internal/devkafka"
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
	addrs := strings.Join(c.ListenAddrs(), ",")
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
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

func sample(t *testing.T, s scalers.Scaler) scalers.Sample {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	time.Sleep(5 * time.Millisecond) // a new reading: the previous one is older than the freshness window
	got, err := s.Sample(ctx)
	if err != nil {
		t.Fatal(err)
	}
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
