package kafka_test

import (
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/kafka"
)

// Triggers share one client per cluster and credentials; closing the last trigger of a client closes it.
func TestPoolSharesClientsPerClusterAndCredentials(t *testing.T) {
	plain := newFixture(t, map[string]int32{"orders": 2})
	secured := strings.Join(saslCluster(t).ListenAddrs(), ",")
	reversed := strings.Split(plain.addrs, ",")
	for i, j := 0, len(reversed)-1; i < j; i, j = i+1, j-1 {
		reversed[i], reversed[j] = reversed[j], reversed[i]
	}

	pool := kafka.NewPool()
	t.Cleanup(pool.Close)
	open := map[string]scalers.Scaler{}
	steps := []struct {
		name     string
		metadata map[string]string
		auth     map[string]string
		close    string // instead of opening a trigger, close this one
		// wantClusters is how many clients the pool holds after the step.
		wantClusters int
	}{
		{name: "first", metadata: map[string]string{"bootstrapServers": plain.addrs, "consumerGroup": "a", "topic": "orders"}, wantClusters: 1},
		{name: "other-group-and-topic", metadata: map[string]string{"bootstrapServers": plain.addrs, "consumerGroup": "b"}, wantClusters: 1},
		{name: "servers-in-another-order", metadata: map[string]string{"bootstrapServers": strings.Join(reversed, ","), "consumerGroup": "c", "topic": "orders"}, wantClusters: 1},
		{name: "other-thresholds", metadata: map[string]string{"bootstrapServers": plain.addrs, "consumerGroup": "a", "topic": "orders", "lagThreshold": "3", "excludePersistentLag": "true"}, wantClusters: 1},
		{name: "sasl-user-1", metadata: map[string]string{"bootstrapServers": secured, "consumerGroup": "a", "topic": "orders", "sasl": "scram_sha256", "username": scram256User}, auth: map[string]string{"password": scram256}, wantClusters: 2},
		{name: "sasl-user-1-again", metadata: map[string]string{"bootstrapServers": secured, "consumerGroup": "b", "topic": "orders", "sasl": "scram_sha256", "username": scram256User}, auth: map[string]string{"password": scram256}, wantClusters: 2},
		{name: "sasl-user-2", metadata: map[string]string{"bootstrapServers": secured, "consumerGroup": "a", "topic": "orders", "sasl": "scram_sha512", "username": scram512User}, auth: map[string]string{"password": scram512}, wantClusters: 3},
		{name: "sasl-user-1-other-password", metadata: map[string]string{"bootstrapServers": secured, "consumerGroup": "a", "topic": "orders", "sasl": "scram_sha256", "username": scram256User}, auth: map[string]string{"password": "old-password"}, wantClusters: 4},
		{name: "close-other-password", close: "sasl-user-1-other-password", wantClusters: 3},
		{name: "close-sasl-user-2", close: "sasl-user-2", wantClusters: 2},
		{name: "close-one-of-two-sasl-user-1", close: "sasl-user-1", wantClusters: 2},
		{name: "close-last-sasl-user-1", close: "sasl-user-1-again", wantClusters: 1},
		{name: "close-first", close: "first", wantClusters: 1},
		{name: "close-other-group-and-topic", close: "other-group-and-topic", wantClusters: 1},
		{name: "close-servers-in-another-order", close: "servers-in-another-order", wantClusters: 1},
		{name: "close-last", close: "other-thresholds", wantClusters: 0},
	}
	for _, step := range steps {
		if step.close != "" {
			if err := open[step.close].(io.Closer).Close(); err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
			delete(open, step.close)
		} else {
			s, err := pool.New(scalers.Config{TriggerName: step.name, Metadata: step.metadata, Auth: step.auth})
			if err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
			open[step.name] = s
		}
		if got := pool.Clusters(); got != step.wantClusters {
			t.Fatalf("after %s: %d clients, want %d", step.name, got, step.wantClusters)
		}
		// A trigger still open still reads its lag (group "a" never committed: 1 per partition).
		if s, ok := open["other-thresholds"]; ok {
			if diff := cmp.Diff(sample(t, s), values(1+1, 1+1)); diff != "" {
				t.Errorf("after %s: sample (-got +want):\n%s", step.name, diff)
			}
		}
	}
}
