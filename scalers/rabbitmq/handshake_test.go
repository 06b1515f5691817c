package rabbitmq_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/rabbitmq"
)

// Over amqps the login is refused at once too (ebb does the TLS itself, so it can ask RabbitMQ for the
// prompt answer in the clear frames), and the right password reads the queue. RabbitMQ here listens
// without TLS; a TLS-terminating proxy in front of it stands for its TLS listener.
func TestAMQPSLogin(t *testing.T) {
	b := requireBroker(t)
	vhost := b.vhost()
	declare(t, channel(t, b.conn(vhost)), "jobs", nil)
	certs := testenv.NewServerTLS(t)
	addr := tlsProxy(t, certs, b.amqpURL.Host)
	host := func(password string) string {
		u := url.URL{Scheme: "amqps", Host: addr, Path: "/" + vhost, User: url.UserPassword(b.user, password)}
		return u.String()
	}
	pool := rabbitmq.NewPool()
	t.Cleanup(pool.Close)
	md := map[string]string{"queueName": "jobs"}

	good, err := pool.New(scalers.Config{TriggerName: "good", Metadata: md, Auth: map[string]string{"host": host(b.pwd), "ca": certs.CAPEM}, PollingInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = good.(io.Closer).Close() })
	if got := sample(t, good); got.Values[0] != 0 {
		t.Errorf("value %v, want 0", got.Values)
	}

	bad, err := pool.New(scalers.Config{TriggerName: "bad", Metadata: md, Auth: map[string]string{"host": host("not-the-password"), "ca": certs.CAPEM}, PollingInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bad.(io.Closer).Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err = bad.Sample(ctx)
	if !errors.Is(err, rabbitmq.ErrAuthentication) || !strings.Contains(err.Error(), "ACCESS_REFUSED") {
		t.Fatalf("sample: %v, want %v with RabbitMQ's ACCESS_REFUSED", err, rabbitmq.ErrAuthentication)
	}
}

// tlsProxy accepts TLS with certs on a loopback port and forwards the clear bytes to target.
func tlsProxy(t *testing.T, certs *testenv.ServerTLS, target string) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certs.CertFile, certs.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
	return l.Addr().String()
}
