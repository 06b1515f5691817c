package kafka

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ebbscale/ebb/scalers"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Errors a person acts on differently; a trigger's error wraps one of them when it applies.
var (
	// ErrUnreachable: no broker answered (wrong address, network, brokers down).
	ErrUnreachable = errors.New("kafka brokers unreachable")
	// ErrAuthentication: SASL rejected the credentials, or the broker closed the connection in the middle
	// of the SASL exchange, after it had answered the handshake (how kfake, and brokers answering
	// SaslAuthenticate v0, reject a wrong user name or password).
	ErrAuthentication = errors.New("kafka authentication failed")
	// ErrTLS: the TLS handshake failed (certificate not trusted, wrong host name, a TLS alert from the
	// broker such as "certificate required", an answer that is not TLS).
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
	}
	switch scalers.ClassifyTransport(err) {
	case scalers.FaultTLS:
		return fmt.Errorf("%w: %w", ErrTLS, err)
	case scalers.FaultTLSRefused:
		return fmt.Errorf("%w: the broker refused the TLS session (does it want a client certificate, cert and key?): %w", ErrTLS, err)
	case scalers.FaultUnreachable:
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	case scalers.FaultClosed:
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

// saslAuthenticateKey is the Kafka API key of SaslAuthenticate.
const saslAuthenticateKey = 36

// saslHook notes when a broker closes the connection while it checks SASL credentials: it answered
// ApiVersions and the SASL handshake on that connection, then hung up on SaslAuthenticate. A broker that is
// down or unreachable never gets that far, so such a cut is a rejection of the credentials, not an outage.
type saslHook struct {
	cut atomic.Pointer[time.Time] // when the last exchange was cut off; nil for never
}

var _ kgo.HookBrokerE2E = (*saslHook)(nil)

// OnBrokerE2E implements kgo.HookBrokerE2E.
func (h *saslHook) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if key == saslAuthenticateKey && e2e.WriteErr == nil && closedByPeer(e2e.ReadErr) {
		now := time.Now()
		h.cut.Store(&now)
	}
}

// cutSince says whether a SASL exchange was cut off at or after t.
func (h *saslHook) cutSince(t time.Time) bool {
	if h == nil {
		return false
	}
	cut := h.cut.Load()
	return cut != nil && !cut.Before(t)
}

func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// classify is the package's classify, knowing what this cluster's client saw since the reading began at
// started: a reading that failed because connections were closed, while a broker was cutting off SASL
// exchanges, failed on the credentials.
func (c *cluster) classify(err error, started time.Time) error {
	if closedByPeer(err) && !errors.Is(err, ErrAuthentication) && c.sasl.cutSince(started) {
		return fmt.Errorf("%w: the broker closed the connection while checking the SASL credentials, which is how it rejects a wrong username or password; check sasl, username and password (the TriggerAuthentication): %w", ErrAuthentication, err)
	}
	return classify(err)
}
