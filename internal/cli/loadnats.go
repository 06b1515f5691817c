//go:build !ebb_nodev

package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ebbscale/ebb/internal/dev/loadgen"
)

func newLoadNATSCommand() *cobra.Command {
	var (
		lf       loadFlags
		tf       tlsFlags
		cfg      loadgen.NATSConfig
		password string
	)
	cmd := &cobra.Command{
		Use:   "nats",
		Short: "Publish to a subject of a NATS JetStream stream (nats.go, acknowledged asynchronous publishes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sched, err := lf.schedule(cmd.Flags())
			if err != nil {
				return err
			}
			if cfg.Subject == "" {
				return errors.New("--subject is required")
			}
			cfg.Password, cfg.MaxInflight = passwordOrEnv(password), lf.maxInflight
			if cfg.Password != "" && cfg.Username == "" {
				return errors.New("--password needs --username")
			}
			if tf.set() {
				if cfg.TLS, err = tf.files.Config(); err != nil {
					return err
				}
			}
			sink, err := loadgen.NewNATS(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer sink.Close()
			return runLoad(cmd.Context(), sink, sched, lf, cmd.OutOrStdout(), fmt.Sprintf("subject %s at %s", cfg.Subject, cfg.URLs))
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.URLs, "url", "nats://127.0.0.1:4222", "servers, nats:// or tls:// URLs, comma-separated (the trigger's natsServerURL)")
	fs.StringVar(&cfg.Subject, "subject", "", "subject to publish to; a stream must capture it (required)")
	fs.StringVar(&cfg.Stream, "stream", "", "create this stream on --subject when it does not exist")
	fs.StringVar(&cfg.Username, "username", "", "user (with --password)")
	fs.StringVar(&password, "password", "", "password (or $"+passwordEnv+")")
	fs.StringVar(&cfg.Token, "token", "", "authentication token")
	fs.StringVar(&cfg.CredsFile, "creds", "", "a .creds file (user JWT and seed)")
	tf.register(fs)
	lf.register(fs, "1000")
	return cmd
}
