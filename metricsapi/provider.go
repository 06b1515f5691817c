package metricsapi

import (
	"context"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/external_metrics"
	"k8s.io/utils/clock"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/metricstore"
)

var externalMetricsResource = schema.GroupResource{Group: "external.metrics.k8s.io", Resource: "externalmetrics"}

// Provider serves external metrics from a metric store. It implements
// provider.ExternalMetricsProvider.
type Provider struct {
	store    *metricstore.Store
	clock    clock.PassiveClock
	metrics  *metrics
	staleLog *perKeyLimiter
}

var _ provider.ExternalMetricsProvider = (*Provider)(nil)

// Options configure a Provider. The zero value of each field picks the default its comment gives.
type Options struct {
	// Clock tells the time a request is answered at, which decides whether a value is stale and how old
	// it is. Default: the real clock.
	Clock clock.PassiveClock
	// Registerer receives the provider's Prometheus metrics (ebb_metricsapi_*). Default: nil, the metrics
	// are kept but not registered. One Provider per registerer: NewProviderWithOptions panics when the
	// metrics are registered there already.
	Registerer prometheus.Registerer
}

// staleLogEvery is how often a stale value is logged at most, per ScaledConsumer and metric; every stale
// answer is counted in ebb_metricsapi_stale_values_total.
const staleLogEvery = time.Minute

// NewProvider returns a Provider reading st, with the default Options.
func NewProvider(st *metricstore.Store) *Provider {
	return NewProviderWithOptions(st, Options{})
}

// NewProviderWithOptions returns a Provider reading st.
func NewProviderWithOptions(st *metricstore.Store, opts Options) *Provider {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	return &Provider{
		store:    st,
		clock:    opts.Clock,
		metrics:  newMetrics(opts.Registerer),
		staleLog: newPerKeyLimiter(staleLogEvery),
	}
}

// GetExternalMetric answers one HPA query. The selector must name the ScaledConsumer with
// ebb.dev/scaledconsumer=<name>, as the HPAs ebb writes do; anything else is Bad Request, an unknown
// ScaledConsumer or metric is the library's typed Not Found.
//
// A value that is stale at request time (metricstore.Entry.Stale) is logged and counted; it is replaced by
// the entry's Fallback when there is one, and served as it is otherwise. The timestamp served is always
// the sample's.
func (p *Provider) GetExternalMetric(ctx context.Context, namespace string, sel labels.Selector, info provider.ExternalMetricInfo) (*external_metrics.ExternalMetricValueList, error) {
	start := p.clock.Now()
	list, code, err := p.externalMetric(ctx, start, namespace, sel, info.Metric)
	label := p.metricLabel(info.Metric, code)
	p.metrics.requests.WithLabelValues(label, code).Inc()
	p.metrics.requestDuration.WithLabelValues(label).Observe(p.clock.Since(start).Seconds())
	return list, err
}

// unknownMetric is the metric label of a request for a name no ScaledConsumer serves. It cannot be a
// trigger's name (those are DNS labels), so it never merges with a real one.
const unknownMetric = "_unknown"

// metricLabel is the metric label of a request's metrics: the name asked for when some ScaledConsumer
// serves a metric of that name, else unknownMetric. The name comes from the request's path, which anyone
// allowed to read external metrics chooses: labelling it as it is would let them make series without
// end (and a label value must be UTF-8; WithLabelValues panics otherwise).
func (p *Provider) metricLabel(metric, code string) string {
	if code == codeOK || p.store.HasMetric(metric) {
		return strings.ToValidUTF8(metric, "\uFFFD")
	}
	return unknownMetric
}

