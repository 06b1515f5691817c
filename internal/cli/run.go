package cli

import (
	"errors"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/ebbscale/ebb/internal/app"
	"github.com/ebbscale/ebb/internal/version"
	"github.com/ebbscale/ebb/metricsapi"
	"github.com/ebbscale/ebb/metricstore"
	"github.com/ebbscale/ebb/scalers"
	"github.com/ebbscale/ebb/scalers/brokermetrics"
	"github.com/ebbscale/ebb/scalers/builtin"
)

// registerMetrics registers with reg what ebb serves on /metrics besides the controller's own metrics
// (which controller.Setup registers): ebb_build_info, and the metrics API's metrics when provider is not
// nil. It returns the table's trigger types (package builtin) with broker clients that count their
// requests in reg (ebb_broker_*). `ebb run`, `ebb controller`, `ebb metrics-apiserver` and `ebb dev` all
// call it once.
func registerMetrics(reg prometheus.Registerer, provider *metricsapi.Provider) scalers.Registry {
	reg.MustRegister(version.Collector())
	if provider != nil {
		reg.MustRegister(provider.Collectors()...)
	}
	return builtin.Registry(builtin.Options{ObserveRequests: brokermetrics.New(reg).Observer})
}

// runFlags are the flags of the commands that run ebb's roles.
type runFlags struct {
	kubeconfig string
	qps        float32
	burst      int
	verbosity  int

	metricsAddr, healthAddr string
	leaderElect             bool
	leaderElectionID        string
	leaderElectionNamespace string
	maxConcurrent           int

	valuesAddr, valuesCertDir, advertiseAddr string
	valuesEndpoint, valuesCAFile             string
	valuesServerName                         string
}

func (f *runFlags) addCommon(fs *pflag.FlagSet) {
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "Path of a kubeconfig; default: in-cluster configuration, else $KUBECONFIG or ~/.kube/config")
	fs.Float32Var(&f.qps, "kube-api-qps", 100, "Client-side rate limit of requests to the API server, per second")
	fs.IntVar(&f.burst, "kube-api-burst", 200, "Client-side burst of requests to the API server")
	fs.IntVarP(&f.verbosity, "v", "v", 0, "Log verbosity (0: decisions and errors; 1: every failed sample; 4+: client details)")
}

func (f *runFlags) addController(fs *pflag.FlagSet) {
	f.addMetrics(fs)
	fs.StringVar(&f.healthAddr, "health-probe-bind-address", ":8081", `Address of /healthz and /readyz ("0" turns them off)`)
	fs.BoolVar(&f.leaderElect, "leader-elect", false, "Run the controller only while holding the leader Lease (set it when running more than one replica); a leader that cannot renew the Lease for 10 s exits, to be restarted as a follower")
	f.addLease(fs)
	fs.IntVar(&f.maxConcurrent, "max-concurrent-reconciles", 8, "ScaledConsumers reconciled in parallel")
	fs.StringVar(&f.valuesAddr, "values-bind-address", ":8443", `Address of the HTTPS endpoint (/ebb/v1/values) from which metrics API servers that do not poll mirror the leader's values ("0" turns it off)`)
	fs.StringVar(&f.valuesCertDir, "values-cert-dir", "", "Directory with tls.crt and tls.key for the values endpoint (reloaded when they change); default: a self-signed certificate whose key the leader Lease advertises for pinning")
	fs.StringVar(&f.advertiseAddr, "advertise-address", "", "Address other ebb processes reach the values endpoint at, advertised in the leader Lease; default: $POD_IP, else the hostname")
}

// addMetrics adds the flag of the Prometheus endpoint.
func (f *runFlags) addMetrics(fs *pflag.FlagSet) {
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", `Address of the Prometheus /metrics endpoint ("0" turns it off)`)
}

