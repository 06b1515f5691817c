package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	ebbv1 "github.com/ebbscale/ebb/api/v1alpha1"
	"github.com/ebbscale/ebb/metricstore"
	"github.com/ebbscale/ebb/valuesync"
)

// handover decides who writes the store of a process that runs the metrics API server next to a
// leader-elected controller (`ebb run` with --leader-elect): while the process follows, the values client
// mirrors the leader's store into it; once the process leads, its own poller writes it and the client
// stops for good. The provider and the values server read the same store throughout, so a new leader
// starts from the old leader's last values instead of an empty store.
type handover struct {
	store *metricstore.Store

	mu      sync.Mutex
	leading bool
	// stopMirror ends the client's run; set by the mirror runnable.
	stopMirror context.CancelFunc

	// mirrors is set when this process mirrors the leader while it follows; client does it, unless it
	// could not be made (clientErr).
	mirrors   bool
	client    *valuesync.Client
	clientErr error
}

// Replace makes handover a valuesync.Sink that writes only while this process follows: a snapshot that
// arrives as the process is elected is dropped, never written over its poller's values.
func (h *handover) Replace(items []metricstore.Item) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.leading {
		h.store.Replace(items)
	}
}

// lead switches the store to this process's poller.
func (h *handover) lead() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.leading = true
	if h.stopMirror != nil {
		h.stopMirror()
	}
}

// Leading reports whether this process leads.
func (h *handover) Leading() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.leading
}

// ready is a readiness check: a follower's metrics API is ready once it has the leader's values, so the
// Service does not send the HPA to a replica that would answer Not Found for everything.
func (h *handover) ready(*http.Request) error {
	switch {
	case !h.mirrors || h.Leading():
		return nil
	case h.clientErr != nil:
		return fmt.Errorf("cannot mirror the leader's metric values: %w", h.clientErr)
	case !h.client.Synced():
		return errors.New("no metric values from the leader yet")
	}
	return nil
}

// mirrorRunnable runs the values client while the process follows. It runs on every replica
// (NeedLeaderElection false) and ends when the process is elected.
type mirrorRunnable struct{ h *handover }

func (m mirrorRunnable) NeedLeaderElection() bool { return false }

func (m mirrorRunnable) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m.h.mu.Lock()
	if m.h.leading {
		m.h.mu.Unlock()
		return nil
	}
	m.h.stopMirror = cancel
	m.h.mu.Unlock()
	if m.h.client == nil {
		klog.FromContext(ctx).Error(m.h.clientErr, "this replica cannot mirror the leader's metric values; it reports not ready until it leads")
		return nil
	}
	return m.h.client.Run(ctx)
}

// electedRunnable runs on the leader only: it takes the store over from the mirror and drops the
// mirrored values of ScaledConsumers that no longer exist (deleted while no leader was there to forget
// them); the values of the others are replaced or forgotten by the poller as the controller reconciles.
type electedRunnable struct {
	h *handover
	// live lists the ScaledConsumers that exist (the manager's cache, once synced); nil skips the pruning.
	live func(ctx context.Context) (map[[2]string]bool, error)
}

func (e electedRunnable) NeedLeaderElection() bool { return true }

func (e electedRunnable) Start(ctx context.Context) error {
	e.h.lead()
	if e.live != nil {
		_, inherited := e.h.store.Snapshot()
		live, err := e.live(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// Not fatal: the values of deleted ScaledConsumers linger, and nothing asks for them.
			klog.FromContext(ctx).Error(err, "listing ScaledConsumers to drop the mirrored values of deleted ones")
		} else {
			for _, it := range inherited {
				if k := it.Key; !live[[2]string{k.Namespace, k.ScaledConsumer}] {
					e.h.store.Forget(k.Namespace, k.ScaledConsumer)
				}
			}
		}
	}
	<-ctx.Done()
	return nil
}

// liveScaledConsumers lists ScaledConsumers from the manager's cache.
func liveScaledConsumers(mgr ctrl.Manager) func(ctx context.Context) (map[[2]string]bool, error) {
	return func(ctx context.Context) (map[[2]string]bool, error) {
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return nil, errors.New("the cache did not sync")
		}
		list := &ebbv1.ScaledConsumerList{}
		if err := mgr.GetClient().List(ctx, list); err != nil {
			return nil, err
		}
		live := make(map[[2]string]bool, len(list.Items))
		for _, sc := range list.Items {
			live[[2]string{sc.Namespace, sc.Name}] = true
		}
		return live, nil
	}
}

