package kafka_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/kafka"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// PEM is the CA certificate, as a TriggerAuthentication's ca parameter holds it.
	PEM string
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, PEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// issue signs a certificate: a server certificate for 127.0.0.1 (where kfake listens), or a client one.
// It returns it for crypto/tls and as PEM certificate and key.
func (ca *testCA) issue(t *testing.T, server bool) (cert tls.Certificate, certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.Subject.CommonName = "kfake"
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

func startCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3), kfake.SeedTopics(2, "orders")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// trySample samples s once with a deadline; the sample comes without its Progress.
func trySample(t *testing.T, s scalers.Scaler, timeout time.Duration) (scalers.Sample, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	got, err := s.Sample(ctx)
	got.Progress = nil
	return got, err
}

// securityCase is a trigger's security settings and what sampling it gives: the lag, or an error that
// wraps wantErr and mentions wantWords.
type securityCase struct {
	name      string
	metadata  map[string]string
	auth      map[string]string
	wantLag   float64
	wantErr   error
	wantWords []string
}

func runSecurityCases(t *testing.T, addrs string, tests []securityCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pool := kafka.NewPool()
			t.Cleanup(pool.Close)
			md := map[string]string{"bootstrapServers": addrs, "consumerGroup": "g", "topic": "orders", "offsetResetPolicy": "earliest"}
			for k, v := range tc.metadata {
				md[k] = v
			}
			s := newTrigger(t, pool, md, tc.auth)
			got, err := trySample(t, s, 10*time.Second)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Sample: %v", err)
				}
				if diff := cmp.Diff(got, values(tc.wantLag, tc.wantLag)); diff != "" {
					t.Errorf("sample (-got +want):\n%s", diff)
				}
				return
			}
			t.Logf("error: %v", err)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Sample error = %v, want one wrapping %q", err, tc.wantErr)
			}
			for _, w := range tc.wantWords {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestTLS(t *testing.T) {
	ca, other := newCA(t, "ebb test CA"), newCA(t, "some other CA")
	serverCert, _, _ := ca.issue(t, true)
	c := startCluster(t, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}))
	f := fixtureOf(t, c, kgo.DialTLSConfig(&tls.Config{RootCAs: ca.pool(), MinVersion: tls.VersionTLS12}))
	f.produce("orders", 0, 7)
	runSecurityCases(t, f.addrs, []securityCase{
		{name: "trusted-ca", metadata: map[string]string{"tls": "enable"}, auth: map[string]string{"ca": ca.PEM}, wantLag: 7},
		{name: "tls-from-auth", auth: map[string]string{"tls": "enable", "ca": ca.PEM}, wantLag: 7},
		{name: "unsafe-ssl", metadata: map[string]string{"tls": "enable", "unsafeSsl": "true"}, wantLag: 7},
		{
			name: "wrong-ca", metadata: map[string]string{"tls": "enable"}, auth: map[string]string{"ca": other.PEM},
			wantErr: kafka.ErrTLS, wantWords: []string{"TLS", "certificate", "unknown authority"},
		},
		{
			name: "system-roots", metadata: map[string]string{"tls": "enable"},
			wantErr: kafka.ErrTLS, wantWords: []string{"unknown authority"},
		},
		{
			// A plaintext client against a TLS listener: the broker hangs up on the first request. The
			// client cannot tell this from a broker that died, so it is ErrUnreachable, with franz-go's
			// hint that TLS may be missing.
			name: "tls-missing", wantErr: kafka.ErrUnreachable, wantWords: []string{"is TLS missing?"},
		},
	})
}

// cert and key: a broker that requires a client certificate signed by its CA.
func TestTLSClientCertificate(t *testing.T) {
	ca := newCA(t, "ebb test CA")
	serverCert, _, _ := ca.issue(t, true)
	_, clientCert, clientKey := ca.issue(t, false)
	_, strangerCert, strangerKey := newCA(t, "stranger CA").issue(t, false)
	c := startCluster(t, kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool(),
	}))
	runSecurityCases(t, strings.Join(c.ListenAddrs(), ","), []securityCase{
		{
			name: "client-certificate", metadata: map[string]string{"tls": "enable"},
			auth: map[string]string{"ca": ca.PEM, "cert": clientCert, "key": clientKey},
		},
		{
			name: "no-client-certificate", metadata: map[string]string{"tls": "enable"}, auth: map[string]string{"ca": ca.PEM},
			wantErr: kafka.ErrTLS, wantWords: []string{"certificate required"},
		},
		{
			name: "untrusted-client-certificate", metadata: map[string]string{"tls": "enable"},
			auth:    map[string]string{"ca": ca.PEM, "cert": strangerCert, "key": strangerKey},
			wantErr: kafka.ErrTLS, wantWords: []string{"refused the TLS session"},
		},
	})
}

