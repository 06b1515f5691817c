package app

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ebbscale/ebb/metricstore"
)

func key(ns, sc, metric string) metricstore.Key {
	return metricstore.Key{Namespace: ns, ScaledConsumer: sc, Metric: metric}
}

// Once elected, the process's store is no longer written by the mirror, and the mirrored values of
// ScaledConsumers that are gone are dropped; the others stay until the poller replaces them.
func TestHandover(t *testing.T) {
	st := metricstore.New()
	h := &handover{store: st}
	h.Replace([]metricstore.Item{
		{Key: key("shop", "orders", "lag"), Entry: metricstore.Entry{Value: 1}},
		{Key: key("shop", "deleted", "lag"), Entry: metricstore.Entry{Value: 2}},
		{Key: key("other", "orders", "lag"), Entry: metricstore.Entry{Value: 3}},
	})
	if h.Leading() {
		t.Fatal("leading before election")
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	live := func(context.Context) (map[[2]string]bool, error) {
		return map[[2]string]bool{{"shop", "orders"}: true, {"other", "orders"}: true}, nil
	}
	go func() { done <- electedRunnable{h: h, live: live}.Start(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for st.Revision() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if !h.Leading() {
		t.Error("not leading after election")
	}
	// A snapshot that arrives after the election is not written.
	h.Replace(nil)
	_, got := st.Snapshot()
	want := []metricstore.Item{
		{Key: key("other", "orders", "lag"), Entry: metricstore.Entry{Value: 3}},
		{Key: key("shop", "orders", "lag"), Entry: metricstore.Entry{Value: 1}},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("store after election (-got +want):\n%s", diff)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("electedRunnable: %v", err)
	}
}

// The mirror runnable ends when the process is elected, and does not start after.
func TestMirrorRunnableStopsOnElection(t *testing.T) {
	h := &handover{store: metricstore.New()}
	h.lead()
	done := make(chan error, 1)
	go func() { done <- mirrorRunnable{h: h}.Start(t.Context()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the mirror ran on a leader")
	}
}

func TestReady(t *testing.T) {
	tests := []struct {
		name      string
		h         *handover
		lead      bool
		wantReady bool
	}{
		{name: "not-mirroring", h: &handover{}, wantReady: true},
		{name: "follower-without-client", h: &handover{mirrors: true, clientErr: errors.New("no token")}},
		{name: "leader-without-client", h: &handover{mirrors: true, clientErr: errors.New("no token")}, lead: true, wantReady: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.h.store = metricstore.New()
			if tc.lead {
				tc.h.lead()
			}
			if err := tc.h.ready(nil); (err == nil) != tc.wantReady {
				t.Errorf("ready() = %v, want ready %v", err, tc.wantReady)
			}
		})
	}
}
