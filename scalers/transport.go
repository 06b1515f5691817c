package scalers

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"syscall"
)

// TransportFault is what a connection-level error means, whatever the broker: each scaler wraps it in
// its own sentinel (ErrTLS, ErrUnreachable, ...), so a person reads the broker's name in the message.
type TransportFault int

// Transport faults, from ClassifyTransport.
const (
	// NoTransportFault: err is not a connection-level error (or is nil).
	NoTransportFault TransportFault = iota
	// FaultTLS: the TLS handshake failed on this side: a certificate not trusted, a wrong host name, an
	// answer that is not TLS.
	FaultTLS
	// FaultTLSRefused: the peer sent a TLS alert, such as "certificate required" when it wants a client
	// certificate (crypto/tls reports it as a net.OpError with Op "remote error").
	FaultTLSRefused
	// FaultUnreachable: no connection (refused, reset, no route, timed out).
	FaultUnreachable
	// FaultClosed: the peer closed the connection.
	FaultClosed
)

// ClassifyTransport says which TransportFault err is.
func ClassifyTransport(err error) TransportFault {
	var (
		netErr  *net.OpError
		certErr *tls.CertificateVerificationError
		unkAuth x509.UnknownAuthorityError
		hostErr x509.HostnameError
		recErr  tls.RecordHeaderError
	)
	switch {
	case err == nil:
		return NoTransportFault
	case errors.As(err, &certErr), errors.As(err, &unkAuth), errors.As(err, &hostErr), errors.As(err, &recErr):
		return FaultTLS
	case errors.As(err, &netErr) && netErr.Op == "remote error":
		return FaultTLSRefused
	case errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return FaultUnreachable
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return FaultClosed
	}
	return NoTransportFault
}

// TLSConfig is a client's TLS configuration from PEM text, as the triggers' ca, cert, key and unsafeSsl
// parameters give it: ca holds the authorities to trust (empty: the system's roots), cert and key a client
// certificate (both or neither; the metadata parsers check that), unsafe skips verifying the server's
// certificate. TLS 1.2 at least. An error is a FieldError naming ca or cert.
func TLSConfig(ca, cert, key string, unsafe bool) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: unsafe} //nolint:gosec // unsafeSsl is the user's explicit choice, as in KEDA
	if ca != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(ca)) {
			return nil, &FieldError{Key: "ca", Msg: "no PEM certificate found"}
		}
		tc.RootCAs = pool
	}
	if cert != "" || key != "" {
		pair, err := tls.X509KeyPair([]byte(cert), []byte(key))
		if err != nil {
			return nil, &FieldError{Key: "cert", Msg: "cert and key: " + err.Error(), KeyFirst: true}
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}
