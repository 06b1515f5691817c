package valuesync

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

// Endpoint is where a leader serves its values.
type Endpoint struct {
	// URL is the base URL, "https://<address>:<port>".
	URL string
	// Pin, when set, is the pin (PinOf) of the key the leader's certificate must carry.
	Pin string
}

// Identity returns the leader-election identity of a process that serves its values at ep: id, then the
// endpoint's URL and pin, separated by spaces: "<hostname>_<uuid> https://10.0.0.7:8443 sha256:...". id
// must not contain spaces.
func Identity(id string, ep Endpoint) string {
	s := id + " " + ep.URL
	if ep.Pin != "" {
		s += " " + ep.Pin
	}
	return s
}

// Errors LeaseLeader returns when there is no endpoint to mirror.
var (
	// ErrNoLeader: the Lease has no holder (none elected yet, or the last one stepped down).
	ErrNoLeader = errors.New("no leader holds the lease")
	// ErrNoEndpoint: the holder advertises no values endpoint (an older ebb, or its values server is off).
	ErrNoEndpoint = errors.New("the leader advertises no values endpoint")
	// ErrLease: the Lease could not be read.
	ErrLease = errors.New("cannot read the leader Lease")
)

// ParseIdentity returns the endpoint a leader-election identity advertises; ErrNoEndpoint when it
// advertises none.
func ParseIdentity(identity string) (Endpoint, error) {
	f := strings.Fields(identity)
	if len(f) < 2 {
		return Endpoint{}, ErrNoEndpoint
	}
	u, err := url.Parse(f[1])
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return Endpoint{}, fmt.Errorf("%w: %q is not an https URL", ErrNoEndpoint, f[1])
	}
	ep := Endpoint{URL: f[1]}
	if len(f) > 2 && strings.HasPrefix(f[2], "sha256:") {
		ep.Pin = f[2]
	}
	return ep, nil
}

// Leader finds the endpoint to mirror.
type Leader interface {
	Endpoint(ctx context.Context) (Endpoint, error)
}

// LeaseLeader reads the leader's endpoint from the holder identity of a coordination.k8s.io Lease, the
// one leader election writes. It needs get on that Lease.
type LeaseLeader struct {
	Client    coordinationv1client.LeasesGetter
	Namespace string
	Name      string
}

// Endpoint implements Leader.
func (l LeaseLeader) Endpoint(ctx context.Context) (Endpoint, error) {
	lease, err := l.Client.Leases(l.Namespace).Get(ctx, l.Name, metav1.GetOptions{})
	if err != nil {
		return Endpoint{}, fmt.Errorf("%w %s/%s: %w", ErrLease, l.Namespace, l.Name, err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		return Endpoint{}, ErrNoLeader
	}
	return ParseIdentity(*lease.Spec.HolderIdentity)
}

// StaticLeader is an endpoint given by configuration rather than found.
type StaticLeader Endpoint

// Endpoint implements Leader.
func (s StaticLeader) Endpoint(context.Context) (Endpoint, error) { return Endpoint(s), nil }