// addLease adds the flags that name the leader Lease: the controller takes it, the metrics API server
// reads it to find the leader's values endpoint.
func (f *runFlags) addLease(fs *pflag.FlagSet) {
	fs.StringVar(&f.leaderElectionID, "leader-election-id", app.DefaultLeaderElectionID, "Name of the leader Lease")
	fs.StringVar(&f.leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader Lease; default: the pod's namespace")
}

// addMirror adds the flags of the values client, which mirrors the leader's values into a metrics API
// server that does not poll.
func (f *runFlags) addMirror(fs *pflag.FlagSet) {
	fs.StringVar(&f.valuesEndpoint, "values-endpoint", "", "URL (https://host:port) of the leader's values endpoint; default: the one the leader Lease advertises")
	fs.StringVar(&f.valuesCAFile, "values-ca-file", "", "PEM CA bundle that verifies the leader's values certificate (set it when the controller has --values-cert-dir); default: pin the key the leader Lease advertises, and if it advertises none, do not verify")
	fs.StringVar(&f.valuesServerName, "values-server-name", "", "Name the leader's values certificate must carry when --values-ca-file is set; default: the endpoint's host")
}

// setup configures logging and returns the client configuration.
func (f *runFlags) setup() (*rest.Config, error) {
	logger := textlogger.NewLogger(textlogger.NewConfig(textlogger.Verbosity(f.verbosity), textlogger.Output(os.Stderr)))
	klog.SetLogger(logger)
	ctrl.SetLogger(logger)
	var cfg *rest.Config
	var err error
	if f.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	} else {
		cfg, err = ctrl.GetConfig()
	}
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = f.qps, f.burst
	return cfg, nil
}

// defaultAdapterKubeconfigs points the metrics API server's lister, authentication and authorization
// clients at --kubeconfig when it is set and they are not, so one flag is enough outside a cluster.
func defaultAdapterKubeconfigs(fs *pflag.FlagSet, kubeconfig string) error {
	if kubeconfig == "" {
		return nil
	}
	var errs []error
	for _, name := range []string{"lister-kubeconfig", "authentication-kubeconfig", "authorization-kubeconfig"} {
		if fl := fs.Lookup(name); fl != nil && !fl.Changed {
			errs = append(errs, fs.Set(name, kubeconfig))
		}
	}
	return errors.Join(errs...)
}

func newRunCommand() *cobra.Command {
	return newRoleCommand("run", "Run the controller and the external metrics API server in one process (the default deployment)", true, true)
}

func newControllerCommand() *cobra.Command {
	return newRoleCommand("controller", "Run only the controller: HPAs, activation to and from zero, fallback, pause, polling", true, false)
}

func newMetricsAPIServerCommand() *cobra.Command {
	return newRoleCommand("metrics-apiserver", "Run only the external metrics API server (external.metrics.k8s.io)", false, true)
}

func newRoleCommand(use, short string, withController, withMetricsAPI bool) *cobra.Command {
	f := &runFlags{}
	store := metricstore.New()
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs}
	f.addCommon(cmd.Flags())
	if withController {
		f.addController(cmd.Flags())
	} else {
		f.addMetrics(cmd.Flags())
		f.addLease(cmd.Flags())
	}
	if withMetricsAPI {
		f.addMirror(cmd.Flags())
	}
	var o app.Options
	var provider *metricsapi.Provider
	if withMetricsAPI {
		provider = metricsapi.NewProvider(store)
		o.MetricsAPI = metricsapi.NewAdapter(provider, cmd.Flags())
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := f.setup()
		if err != nil {
			return err
		}
		if err := defaultAdapterKubeconfigs(cmd.Flags(), f.kubeconfig); err != nil {
			return err
		}
		o.Config, o.Store = cfg, store
		registry := registerMetrics(ctrlmetrics.Registry, provider)
		o.LeaderElectionID, o.LeaderElectionNamespace = f.leaderElectionID, f.leaderElectionNamespace
		o.MetricsBindAddress = f.metricsAddr
		if withController {
			o.Controller, o.Registry = true, registry
			o.HealthProbeBindAddress = f.healthAddr
			o.LeaderElection = f.leaderElect
			o.MaxConcurrentReconciles = f.maxConcurrent
			o.ValuesBindAddress, o.ValuesCertDir, o.AdvertiseAddress = f.valuesAddr, f.valuesCertDir, f.advertiseAddr
		}
		if withMetricsAPI {
			o.ValuesEndpoint, o.ValuesCAFile, o.ValuesServerName = f.valuesEndpoint, f.valuesCAFile, f.valuesServerName
		}
		err = app.Run(cmd.Context(), o)
		if err != nil && strings.Contains(err.Error(), "context canceled") && cmd.Context().Err() != nil {
			return nil
		}
		return err
	}
	return cmd
}
