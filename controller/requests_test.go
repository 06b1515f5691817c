package controller_test

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/rest"
)

// requestCounter counts the requests a client sends to kube-apiserver by kube verb and resource
// ("patch scaledconsumers/status", "get deployments/scale", "watch horizontalpodautoscalers"). It wraps the
// transport of the controller's rest config, so it counts what ebb's own client sends, nothing else.
type requestCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

// withRequestCounter makes the harness's controller send its requests through c.
func withRequestCounter(c *requestCounter) harnessOption {
	return func(h *harness) { h.wrap = c.wrap }
}

var requestInfo = &request.RequestInfoFactory{APIPrefixes: sets.NewString("api", "apis"), GrouplessAPIPrefixes: sets.NewString("api")}

func (c *requestCounter) wrap(cfg *rest.Config) {
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			c.count(req)
			return rt.RoundTrip(req)
		})
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func (c *requestCounter) count(req *http.Request) {
	key := req.Method + " " + req.URL.Path
	if info, err := requestInfo.NewRequestInfo(req); err == nil && info.IsResourceRequest {
		key = info.Verb + " " + info.Resource
		if info.Subresource != "" {
			key += "/" + info.Subresource
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[key]++
}

// take returns the counts since the last take (or the start) and starts counting again from zero.
func (c *requestCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.counts
	c.counts = nil
	if out == nil {
		out = map[string]int{}
	}
	return out
}

// withoutWatches drops the watches (long-running requests the informers hold open) from counts.
func withoutWatches(counts map[string]int) map[string]int {
	out := map[string]int{}
	for k, n := range counts {
		if !strings.HasPrefix(k, "watch ") {
			out[k] = n
		}
	}
	return out
}

// formatCounts renders counts one "verb resource: n" a line, sorted.
func formatCounts(counts map[string]int) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(&b, "%s: %d\n", k, counts[k])
	}
	return b.String()
}
