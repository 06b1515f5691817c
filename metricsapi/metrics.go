package metricsapi

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Values of the code label of ebb_metricsapi_requests_total.
const (
	codeOK         = "ok"
	codeNotFound   = "not_found"
	codeBadRequest = "bad_request"
)

// metrics are the Prometheus metrics of the external metrics API. The metric label is the external
// metric name the HPA asks for, one per trigger name in use.
type metrics struct {
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	staleValues     *prometheus.CounterVec
	valueAge        prometheus.Histogram
}

// newMetrics builds the metrics and registers them with reg (nil: not registered). Registering twice with
// one registry panics, as prometheus.Registerer.MustRegister does.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_metricsapi_requests_total",
			Help: "External metric requests answered, by metric and outcome (ok, not_found, bad_request).",
		}, []string{"metric", "code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ebb_metricsapi_request_duration_seconds",
			Help: "Time to answer one external metric request from the store, by metric.",
			// Answers come from memory: most take microseconds.
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1},
		}, []string{"metric"}),
		staleValues: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_metricsapi_stale_values_total",
			Help: "External metric requests answered from a stale sample (served as the fallback value when the ScaledConsumer has one), by metric.",
		}, []string{"metric"}),
		valueAge: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ebb_metricsapi_value_age_seconds",
			Help: "Age of the sample behind each value served, at the time it was served.",
			// Polling intervals are seconds; values go stale after 3 intervals (10 s at least).
			Buckets: []float64{.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600},
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.requestDuration, m.staleValues, m.valueAge)
	}
	return m
}

// Collectors returns the provider's Prometheus metrics, for a caller that registers them after building
// the provider (the command line builds it with its flags, before it knows which role will run).
func (p *Provider) Collectors() []prometheus.Collector {
	m := p.metrics
	return []prometheus.Collector{m.requests, m.requestDuration, m.staleValues, m.valueAge}
}
