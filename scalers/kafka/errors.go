package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Errors a person acts on differently; a trigger's error wraps one of them when it applies.
var (
	// ErrUnreachable: no broker answered (wrong address, network, brokers down).
	ErrUnreachable = errors.New("kafka brokers unreachable")
	// ErrAuthentication: SASL rejected the credentials, or the broker closed the connection during the
	// SASL exchange (how some brokers answer a wrong password).
	ErrAuthentication = errors.New("kafka authentication failed")
	// ErrTLS: the TLS handshake failed (certificate not trusted, wrong host name, not a TLS listener).
	ErrTLS = errors.New("kafka TLS handshake failed")
	// ErrAuthorization: the credentials may not describe the topic or the group.
	ErrAuthorization = errors.New("not authorized by kafka ACLs")
	// ErrUnknownTopic: the topic does not exist.
	ErrUnknownTopic = errors.New("unknown topic")
	// ErrUnknownGroup: the group has committed no offsets, and no topic is set to read lag from.
	ErrUnknownGroup = errors.New("unknown consumer group")
)

// classify wraps err with the sentinel that says what to do about it (err itself is kept for detail).
func classify(err error) error {
	var (
		netErr  *net.OpError
		certErr *tls.CertificateVerificationError
		unkAuth x509.UnknownAuthorityError
		hostErr x509.HostnameError
		recErr  tls.RecordHeaderError
	)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnreachable), errors.Is(err, ErrAuthentication), errors.Is(err, ErrTLS),
		errors.Is(err, ErrAuthorization), errors.Is(err, ErrUnknownTopic), errors.Is(err, ErrUnknownGroup):
		return err
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.IllegalSaslState), errors.Is(err, kerr.UnsupportedSaslMechanism):
		return fmt.Errorf("%w: %w", ErrAuthentication, err)
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.GroupAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed):
		return fmt.Errorf("%w: %w", ErrAuthorization, err)
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return fmt.Errorf("%w: %w", ErrUnknownTopic, err)
	case errors.As(err, &certErr), errors.As(err, &unkAuth), errors.As(err, &hostErr), errors.As(err, &recErr):
		return fmt.Errorf("%w: %w", ErrTLS, err)
	case errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w (the broker closed the connection): %w", ErrUnreachable, err)
	}
	return err
}

// isClusterErr says whether err fails a whole reading rather than one topic or group.
func isClusterErr(err error) bool {
	err = classify(err)
	return errors.Is(err, ErrUnreachable) || errors.Is(err, ErrAuthentication) || errors.Is(err, ErrTLS)
}

func classifyTopic(topic string, err error) error {
	return fmt.Errorf("topic %q: %w", topic, classify(err))
}