// externalMetric is GetExternalMetric without the request metrics; code is the outcome for
// ebb_metricsapi_requests_total.
func (p *Provider) externalMetric(ctx context.Context, now time.Time, namespace string, sel labels.Selector, metric string) (_ *external_metrics.ExternalMetricValueList, code string, _ error) {
	name, ok := sel.RequiresExactMatch(ebbv1.ScaledConsumerLabel)
	if !ok || name == "" {
		return nil, codeBadRequest, apierrors.NewBadRequest("ebb metrics are selected by " + ebbv1.ScaledConsumerLabel + "=<ScaledConsumer name>; got selector " + quoteSelector(sel))
	}
	key := metricstore.Key{Namespace: namespace, ScaledConsumer: name, Metric: metric}
	e, ok := p.store.Get(key)
	if !ok {
		return nil, codeNotFound, provider.NewMetricNotFoundForSelectorError(externalMetricsResource, metric, namespace+"/"+name, sel)
	}
	age := max(now.Sub(e.Time), 0)
	p.metrics.valueAge.Observe(age.Seconds())
	v := e.Value
	if e.Stale(now) {
		p.metrics.staleValues.WithLabelValues(metric).Inc()
		if e.Fallback != nil {
			v = *e.Fallback
		}
		if p.staleLog.allow(key, now) {
			klog.FromContext(ctx).Info("serving a stale external metric value; its trigger has not been sampled recently",
				"namespace", namespace, "scaledconsumer", name, "metric", metric,
				"age", age.Round(time.Millisecond), "staleAfter", e.StaleAfter,
				"fallback", e.Fallback != nil, "value", v)
		}
	}
	return &external_metrics.ExternalMetricValueList{Items: []external_metrics.ExternalMetricValue{{
		MetricName:   metric,
		MetricLabels: map[string]string{ebbv1.ScaledConsumerLabel: name},
		Timestamp:    metav1.NewTime(e.Time),
		Value:        quantity(v),
	}}}, codeOK, nil
}

// ListAllExternalMetrics lists the metric names currently in the store.
func (p *Provider) ListAllExternalMetrics() []provider.ExternalMetricInfo {
	names := p.store.MetricNames()
	infos := make([]provider.ExternalMetricInfo, len(names))
	for i, n := range names {
		infos[i] = provider.ExternalMetricInfo{Metric: n}
	}
	return infos
}

// quantity renders v with milli precision, which is what the HPA compares. NaN and negative values (a
// backlog cannot be negative) are served as 0; values beyond what a milli-quantity holds are capped rather
// than wrapped.
func quantity(v float64) resource.Quantity {
	if math.IsNaN(v) || v < 0 {
		return *resource.NewMilliQuantity(0, resource.DecimalSI)
	}
	// float64(math.MaxInt64) is 2^63, one past the largest int64: compare before converting.
	milli := math.Round(v * 1000)
	if milli >= float64(math.MaxInt64) {
		return *resource.NewMilliQuantity(math.MaxInt64, resource.DecimalSI)
	}
	return *resource.NewMilliQuantity(int64(milli), resource.DecimalSI)
}

func quoteSelector(sel labels.Selector) string {
	if sel == nil || sel.Empty() {
		return `""`
	}
	return `"` + sel.String() + `"`
}

// perKeyLimiter lets an event through at most once per interval for each key. Keys not seen for an
// interval are dropped, so it holds only the keys of the last interval.
type perKeyLimiter struct {
	every time.Duration

	mu     sync.Mutex
	last   map[metricstore.Key]time.Time
	pruned time.Time
}

func newPerKeyLimiter(every time.Duration) *perKeyLimiter {
	return &perKeyLimiter{every: every, last: map[metricstore.Key]time.Time{}}
}

// allow reports whether an event for k at now gets through, and if so records it.
func (l *perKeyLimiter) allow(k metricstore.Key, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.pruned) >= l.every {
		for k, t := range l.last {
			if now.Sub(t) >= l.every {
				delete(l.last, k)
			}
		}
		l.pruned = now
	}
	if t, ok := l.last[k]; ok && now.Sub(t) < l.every {
		return false
	}
	l.last[k] = now
	return true
}
