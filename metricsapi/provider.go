package metricsapi

import (
	"context"
	"math"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/metrics/pkg/apis/external_metrics"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/metricstore"
)

var externalMetricsResource = schema.GroupResource{Group: "external.metrics.k8s.io", Resource: "externalmetrics"}

// Provider serves external metrics from a metric store. It implements
// provider.ExternalMetricsProvider.
type Provider struct {
	store *metricstore.Store
}

var _ provider.ExternalMetricsProvider = (*Provider)(nil)

// NewProvider returns a Provider reading st.
func NewProvider(st *metricstore.Store) *Provider {
	return &Provider{store: st}
}

// GetExternalMetric answers one HPA query. The selector must name the ScaledConsumer with
// ebb.dev/scaledconsumer=<name>, as the HPAs ebb writes do; anything else is Bad Request, an unknown
// ScaledConsumer or metric is the library's typed Not Found.
func (p *Provider) GetExternalMetric(_ context.Context, namespace string, sel labels.Selector, info provider.ExternalMetricInfo) (*external_metrics.ExternalMetricValueList, error) {
	name, ok := sel.RequiresExactMatch(ebbv1.ScaledConsumerLabel)
	if !ok || name == "" {
		return nil, apierrors.NewBadRequest("ebb metrics are selected by " + ebbv1.ScaledConsumerLabel + "=<ScaledConsumer name>; got selector " + quoteSelector(sel))
	}
	e, ok := p.store.Get(metricstore.Key{Namespace: namespace, ScaledConsumer: name, Metric: info.Metric})
	if !ok {
		return nil, provider.NewMetricNotFoundForSelectorError(externalMetricsResource, info.Metric, namespace+"/"+name, sel)
	}
	return &external_metrics.ExternalMetricValueList{Items: []external_metrics.ExternalMetricValue{{
		MetricName:   info.Metric,
		MetricLabels: map[string]string{ebbv1.ScaledConsumerLabel: name},
		Timestamp:    metav1.NewTime(e.Time),
		Value:        quantity(e.Value),
	}}}, nil
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
