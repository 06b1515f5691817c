package rabbitmq

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ebbscale/ebb/scalers"
	amqp "github.com/rabbitmq/amqp091-go"
)

// Errors a person acts on differently; a trigger's error wraps one of them when it applies.
var (
	// ErrUnreachable: the server did not answer (wrong address, network, server down or restarting), or
	// the connection to it was lost.
	ErrUnreachable = errors.New("rabbitmq unreachable")
	// ErrAuthentication: the server refused the username or password.
	ErrAuthentication = errors.New("rabbitmq authentication failed")
	// ErrAuthorization: the user is known but may not do what the trigger needs: access the vhost,
	// or (over http) use the management API at all, which takes the monitoring or management user tag.
	ErrAuthorization = errors.New("not authorized by rabbitmq")
	// ErrTLS: the TLS handshake failed.
	ErrTLS = errors.New("rabbitmq TLS handshake failed")
	// ErrVhostNotFound: the vhost does not exist.
	ErrVhostNotFound = errors.New("vhost not found")
	// ErrQueueNotFound: the queue does not exist in the vhost.
	ErrQueueNotFound = errors.New("queue not found")
	// ErrNotWatched: DeadLetter was asked about a vhost no http trigger of the pool reads.
	ErrNotWatched = errors.New("vhost not read by any http trigger")
)

// classify wraps err with the sentinel that says what to do about it (err itself is kept for detail).
func classify(err error) error {
	var amqpErr *amqp.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnreachable), errors.Is(err, ErrAuthentication), errors.Is(err, ErrAuthorization),
		errors.Is(err, ErrTLS), errors.Is(err, ErrVhostNotFound), errors.Is(err, ErrQueueNotFound):
		return err
	case errors.Is(err, amqp.ErrCredentials), errors.Is(err, amqp.ErrSASL):
		return fmt.Errorf("%w: %w", ErrAuthentication, err)
	case errors.Is(err, amqp.ErrVhost):
		return fmt.Errorf("%w (or the user has no permission on it): %w", ErrVhostNotFound, err)
	case errors.As(err, &amqpErr) && amqpErr.Server && amqpErr.Code == amqp.AccessRefused && strings.Contains(amqpErr.Reason, "ACCESS_REFUSED - Login was refused"):
		return fmt.Errorf("%w: %w", ErrAuthentication, err)
	case errors.As(err, &amqpErr) && amqpErr.Server && amqpErr.Code == amqp.NotAllowed && strings.Contains(amqpErr.Reason, "vhost") && strings.Contains(amqpErr.Reason, "not found"):
		return fmt.Errorf("%w: %w", ErrVhostNotFound, err)
	case errors.As(err, &amqpErr) && amqpErr.Server && amqpErr.Code == amqp.NotAllowed && strings.Contains(amqpErr.Reason, "vhost"):
		// "access to vhost 'v' refused for user 'u'": no permission on the vhost.
		return fmt.Errorf("%w: %w", ErrAuthorization, err)
	case errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound:
		return fmt.Errorf("%w: %w", ErrQueueNotFound, err)
	case errors.As(err, &amqpErr) && amqpErr.Code == amqp.AccessRefused:
		return fmt.Errorf("%w: %w", ErrAuthorization, err)
	case errors.Is(err, amqp.ErrClosed), errors.As(err, &amqpErr) && amqpErr.Code == amqp.ConnectionForced:
		return fmt.Errorf("%w: the connection was lost: %w", ErrUnreachable, err)
	}
	switch scalers.ClassifyTransport(err) {
	case scalers.FaultTLS:
		return fmt.Errorf("%w: %w", ErrTLS, err)
	case scalers.FaultTLSRefused:
		return fmt.Errorf("%w: the server refused the TLS session: %w", ErrTLS, err)
	case scalers.FaultUnreachable:
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	case scalers.FaultClosed:
		return fmt.Errorf("%w (the server closed the connection): %w", ErrUnreachable, err)
	}
	return err
}

// connectionLevel says whether err ends the use of the whole connection (as opposed to one channel).
func connectionLevel(err error) bool {
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) {
		// Soft errors (404 NOT_FOUND, 403 ACCESS_REFUSED, 405 RESOURCE_LOCKED, 406 PRECONDITION_FAILED)
		// close the channel only.
		return !amqpErr.Recover
	}
	return true
}
