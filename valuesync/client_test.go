package valuesync_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/rest"

	"github.com/ebbscale/ebb/metricstore"
	"github.com/ebbscale/ebb/valuesync"
)

// leaderServer serves a store's values over TLS, as a leader does, minus kube-apiserver's authentication:
// it accepts only the bearer token "s3cret".
type leaderServer struct {
	store *metricstore.Store
	srv   *httptest.Server
}

func startLeader(t *testing.T) *leaderServer {
	t.Helper()
	st := metricstore.New()
	h := valuesync.NewHandler(st, valuesync.HandlerOptions{Coalesce: time.Millisecond})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return &leaderServer{store: st, srv: srv}
}

func (l *leaderServer) endpoint() valuesync.Endpoint {
	return valuesync.Endpoint{URL: l.srv.URL, Pin: valuesync.PinOf(l.srv.Certificate())}
}

// movingLeader is a Leader a test points elsewhere.
type movingLeader struct {
	mu sync.Mutex
	ep valuesync.Endpoint
}

func (m *movingLeader) set(ep valuesync.Endpoint) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ep = ep
}

func (m *movingLeader) Endpoint(context.Context) (valuesync.Endpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ep.URL == "" {
		return valuesync.Endpoint{}, valuesync.ErrNoLeader
	}
	return m.ep, nil
}

