package natsjetstream_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/natsjetstream"
)

// In a three-server cluster, values are the consumer leader's, over the client protocol and from the
// monitoring endpoints; a monitoring trigger that lists no endpoint of the leader is an error rather
// than a replica's figure; and when the leader's server dies, the values stay right: every sample
// taken while the cluster elects a new leader is the old value or the new one, never another.
func TestCluster(t *testing.T) {
	servers := testenv.StartNATSCluster(t, 3)
	var urls, monitors []string
	byName := map[string]*testenv.NATSServer{}
	for _, s := range servers {
		urls, monitors = append(urls, s.URL), append(monitors, s.Monitor)
		byName[s.Name] = s
	}
	j := js(t, strings.Join(urls, ","))
	stream(t, j, "orders", 3)
	c := consumer(t, j, "orders", "workers", 3)
	publish(t, j, "orders", 10)
	take(t, c, 4) // 6 pending, 4 ack-pending

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leader := info.Cluster.Leader
	var follower *testenv.NATSServer
	for _, s := range servers {
		if s.Name != leader {
			follower = s
		}
	}
	t.Logf("consumer leader %s", leader)

	p := natsjetstream.NewPool()
	defer p.Close()
	client := newTrigger(t, p, md("natsServerURL", strings.Join(urls, ","), "stream", "orders", "consumer", "workers"), nil)
	monitor := newTrigger(t, p, md("natsServerMonitoringEndpoint", strings.Join(monitors, ","), "stream", "orders", "consumer", "workers"), nil)
	eventually(t, 10*time.Second, valueIs(client, 10))
	eventually(t, 10*time.Second, valueIs(monitor, 10))

	replicaOnly := newTrigger(t, p, md("natsServerMonitoringEndpoint", follower.Monitor, "stream", "orders", "consumer", "workers"), nil)
	_, err = sampleErr(t, replicaOnly)
	isErr(t, err, natsjetstream.ErrNoLeader)
	t.Log(err)

	byName[leader].Stop()
	stopped := time.Now()
	// While the cluster elects a new leader, and before anything changes: every value read is 10, or the
	// sample fails (no leader to answer).
	for time.Since(stopped) < 4*time.Second {
		for name, s := range map[string]scalers.Scaler{"client": client, "monitor": monitor} {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			smp, err := s.Sample(ctx)
			cancel()
			switch {
			case err != nil:
				t.Logf("%s, %s after the stop: %v", name, time.Since(stopped).Round(time.Millisecond), err)
			case smp.Values[0] != 10:
				t.Fatalf("%s: value %v during the election, want 10", name, smp.Values[0])
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	// 11 pending, 4 ack-pending. The stream's leader may have been on the stopped server too: publishes
	// fail until the stream has a new one.
	for i := 0; i < 5; {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		_, err := j.Publish(ctx, "orders.m", []byte("after"))
		cancel()
		switch {
		case err == nil:
			i++
		case time.Since(stopped) > 30*time.Second:
			t.Fatalf("publish after the leader stopped: %v", err)
		default:
			time.Sleep(200 * time.Millisecond)
		}
	}
	for name, s := range map[string]scalers.Scaler{"client": client, "monitor": monitor} {
		var seen []float64
		eventually(t, 60*time.Second, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			smp, err := s.Sample(ctx)
			if err != nil {
				return err
			}
			v := smp.Values[0]
			seen = append(seen, v)
			if v != 10 && v != 15 {
				t.Fatalf("%s: value %v while the leader changed; want 10 (before) or 15 (after)", name, v)
			}
			if v != 15 {
				return fmt.Errorf("%s: value %v, want 15", name, v)
			}
			return nil
		})
		t.Logf("%s: values while the leader changed: %v", name, seen)
	}
	info, err = jsConsumerInfo(t, j)
	if err != nil {
		t.Fatal(err)
	}
	if info.Cluster.Leader == leader {
		t.Errorf("consumer leader still %s after its server stopped", leader)
	}
	t.Logf("new consumer leader %s", info.Cluster.Leader)
}

func jsConsumerInfo(t *testing.T, j jetstream.JetStream) (*jetstream.ConsumerInfo, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := j.Consumer(ctx, "orders", "workers")
	if err != nil {
		return nil, err
	}
	return c.CachedInfo(), nil
}
