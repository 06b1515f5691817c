package scalers_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/ebbscale/ebb/scalers"
)

func TestClassifyTransport(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want scalers.TransportFault
	}{
		{name: "nil", err: nil, want: scalers.NoTransportFault},
		{name: "other", err: errors.New("queue not found"), want: scalers.NoTransportFault},
		{name: "untrusted", err: fmt.Errorf("dial: %w", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), want: scalers.FaultTLS},
		{name: "hostname", err: x509.HostnameError{Certificate: &x509.Certificate{}, Host: "x"}, want: scalers.FaultTLS},
		{name: "not-tls", err: tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, want: scalers.FaultTLS},
		{name: "alert", err: &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}, want: scalers.FaultTLSRefused},
		{name: "refused", err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, want: scalers.FaultUnreachable},
		{name: "bare-reset", err: fmt.Errorf("read: %w", syscall.ECONNRESET), want: scalers.FaultUnreachable},
		{name: "timeout", err: fmt.Errorf("reading: %w", context.DeadlineExceeded), want: scalers.FaultUnreachable},
		{name: "eof", err: fmt.Errorf("reading: %w", io.ErrUnexpectedEOF), want: scalers.FaultClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := scalers.ClassifyTransport(tc.err); got != tc.want {
				t.Errorf("ClassifyTransport(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

func TestTLSConfigRejectsGarbage(t *testing.T) {
	tc, err := scalers.TLSConfig("", "", "", true)
	if err != nil || !tc.InsecureSkipVerify || tc.MinVersion != tls.VersionTLS12 || tc.RootCAs != nil {
		t.Errorf("TLSConfig with nothing: %+v, %v; want system roots, TLS 1.2, unsafe as asked", tc, err)
	}
	for _, tc := range []struct {
		name, ca, cert, key, wantKey string
	}{
		{name: "ca-not-pem", ca: "not a certificate", wantKey: "ca"},
		{name: "cert-not-pem", cert: "garbage", key: "garbage", wantKey: "cert"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := scalers.TLSConfig(tc.ca, tc.cert, tc.key, false)
			var fe *scalers.FieldError
			if !errors.As(err, &fe) || fe.Key != tc.wantKey {
				t.Errorf("error = %v, want a FieldError on %s", err, tc.wantKey)
			}
		})
	}
}
