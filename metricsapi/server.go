package metricsapi

import (
	"strconv"

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

// LocalFlags are the adapter flags for serving on 127.0.0.1:port with certificates in certDir and every
// client (lister, delegated authentication and authorization) using kubeconfig: how `ebb dev` and the
// tests run the metrics API next to a local control plane.
func LocalFlags(port int, certDir, kubeconfig string) []string {
	return []string{
		"--secure-port=" + strconv.Itoa(port),
		"--bind-address=127.0.0.1",
		"--cert-dir=" + certDir,
		"--lister-kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
	}
}
