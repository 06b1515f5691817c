package natsjetstream

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ebbscale/ebb/scalers"
)

// Errors a person acts on differently; a trigger's error wraps one of them when it applies.
var (
	// ErrUnreachable: no server answered (wrong address, network, servers down), or a request got no
	// answer in time.
	ErrUnreachable = errors.New("nats unreachable")
	// ErrAuthentication: the server refused the credentials (username and password, token, nkeySeed or
	// creds), or wanted some and got none.
	ErrAuthentication = errors.New("nats authentication failed")
	// ErrAuthorization: the user may not send JetStream API requests for the stream.
	ErrAuthorization = errors.New("not authorized by nats")
	// ErrTLS: the TLS handshake failed.
	ErrTLS = errors.New("nats TLS handshake failed")
	// ErrNoJetStream: the server, or the account the credentials log in to, has no JetStream.
	ErrNoJetStream = errors.New("jetstream not enabled")
	// ErrAccountNotFound: the monitoring endpoint lists no JetStream account by that name or ID.
	ErrAccountNotFound = errors.New("jetstream account not found")
	// ErrStreamNotFound: the stream does not exist (in the account).
	ErrStreamNotFound = errors.New("stream not found")
	// ErrConsumerNotFound: the stream has no consumer by that name.
	ErrConsumerNotFound = errors.New("consumer not found")
	// ErrNoLeader: the consumer has no leader now (an election is under way), or its leader did not
	// answer; in monitoring mode, no endpoint listed is the consumer leader's. No replica's figures are
	// used instead: they lag behind the leader's.
	ErrNoLeader = errors.New("no answer from the consumer leader")
)

// apiError is the error of a JetStream API answer, classified.
func apiError(e *jetstream.APIError) error {
	if e == nil {
		return nil
	}
	switch e.ErrorCode {
	case jetstream.JSErrCodeStreamNotFound:
		return fmt.Errorf("%w: %w", ErrStreamNotFound, e)
	case jetstream.JSErrCodeConsumerNotFound:
		return fmt.Errorf("%w: %w", ErrConsumerNotFound, e)
	case jetstream.JSErrCodeJetStreamNotEnabled, jetstream.JSErrCodeJetStreamNotEnabledForAccount:
		return fmt.Errorf("%w: %w", ErrNoJetStream, e)
	}
	return e
}

// classify wraps err with the sentinel that says what to do about it (err itself is kept for detail).
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnreachable), errors.Is(err, ErrAuthentication), errors.Is(err, ErrAuthorization),
		errors.Is(err, ErrTLS), errors.Is(err, ErrNoJetStream), errors.Is(err, ErrAccountNotFound),
		errors.Is(err, ErrStreamNotFound), errors.Is(err, ErrConsumerNotFound), errors.Is(err, ErrNoLeader):
		return err
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked),
		isAuthText(err):
		return fmt.Errorf("%w: %w", ErrAuthentication, err)
	case errors.Is(err, nats.ErrPermissionViolation):
		return fmt.Errorf("%w: %w", ErrAuthorization, err)
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		return fmt.Errorf("%w (no server answered the JetStream API: start nats-server with -js, or enable JetStream for the account): %w", ErrNoJetStream, err)
	case errors.Is(err, nats.ErrSecureConnWanted), errors.Is(err, nats.ErrSecureConnRequired):
		return fmt.Errorf("%w: %w", ErrTLS, err)
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: no answer in time: %w", ErrUnreachable, err)
	case errors.Is(err, nats.ErrNoServers), errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionReconnecting):
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	switch scalers.ClassifyTransport(err) {
	case scalers.FaultTLS:
		return fmt.Errorf("%w: %w", ErrTLS, err)
	case scalers.FaultTLSRefused:
		return fmt.Errorf("%w: the server refused the TLS session (does it want a client certificate, cert and key?): %w", ErrTLS, err)
	case scalers.FaultUnreachable, scalers.FaultClosed:
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return err
}

// isAuthText recognizes the server's -ERR for a refused login, which nats.go reports as text when it
// arrives before the connection is established.
func isAuthText(err error) bool {
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "authorization violation") || strings.Contains(s, "authentication")
}

// isServerErr says whether err fails a whole reading rather than one stream or consumer.
func isServerErr(err error) bool {
	err = classify(err)
	return errors.Is(err, ErrUnreachable) || errors.Is(err, ErrAuthentication) || errors.Is(err, ErrTLS) || errors.Is(err, ErrNoJetStream)
}