// runClient mirrors into a new store until the test ends.
func runClient(t *testing.T, token string, leader valuesync.Leader) (*metricstore.Store, *valuesync.Client) {
	t.Helper()
	mirror := metricstore.New()
	c, err := valuesync.NewClient(&rest.Config{BearerToken: token}, leader, mirror, valuesync.ClientOptions{LeaderCheck: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	return mirror, c
}

// eventually waits up to 5s for the mirror's content to be want.
func eventually(t *testing.T, mirror *metricstore.Store, want []metricstore.Item, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var diff string
	for time.Now().Before(deadline) {
		_, got := mirror.Snapshot()
		if diff = cmp.Diff(got, want); diff == "" {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: mirror (-got +want):\n%s", what, diff)
}

func TestClientMirrors(t *testing.T) {
	l := startLeader(t)
	l.store.Set(key("orders", "lag"), metricstore.Entry{Value: 1, Time: t0})
	mirror, c := runClient(t, "s3cret", valuesync.StaticLeader(l.endpoint()))
	eventually(t, mirror, []metricstore.Item{{Key: key("orders", "lag"), Entry: metricstore.Entry{Value: 1, Time: t0}}}, "first snapshot")
	if !c.Synced() {
		t.Error("Synced() is false after a snapshot")
	}
	l.store.Set(key("payments", "depth"), metricstore.Entry{Value: 7, Time: t0, StaleAfter: time.Minute, Fallback: ptr(8.0)})
	l.store.Set(key("orders", "lag"), metricstore.Entry{Value: 2, Time: t0})
	eventually(t, mirror, []metricstore.Item{
		{Key: key("orders", "lag"), Entry: metricstore.Entry{Value: 2, Time: t0}},
		{Key: key("payments", "depth"), Entry: metricstore.Entry{Value: 7, Time: t0, StaleAfter: time.Minute, Fallback: ptr(8.0)}},
	}, "after Set")
	l.store.Forget("shop", "orders")
	eventually(t, mirror, []metricstore.Item{
		{Key: key("payments", "depth"), Entry: metricstore.Entry{Value: 7, Time: t0, StaleAfter: time.Minute, Fallback: ptr(8.0)}},
	}, "after Forget")
}

// A change reaches the mirror in about one round trip, not at the next long-poll timeout.
func TestClientIsPrompt(t *testing.T) {
	l := startLeader(t)
	mirror, c := runClient(t, "s3cret", valuesync.StaticLeader(l.endpoint()))
	for !c.Synced() {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the client now waits in a long poll
	start := time.Now()
	l.store.Set(key("orders", "lag"), metricstore.Entry{Value: 3})
	for {
		if _, ok := mirror.Get(key("orders", "lag")); ok {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("the change did not arrive")
		}
		time.Sleep(time.Millisecond)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("a change took %s to arrive", took)
	}
}

// What the client refuses to mirror leaves the mirror as it was.
func TestClientRefuses(t *testing.T) {
	tests := []struct {
		name     string
		token    string
		endpoint func(l *leaderServer) valuesync.Endpoint
	}{
		{name: "wrong-pin", token: "s3cret", endpoint: func(l *leaderServer) valuesync.Endpoint {
			return valuesync.Endpoint{URL: l.srv.URL, Pin: "sha256:47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"}
		}},
		{name: "bad-token", token: "wrong", endpoint: (*leaderServer).endpoint},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := startLeader(t)
			l.store.Set(key("orders", "lag"), metricstore.Entry{Value: 1})
			mirror, c := runClient(t, tc.token, valuesync.StaticLeader(tc.endpoint(l)))
			mirror.Set(key("kept", "lag"), metricstore.Entry{Value: 9})
			time.Sleep(500 * time.Millisecond)
			if c.Synced() {
				t.Error("the client mirrored")
			}
			eventually(t, mirror, []metricstore.Item{{Key: key("kept", "lag"), Entry: metricstore.Entry{Value: 9}}}, "refused")
		})
	}
}

// The client follows the leader to its new endpoint, even in the middle of a long poll.
func TestClientFollowsNewLeader(t *testing.T) {
	a, b := startLeader(t), startLeader(t)
	a.store.Set(key("from-a", "lag"), metricstore.Entry{Value: 1})
	b.store.Set(key("from-b", "lag"), metricstore.Entry{Value: 2})
	leader := &movingLeader{}
	mirror, _ := runClient(t, "s3cret", leader)
	leader.set(a.endpoint())
	eventually(t, mirror, []metricstore.Item{{Key: key("from-a", "lag"), Entry: metricstore.Entry{Value: 1}}}, "leader a")
	leader.set(b.endpoint())
	eventually(t, mirror, []metricstore.Item{{Key: key("from-b", "lag"), Entry: metricstore.Entry{Value: 2}}}, "leader b")
	// No leader for a while: the last values stay.
	leader.set(valuesync.Endpoint{})
	time.Sleep(200 * time.Millisecond)
	eventually(t, mirror, []metricstore.Item{{Key: key("from-b", "lag"), Entry: metricstore.Entry{Value: 2}}}, "no leader")
}

func TestNewClientNeedsAToken(t *testing.T) {
	_, err := valuesync.NewClient(&rest.Config{TLSClientConfig: rest.TLSClientConfig{CertFile: "client.crt", KeyFile: "client.key"}}, valuesync.StaticLeader{}, metricstore.New(), valuesync.ClientOptions{})
	if err == nil {
		t.Error("NewClient accepted a configuration without a bearer token")
	}
}

func TestParseIdentity(t *testing.T) {
	tests := []struct {
		name     string
		identity string
		want     valuesync.Endpoint
		wantErr  bool
	}{
		{name: "endpoint-and-pin", identity: valuesync.Identity("pod-1_abc", valuesync.Endpoint{URL: "https://10.0.0.7:8443", Pin: "sha256:xyz"}), want: valuesync.Endpoint{URL: "https://10.0.0.7:8443", Pin: "sha256:xyz"}},
		{name: "endpoint-only", identity: "pod-1_abc https://[fd00::7]:8443", want: valuesync.Endpoint{URL: "https://[fd00::7]:8443"}},
		{name: "plain-controller-runtime-identity", identity: "pod-1_0f6e3d52-6a4f-4e0c-9c3b-6f1f0b9d2a11", wantErr: true},
		{name: "not-https", identity: "pod-1_abc http://10.0.0.7:8443", wantErr: true},
		{name: "empty", identity: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := valuesync.ParseIdentity(tc.identity)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseIdentity(%q) error = %v, want error %v", tc.identity, err, tc.wantErr)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("ParseIdentity(%q) (-got +want):\n%s", tc.identity, diff)
			}
		})
	}
}
