package demo_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ebbscale/ebb/internal/dev/demo"
	"github.com/ebbscale/ebb/internal/dev/devkafka"
)

// waitFor polls cond until it holds, failing the test after limit: a guard against hanging, not a
// measurement.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The simulated consumers are real members of the group: they drain the topic, commit, and leave the
// group when scaled to zero.
func TestConsumersDrainAndLeave(t *testing.T) {
	k, err := devkafka.Start(devkafka.Config{Topics: map[string]int32{"orders": 4}, NoAutoCreateTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.ListenAddrs()...), kgo.DefaultProduceTopic("orders"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	recs := make([]*kgo.Record, 400)
	for i := range recs {
		recs[i] = &kgo.Record{Value: []byte("x")}
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	lag := func() int64 {
		n, err := demo.Lag(t.Context(), adm, "workers", "orders")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got, err := demo.GroupMembers(t.Context(), adm, "workers"); got != 0 || err != nil {
		t.Fatalf("GroupMembers of a group that does not exist yet = %d, %v; want 0, nil", got, err)
	}
	if got := lag(); got != 400 {
		t.Fatalf("lag before any consumer = %d, want 400 (the group has not committed: the whole topic)", got)
	}

	c := &demo.Consumers{Brokers: k.ListenAddrs(), Group: "workers", Topic: "orders", Rate: 200}
	t.Cleanup(c.Close)
	if err := c.Scale(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	if c.Count() != 2 {
		t.Fatalf("Count() = %d after Scale(2)", c.Count())
	}
	waitFor(t, time.Minute, "two consumers drain 400 messages", func() bool { return lag() == 0 })
	members := func() int {
		n, err := demo.GroupMembers(t.Context(), adm, "workers")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := members(); got != 2 {
		t.Errorf("group has %d members with 2 consumers, want 2", got)
	}
	if err := c.Scale(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	if got := members(); got != 0 || c.Count() != 0 {
		t.Errorf("after Scale(0): group has %d members, Count() = %d; want 0, 0", got, c.Count())
	}
	if got := lag(); got != 0 {
		t.Errorf("lag after the consumers left = %d, want 0 (their commits stay)", got)
	}
}
