package valuesync_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/metricstore"
	"github.com/ebbscale/ebb/valuesync"
)

// cluster is a kube-apiserver with ebb's ServiceAccount (ebb-system/ebb) bound by manifests/rbac/values.yaml,
// and a ServiceAccount without that binding (ebb-system/stranger).
type cluster struct {
	*testenv.Env
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	env := testenv.Start(t, localcluster.Options{SkipCRDs: true})
	ctx := t.Context()
	if _, err := env.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ebb-system"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ebb", "stranger"} {
		if _, err := env.Kube.CoreV1().ServiceAccounts("ebb-system").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "manifests", "rbac", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(b), "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("manifests/rbac/values.yaml: %d documents, want a ClusterRole and its binding", len(docs))
	}
	role, binding := &rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{}
	if err := yaml.UnmarshalStrict([]byte(docs[0]), role); err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict([]byte(docs[1]), binding); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Kube.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Kube.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return &cluster{env}
}

// token returns a token of ServiceAccount ebb-system/name from the TokenRequest API, as a pod gets one.
func (c *cluster) token(t *testing.T, name string) string {
	t.Helper()
	tr, err := c.Kube.CoreV1().ServiceAccounts("ebb-system").CreateToken(t.Context(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s: %v", name, err)
	}
	return tr.Status.Token
}

// startServer runs a values Server for st on a free port, checking requests with the cluster's admin
// identity, and returns its endpoint.
func (c *cluster) startServer(t *testing.T, st *metricstore.Store) valuesync.Endpoint {
	t.Helper()
	srv, err := valuesync.NewServer(c.Config, valuesync.NewHandler(st, valuesync.HandlerOptions{Coalesce: time.Millisecond}),
		valuesync.ServerOptions{BindAddress: "127.0.0.1:0", Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("values server: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("values server did not stop")
		}
	})
	return valuesync.Endpoint{URL: "https://" + srv.Addr().String(), Pin: srv.Pin()}
}

// The endpoint answers only callers kube-apiserver authenticates and authorizes for /ebb/v1/values.
func TestServerAuth(t *testing.T) {
	c := startCluster(t)
	st := metricstore.New()
	st.Set(key("orders", "lag"), metricstore.Entry{Value: 42, Time: t0})
	ep := c.startServer(t, st)
	httpc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	tests := []struct {
		name     string
		token    string
		wantCode int
	}{
		{name: "anonymous", wantCode: http.StatusUnauthorized},
		{name: "bad-token", token: "not-a-token", wantCode: http.StatusUnauthorized},
		{name: "service-account-without-grant", token: c.token(t, "stranger"), wantCode: http.StatusForbidden},
		{name: "ebb-service-account", token: c.token(t, "ebb"), wantCode: http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, ep.URL+valuesync.Path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			// The RBAC authorizer sees a new binding through an informer: allow it a moment.
			var code int
			var body []byte
			for range 50 {
				resp, err := httpc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				code = resp.StatusCode
				body, _ = io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if code == tc.wantCode || tc.wantCode != http.StatusOK {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if code != tc.wantCode {
				t.Fatalf("%d %s, want %d", code, body, tc.wantCode)
			}
			if code == http.StatusOK && !strings.Contains(string(body), `"value":42`) {
				t.Errorf("body %s lacks the value", body)
			}
		})
	}
}

// A follower finds the leader through the Lease, authenticates with a ServiceAccount token, checks the
// pinned key, and mirrors every change, deletions included.
func TestMirrorThroughLease(t *testing.T) {
	c := startCluster(t)
	leaderStore := metricstore.New()
	leaderStore.Set(key("orders", "lag"), metricstore.Entry{Value: 1, Time: t0})
	ep := c.startServer(t, leaderStore)
	leases := c.Kube.CoordinationV1()
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "ebb-controller-leader", Namespace: "ebb-system"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr(valuesync.Identity("leader-pod_1234", ep))},
	}
	if _, err := leases.Leases("ebb-system").Create(t.Context(), lease, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	leader := valuesync.LeaseLeader{Client: leases, Namespace: "ebb-system", Name: "ebb-controller-leader"}
	got, err := leader.Endpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, ep); diff != "" {
		t.Errorf("endpoint from the Lease (-got +want):\n%s", diff)
	}
	if _, err := (valuesync.LeaseLeader{Client: leases, Namespace: "ebb-system", Name: "no-such-lease"}).Endpoint(t.Context()); !errors.Is(err, valuesync.ErrLease) {
		t.Errorf("missing Lease: %v, want ErrLease", err)
	}

	mirror, _ := runClient(t, c.token(t, "ebb"), leader)
	eventually(t, mirror, []metricstore.Item{{Key: key("orders", "lag"), Entry: metricstore.Entry{Value: 1, Time: t0}}}, "first snapshot")
	leaderStore.Set(key("payments", "lag"), metricstore.Entry{Value: 2, Time: t0})
	leaderStore.Forget("shop", "orders")
	eventually(t, mirror, []metricstore.Item{{Key: key("payments", "lag"), Entry: metricstore.Entry{Value: 2, Time: t0}}}, "after Set and Forget")

	// The leader steps down (released Lease): the mirror keeps what it has.
	lease, err = leases.Leases("ebb-system").Get(t.Context(), lease.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lease.Spec.HolderIdentity = ptr("")
	if _, err := leases.Leases("ebb-system").Update(t.Context(), lease, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := leader.Endpoint(t.Context()); !errors.Is(err, valuesync.ErrNoLeader) {
		t.Errorf("released Lease: %v, want ErrNoLeader", err)
	}
	time.Sleep(300 * time.Millisecond)
	eventually(t, mirror, []metricstore.Item{{Key: key("payments", "lag"), Entry: metricstore.Entry{Value: 2, Time: t0}}}, "no leader")
}