// newValuesClient returns the client that mirrors the leader: the one o.ValuesEndpoint names, else the
// one the leader Lease advertises.
func newValuesClient(o Options, sink valuesync.Sink) (*valuesync.Client, error) {
	var leader valuesync.Leader
	if o.ValuesEndpoint != "" {
		leader = valuesync.StaticLeader{URL: o.ValuesEndpoint}
	} else {
		ns, err := leaderElectionNamespace(o.LeaderElectionNamespace)
		if err != nil {
			return nil, err
		}
		kube, err := kubernetes.NewForConfig(o.Config)
		if err != nil {
			return nil, err
		}
		leader = valuesync.LeaseLeader{Client: kube.CoordinationV1(), Namespace: ns, Name: leaderElectionID(o)}
	}
	return valuesync.NewClient(o.Config, leader, sink, valuesync.ClientOptions{CAFile: o.ValuesCAFile, ServerName: o.ValuesServerName})
}

// newValuesServer starts listening for followers; nil when o turns the values server off.
func newValuesServer(o Options, h *handover) (*valuesync.Server, error) {
	if o.ValuesBindAddress == "" || o.ValuesBindAddress == "0" {
		return nil, nil
	}
	handler := valuesync.NewHandler(h.store, valuesync.HandlerOptions{Serving: h.Leading})
	return valuesync.NewServer(o.Config, handler, valuesync.ServerOptions{
		BindAddress: o.ValuesBindAddress,
		CertDir:     o.ValuesCertDir,
		Hosts:       []string{advertiseAddress(o), "localhost"},
	})
}

// advertiseAddress is where followers reach this process: o.AdvertiseAddress, else $POD_IP (the
// downward API), else the hostname.
func advertiseAddress(o Options) string {
	if o.AdvertiseAddress != "" {
		return o.AdvertiseAddress
	}
	if ip := os.Getenv("POD_IP"); ip != "" {
		return ip
	}
	host, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return host
}

// newLeaderLock returns the Lease lock of leader election whose identity advertises srv's endpoint (or
// only this process, when srv is nil): "<hostname>_<uuid> https://<address>:<port> sha256:<pin>".
func newLeaderLock(o Options, srv *valuesync.Server) (*resourcelock.LeaseLock, string, error) {
	ns, err := leaderElectionNamespace(o.LeaderElectionNamespace)
	if err != nil {
		return nil, "", err
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, "", err
	}
	id := strings.ReplaceAll(host, " ", "-") + "_" + string(uuid.NewUUID())
	if srv != nil {
		_, port, err := net.SplitHostPort(srv.Addr().String())
		if err != nil {
			return nil, "", err
		}
		id = valuesync.Identity(id, valuesync.Endpoint{URL: "https://" + net.JoinHostPort(advertiseAddress(o), port), Pin: srv.Pin()})
	}
	// As controller-runtime does: a client timeout under the renew deadline (10 s), so one hung request
	// does not cost the lease.
	cfg := rest.AddUserAgent(rest.CopyConfig(o.Config), "leader-election")
	cfg.Timeout = 5 * time.Second
	core, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return nil, "", err
	}
	coordination, err := coordinationv1client.NewForConfig(cfg)
	if err != nil {
		return nil, "", err
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, ns, leaderElectionID(o), core, coordination, resourcelock.ResourceLockConfig{Identity: id})
	if err != nil {
		return nil, "", err
	}
	ll, ok := lock.(*resourcelock.LeaseLock)
	if !ok {
		return nil, "", fmt.Errorf("leader election: unexpected lock type %T", lock)
	}
	return ll, id, nil
}

func leaderElectionID(o Options) string {
	if o.LeaderElectionID == "" {
		return DefaultLeaderElectionID
	}
	return o.LeaderElectionID
}

// inClusterNamespace is where a pod finds its namespace.
const inClusterNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

func leaderElectionNamespace(ns string) (string, error) {
	if ns != "" {
		return ns, nil
	}
	b, err := os.ReadFile(inClusterNamespace)
	if err != nil {
		return "", fmt.Errorf("the leader Lease's namespace: not running in a pod (%w); set the leader election namespace", err)
	}
	return strings.TrimSpace(string(b)), nil
}
