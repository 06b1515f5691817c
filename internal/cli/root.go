package cli

import (
	"context"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ebbscale/ebb/internal/version"
)

// NewRootCommand returns the `ebb` command with every subcommand.
func NewRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "ebb",
		Short: "ebb sizes Kafka, RabbitMQ and NATS consumers on Kubernetes to their backlog",
		Long: `ebb is an event-driven autoscaler for Kubernetes. It reads the backlog consumers face (Kafka
consumer-group lag, RabbitMQ queue depth, NATS JetStream pending counts), serves it as external metrics to
the HorizontalPodAutoscaler, and scales idle consumers to zero and back. A cron trigger holds a replica
count during time windows.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newVersionCommand(), newRunCommand(), newControllerCommand(), newMetricsAPIServerCommand(), newExplainCommand())
	root.AddCommand(devCommands()...)
	return root
}

// PluginName is the name under which kubectl runs ebb as its plugin: `kubectl ebb explain` runs the first
// kubectl-ebb on PATH, which may be a link to the ebb binary.
const PluginName = "kubectl-ebb"

// NewPluginCommand returns the command tree of `kubectl ebb`: the client-side commands (explain, version).
func NewPluginCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "kubectl-ebb",
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl ebb"},
		Short:         "ebb's client-side commands as a kubectl plugin",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newVersionCommand(), newExplainCommand())
	return root
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return MainAs(ctx, "ebb", args, stdout, stderr)
}

// MainAs is Main for a process started as program (its argv[0]): as kubectl-ebb it is the kubectl plugin
// (NewPluginCommand), otherwise ebb.
func MainAs(ctx context.Context, program string, args []string, stdout, stderr io.Writer) int {
	root, prefix := NewRootCommand(stdout, stderr), "ebb: "
	if base := strings.TrimSuffix(filepath.Base(program), ".exe"); base == PluginName {
		root, prefix = NewPluginCommand(stdout, stderr), "kubectl ebb: "
	}
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		_, _ = io.WriteString(stderr, prefix+err.Error()+"\n")
		return 1
	}
	return 0
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of ebb",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := io.WriteString(cmd.OutOrStdout(), version.Get().String()+"\n")
			return err
		},
	}
}
