package valuesync_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ebbscale/ebb/metricstore"
	"github.com/ebbscale/ebb/valuesync"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func key(sc, metric string) metricstore.Key {
	return metricstore.Key{Namespace: "shop", ScaledConsumer: sc, Metric: metric}
}

// Every value a store can hold survives the wire, NaN and the infinities included.
func TestSnapshotRoundTrip(t *testing.T) {
	items := []metricstore.Item{
		{Key: key("a", "lag"), Entry: metricstore.Entry{Value: 1234.5, Time: t0, StaleAfter: 15 * time.Second, Fallback: ptr(40.0)}},
		{Key: key("b", "lag"), Entry: metricstore.Entry{Value: math.NaN(), Time: t0}},
		{Key: key("c", "lag"), Entry: metricstore.Entry{Value: math.Inf(1), Time: t0, Fallback: ptr(math.Inf(-1))}},
		{Key: key("d", "lag"), Entry: metricstore.Entry{Value: 1e300}},
		{Key: key("e", "lag"), Entry: metricstore.Entry{Value: 0, Time: t0.Add(123 * time.Nanosecond), StaleAfter: time.Millisecond}},
	}
	st := metricstore.New()
	st.Replace(items)
	srv := httptest.NewServer(valuesync.NewHandler(st, valuesync.HandlerOptions{}))
	defer srv.Close()
	snap := get(t, srv.URL+valuesync.Path, http.StatusOK)
	if diff := cmp.Diff(snap.Items(), items, cmpopts.EquateNaNs()); diff != "" {
		t.Errorf("round trip (-got +want):\n%s", diff)
	}
	if snap.Revision != 1 || snap.Instance == "" {
		t.Errorf("revision %d, instance %q; want 1 and an instance", snap.Revision, snap.Instance)
	}
}

func get(t *testing.T, url string, wantCode int) *valuesync.Snapshot {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantCode {
		t.Fatalf("GET %s: %s %s, want %d", url, resp.Status, body, wantCode)
	}
	if wantCode != http.StatusOK {
		return nil
	}
	snap := &valuesync.Snapshot{}
	if err := json.Unmarshal(body, snap); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	return snap
}

func TestHandlerRequests(t *testing.T) {
	tests := []struct {
		name     string
		query    func(instance string) string
		change   bool // Set a value 50ms after the request starts
		serving  bool
		wantCode int
		wantRev  uint64
		minTook  time.Duration
		maxTook  time.Duration
	}{
		{name: "first-request-at-once", query: func(string) string { return "" }, serving: true, wantCode: 200, wantRev: 1, maxTook: time.Second},
		{name: "other-instance-at-once", query: func(string) string { return "?instance=other&after=1&timeout=10s" }, serving: true, wantCode: 200, wantRev: 1, maxTook: time.Second},
		{name: "old-revision-at-once", query: func(i string) string { return "?instance=" + i + "&after=0&timeout=10s" }, serving: true, wantCode: 200, wantRev: 1, maxTook: time.Second},
		{name: "waits-for-change", query: func(i string) string { return "?instance=" + i + "&after=1&timeout=10s" }, change: true, serving: true, wantCode: 200, wantRev: 2, minTook: 50 * time.Millisecond, maxTook: 5 * time.Second},
		{name: "times-out-unchanged", query: func(i string) string { return "?instance=" + i + "&after=1&timeout=200ms" }, serving: true, wantCode: 200, wantRev: 1, minTook: 200 * time.Millisecond, maxTook: 5 * time.Second},
		{name: "zero-timeout-at-once", query: func(i string) string { return "?instance=" + i + "&after=1&timeout=0s" }, serving: true, wantCode: 200, wantRev: 1, maxTook: time.Second},
		{name: "not-leader", query: func(string) string { return "" }, serving: false, wantCode: 503},
		{name: "bad-after", query: func(string) string { return "?after=-1" }, serving: true, wantCode: 400},
		{name: "bad-timeout", query: func(string) string { return "?timeout=soon" }, serving: true, wantCode: 400},
		{name: "negative-timeout", query: func(string) string { return "?timeout=-1s" }, serving: true, wantCode: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := metricstore.New()
			st.Set(key("orders", "lag"), metricstore.Entry{Value: 1, Time: t0})
			var serving atomic.Bool
			serving.Store(tc.serving)
			h := valuesync.NewHandler(st, valuesync.HandlerOptions{Serving: serving.Load, Coalesce: time.Millisecond})
			srv := httptest.NewServer(h)
			defer srv.Close()
			if tc.change {
				time.AfterFunc(50*time.Millisecond, func() { st.Set(key("orders", "lag"), metricstore.Entry{Value: 2, Time: t0}) })
			}
			start := time.Now()
			snap := get(t, srv.URL+valuesync.Path+tc.query(h.Instance()), tc.wantCode)
			took := time.Since(start)
			if snap == nil {
				return
			}
			if snap.Revision != tc.wantRev || snap.Instance != h.Instance() {
				t.Errorf("revision %d instance %q, want %d %q", snap.Revision, snap.Instance, tc.wantRev, h.Instance())
			}
			if took < tc.minTook || took > tc.maxTook {
				t.Errorf("answered after %s, want between %s and %s", took, tc.minTook, tc.maxTook)
			}
		})
	}
}

