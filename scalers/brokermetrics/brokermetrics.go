package brokermetrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ebbscale/ebb/scalers"
)

// Metrics are the broker request metrics. Build them with New.
type Metrics struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New builds the metrics and registers them with reg (nil: not registered, for tests). Registering twice
// with one registry panics, as prometheus.Registerer.MustRegister does.
func New(reg prometheus.Registerer) *Metrics {
	labels := []string{"type", "server", "request"}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_broker_requests_total",
			Help: "Requests sent to brokers by ebb's shared clients, by trigger type, broker (host:port) and request (Kafka API key, AMQP method, management API resource).",
		}, labels),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_broker_request_errors_total",
			Help: "Broker requests that failed: no answer (connection, timeout), an AMQP error, or a management API status other than 2xx. Kafka error codes inside an answer are not counted here.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ebb_broker_request_duration_seconds",
			Help:    "Time from sending a broker request to its answer, by trigger type and request.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"type", "request"}),
	}
	if reg != nil {
		reg.MustRegister(m.Collectors()...)
	}
	return m
}

// Collectors returns the metrics, for a caller that registers them itself.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.errors, m.duration}
}

// Observer returns the RequestObserver of one trigger type's clients, such as "kafka" or "rabbitmq": give
// it to the trigger types with builtin.Options.ObserveRequests.
func (m *Metrics) Observer(triggerType string) scalers.RequestObserver {
	return func(server, request string, took time.Duration, err error) {
		m.requests.WithLabelValues(triggerType, server, request).Inc()
		m.duration.WithLabelValues(triggerType, request).Observe(took.Seconds())
		if err != nil {
			m.errors.WithLabelValues(triggerType, server, request).Inc()
		}
	}
}
