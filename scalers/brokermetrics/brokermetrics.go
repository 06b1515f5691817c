package brokermetrics

import (
	"net"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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

// Observer returns the RequestObserver of one trigger type's clients, such as "rabbitmq".
func (m *Metrics) Observer(triggerType string) scalers.RequestObserver {
	return func(server, request string, took time.Duration, err error) {
		m.requests.WithLabelValues(triggerType, server, request).Inc()
		m.duration.WithLabelValues(triggerType, request).Observe(took.Seconds())
		if err != nil {
			m.errors.WithLabelValues(triggerType, server, request).Inc()
		}
	}
}

// KafkaHook returns a franz-go hook that counts every request of the clients it is given to (with
// kgo.WithHooks) as trigger type "kafka": request is the API key's name (ListOffsets, OffsetFetch,
// Metadata, ...), or "Connect" for a connection attempt, and server the broker's host:port. A request
// fails when it could not be written or its answer not read, a connection when the dial (or TLS
// handshake) failed: a broker that is down shows as failed Connects.
func (m *Metrics) KafkaHook() kgo.Hook {
	return kafkaHook{observe: m.Observer("kafka")}
}

type kafkaHook struct {
	observe scalers.RequestObserver
}

var (
	_ kgo.HookBrokerE2E     = kafkaHook{}
	_ kgo.HookBrokerConnect = kafkaHook{}
)

// OnBrokerE2E implements kgo.HookBrokerE2E.
func (h kafkaHook) OnBrokerE2E(meta kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	name := kmsg.NameForKey(key)
	if name == "" {
		name = "Unknown"
	}
	h.observe(server(meta), name, e2e.DurationE2E(), e2e.Err())
}

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (h kafkaHook) OnBrokerConnect(meta kgo.BrokerMetadata, dial time.Duration, _ net.Conn, err error) {
	h.observe(server(meta), "Connect", dial, err)
}

func server(meta kgo.BrokerMetadata) string {
	return net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))
}
