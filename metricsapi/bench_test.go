package metricsapi_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"k8s.io/metrics/pkg/apis/external_metrics"
	externalclient "k8s.io/metrics/pkg/client/external_metrics"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/internal/dev/localcluster"
	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/metricsapi"
	"github.com/ebbscale/ebb/metricstore"
)

const (
	benchNamespace = "bench"
	benchMetric    = "lag"
	// benchWarmup requests go to each path before it is measured: connections, TLS and HTTP/2 set up,
	// the discovery of the aggregated API settled, and the Go runtime's heap grown to its working size.
	benchWarmup = 200
)

// BenchmarkExternalMetricLatency measures the latency of one external metric request, the one an HPA
// sends for each of its metrics at every sync, with N ScaledConsumers in the metric store:
//
//   - path=aggregator: the typed external metrics client against kube-apiserver, which proxies to the
//     adapter through the APIService, as the HPA controller does;
//   - path=direct: the same client and the same admin client certificate against the adapter's own port,
//     authenticated by the adapter's delegated authentication (the cluster's client CA, read from the
//     extension-apiserver-authentication ConfigMap).
//
// mode=sequential sends one request at a time; mode=parallel sends from GOMAXPROCS goroutines over the
// same client. Each request asks for a ScaledConsumer picked at random among the N. Besides ns/op (the mean
// for sequential, wall time per request for parallel) each run reports the p50, p99 and p99.9 of the
// per-request latencies in milliseconds. allocs/op counts this process only: the client and the adapter,
// not kube-apiserver.
//
// One control plane and one adapter serve every sub-benchmark; each N gets a fresh store behind the
// adapter. The admin user is in system:masters, which the adapter's delegated authorization allows
// without a SubjectAccessReview.
func BenchmarkExternalMetricLatency(b *testing.B) {
	env := testenv.Start(b, localcluster.Options{})
	prov := &swappableProvider{}
	prov.set(metricstore.New())
	port := startAdapter(b, env, prov)
	if err := env.RegisterExternalMetrics(b.Context(), port); err != nil {
		b.Fatal(err)
	}

	cfg := rest.CopyConfig(env.Config)
	cfg.QPS = -1 // client-go's default client-side limit (5 QPS) would be all we measured
	viaAggregator, err := externalclient.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	directCfg := directConfig(cfg, port)
	direct, err := externalclient.NewForConfig(directCfg)
	if err != nil {
		b.Fatal(err)
	}
	checkDirectAuthentication(b, prov, directCfg, direct)

	paths := []struct {
		name   string
		client externalclient.ExternalMetricsClient
	}{{"aggregator", viaAggregator}, {"direct", direct}}

	for _, n := range []int{10, 1000, 10000} {
		b.Run("N="+strconv.Itoa(n), func(b *testing.B) {
			names, sels := fillStore(prov, n)
			for _, p := range paths {
				warmUp(b, p.client, names, sels)
			}
			for _, p := range paths {
				b.Run("path="+p.name, func(b *testing.B) {
					b.Run("mode=sequential", func(b *testing.B) { benchSequential(b, p.client, sels) })
					b.Run("mode=parallel", func(b *testing.B) { benchParallel(b, p.client, sels) })
				})
			}
		})
	}
}

