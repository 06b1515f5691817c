package brokermetrics_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ebbscale/ebb/internal/dev/devkafka"
	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/brokermetrics"
	"github.com/ebbscale/ebb/scalers/kafka"
	"github.com/ebbscale/ebb/scalers/rabbitmq"
)

// series is what one registry holds, by metric name, then the labels as "name=value" joined by "|", with
// counter values and histogram sample counts.
type series map[string]map[string]float64

func gather(t *testing.T, reg *prometheus.Registry) series {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := series{}
	for _, f := range families {
		out[f.GetName()] = map[string]float64{}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := m.GetCounter().GetValue()
			if h := m.GetHistogram(); h != nil {
				v = float64(h.GetSampleCount())
			}
			out[f.GetName()][strings.Join(labels, "|")] = v
		}
	}
	return out
}

// requests sums ebb_broker_requests_total (or another family) by request, for one trigger type, and lists
// the servers seen.
func (s series) requests(family, typ string) (byRequest map[string]float64, servers []string) {
	byRequest = map[string]float64{}
	for labels, v := range s[family] {
		var server, request string
		ok := false
		for _, l := range strings.Split(labels, "|") {
			k, val, _ := strings.Cut(l, "=")
			switch k {
			case "type":
				ok = val == typ
			case "server":
				server = val
			case "request":
				request = val
			}
		}
		if ok {
			byRequest[request] += v
			if !slices.Contains(servers, server) {
				servers = append(servers, server)
			}
		}
	}
	slices.Sort(servers)
	return byRequest, servers
}

// The Kafka hook counts a reading's requests by broker and API key, and a broker that went away as
// failed requests.
func TestKafkaRequests(t *testing.T) {
	k, err := devkafka.Start(devkafka.Config{Brokers: 2, Topics: map[string]int32{"orders": 4}, NoAutoCreateTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			k.Close()
		}
	})
	reg := prometheus.NewPedanticRegistry()
	m := brokermetrics.New(reg)
	pool := kafka.NewPool(kafka.ObserveRequests(m.Observer(kafka.Type)))
	t.Cleanup(pool.Close)
	// An interval of 2 ns: a reading is fresh for half of it, so every Sample takes a new one.
	s, err := pool.New(scalers.Config{TriggerName: "lag", PollingInterval: 2 * time.Nanosecond,
		Metadata: map[string]string{"bootstrapServers": strings.Join(k.ListenAddrs(), ","), "consumerGroup": "workers", "topic": "orders"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sample(t.Context()); err != nil {
		t.Fatal(err)
	}

	got := gather(t, reg)
	byRequest, servers := got.requests("ebb_broker_requests_total", "kafka")
	for _, req := range []string{"Connect", "Metadata", "FindCoordinator", "OffsetFetch", "ListOffsets"} {
		if byRequest[req] < 1 {
			t.Errorf("no %s request counted; counted: %v", req, byRequest)
		}
	}
	addrs := k.ListenAddrs()
	slices.Sort(addrs)
	if diff := cmp.Diff(servers, addrs); diff != "" {
		t.Errorf("servers (-got +want):\n%s", diff)
	}
	if errs, _ := got.requests("ebb_broker_request_errors_total", "kafka"); len(errs) != 0 {
		t.Errorf("errors counted against a healthy cluster: %v", errs)
	}
	observed, _ := got.requests("ebb_broker_request_duration_seconds", "kafka")
	if diff := cmp.Diff(observed, byRequest); diff != "" {
		t.Errorf("durations observed per request (-got +want the request counts):\n%s", diff)
	}

	// The cluster goes away: the next sample fails, and so do its requests (or its connection attempts).
	k.Close()
	closed = true
	if _, err := s.Sample(t.Context()); err == nil {
		t.Fatal("a sample succeeded with the cluster closed")
	}
	errs, _ := gather(t, reg).requests("ebb_broker_request_errors_total", "kafka")
	total := 0.0
	for _, v := range errs {
		total += v
	}
	if total == 0 {
		t.Error("no failed request counted with the cluster closed")
	}
}

// The RabbitMQ pool counts management API GETs by resource and AMQP methods, per server, and a
// management API answer other than 2xx as a failure.
func TestRabbitMQRequests(t *testing.T) {
	amqpURL, err := url.Parse(testenv.RabbitMQURL)
	if err != nil {
		t.Fatal(err)
	}
	httpURL, err := url.Parse(testenv.RabbitMQHTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	testenv.RequireTCP(t, "RabbitMQ", amqpURL.Host, "hack/ensure-rabbitmq.sh")
	testenv.RequireTCP(t, "RabbitMQ's management API", httpURL.Host, "hack/ensure-rabbitmq.sh")
	conn, err := amqp.Dial(testenv.RabbitMQURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	queue := testenv.UniqueName(t, "brokermetrics")
	if _, err := ch.QueueDeclare(queue, false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = ch.QueueDelete(queue, false, false, false) })

	reg := prometheus.NewPedanticRegistry()
	m := brokermetrics.New(reg)
	pool := rabbitmq.NewPool(rabbitmq.ObserveRequests(m.Observer(rabbitmq.Type)))
	t.Cleanup(pool.Close)
	sample := func(host, queue string) error {
		t.Helper()
		s, err := pool.New(scalers.Config{TriggerName: "q", PollingInterval: time.Second,
			Metadata: map[string]string{"queueName": queue, "mode": "QueueLength", "value": "5"}, Auth: map[string]string{"host": host}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Sample(t.Context())
		return err
	}
	if err := sample(testenv.RabbitMQURL, queue); err != nil {
		t.Fatalf("AMQP: %v", err)
	}
	if err := sample(testenv.RabbitMQHTTPURL, queue); err != nil {
		t.Fatalf("management API: %v", err)
	}
	// A vhost that does not exist: the queue list answers 404, and ebb asks /api/overview why.
	if err := sample(strings.TrimSuffix(testenv.RabbitMQHTTPURL, "/")+"/no-such-vhost", queue); err == nil {
		t.Fatal("a sample of a missing vhost succeeded")
	}

	got := gather(t, reg)
	byRequest, servers := got.requests("ebb_broker_requests_total", "rabbitmq")
	want := map[string]float64{"connection.open": 1, "channel.open": 1, "queue.declare": 1, "GET /api/queues": 2, "GET /api/overview": 1}
	if diff := cmp.Diff(byRequest, want); diff != "" {
		t.Errorf("requests (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(servers, []string{amqpURL.Host, httpURL.Host}, cmp.Transformer("sort", func(s []string) []string {
		s = slices.Clone(s)
		slices.Sort(s)
		return s
	})); diff != "" {
		t.Errorf("servers (-got +want):\n%s", diff)
	}
	errs, _ := got.requests("ebb_broker_request_errors_total", "rabbitmq")
	if diff := cmp.Diff(errs, map[string]float64{"GET /api/queues": 1}); diff != "" {
		t.Errorf("errors (-got +want):\n%s", diff)
	}
}
