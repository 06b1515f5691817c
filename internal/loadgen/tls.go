package loadgen

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSFiles is a client's TLS setup from PEM files: the ca, cert and key of ebb's trigger parameters, as
// files rather than TriggerAuthentication secrets.
type TLSFiles struct {
	// CAFile holds the certificate(s) of the authority that signed the server's certificate. Default: the
	// system's roots.
	CAFile string
	// CertFile and KeyFile are a client certificate and its key, for mutual TLS. Both or neither.
	CertFile, KeyFile string
	// InsecureSkipVerify skips verifying the server's certificate (the scalers' unsafeSsl).
	InsecureSkipVerify bool
}

// Config builds the tls.Config.
func (f TLSFiles) Config() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: f.InsecureSkipVerify} //nolint:gosec // the user's explicit choice, as unsafeSsl in the scalers
	if f.CAFile != "" {
		b, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("TLS CA %s: no PEM certificate found", f.CAFile)
		}
		tc.RootCAs = pool
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, errors.New("TLS: a client certificate and its key go together")
	}
	if f.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
