package metricsapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	externalclient "k8s.io/metrics/pkg/client/external_metrics"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/metricsapi"
	"github.com/ebbscale/ebb/metricstore"
)

// startAdapter runs the metrics API server on a free port with delegated authn/authz against env.
func startAdapter(t testing.TB, env *testenv.Env, p provider.ExternalMetricsProvider) int {
	t.Helper()
	port := testenv.FreePort(t)
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	adapter := metricsapi.NewAdapter(p, fs)
	err := fs.Parse(metricsapi.LocalFlags(port, t.TempDir(), env.Kubeconfig))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- adapter.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("metrics API server: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("metrics API server did not stop")
		}
	})
	return port
}

// The aggregated API path: a provider registered through the APIService answers a plain client that
// talks only to kube-apiserver.
func TestAggregatedExternalMetrics(t *testing.T) {
	env := testenv.Start(t, localcluster.Options{})
	st := metricstore.New()
	sampled := time.Now().Add(-time.Second).Truncate(time.Second)
	st.Set(metricstore.Key{Namespace: "shop", ScaledConsumer: "orders", Metric: "queue-depth"}, metricstore.Entry{Value: 1234.5, Time: sampled})
	port := startAdapter(t, env, metricsapi.NewProvider(st))
	if err := env.RegisterExternalMetrics(t.Context(), port); err != nil {
		t.Fatal(err)
	}

	client, err := externalclient.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	sel := labels.SelectorFromSet(labels.Set{"ebb.dev/scaledconsumer": "orders"})
	got, err := client.NamespacedMetrics("shop").List("queue-depth", sel)
	if err != nil {
		t.Fatalf("listing external metric through kube-apiserver: %v", err)
	}
	type item struct {
		Name   string
		Labels map[string]string
		Value  string
		Time   time.Time
	}
	var items []item
	for _, it := range got.Items {
		items = append(items, item{it.MetricName, it.MetricLabels, it.Value.String(), it.Timestamp.Time})
	}
	want := []item{{"queue-depth", map[string]string{"ebb.dev/scaledconsumer": "orders"}, "1234500m", sampled}}
	if diff := cmp.Diff(items, want); diff != "" {
		t.Errorf("external metric (-got +want):\n%s", diff)
	}

	_, err = client.NamespacedMetrics("shop").List("no-such-metric", sel)
	if !apierrors.IsNotFound(err) {
		t.Errorf("unknown metric: got %v, want a NotFound error", err)
	}
	_, err = client.NamespacedMetrics("other-namespace").List("queue-depth", sel)
	if !apierrors.IsNotFound(err) {
		t.Errorf("metric of another namespace: got %v, want a NotFound error", err)
	}
	_, err = client.NamespacedMetrics("shop").List("queue-depth", labels.Everything())
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "ebb.dev/scaledconsumer=<ScaledConsumer name>") {
		t.Errorf("no selector: got %v, want a BadRequest naming the selector", err)
	}

	// The same through the raw path kubectl get --raw uses.
	raw, err := env.Kube.Discovery().RESTClient().Get().
		AbsPath("/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/queue-depth").
		Param("labelSelector", sel.String()).DoRaw(t.Context())
	if err != nil {
		t.Fatalf("raw get: %v", err)
	}
	if want := `"value":"1234500m"`; !contains(raw, want) {
		t.Errorf("raw response %s does not contain %s", raw, want)
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }
