package scalers_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ebbscale/ebb/scalers"
)

// Concurrent readers share one fetch; a reading older than notBefore, or one that misses a newer watch,
// is taken again; a fetch error is every waiter's.
func TestSharedCoalesces(t *testing.T) {
	sh := scalers.NewShared[string, string, int]()
	v := sh.Add("a", "orders")
	var fetches atomic.Int32
	release := make(chan struct{})
	fetch := func(_ context.Context, ws []string) (int, error) {
		fetches.Add(1)
		<-release
		return len(ws), nil
	}
	start := time.Now()
	var wg sync.WaitGroup
	got := make([]*scalers.Reading[int], 10)
	for i := range got {
		wg.Go(func() {
			r, err := sh.Read(t.Context(), time.Now, start, v, time.Second, nil, fetch)
			if err != nil {
				t.Error(err)
			}
			got[i] = r
		})
	}
	time.Sleep(20 * time.Millisecond) // let them all wait on the one in flight
	close(release)
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Fatalf("10 concurrent readers made %d fetches, want 1", n)
	}
	for _, r := range got {
		if r != got[0] || r.Val != 1 {
			t.Fatalf("readers got different readings or value %d", r.Val)
		}
	}
	// Fresh enough: no new fetch.
	if _, err := sh.Read(t.Context(), time.Now, start, v, time.Second, nil, fetch); err != nil || fetches.Load() != 1 {
		t.Errorf("a fresh reading was fetched again (fetches %d, err %v)", fetches.Load(), err)
	}
	// Too old: a new fetch.
	if r, _ := sh.Read(t.Context(), time.Now, time.Now(), v, time.Second, nil, fetch); fetches.Load() != 2 || r.Seq != 2 {
		t.Errorf("fetches %d, seq %d after asking for a newer reading; want 2, 2", fetches.Load(), r.Seq)
	}
	// A new watcher needs a reading that covers it.
	v2 := sh.Add("b", "payments")
	r, _ := sh.Read(t.Context(), time.Now, start, v2, time.Second, nil, fetch)
	if fetches.Load() != 3 || r.Val != 2 {
		t.Errorf("fetches %d, watches seen %d after a new watcher; want 3, 2", fetches.Load(), r.Val)
	}
	if n := sh.Remove("a"); n != 1 {
		t.Errorf("Remove left %d watchers, want 1", n)
	}
	// A failed fetch is the reading's Err, not Read's error.
	boom := errors.New("broker down")
	r, err := sh.Read(t.Context(), time.Now, time.Now(), sh.Version(), time.Second, nil, func(context.Context, []string) (int, error) { return 0, boom })
	if err != nil || !errors.Is(r.Err, boom) {
		t.Errorf("Read = %v, reading error %v; want nil and the fetch's error", err, r.Err)
	}
}

func TestFreshness(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		want     time.Duration
	}{
		{name: "unknown", interval: 0, want: time.Second},
		{name: "fast", interval: 200 * time.Millisecond, want: 100 * time.Millisecond},
		{name: "default", interval: 5 * time.Second, want: time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := scalers.Freshness(tc.interval); got != tc.want {
				t.Errorf("Freshness(%v) = %v, want %v", tc.interval, got, tc.want)
			}
		})
	}
}