// BenchmarkProviderGetExternalMetric is the provider's share of BenchmarkExternalMetricLatency: one
// GetExternalMetric call in process, with N ScaledConsumers in the store, no HTTP and no authentication.
func BenchmarkProviderGetExternalMetric(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run("N="+strconv.Itoa(n), func(b *testing.B) {
			prov := &swappableProvider{}
			_, sels := fillStore(prov, n)
			info := provider.ExternalMetricInfo{Metric: benchMetric}
			rng := rand.New(rand.NewPCG(1, uint64(n)))
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := prov.GetExternalMetric(ctx, benchNamespace, sels[rng.IntN(n)], info); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// swappableProvider serves whichever store was set last, so one adapter can serve each sub-benchmark's
// store.
type swappableProvider struct {
	p atomic.Pointer[metricsapi.Provider]
}

var _ provider.ExternalMetricsProvider = (*swappableProvider)(nil)

func (s *swappableProvider) set(st *metricstore.Store) { s.p.Store(metricsapi.NewProvider(st)) }

func (s *swappableProvider) GetExternalMetric(ctx context.Context, namespace string, sel labels.Selector, info provider.ExternalMetricInfo) (*external_metrics.ExternalMetricValueList, error) {
	return s.p.Load().GetExternalMetric(ctx, namespace, sel, info)
}

func (s *swappableProvider) ListAllExternalMetrics() []provider.ExternalMetricInfo {
	return s.p.Load().ListAllExternalMetrics()
}

// fillStore gives prov a new store holding one metric for each of n ScaledConsumers, with the value i for
// the i-th, and returns their names and the selectors an HPA sends for them.
func fillStore(prov *swappableProvider, n int) ([]string, []labels.Selector) {
	st := metricstore.New()
	names := make([]string, n)
	sels := make([]labels.Selector, n)
	now := time.Now()
	for i := range n {
		names[i] = fmt.Sprintf("consumer-%05d", i)
		sels[i] = labels.SelectorFromSet(labels.Set{ebbv1.ScaledConsumerLabel: names[i]})
		// Fresh for the whole run: StaleAfter is checked on every request but never true here.
		st.Set(metricstore.Key{Namespace: benchNamespace, ScaledConsumer: names[i], Metric: benchMetric},
			metricstore.Entry{Value: float64(i), Time: now, StaleAfter: time.Hour})
	}
	prov.set(st)
	return names, sels
}

// directConfig is cfg pointed at the adapter's port. The adapter serves a self-signed certificate, so its
// identity is not checked: acceptable here only, on loopback, in a benchmark.
func directConfig(cfg *rest.Config, port int) *rest.Config {
	d := rest.CopyConfig(cfg)
	d.Host = "https://127.0.0.1:" + strconv.Itoa(port)
	d.CAData, d.CAFile, d.ServerName = nil, "", ""
	d.Insecure = true
	return d
}

// checkDirectAuthentication makes sure the direct path measures an authenticated request: the adapter
// accepts the admin client certificate (issued by the cluster's client CA) and refuses the same request
// without it, as system:anonymous.
func checkDirectAuthentication(b *testing.B, prov *swappableProvider, directCfg *rest.Config, direct externalclient.ExternalMetricsClient) {
	b.Helper()
	names, sels := fillStore(prov, 1)
	got, err := direct.NamespacedMetrics(benchNamespace).List(benchMetric, sels[0])
	if err != nil {
		b.Fatalf("direct request with the admin client certificate: %v", err)
	}
	if len(got.Items) != 1 || got.Items[0].MetricLabels[ebbv1.ScaledConsumerLabel] != names[0] {
		b.Fatalf("direct request: got %+v, want the metric of %s", got.Items, names[0])
	}
	anon := rest.AnonymousClientConfig(directCfg)
	anon.QPS = -1
	anonClient, err := externalclient.NewForConfig(anon)
	if err != nil {
		b.Fatal(err)
	}
	_, err = anonClient.NamespacedMetrics(benchNamespace).List(benchMetric, sels[0])
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "system:anonymous") {
		b.Fatalf("direct request without a client certificate: got %v, want Forbidden for system:anonymous", err)
	}
}

// warmUp sends benchWarmup requests and checks each answer is the metric of the ScaledConsumer asked for.
func warmUp(b *testing.B, c externalclient.ExternalMetricsClient, names []string, sels []labels.Selector) {
	b.Helper()
	rng := rand.New(rand.NewPCG(0, uint64(len(sels))))
	for range benchWarmup {
		i := rng.IntN(len(sels))
		got, err := c.NamespacedMetrics(benchNamespace).List(benchMetric, sels[i])
		if err != nil {
			b.Fatalf("warm-up request for %s: %v", names[i], err)
		}
		if len(got.Items) != 1 || got.Items[0].MetricLabels[ebbv1.ScaledConsumerLabel] != names[i] || got.Items[0].Value.Value() != int64(i) {
			b.Fatalf("warm-up request for %s: got %+v, want one item with value %d", names[i], got.Items, i)
		}
	}
}

func benchSequential(b *testing.B, c externalclient.ExternalMetricsClient, sels []labels.Selector) {
	metrics := c.NamespacedMetrics(benchNamespace)
	rng := rand.New(rand.NewPCG(1, uint64(len(sels))))
	lat := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		sel := sels[rng.IntN(len(sels))]
		start := time.Now()
		if _, err := metrics.List(benchMetric, sel); err != nil {
			b.Fatal(err)
		}
		lat[i] = time.Since(start)
	}
	b.StopTimer()
	reportLatency(b, lat)
}

func benchParallel(b *testing.B, c externalclient.ExternalMetricsClient, sels []labels.Selector) {
	metrics := c.NamespacedMetrics(benchNamespace)
	var (
		mu   sync.Mutex
		lat  = make([]time.Duration, 0, b.N)
		seed atomic.Uint64
	)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(seed.Add(1), uint64(len(sels))))
		var local []time.Duration
		for pb.Next() {
			sel := sels[rng.IntN(len(sels))]
			start := time.Now()
			if _, err := metrics.List(benchMetric, sel); err != nil {
				b.Error(err)
				return
			}
			local = append(local, time.Since(start))
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	b.StopTimer()
	reportLatency(b, lat)
}

// reportLatency reports the p50, p99 and p99.9 of lat in milliseconds.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	for _, q := range []struct {
		unit string
		q    float64
	}{{"p50-ms", 0.50}, {"p99-ms", 0.99}, {"p99.9-ms", 0.999}} {
		b.ReportMetric(float64(percentile(lat, q.q))/float64(time.Millisecond), q.unit)
	}
}

// percentile is the nearest-rank q-quantile of sorted.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
