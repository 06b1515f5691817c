package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ebbscale/ebb/explain"
)

// explainFlags are the flags of `ebb explain`: kubectl's names for the kubeconfig, context and namespace.
type explainFlags struct {
	kubeconfig, context, namespace, output string
}

func newExplainCommand() *cobra.Command {
	var f explainFlags
	cmd := &cobra.Command{
		Use:   "explain NAME",
		Short: "Say why a ScaledConsumer's target has its replica count, and what comes next",
		Long: `explain reads a ScaledConsumer, its HPA, its target's /scale and the values ebb's metrics API
serves the HPA, with your kubeconfig, and prints on one screen: each trigger's value and the replicas it
asks for (value / target), its activity and last error; the replica count the HPA wants and the limit
that decided it (maxReplicas, minReplicas, the consumer-health guard, fallback, pause, idle, the HPA's
behavior); ebb's state (active, cooling down until when, idle, fallback, paused); and the next expected
action. -o json prints the same as a stable structure (format ebb.dev/explain/v1) for tools.

Installed as kubectl-ebb on PATH (a link to the ebb binary), it is also "kubectl ebb explain".`,
		Example: `  ebb explain orders -n shop
  kubectl ebb explain orders -n shop -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.output != "text" && f.output != "json" {
				return fmt.Errorf("-o %q: want text or json", f.output)
			}
			loading := clientcmd.NewDefaultClientConfigLoadingRules()
			loading.ExplicitPath = f.kubeconfig
			cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(loading, &clientcmd.ConfigOverrides{CurrentContext: f.context})
			cfg, err := cc.ClientConfig()
			if err != nil {
				return fmt.Errorf("loading kubeconfig: %w", err)
			}
			ns := f.namespace
			if ns == "" {
				if ns, _, err = cc.Namespace(); err != nil {
					return fmt.Errorf("reading the kubeconfig's namespace: %w", err)
				}
			}
			in, err := explain.Read(cmd.Context(), cfg, ns, args[0], time.Now())
			if err != nil {
				return err
			}
			e := explain.Build(in)
			if f.output == "json" {
				return explain.JSON(cmd.OutOrStdout(), e)
			}
			return explain.Text(cmd.OutOrStdout(), e)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "Path of a kubeconfig; default: $KUBECONFIG or ~/.kube/config")
	fs.StringVar(&f.context, "context", "", "The kubeconfig context to use; default: its current context")
	fs.StringVarP(&f.namespace, "namespace", "n", "", "Namespace of the ScaledConsumer; default: the context's namespace")
	fs.StringVarP(&f.output, "output", "o", "text", "Output format: text or json")
	return cmd
}
