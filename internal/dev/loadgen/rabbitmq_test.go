package loadgen_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ebbscale/ebb/internal/dev/loadgen"
	"github.com/ebbscale/ebb/internal/dev/testenv"
)

// rabbitMQ connects to the test server, failing the test with the script that provides it.
func rabbitMQ(t *testing.T) *amqp.Channel {
	t.Helper()
	ch, err := testenv.DialRabbitMQ(t).Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// A burst and a steady stream to a queue the sink declares on the real server: the queue holds every
// confirmed message.
func TestRabbitMQDelivers(t *testing.T) {
	ch := rabbitMQ(t)
	queue := testenv.UniqueName(t, "load")
	t.Cleanup(func() { _, _ = ch.QueueDelete(queue, false, false, false) })
	sink, err := loadgen.NewRabbitMQ(t.Context(), loadgen.RabbitMQConfig{URL: testenv.RabbitMQURL, RoutingKey: queue, Declare: true, MaxInflight: 50})
	if err != nil {
		t.Fatal(err)
	}
	st, err := loadgen.Run(t.Context(), sink, loadgen.Schedule{Burst: 500, Rate: 100, Duration: time.Second}, loadgen.Options{Payload: make([]byte, 64)})
	if cerr := sink.Close(); cerr != nil {
		t.Error(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent != 600 || st.Confirmed != 600 || st.Failed != 0 {
		t.Errorf("stats: sent %d, confirmed %d, failed %d; want 600, 600, 0", st.Sent, st.Confirmed, st.Failed)
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != 600 {
		t.Errorf("queue %s holds %d messages, want 600", queue, q.Messages)
	}
}

// A message no queue takes is returned by the server, and counts as failed, not as confirmed.
func TestRabbitMQUnroutable(t *testing.T) {
	rabbitMQ(t)
	sink, err := loadgen.NewRabbitMQ(t.Context(), loadgen.RabbitMQConfig{URL: testenv.RabbitMQURL, RoutingKey: testenv.UniqueName(t, "nowhere")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sink.Close() }()
	st, err := loadgen.Run(t.Context(), sink, loadgen.Schedule{Burst: 20}, loadgen.Options{})
	if !errors.Is(err, loadgen.ErrFailed) {
		t.Fatalf("Run() error = %v, want ErrFailed", err)
	}
	if st.Sent != 20 || st.Confirmed != 0 || st.Failed != 20 || !strings.Contains(st.FirstError.Error(), "no queue took the message") {
		t.Errorf("stats: sent %d, confirmed %d, failed %d, first error %v; want 20, 0, 20, no queue took it", st.Sent, st.Confirmed, st.Failed, st.FirstError)
	}
}

// Credentials as flags override the URL's; wrong ones fail at the start.
func TestRabbitMQCredentials(t *testing.T) {
	rabbitMQ(t)
	_, err := loadgen.NewRabbitMQ(t.Context(), loadgen.RabbitMQConfig{URL: testenv.RabbitMQURL, RoutingKey: "q", Username: "guest", Password: "wrong"})
	if err == nil || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("NewRabbitMQ with a wrong password = %v, want an error that does not show the password", err)
	}
}
