package cli_test

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/internal/app"
	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/metricstore"
	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/scalertest"
	"github.com/ebbscale/ebb/valuesync"
)

// serviceAccountKubeconfig installs ebb's namespace and RBAC from manifests/ and writes a kubeconfig
// that authenticates as ebb's ServiceAccount with a token from the TokenRequest API, as a pod would.
func serviceAccountKubeconfig(t *testing.T, env *testenv.Env) string {
	t.Helper()
	root := testenv.RepoRoot(t)
	kubectl := filepath.Join(env.BinDir, "kubectl")
	out, err := exec.CommandContext(t.Context(), kubectl, "--kubeconfig="+env.Kubeconfig, "--cache-dir="+t.TempDir(), "apply",
		"-f", filepath.Join(root, "manifests", "namespace.yaml"), "-f", filepath.Join(root, "manifests", "rbac")).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	tr, err := env.Kube.CoreV1().ServiceAccounts("ebb-system").CreateToken(t.Context(), "ebb",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	cfg.AuthInfos["ebb"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["ebb"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "ebb"}
	cfg.CurrentContext = "ebb"
	path := filepath.Join(t.TempDir(), "ebb-sa.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// startLeader runs `ebb controller --leader-elect` in this process, with the "test" trigger type the
// binary lacks, serving its values on a free port, and waits until it holds the Lease.
func startLeader(t *testing.T, env *testenv.Env, src *scalertest.Source) *metricstore.Store {
	t.Helper()
	store := metricstore.New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{
			Config:                  env.Config,
			Store:                   store,
			Controller:              true,
			Registry:                src.Register(scalers.Registry{}),
			LeaderElection:          true,
			LeaderElectionNamespace: "ebb-system",
			MetricsBindAddress:      "0",
			HealthProbeBindAddress:  "0",
			ValuesBindAddress:       "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
			AdvertiseAddress:        "127.0.0.1",
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("leader: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the leader did not stop within 30s")
		}
	})
	waitFor(t, 30*time.Second, "the in-process controller did not take the Lease", func() bool {
		lease := &coordinationv1.Lease{}
		if err := env.Client.Get(t.Context(), types.NamespacedName{Namespace: "ebb-system", Name: app.DefaultLeaderElectionID}, lease); err != nil {
			return false
		}
		ep, err := valuesync.ParseIdentity(ptrValue(lease.Spec.HolderIdentity))
		return err == nil && strings.HasPrefix(ep.URL, "https://127.0.0.1:") && ep.Pin != ""
	})
	return store
}

func ptrValue(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Only the leader polls; `ebb run` on a follower and `ebb metrics-apiserver` serve the leader's values,
// mirrored over the authenticated values endpoint, through the aggregator as the HPA reads them: values,
// changes and deletions.
func TestFollowersServeLeaderValues(t *testing.T) {
	env := testenv.Start(t, localcluster.Options{})
	ctx := t.Context()
	saKubeconfig := serviceAccountKubeconfig(t, env)
	src := scalertest.New()
	leaderStore := startLeader(t, env, src)

	ns := testenv.UniqueName(t, "vals")
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, testenv.Deployment(ns, "consumer", 1)); err != nil {
		t.Fatal(err)
	}
	key := ns + "/backlog"
	src.Set(key, 1234)
	sc := &ebbv1.ScaledConsumer{
		ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: ns},
		Spec: ebbv1.ScaledConsumerSpec{
			ScaleTargetRef:  ebbv1.ScaleTargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "consumer"},
			PollingInterval: &metav1.Duration{Duration: 200 * time.Millisecond},
			Triggers:        []ebbv1.Trigger{{Name: "backlog", Type: scalertest.Type, Metadata: map[string]string{"key": key, "target": "10"}}},
		},
	}
	if err := env.Client.Create(ctx, sc); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the leader did not poll the trigger", func() bool {
		_, ok := leaderStore.Get(metricstore.Key{Namespace: ns, ScaledConsumer: "orders", Metric: "backlog"})
		return ok
	})

	// Both followers authenticate as ebb's ServiceAccount, with only the RBAC of manifests/rbac.
	runPort, apiPort := testenv.FreePort(t), testenv.FreePort(t)
	follower := startEbbProcess(t, "run", "--kubeconfig="+saKubeconfig, "--leader-elect", "--leader-election-namespace=ebb-system",
		"--secure-port="+strconv.Itoa(runPort), "--bind-address=127.0.0.1", "--cert-dir="+t.TempDir())
	metricsAPI := startEbbProcess(t, "metrics-apiserver", "--kubeconfig="+saKubeconfig, "--leader-election-namespace=ebb-system",
		"--secure-port="+strconv.Itoa(apiPort), "--bind-address=127.0.0.1", "--cert-dir="+t.TempDir())
	// The follower is ready once it has the leader's values: before, it would answer Not Found.
	waitFor(t, 30*time.Second, "the follower's /readyz did not pass", func() bool {
		resp, err := http.Get(follower.HealthURL + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if follower.leading() {
		t.Fatal("the follower leads")
	}

	for _, tc := range []struct {
		name string
		p    *ebbProcess
		port int
	}{
		{name: "ebb-run-follower", p: follower, port: runPort},
		{name: "ebb-metrics-apiserver", p: metricsAPI, port: apiPort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := env.RegisterExternalMetrics(ctx, tc.port); err != nil {
				t.Fatalf("registering the metrics API of %s: %v\n%s", tc.name, err, tc.p.Logs())
			}
			serves := func(want string) func() bool {
				return func() bool {
					got, err := env.RawExternalMetric(t, ns, "backlog", "orders")
					if want == "" {
						return err != nil && strings.Contains(err.Error(), "NotFound")
					}
					return err == nil && got == want
				}
			}
			waitFor(t, 30*time.Second, "the leader's value 1234 is not served", serves("1234"))
			src.Set(key, 56)
			waitFor(t, 10*time.Second, "the leader's new value 56 is not served", serves("56"))
			src.Set(key, 1234)
			waitFor(t, 10*time.Second, "the value is not back at 1234", serves("1234"))
			// Its own Prometheus metrics are served, the metrics API server's alone included.
			if got := tc.p.metricValue(`ebb_metricsapi_requests_total{code="ok",metric="backlog"}`); got == "" || got == "0" {
				t.Errorf("ebb_metricsapi_requests_total of the answers served = %q on /metrics, want them counted", got)
			}
		})
	}

	// A deleted ScaledConsumer's values go from the leader's store, and so from the mirrors.
	if err := env.Client.Delete(ctx, sc); err != nil {
		t.Fatal(err)
	}
	for _, port := range []int{runPort, apiPort} {
		if err := env.RegisterExternalMetrics(ctx, port); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "a deleted ScaledConsumer's value is still served", func() bool {
			_, err := env.RawExternalMetric(t, ns, "backlog", "orders")
			return err != nil && strings.Contains(err.Error(), "NotFound")
		})
	}
	if got := follower.Logs(); !strings.Contains(got, "mirroring the leader's metric values") {
		t.Errorf("the follower never logged that it mirrors:\n%s", got)
	}
}
