package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	apihealthz "k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"

	"github.com/ebbscale/ebb/controller"
	"github.com/ebbscale/ebb/internal/scheme"
	"github.com/ebbscale/ebb/metricstore"
	"github.com/ebbscale/ebb/scalers"
)

// Options configure Run. Fields without a stated default are required for the role that uses them.
type Options struct {
	// Config reaches the API server.
	Config *rest.Config
	// Store holds the sampled values; the controller writes it and the metrics API server reads it.
	Store *metricstore.Store

	// Controller runs the controller role; it needs Registry.
	Controller bool
	Registry   scalers.Registry
	// LeaderElection makes the controller role run only while this process holds the Lease
	// LeaderElectionID in LeaderElectionNamespace (default: the namespace the pod runs in).
	LeaderElection          bool
	LeaderElectionID        string
	LeaderElectionNamespace string
	// MetricsBindAddress serves Prometheus metrics, controller-runtime's registry (default ":8080"; "0"
	// turns it off). The metrics API server run without the controller serves them there too.
	MetricsBindAddress string
	// HealthProbeBindAddress serves /healthz and /readyz (default ":8081"; "0" turns it off).
	HealthProbeBindAddress string
	// MaxConcurrentReconciles defaults to 8.
	MaxConcurrentReconciles int
	// ControllerMetrics defaults to the controller's metrics registered with controller-runtime's registry
	// (served on MetricsBindAddress). Tests that run Run more than once in a process pass their own.
	ControllerMetrics *controller.Metrics
	// SkipNameValidation lets tests run the controller more than once in a process.
	SkipNameValidation bool

	// MetricsAPI, when not nil, is run as the external metrics API server; its flags are parsed.
	MetricsAPI *basecmd.AdapterBase

	// Values are mirrored from the leader (package valuesync) into Store whenever this process serves
	// the metrics API without polling: always when it runs without the controller, and while it does not
	// lead when it runs a leader-elected controller. Otherwise the metrics API reads the poller's values
	// in-process.

	// ValuesBindAddress is where the controller role serves its values to followers, such as ":8443";
	// it answers only while this process leads. Default "" (or "0"): off, so that in-process users (tests,
	// `ebb dev`) open no port they did not ask for; the ebb command defaults it to ":8443".
	ValuesBindAddress string
	// ValuesCertDir holds the values server's tls.crt and tls.key. Default "": a self-signed certificate,
	// whose key the leader Lease advertises for followers to pin.
	ValuesCertDir string
	// AdvertiseAddress is the address followers reach this process's values server at; the leader
	// Lease advertises https://<AdvertiseAddress>:<port>. Default: $POD_IP, else the hostname.
	AdvertiseAddress string
	// ValuesEndpoint is the leader's values URL (https://host:port) to mirror. Default "": the one the
	// leader Lease (LeaderElectionID in LeaderElectionNamespace) advertises.
	ValuesEndpoint string
	// ValuesCAFile verifies the leader's values certificate, and ValuesServerName is the name it must
	// carry (default: the endpoint's host). Default "": the key the Lease advertises is pinned, or, when
	// it advertises none, the certificate is not verified (see valuesync.ClientOptions).
	ValuesCAFile     string
	ValuesServerName string
}

// DefaultLeaderElectionID is the name of the Lease the controllers of one installation share.
const DefaultLeaderElectionID = "ebb-controller-leader"

