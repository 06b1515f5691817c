package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"
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
	// MetricsBindAddress serves Prometheus metrics (default ":8080"; "0" turns it off).
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
	g, ctx := errgroup.WithContext(ctx)
	if o.Controller {
		mgr, err := newManager(o)
		if err != nil {
			return err
		}
		g.Go(func() error { return mgr.Start(ctx) })
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

func newManager(o Options) (ctrl.Manager, error) {
	if o.Registry == nil {
		return nil, errors.New("the controller needs a trigger registry")
	}
	id := o.LeaderElectionID
	if id == "" {
		id = DefaultLeaderElectionID
	}
	mgr, err := ctrl.NewManager(o.Config, ctrl.Options{
		Scheme:                        scheme.New(),
		Metrics:                       metricsserver.Options{BindAddress: or(o.MetricsBindAddress, ":8080")},
		HealthProbeBindAddress:        or(o.HealthProbeBindAddress, ":8081"),
		LeaderElection:                o.LeaderElection,
		LeaderElectionID:              id,
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       ptr(10 * time.Second),
	})
	if err != nil {
		return nil, fmt.Errorf("building the controller manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return nil, err
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

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func ptr[T any](v T) *T { return &v }
