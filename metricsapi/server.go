package metricsapi

import (
	"github.com/spf13/pflag"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
)

// ServerName is the name the metrics API server reports for itself.
const ServerName = "ebb-metrics-apiserver"

// NewAdapter returns a custom-metrics-apiserver adapter that serves p as external.metrics.k8s.io. Its
// flags (secure serving, delegated authentication and authorization, --lister-kubeconfig) are added to
// fs; set them by parsing fs before calling Run on the adapter.
func NewAdapter(p provider.ExternalMetricsProvider, fs *pflag.FlagSet) *basecmd.AdapterBase {
	a := &basecmd.AdapterBase{Name: ServerName, FlagSet: fs}
	a.InstallFlags()
	a.WithExternalMetrics(p)
	return a
}
