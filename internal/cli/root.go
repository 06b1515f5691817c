package cli

import (
	"context"
	"io"

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
	root.AddCommand(newVersionCommand(), newRunCommand(), newControllerCommand(), newMetricsAPIServerCommand())
	root.AddCommand(devCommands()...)
	return root
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := NewRootCommand(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		_, _ = io.WriteString(stderr, "ebb: "+err.Error()+"\n")
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
