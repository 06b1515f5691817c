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
