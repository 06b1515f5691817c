package natsjetstream_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/natsjetstream"
)

// A tick costs requests that grow with the streams watched, not with the triggers: 1, 100 and 1,000
// triggers over 10 streams of 10 consumers cost 1, 10 and 10 requests, on one connection. The
// connection's own count of messages sent agrees with the request observer.
func TestRequestsPerTick(t *testing.T) {
	srv := testenv.StartNATS(t, testenv.NATSOptions{})
	j := js(t, srv.URL)
	const streams, consumers = 10, 10
	for s := range streams {
		name := fmt.Sprintf("s%d", s)
		stream(t, j, name, 1)
		for c := range consumers {
			consumer(t, j, name, fmt.Sprintf("c%d", c), 1)
		}
		publish(t, j, name, s+1)
	}
	for _, tc := range []struct {
		triggers, want int
	}{{1, 1}, {100, 10}, {1000, 10}} {
		t.Run(fmt.Sprintf("triggers-%d", tc.triggers), func(t *testing.T) {
			cnt := newCounter()
			p := natsjetstream.NewPool(natsjetstream.ObserveRequests(cnt.observe))
			defer p.Close()
			triggers := make([]scalers.Scaler, tc.triggers)
			for i := range triggers {
				s, c := i%streams, (i/streams)%consumers
				triggers[i] = newTrigger(t, p, md("natsServerURL", srv.URL, "stream", fmt.Sprintf("s%d", s), "consumer", fmt.Sprintf("c%d", c)), nil)
			}
			first := tick(t, triggers)
			for i, v := range first {
				if want := float64(i%streams + 1); v != want {
					t.Fatalf("trigger %d: value %v, want %v", i, v, want)
				}
			}
			t.Logf("first tick: %s", describe(cnt.take()))
			for range 3 {
				time.Sleep(600 * time.Millisecond) // past the shared reading's freshness (half the 1 s interval)
				before := p.OutMsgs()
				tick(t, triggers)
				got := cnt.take()
				if total(got) != tc.want {
					t.Errorf("%d triggers: %d requests in a tick (%s), want %d", tc.triggers, total(got), describe(got), tc.want)
				}
				if sent := p.OutMsgs() - before; sent != uint64(total(got)) {
					t.Errorf("the connection sent %d messages in a tick, the observer saw %d requests", sent, total(got))
				}
			}
			if n := p.Connections(); n != 1 {
				t.Errorf("%d connections, want 1", n)
			}
		})
	}
}

// Per stream, the reading takes whichever is fewer: one CONSUMER.INFO per watched consumer, or the pages
// of the consumer list (256 a page).
func TestListOrInfo(t *testing.T) {
	srv := testenv.StartNATS(t, testenv.NATSOptions{})
	j := js(t, srv.URL)
	stream(t, j, "big", 1)
	const n = 300
	for c := range n {
		consumer(t, j, "big", fmt.Sprintf("c%03d", c), 1)
	}
	for _, tc := range []struct {
		name    string
		watched int
		want    map[string]int
	}{
		{"two-of-300", 2, map[string]int{"CONSUMER.INFO": 2}},
		{"three-of-300", 3, map[string]int{"CONSUMER.LIST": 2}},
		{"all-300", n, map[string]int{"CONSUMER.LIST": 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cnt := newCounter()
			p := natsjetstream.NewPool(natsjetstream.ObserveRequests(cnt.observe))
			defer p.Close()
			triggers := make([]scalers.Scaler, tc.watched)
			for i := range triggers {
				triggers[i] = newTrigger(t, p, md("natsServerURL", srv.URL, "stream", "big", "consumer", fmt.Sprintf("c%03d", i)), nil)
			}
			tick(t, triggers) // learns how many consumers the stream has
			cnt.take()
			time.Sleep(600 * time.Millisecond)
			tick(t, triggers)
			if got := cnt.take(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("requests %s, want %s", describe(got), describe(tc.want))
			}
		})
	}
}