func TestHandlerRejectsOtherMethods(t *testing.T) {
	srv := httptest.NewServer(valuesync.NewHandler(metricstore.New(), valuesync.HandlerOptions{}))
	defer srv.Close()
	resp, err := http.Post(srv.URL+valuesync.Path, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s, want 405", resp.Status)
	}
}

// A burst of changes after the first one travels in the same answer.
func TestHandlerCoalescesBursts(t *testing.T) {
	st := metricstore.New()
	h := valuesync.NewHandler(st, valuesync.HandlerOptions{Coalesce: 300 * time.Millisecond})
	srv := httptest.NewServer(h)
	defer srv.Close()
	go func() {
		time.Sleep(50 * time.Millisecond)
		for i := range 100 {
			st.Set(key(fmt.Sprint("sc-", i), "lag"), metricstore.Entry{Value: float64(i)})
		}
	}()
	snap := get(t, srv.URL+valuesync.Path+"?instance="+h.Instance()+"&after=0&timeout=10s", http.StatusOK)
	if len(snap.Entries) != 100 {
		t.Errorf("got %d entries in the answer to the first change, want all 100 of the burst", len(snap.Entries))
	}
}

// fleet is a store as 1,000 Kafka ScaledConsumers with one trigger each and a fallback leave it.
func fleet(n int) *metricstore.Store {
	st := metricstore.New()
	now := time.Now()
	for i := range n {
		st.Set(metricstore.Key{Namespace: fmt.Sprintf("team-%02d", i%20), ScaledConsumer: fmt.Sprintf("orders-consumer-%04d", i), Metric: "s0-kafka-lag"},
			metricstore.Entry{Value: float64(i * 37 % 5000), Time: now.Add(-time.Duration(i) * time.Millisecond), StaleAfter: 15 * time.Second, Fallback: ptr(400.0)})
	}
	return st
}

// TestSnapshotSize measures what one change costs on the wire for 1,000 ScaledConsumers (recorded in
// docs/design.md): the whole snapshot, as JSON and gzip-compressed as the client receives it.
func TestSnapshotSize(t *testing.T) {
	srv := httptest.NewServer(valuesync.NewHandler(fleet(1000), valuesync.HandlerOptions{}))
	defer srv.Close()
	size := func(gz bool) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+valuesync.Path, nil)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		if gz {
			if resp.Header.Get("Content-Encoding") != "gzip" {
				t.Fatal("no gzip although accepted")
			}
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		return len(b)
	}
	plain, compressed := size(false), size(true)
	t.Logf("1,000 ScaledConsumers: %d bytes of JSON, %d gzip-compressed", plain, compressed)
	if plain > 250_000 || compressed > 60_000 {
		t.Errorf("a 1,000-ScaledConsumer snapshot grew: %d bytes, %d compressed; update docs/design.md", plain, compressed)
	}
}

func BenchmarkSnapshot1000(b *testing.B) {
	srv := httptest.NewServer(valuesync.NewHandler(fleet(1000), valuesync.HandlerOptions{}))
	defer srv.Close()
	for b.Loop() {
		resp, err := http.Get(srv.URL + valuesync.Path)
		if err != nil {
			b.Fatal(err)
		}
		var snap valuesync.Snapshot
		if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
			b.Fatal(err)
		}
		_ = resp.Body.Close()
	}
}
