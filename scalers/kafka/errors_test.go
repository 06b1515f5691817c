package kafka_test

import (
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ebbscale/ebb/scalers/kafka"
)

// closedPort returns an address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// silentBroker returns the address of a listener that accepts connections and never answers.
func silentBroker(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}

// Each failure wraps the sentinel a caller branches on, says what to look at, and comes back within the
// sample's deadline.
func TestSampleErrors(t *testing.T) {
	f := newFixture(t, map[string]int32{"orders": 4})
	f.produce("orders", 0, 3)
	f.commit("committed", "orders", 0, 1)
	refused, silent := closedPort(t), silentBroker(t)

	tests := []struct {
		name     string
		metadata map[string]string
		timeout  time.Duration
		wantErr  error // nil: any error, checked by wantWords only
		// wantWords must all appear in the message.
		wantWords []string
	}{
		{
			name:      "connection-refused",
			metadata:  map[string]string{"bootstrapServers": refused, "consumerGroup": "committed", "topic": "orders"},
			timeout:   5 * time.Second,
			wantErr:   kafka.ErrUnreachable,
			wantWords: []string{"bootstrapServers " + refused, "unreachable", "connection refused"},
		},
		{
			name:      "broker-never-answers",
			metadata:  map[string]string{"bootstrapServers": silent, "consumerGroup": "committed", "topic": "orders"},
			timeout:   time.Second,
			wantErr:   kafka.ErrUnreachable,
			wantWords: []string{"bootstrapServers " + silent, "unreachable", "deadline exceeded"},
		},
		{
			name:      "unknown-topic",
			metadata:  map[string]string{"bootstrapServers": f.addrs, "consumerGroup": "committed", "topic": "ordres"},
			timeout:   5 * time.Second,
			wantErr:   kafka.ErrUnknownTopic,
			wantWords: []string{`topic "ordres"`, "unknown topic"},
		},
		{
			// No topic and no commits: there is no topic to read lag from.
			name:      "no-topic-and-group-committed-nothing",
			metadata:  map[string]string{"bootstrapServers": f.addrs, "consumerGroup": "never"},
			timeout:   5 * time.Second,
			wantErr:   kafka.ErrUnknownGroup,
			wantWords: []string{`consumer group "never"`, "committed no offsets", "set topic"},
		},
		{
			name:      "partition-limitation-selects-nothing",
			metadata:  map[string]string{"bootstrapServers": f.addrs, "consumerGroup": "committed", "topic": "orders", "partitionLimitation": "4-9"},
			timeout:   5 * time.Second,
			wantWords: []string{"partitionLimitation", `topic "orders"`, "4 partitions", "0 to 3"},
		},
	}
	pool := kafka.NewPool()
	t.Cleanup(pool.Close)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTrigger(t, pool, tc.metadata, nil)
			start := time.Now()
			_, err := trySample(t, s, tc.timeout)
			elapsed := time.Since(start)
			if err == nil {
				t.Fatal("Sample succeeded")
			}
			t.Logf("error: %v", err)
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Sample error = %v, want one wrapping %q", err, tc.wantErr)
			}
			for _, w := range tc.wantWords {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if slack := 2 * time.Second; elapsed > tc.timeout+slack {
				t.Errorf("Sample took %v with a %v deadline", elapsed, tc.timeout)
			}
			// Only one sentinel applies.
			for _, other := range []error{kafka.ErrUnreachable, kafka.ErrAuthentication, kafka.ErrTLS, kafka.ErrAuthorization, kafka.ErrUnknownTopic, kafka.ErrUnknownGroup} {
				if !errors.Is(tc.wantErr, other) && errors.Is(err, other) {
					t.Errorf("error %q also wraps %q", err, other)
				}
			}
		})
	}
}

// KEDA's semantics: with a topic set, a group that never committed is not an error; its lag follows
// offsetResetPolicy.
func TestUnknownGroupWithTopicIsNotAnError(t *testing.T) {
	f := newFixture(t, map[string]int32{"orders": 3})
	f.produce("orders", 2, 9)
	pool := kafka.NewPool()
	t.Cleanup(pool.Close)
	for _, tc := range []struct {
		name   string
		policy string
		want   float64
	}{
		{name: "latest", policy: "latest", want: 3 * 1},
		{name: "earliest", policy: "earliest", want: 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTrigger(t, pool, map[string]string{"bootstrapServers": f.addrs, "consumerGroup": "nobody-yet", "topic": "orders", "offsetResetPolicy": tc.policy}, nil)
			if diff := cmp.Diff(sample(t, s), values(tc.want, tc.want)); diff != "" {
				t.Errorf("sample (-got +want):\n%s", diff)
			}
		})
	}
}
