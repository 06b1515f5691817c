package natsjetstream_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/natsjetstream"
)

// Monitoring mode (KEDA's natsServerMonitoringEndpoint) reads the same value as the client protocol,
// with one GET /jsz per tick for every trigger on the endpoint.
func TestMonitoring(t *testing.T) {
	srv := testenv.StartNATS(t, testenv.NATSOptions{})
	j := js(t, srv.URL)
	for s := range 10 {
		name := fmt.Sprintf("s%d", s)
		stream(t, j, name, 1)
		for c := range 10 {
			consumer(t, j, name, fmt.Sprintf("c%d", c), 1)
		}
		publish(t, j, name, s+1)
	}
	c := consumer(t, j, "s0", "taker", 1)
	publish(t, j, "s0", 4) // s0 now holds 5 messages
	take(t, c, 2)

	cnt := newCounter()
	p := natsjetstream.NewPool(natsjetstream.ObserveRequests(cnt.observe))
	defer p.Close()
	mon := md("natsServerMonitoringEndpoint", srv.Monitor, "stream", "s0", "consumer", "taker")
	eventually(t, 5*time.Second, valueIs(newTrigger(t, p, mon, nil), 5))
	eventually(t, 5*time.Second, valueIs(newTrigger(t, p, md("natsServerURL", srv.URL, "stream", "s0", "consumer", "taker"), nil), 5))
	eventually(t, 5*time.Second, valueIs(newTrigger(t, p, md("natsServerMonitoringEndpoint", srv.Monitor, "account", "$G", "stream", "s0", "consumer", "taker"), nil), 5))

	triggers := make([]scalers.Scaler, 100)
	for i := range triggers {
		triggers[i] = newTrigger(t, p, md("natsServerMonitoringEndpoint", srv.Monitor, "stream", fmt.Sprintf("s%d", i%10), "consumer", fmt.Sprintf("c%d", i/10)), nil)
	}
	tick(t, triggers)
	cnt.take()
	time.Sleep(600 * time.Millisecond)
	values := tick(t, triggers)
	for i, v := range values {
		if want := float64(i%10 + 1); i%10 != 0 && v != want {
			t.Errorf("trigger %d: value %v, want %v", i, v, want)
		}
	}
	if got := cnt.take(); got["GET /jsz"] != 1 {
		t.Errorf("100 triggers on one endpoint: requests %s, want GET /jsz=1", describe(got))
	}

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			md   map[string]string
			want error
		}{
			{"missing-stream", md("natsServerMonitoringEndpoint", srv.Monitor, "stream", "none", "consumer", "c0"), natsjetstream.ErrStreamNotFound},
			{"missing-consumer", md("natsServerMonitoringEndpoint", srv.Monitor, "stream", "s1", "consumer", "none"), natsjetstream.ErrConsumerNotFound},
			{"missing-account", md("natsServerMonitoringEndpoint", srv.Monitor, "account", "NOPE", "stream", "s1", "consumer", "c0"), natsjetstream.ErrAccountNotFound},
			{"unreachable", md("natsServerMonitoringEndpoint", "127.0.0.1:1", "stream", "s1", "consumer", "c0"), natsjetstream.ErrUnreachable},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := sampleErr(t, newTrigger(t, p, tc.md, nil))
				isErr(t, err, tc.want)
				t.Log(err)
			})
		}
	})
	t.Run("no-jetstream", func(t *testing.T) {
		plain := testenv.StartNATS(t, testenv.NATSOptions{NoJetStream: true})
		_, err := sampleErr(t, newTrigger(t, p, md("natsServerMonitoringEndpoint", plain.Monitor, "stream", "s1", "consumer", "c0"), nil))
		isErr(t, err, natsjetstream.ErrNoJetStream)
	})
}

// Monitoring mode over HTTPS (useHttps: true, a server with https_port): the authority in the
// TriggerAuthentication's ca reads; another authority, or none (the system's roots), is ErrTLS, and so is
// plain HTTP to the HTTPS endpoint or HTTPS to a plain one, each saying which.
func TestMonitoringHTTPS(t *testing.T) {
	certs := testenv.NewServerTLS(t)
	srv := testenv.StartNATS(t, testenv.NATSOptions{TLS: certs})
	plain := testenv.StartNATS(t, testenv.NATSOptions{})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(certs.CAPEM))
	j := js(t, srv.URL, nats.Secure(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	stream(t, j, "orders", 1)
	consumer(t, j, "orders", "workers", 1)
	publish(t, j, "orders", 3)

	p := natsjetstream.NewPool()
	defer p.Close()
	mon := md("natsServerMonitoringEndpoint", srv.Monitor, "useHttps", "true", "stream", "orders", "consumer", "workers")
	eventually(t, 5*time.Second, valueIs(newTrigger(t, p, mon, md("ca", certs.CAPEM)), 3))

	for _, tc := range []struct {
		name       string
		meta, auth map[string]string
	}{
		{name: "other-ca", meta: mon, auth: md("ca", testenv.NewServerTLS(t).CAPEM)},
		{name: "system-roots", meta: mon},
		{name: "http-to-https", meta: md("natsServerMonitoringEndpoint", srv.Monitor, "stream", "orders", "consumer", "workers")},
		{name: "https-to-http", meta: md("natsServerMonitoringEndpoint", plain.Monitor, "useHttps", "true", "stream", "orders", "consumer", "workers"), auth: md("ca", certs.CAPEM)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sampleErr(t, newTrigger(t, p, tc.meta, tc.auth))
			isErr(t, err, natsjetstream.ErrTLS)
			t.Log(err)
		})
	}
}