// Run runs the roles Options selects until ctx ends or one of them fails.
func Run(ctx context.Context, o Options) error {
	if !o.Controller && o.MetricsAPI == nil {
		return errors.New("nothing to run: neither the controller nor the metrics API server is enabled")
	}
	if o.Store == nil {
		o.Store = metricstore.New()
	}
	h := &handover{store: o.Store}
	if o.MetricsAPI != nil && (!o.Controller || o.LeaderElection) {
		h.mirrors = true
		c, err := newValuesClient(o, h)
		switch {
		case err == nil:
			h.client = c
		case o.Controller:
			// Not fatal next to a controller: this process serves its own values once it leads, and until
			// then it reports not ready, with err, rather than serving an empty store.
			h.clientErr = err
		default:
			return err
		}
		server, err := o.MetricsAPI.Server()
		if err != nil {
			return fmt.Errorf("metrics API server: %w", err)
		}
		if err := server.GenericAPIServer.AddReadyzChecks(apihealthz.NamedCheck("values-from-leader", h.ready)); err != nil {
			return fmt.Errorf("metrics API server: %w", err)
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	if o.Controller {
		mgr, err := newManager(o, h)
		if err != nil {
			return err
		}
		g.Go(func() error { return leaseLost(o, mgr.Start(ctx)) })
	} else {
		if h.client != nil {
			g.Go(func() error { return h.client.Run(ctx) })
		}
		if addr := or(o.MetricsBindAddress, ":8080"); addr != "0" {
			// Without a manager, nothing else serves the metrics API's own metrics.
			srv, err := metricsserver.NewServer(metricsserver.Options{BindAddress: addr}, o.Config, nil)
			if err != nil {
				return fmt.Errorf("metrics server: %w", err)
			}
			g.Go(func() error { return srv.Start(ctx) })
		}
	}
	if o.MetricsAPI != nil {
		g.Go(func() error {
			if err := o.MetricsAPI.Run(ctx); err != nil {
				return fmt.Errorf("metrics API server: %w", err)
			}
			return nil
		})
	}
	return g.Wait()
}

func newManager(o Options, h *handover) (_ ctrl.Manager, err error) {
	if o.Registry == nil {
		return nil, errors.New("the controller needs a trigger registry")
	}
	srv, err := newValuesServer(o, h)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && srv != nil {
			_ = srv.Close()
		}
	}()
	mo := ctrl.Options{
		Scheme:                        scheme.New(),
		Metrics:                       metricsserver.Options{BindAddress: or(o.MetricsBindAddress, ":8080")},
		HealthProbeBindAddress:        or(o.HealthProbeBindAddress, ":8081"),
		LeaderElection:                o.LeaderElection,
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       ptr(10 * time.Second),
	}
	var lock *resourcelock.LeaseLock
	var identity string
	if o.LeaderElection {
		if lock, identity, err = newLeaderLock(o, srv); err != nil {
			return nil, fmt.Errorf("leader election: %w", err)
		}
		mo.LeaderElectionResourceLockInterface = lock
		// Not used to find the Lease with a lock given, but it names the leader election in logs and in
		// the leader_election_master_status metric.
		mo.LeaderElectionID = leaderElectionID(o)
	}
	mgr, err := ctrl.NewManager(o.Config, mo)
	if err != nil {
		return nil, fmt.Errorf("building the controller manager: %w", err)
	}
	if lock != nil {
		// client-go's leader election records core/v1 events ("... became leader"), as controller-runtime's
		// own lock does.
		lock.LockConfig.EventRecorder = mgr.GetEventRecorderFor(strings.Fields(identity)[0]) //nolint:staticcheck // resourcelock takes the core/v1 recorder
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	elected := electedRunnable{h: h}
	if h.mirrors {
		elected.live = liveScaledConsumers(mgr)
		if err := mgr.Add(mirrorRunnable{h: h}); err != nil {
			return nil, err
		}
		if err := mgr.AddReadyzCheck("values-from-leader", h.ready); err != nil {
			return nil, err
		}
	}
	if err := mgr.Add(elected); err != nil {
		return nil, err
	}
	if srv != nil {
		if err := mgr.Add(srv); err != nil {
			return nil, err
		}
	}
	if _, err := controller.Setup(mgr, controller.Options{
		Registry:                o.Registry,
		Store:                   o.Store,
		MaxConcurrentReconciles: o.MaxConcurrentReconciles,
		Metrics:                 o.ControllerMetrics,
		SkipNameValidation:      o.SkipNameValidation,
	}); err != nil {
		return nil, err
	}
	return mgr, nil
}

// leaseLost explains the manager's error when it stopped because this process lost the leader Lease, as
// it does when the API server does not answer its renewals for the renew deadline (10 s). The process
// then exits rather than step down (see docs/design.md, "A lost Lease ends the process"): controller-runtime
// stops its controllers without waiting for them, and only the process's end makes sure that nothing it
// started still writes HPAs or /scale once the next leader starts. Restarted, it rejoins as a follower.
func leaseLost(o Options, err error) error {
	if err == nil || !o.LeaderElection || !strings.Contains(err.Error(), "leader election lost") {
		return err
	}
	return fmt.Errorf("lost the leader Lease %s (not renewed within the renew deadline; is the API server reachable?): "+
		"exiting so that nothing of this process writes once another replica leads; restarted, it rejoins as a follower: %w",
		leaderElectionID(o), err)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func ptr[T any](v T) *T { return &v }
