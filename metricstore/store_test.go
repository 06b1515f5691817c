package metricstore_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ebbscale/ebb/metricstore"
)

func TestStoreForget(t *testing.T) {
	st := metricstore.New()
	for _, k := range []metricstore.Key{
		{Namespace: "shop", ScaledConsumer: "orders", Metric: "lag"},
		{Namespace: "shop", ScaledConsumer: "orders", Metric: "old"},
		{Namespace: "shop", ScaledConsumer: "payments", Metric: "old"},
	} {
		st.Set(k, metricstore.Entry{Value: 1})
	}
	st.Forget("shop", "orders", "lag")
	if _, ok := st.Get(metricstore.Key{Namespace: "shop", ScaledConsumer: "orders", Metric: "old"}); ok {
		t.Error("a removed trigger's metric is still served")
	}
	for _, k := range []metricstore.Key{{Namespace: "shop", ScaledConsumer: "orders", Metric: "lag"}, {Namespace: "shop", ScaledConsumer: "payments", Metric: "old"}} {
		if _, ok := st.Get(k); !ok {
			t.Errorf("%v was dropped", k)
		}
	}
	st.Forget("shop", "orders")
	if diff := cmp.Diff(st.MetricNames(), []string{"old"}); diff != "" {
		t.Errorf("after deleting orders (-got +want):\n%s", diff)
	}
}

func key(sc, metric string) metricstore.Key {
	return metricstore.Key{Namespace: "shop", ScaledConsumer: sc, Metric: metric}
}

// TestStoreRevision: which operations count as a change.
func TestStoreRevision(t *testing.T) {
	tests := []struct {
		name    string
		op      func(st *metricstore.Store)
		wantRev uint64
	}{
		{name: "set", op: func(st *metricstore.Store) { st.Set(key("orders", "lag"), metricstore.Entry{Value: 2}) }, wantRev: 2},
		{name: "set-same-value", op: func(st *metricstore.Store) { st.Set(key("orders", "lag"), metricstore.Entry{Value: 1}) }, wantRev: 2},
		{name: "forget", op: func(st *metricstore.Store) { st.Forget("shop", "orders") }, wantRev: 2},
		{name: "forget-kept", op: func(st *metricstore.Store) { st.Forget("shop", "orders", "lag") }, wantRev: 1},
		{name: "forget-unknown", op: func(st *metricstore.Store) { st.Forget("shop", "payments") }, wantRev: 1},
		{name: "replace", op: func(st *metricstore.Store) { st.Replace(nil) }, wantRev: 2},
		{name: "read", op: func(st *metricstore.Store) { st.Get(key("orders", "lag")); st.Snapshot(); st.MetricNames() }, wantRev: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := metricstore.New()
			st.Set(key("orders", "lag"), metricstore.Entry{Value: 1})
			tc.op(st)
			if got := st.Revision(); got != tc.wantRev {
				t.Errorf("revision = %d, want %d", got, tc.wantRev)
			}
		})
	}
}

func TestStoreSnapshotReplace(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	fallback := 40.0
	src := metricstore.New()
	src.Set(key("payments", "lag"), metricstore.Entry{Value: 3, Time: now})
	src.Set(key("orders", "s1-depth"), metricstore.Entry{Value: 2, Time: now, StaleAfter: time.Minute, Fallback: &fallback})
	src.Set(key("orders", "s0-lag"), metricstore.Entry{Value: 1, Time: now})
	rev, items := src.Snapshot()
	want := []metricstore.Item{
		{Key: key("orders", "s0-lag"), Entry: metricstore.Entry{Value: 1, Time: now}},
		{Key: key("orders", "s1-depth"), Entry: metricstore.Entry{Value: 2, Time: now, StaleAfter: time.Minute, Fallback: &fallback}},
		{Key: key("payments", "lag"), Entry: metricstore.Entry{Value: 3, Time: now}},
	}
	if diff := cmp.Diff(items, want); diff != "" || rev != 3 {
		t.Errorf("Snapshot() = rev %d, (-got +want):\n%s", rev, diff)
	}

	dst := metricstore.New()
	dst.Set(key("gone", "lag"), metricstore.Entry{Value: 9})
	dst.Replace(items)
	_, got := dst.Snapshot()
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("after Replace (-got +want):\n%s", diff)
	}
	if _, ok := dst.Get(key("gone", "lag")); ok {
		t.Error("Replace kept an entry the snapshot does not have")
	}
}

func TestStoreChanged(t *testing.T) {
	st := metricstore.New()
	isClosed := func(c <-chan struct{}) bool {
		select {
		case <-c:
			return true
		default:
			return false
		}
	}
	if isClosed(st.Changed(0)) {
		t.Fatal("Changed(0) on a new store is closed")
	}
	waiters := []<-chan struct{}{st.Changed(0), st.Changed(0)}
	if waiters[0] != waiters[1] {
		t.Error("waiters on one revision do not share a channel")
	}
	st.Forget("shop", "nothing-there")
	for _, w := range waiters {
		if isClosed(w) {
			t.Error("a Forget that dropped nothing woke a waiter")
		}
	}
	st.Set(key("orders", "lag"), metricstore.Entry{Value: 1})
	for _, w := range waiters {
		if !isClosed(w) {
			t.Error("Set did not wake a waiter")
		}
	}
	if !isClosed(st.Changed(0)) {
		t.Error("Changed(0) at revision 1 is not closed at once")
	}
	next := st.Changed(1)
	if isClosed(next) {
		t.Error("Changed(1) at revision 1 is closed")
	}
	done := make(chan struct{})
	go func() {
		<-next
		close(done)
	}()
	st.Replace(nil)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Replace did not wake a waiter")
	}
}
