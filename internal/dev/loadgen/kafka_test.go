package loadgen_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ebbscale/ebb/internal/dev/devkafka"
	"github.com/ebbscale/ebb/internal/dev/loadgen"
)

// endOffsets is what a topic holds, per partition, read with a separate client.
func endOffsets(t *testing.T, brokers []string, topic string, opts ...kgo.Opt) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out
}

// A burst and a steady stream to a kfake cluster of three brokers: everything confirmed arrived, spread
// evenly over the partitions of the topic the sink created.
func TestKafkaDelivers(t *testing.T) {
	k, err := devkafka.Start(devkafka.Config{Brokers: 3, NoAutoCreateTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	sink, err := loadgen.NewKafka(t.Context(), loadgen.KafkaConfig{Brokers: k.ListenAddrs(), Topic: "orders", Partitions: 4, MaxInflight: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	st, err := loadgen.Run(t.Context(), sink, loadgen.Schedule{Burst: 1000, Rate: 200, Duration: time.Second}, loadgen.Options{Payload: make([]byte, 100)})
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent != 1200 || st.Confirmed != 1200 || st.Failed != 0 {
		t.Errorf("stats: sent %d, confirmed %d, failed %d; want 1200, 1200, 0", st.Sent, st.Confirmed, st.Failed)
	}
	if diff := cmp.Diff(endOffsets(t, k.ListenAddrs(), "orders"), map[int32]int64{0: 300, 1: 300, 2: 300, 3: 300}); diff != "" {
		t.Errorf("records per partition (-got +want):\n%s", diff)
	}
}

// SASL as the kafka trigger takes it: the right password produces, a wrong one fails at the start.
func TestKafkaSASL(t *testing.T) {
	k, err := devkafka.Start(devkafka.Config{SASL: &devkafka.SASLUser{Mechanism: "SCRAM-SHA-256", User: "ebb", Password: "s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	cfg := loadgen.KafkaConfig{Brokers: k.ListenAddrs(), Topic: "orders", Partitions: 2, SASL: "scram_sha256", Username: "ebb", Password: "s3cret"}
	sink, err := loadgen.NewKafka(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := loadgen.Run(t.Context(), sink, loadgen.Schedule{Burst: 10}, loadgen.Options{})
	sink.Close()
	if err != nil || st.Confirmed != 10 {
		t.Fatalf("Run() = %d confirmed, %v; want 10, nil", st.Confirmed, err)
	}

	cfg.Password = "wrong"
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if sink, err := loadgen.NewKafka(ctx, cfg); err == nil {
		sink.Close()
		t.Fatal("NewKafka with a wrong password succeeded")
	}
}

// Nobody listening: NewKafka says so instead of retrying for ever.
func TestKafkaUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err := loadgen.NewKafka(ctx, loadgen.KafkaConfig{Brokers: []string{"127.0.0.1:1"}, Topic: "t"})
	if err == nil || !strings.Contains(err.Error(), "no broker of [127.0.0.1:1] answers") {
		t.Fatalf("NewKafka against a closed port = %v, want an error naming the broker", err)
	}
}
