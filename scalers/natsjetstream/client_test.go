package natsjetstream_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/scalers/natsjetstream"
)

// The value is pending plus ack-pending messages; it follows deliveries and acknowledgements.
func TestValue(t *testing.T) {
	url := sharedURL(t)
	j := js(t, url)
	name := testenv.UniqueName(t, "value")
	stream(t, j, name, 1)
	c := consumer(t, j, name, "workers", 1)
	p := natsjetstream.NewPool()
	defer p.Close()
	s := newTrigger(t, p, md("natsServerURL", url, "stream", name, "consumer", "workers", "lagThreshold", "5"), nil)
	if got := s.Metrics()[0]; got.Target != 5 || got.Activation != 0 {
		t.Errorf("metric %+v, want target 5 and activation 0", got)
	}
	eventually(t, 5*time.Second, valueIs(s, 0))

	publish(t, j, name, 7)
	eventually(t, 5*time.Second, valueIs(s, 7))
	msgs := take(t, c, 3) // 4 pending, 3 ack-pending
	eventually(t, 5*time.Second, valueIs(s, 7))
	for _, m := range msgs {
		if err := m.DoubleAck(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, valueIs(s, 4))
}

// Each problem is its own error, naming what is missing.
func TestErrors(t *testing.T) {
	url := sharedURL(t)
	j := js(t, url)
	name := testenv.UniqueName(t, "errors")
	stream(t, j, name, 1)
	consumer(t, j, name, "workers", 1)

	t.Run("missing-stream", func(t *testing.T) {
		p := natsjetstream.NewPool()
		defer p.Close()
		_, err := sampleErr(t, newTrigger(t, p, md("natsServerURL", url, "stream", name+"-none", "consumer", "workers"), nil))
		isErr(t, err, natsjetstream.ErrStreamNotFound)
	})
	t.Run("missing-consumer", func(t *testing.T) {
		p := natsjetstream.NewPool()
		defer p.Close()
		_, err := sampleErr(t, newTrigger(t, p, md("natsServerURL", url, "stream", name, "consumer", "nobody"), nil))
		isErr(t, err, natsjetstream.ErrConsumerNotFound)
	})
	t.Run("missing-consumer-listed", func(t *testing.T) {
		// Two consumers of one stream are read from its consumer list.
		p := natsjetstream.NewPool()
		defer p.Close()
		ok := newTrigger(t, p, md("natsServerURL", url, "stream", name, "consumer", "workers"), nil)
		bad := newTrigger(t, p, md("natsServerURL", url, "stream", name, "consumer", "nobody"), nil)
		if _, err := sampleErr(t, ok); err != nil {
			t.Fatal(err)
		}
		_, err := sampleErr(t, bad)
		isErr(t, err, natsjetstream.ErrConsumerNotFound)
	})
	t.Run("unreachable", func(t *testing.T) {
		p := natsjetstream.NewPool()
		defer p.Close()
		_, err := sampleErr(t, newTrigger(t, p, md("natsServerURL", "nats://127.0.0.1:1", "stream", name, "consumer", "workers"), nil))
		isErr(t, err, natsjetstream.ErrUnreachable)
	})
	t.Run("no-jetstream", func(t *testing.T) {
		srv := testenv.StartNATS(t, testenv.NATSOptions{NoJetStream: true})
		p := natsjetstream.NewPool()
		defer p.Close()
		_, err := sampleErr(t, newTrigger(t, p, md("natsServerURL", srv.URL, "stream", name, "consumer", "workers"), nil))
		isErr(t, err, natsjetstream.ErrNoJetStream)
	})
}

// Credentials from the TriggerAuthentication: right ones read, wrong or missing ones are
// ErrAuthentication.
func TestAuthentication(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		good, bad map[string]string
	}{
		{name: "user-password", args: []string{"--user", "ebb", "--pass", "s3cret"},
			good: md("username", "ebb", "password", "s3cret"), bad: md("username", "ebb", "password", "wrong")},
		{name: "token", args: []string{"--auth", "t0ken"},
			good: md("token", "t0ken"), bad: md("token", "other")},
		{name: "nkey", args: nkeyServer(t, userSeed(t, nkeyUser)),
			good: md("nkeySeed", string(userSeed(t, nkeyUser))), bad: md("nkeySeed", string(userSeed(t, nkeyOther)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testenv.StartNATS(t, testenv.NATSOptions{Args: tc.args})
			var j = js(t, srv.URL, natsOpts(tc.good)...)
			stream(t, j, "orders", 1)
			consumer(t, j, "orders", "workers", 1)
			publish(t, j, "orders", 2)
			p := natsjetstream.NewPool()
			defer p.Close()
			meta := md("natsServerURL", srv.URL, "stream", "orders", "consumer", "workers")
			eventually(t, 5*time.Second, valueIs(newTrigger(t, p, meta, tc.good), 2))
			_, err := sampleErr(t, newTrigger(t, p, meta, tc.bad))
			isErr(t, err, natsjetstream.ErrAuthentication)
			_, err = sampleErr(t, newTrigger(t, p, meta, nil))
			isErr(t, err, natsjetstream.ErrAuthentication)
		})
	}
}

// Two nkey users for TestAuthentication: the server knows the first.
var (
	nkeyUser  = mustUser()
	nkeyOther = mustUser()
)

func mustUser() nkeys.KeyPair {
	kp, err := nkeys.CreateUser()
	if err != nil {
		panic(err)
	}
	return kp
}

func userSeed(t *testing.T, kp nkeys.KeyPair) []byte {
	t.Helper()
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	return seed
}

// nkeyServer is the arguments of a server that lets in the nkey user of seed only (a config file).
func nkeyServer(t *testing.T, seed []byte) []string {
	t.Helper()
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "nkey.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "authorization { users = [ { nkey: %s } ] }\n", pub), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"-c", conf}
}

// A server that requires TLS: a tls:// URL (or tls: enable) with the authority in ca reads; without the
// authority the trigger fails with ErrTLS.
func TestTLS(t *testing.T) {
	certs := testenv.NewServerTLS(t)
	srv := testenv.StartNATS(t, testenv.NATSOptions{Args: []string{"--tls", "--tlscert", certs.CertFile, "--tlskey", certs.KeyFile}})
	tlsURL := strings.Replace(srv.URL, "nats://", "tls://", 1)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(certs.CAPEM))
	j := js(t, tlsURL, nats.Secure(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	stream(t, j, "orders", 1)
	consumer(t, j, "orders", "workers", 1)
	publish(t, j, "orders", 3)

	p := natsjetstream.NewPool()
	defer p.Close()
	ca := md("ca", certs.CAPEM)
	eventually(t, 5*time.Second, valueIs(newTrigger(t, p, md("natsServerURL", tlsURL, "stream", "orders", "consumer", "workers"), ca), 3))
	eventually(t, 5*time.Second, valueIs(newTrigger(t, p, md("natsServerURL", srv.URL, "tls", "enable", "stream", "orders", "consumer", "workers"), ca), 3))
	_, err := sampleErr(t, newTrigger(t, p, md("natsServerURL", tlsURL, "stream", "orders", "consumer", "workers"), nil))
	isErr(t, err, natsjetstream.ErrTLS)
	t.Log(err)
}
