package testenv

import (
	"net/url"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DialRabbitMQ connects to the test RabbitMQ (RabbitMQURL), failing the test with the script that
// provides it when nothing listens there. The connection is closed when the test ends.
func DialRabbitMQ(t testing.TB) *amqp.Connection {
	t.Helper()
	u, err := url.Parse(RabbitMQURL)
	if err != nil {
		t.Fatal(err)
	}
	RequireTCP(t, "RabbitMQ", u.Host, "hack/ensure-rabbitmq.sh")
	conn, err := amqp.Dial(RabbitMQURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}