// SASL users of the SASL tests, one per mechanism.
const (
	plainUser, plainPass   = "plain-user", "plain-pass"
	scram256User, scram256 = "scram256-user", "scram256-pass"
	scram512User, scram512 = "scram512-user", "scram512-pass"
)

func saslCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	return startCluster(t, append([]kfake.Opt{
		kfake.EnableSASL(),
		kfake.Superuser("PLAIN", plainUser, plainPass),
		kfake.Superuser("SCRAM-SHA-256", scram256User, scram256),
		kfake.Superuser("SCRAM-SHA-512", scram512User, scram512),
	}, opts...)...)
}

func saslCase(name, mechanism, user, pass string) securityCase {
	return securityCase{name: name, metadata: map[string]string{"sasl": mechanism, "username": user}, auth: map[string]string{"password": pass}}
}

// A wrong password is an authentication error, not an outage. kfake, like a broker answering SaslAuthenticate
// v0, rejects credentials by closing the connection; the scaler tells that apart from a dead broker because
// the broker had answered the SASL handshake on that connection.
func TestSASL(t *testing.T) {
	c := saslCluster(t)
	f := fixtureOf(t, c, kgo.SASL(scram.Auth{User: scram256User, Pass: scram256}.AsSha256Mechanism()))
	f.produce("orders", 1, 5)
	rejected := func(tc securityCase) securityCase {
		tc.wantErr, tc.wantWords = kafka.ErrAuthentication, []string{"authentication failed", "username", "password"}
		return tc
	}
	good := func(tc securityCase) securityCase { tc.wantLag = 5; return tc }
	runSecurityCases(t, f.addrs, []securityCase{
		good(saslCase("plaintext", "plaintext", plainUser, plainPass)),
		good(saslCase("scram-sha256", "scram_sha256", scram256User, scram256)),
		good(saslCase("scram-sha512", "scram_sha512", scram512User, scram512)),
		rejected(saslCase("plaintext-wrong-password", "plaintext", plainUser, "wrong")),
		rejected(saslCase("scram-sha256-wrong-password", "scram_sha256", scram256User, "wrong")),
		rejected(saslCase("scram-sha512-wrong-password", "scram_sha512", scram512User, "wrong")),
		rejected(saslCase("unknown-user", "scram_sha256", "nobody", scram256)),
		// The user has SCRAM-SHA-256 credentials only.
		rejected(saslCase("mechanism-without-credentials", "scram_sha512", scram256User, scram256)),
		{
			// No SASL against a broker that requires it: the broker hangs up on the first request after
			// ApiVersions, which cannot be told from a broker that died. ErrUnreachable, with franz-go's hint.
			name: "sasl-missing", wantErr: kafka.ErrUnreachable, wantWords: []string{"is SASL missing?"},
		},
	})
}

func TestSASLOverTLS(t *testing.T) {
	ca := newCA(t, "ebb test CA")
	serverCert, _, _ := ca.issue(t, true)
	c := saslCluster(t, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}))
	f := fixtureOf(t, c, kgo.DialTLSConfig(&tls.Config{RootCAs: ca.pool(), MinVersion: tls.VersionTLS12}),
		kgo.SASL(scram.Auth{User: scram512User, Pass: scram512}.AsSha512Mechanism()))
	f.produce("orders", 0, 3)
	tlsOn := func(tc securityCase) securityCase {
		tc.metadata["tls"] = "enable"
		tc.auth["ca"] = ca.PEM
		return tc
	}
	wrong := tlsOn(saslCase("wrong-password", "scram_sha512", scram512User, "wrong"))
	wrong.wantErr = kafka.ErrAuthentication
	good := tlsOn(saslCase("scram-sha512", "scram_sha512", scram512User, scram512))
	good.wantLag = 3
	runSecurityCases(t, f.addrs, []securityCase{good, wrong})
}
