package loadgen

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"

	"github.com/ebbscale/ebb/scalers"
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

// Config reads the files and builds the tls.Config the scalers would build from the same PEM text.
func (f TLSFiles) Config() (*tls.Config, error) {
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, errors.New("TLS: a client certificate and its key go together")
	}
	var pem [3]string
	for i, name := range []string{f.CAFile, f.CertFile, f.KeyFile} {
		if name == "" {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("TLS: %w", err)
		}
		pem[i] = string(b)
	}
	tc, err := scalers.TLSConfig(pem[0], pem[1], pem[2], f.InsecureSkipVerify)
	if err != nil {
		return nil, fmt.Errorf("TLS files: %w", err)
	}
	return tc, nil
}
