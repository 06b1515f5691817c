package controller_test

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// requestLog records the order of the controller's requests ("verb resource") and, while slow is set,
// holds each status write that long: a busy API server or a client at its limit.
type requestLog struct {
	mu   sync.Mutex
	seq  []string
	slow atomic.Int64 // time.Duration
}

func (l *requestLog) wrap(cfg *rest.Config) {
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			key := req.Method + " " + req.URL.Path
			if info, err := requestInfo.NewRequestInfo(req); err == nil && info.IsResourceRequest {
				key = info.Verb + " " + info.Resource
				if info.Subresource != "" {
					key += "/" + info.Subresource
				}
			}
			l.mu.Lock()
			l.seq = append(l.seq, key)
			l.mu.Unlock()
			if d := time.Duration(l.slow.Load()); d > 0 && key == "patch scaledconsumers/status" {
				time.Sleep(d)
			}
			return rt.RoundTrip(req)
		})
	})
}

// since returns the requests logged from index i on, and the log's length.
func (l *requestLog) since(i int) ([]string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seq[i:]...), len(l.seq)
}

// TestWakeUpGoesBeforeRoutineWork: a wake-up from zero is not queued behind routine work. 30
// ScaledConsumers at zero all get a new value below their activation threshold at once, which queues 30
// routine status refreshes; the controller works one request at a time and each status write takes
// 300 ms. Then one more ScaledConsumer's trigger turns active: its wake-up must come before the routine
// backlog, so only the few status writes already under way when it arrived go before its /scale update.
func TestWakeUpGoesBeforeRoutineWork(t *testing.T) {
	const n = 30
	log := &requestLog{}
	h := newHarness(t, func(h *harness) {
		h.wrap = log.wrap
		h.concurrency = 1
	})
	for i := range n {
		name := fmt.Sprintf("idle%02d", i)
		h.deployment(name, 0)
		h.set(name, 0)
		sc := h.scaledConsumer(name, name, name)
		sc.Spec.Triggers[0].Metadata["activation"] = "5"
		h.create(sc)
	}
	h.deployment("hot", 0)
	h.set("hot", 0)
	h.create(h.scaledConsumer("hot", "hot", "hot"))
	for i := range n {
		h.waitStatusValue(fmt.Sprintf("idle%02d", i), "0")
	}
	h.waitStatusValue("hot", "0")
	time.Sleep(time.Second) // settled: nothing queued

	_, start := log.since(0)
	log.slow.Store(int64(300 * time.Millisecond))
	for i := range n {
		h.set(fmt.Sprintf("idle%02d", i), 1) // below activation: a routine refresh of status
	}
	// The backlog is queued once the first refresh writes (every poller ticks at the same moment).
	h.eventually(10*time.Second, func() (bool, string) {
		seq, _ := log.since(start)
		writes := count(seq, "patch scaledconsumers/status")
		return writes >= 2, fmt.Sprintf("%d status writes since the values changed", writes)
	})
	_, woken := log.since(0)
	h.set("hot", 50)
	h.eventually(20*time.Second, func() (bool, string) {
		got := h.replicas("hot")
		return got == 1, fmt.Sprintf("Deployment hot has %d replicas, want 1", got)
	})
	seq, _ := log.since(woken)
	before := 0
	for _, k := range seq {
		if k == "update deployments/scale" {
			break
		}
		if k == "patch scaledconsumers/status" {
			before++
		}
	}
	// At most the write under way and the one of a reconcile that took its request just before.
	if before > 2 {
		t.Errorf("%d routine status writes went before the wake-up's /scale update, want at most 2 of the %d queued", before, n)
	}
	log.slow.Store(0)
}

func count(seq []string, key string) int {
	n := 0
	for _, k := range seq {
		if k == key {
			n++
		}
	}
	return n
}

// waitStatusValue waits until the ScaledConsumer's only trigger shows value v in status.
func (h *harness) waitStatusValue(name, v string) {
	h.t.Helper()
	h.eventually(20*time.Second, func() (bool, string) {
		st := h.getSC(name).Status
		if len(st.Triggers) != 1 {
			return false, fmt.Sprintf("%s has %d triggers in status", name, len(st.Triggers))
		}
		return st.Triggers[0].Value == v, fmt.Sprintf("%s: status value %q, want %q", name, st.Triggers[0].Value, v)
	})
}
