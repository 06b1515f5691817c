package valuesync

import (
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/ebbscale/ebb/metricstore"
)

// Long-poll bounds of a values request.
const (
	// DefaultWait is how long a request waits for a change when it gives no timeout.
	DefaultWait = 30 * time.Second
	// MaxWait caps the timeout a request may ask for.
	MaxWait = 60 * time.Second
)

// HandlerOptions configure a Handler. The zero value of each field picks the default its comment gives.
type HandlerOptions struct {
	// Serving reports whether this process's store is the one to mirror (it is the leader). While it
	// reports false, requests get 503 Service Unavailable, so a follower that reached a non-leader looks
	// for the leader again instead of mirroring an empty store. Default: always serving.
	Serving func() bool
	// Coalesce is how long the handler lets further changes gather after the one it waited for, so a
	// polling tick that writes many triggers at once travels as one snapshot. Default 100ms.
	Coalesce time.Duration
}

// Handler serves GET Path from a store:
//
//	GET /ebb/v1/values?instance=<id>&after=<revision>&timeout=<duration>
//
// When instance is the handler's and the store is still at revision after, the request waits until the
// store changes or timeout passes (default DefaultWait, at most MaxWait; 0 answers at once). It is
// answered with the store's full Snapshot as JSON, gzip-compressed when the client accepts it. A request
// with another or no instance is answered at once. Handler does no authentication: Server puts it behind
// kube-apiserver's.
type Handler struct {
	store    *metricstore.Store
	serving  func() bool
	coalesce time.Duration
	instance string
}

// NewHandler returns a Handler serving st.
func NewHandler(st *metricstore.Store, opts HandlerOptions) *Handler {
	if opts.Serving == nil {
		opts.Serving = func() bool { return true }
	}
	if opts.Coalesce == 0 {
		opts.Coalesce = 100 * time.Millisecond
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Handler{store: st, serving: opts.Serving, coalesce: opts.Coalesce, instance: hex.EncodeToString(b[:])}
}

// Instance is the identifier the handler's snapshots carry.
func (h *Handler) Instance() string { return h.instance }

// errNotServing is the body of a 503 from a process that is not the leader.
const errNotServing = "this ebb process is not the leader: look up the leader again"

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "only GET", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	var after uint64
	if s := q.Get("after"); s != "" {
		var err error
		if after, err = strconv.ParseUint(s, 10, 64); err != nil {
			http.Error(w, "after: want a revision, a non-negative integer", http.StatusBadRequest)
			return
		}
	}
	wait := DefaultWait
	if s := q.Get("timeout"); s != "" {
		var err error
		if wait, err = time.ParseDuration(s); err != nil || wait < 0 {
			http.Error(w, "timeout: want a non-negative Go duration such as 30s", http.StatusBadRequest)
			return
		}
		wait = min(wait, MaxWait)
	}
	if !h.serving() {
		http.Error(w, errNotServing, http.StatusServiceUnavailable)
		return
	}

	ctx := r.Context()
	if q.Get("instance") == h.instance && after == h.store.Revision() && wait > 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-h.store.Changed(after):
			select {
			case <-time.After(h.coalesce):
			case <-ctx.Done():
			}
		case <-timer.C:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			// The client left, or the server is stopping; either way this answer reaches no one useful.
			http.Error(w, "stopping", http.StatusServiceUnavailable)
			return
		}
		if !h.serving() {
			http.Error(w, errNotServing, http.StatusServiceUnavailable)
			return
		}
	}

	rev, items := h.store.Snapshot()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	var out io.Writer = w
	if acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Add("Vary", "Accept-Encoding")
		gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		defer func() { _ = gz.Close() }()
		out = gz
	}
	if err := json.NewEncoder(out).Encode(Snapshot{Instance: h.instance, Revision: rev, Entries: toWire(items)}); err != nil {
		klog.FromContext(ctx).V(1).Info("writing a values snapshot failed", "error", err)
	}
}

func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.EqualFold(strings.TrimSpace(name), "gzip") && strings.ReplaceAll(params, " ", "") != "q=0" {
				return true
			}
		}
	}
	return false
}
