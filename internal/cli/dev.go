//go:build !ebb_nodev

package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ebbscale/ebb/internal/dev/devkafka"
)

func newDevCommand() *cobra.Command { return newDevCommandWithEnv() }

func newDevKafkaCommand() *cobra.Command {
	var (
		listen     string
		brokers    int
		topics     []string
		partitions int
		saslMech   string
		saslUser   string
		saslPass   string
	)
	cmd := &cobra.Command{
		Use:   "kafka",
		Short: "Run an in-memory Kafka-protocol cluster on 127.0.0.1 for development and tests",
		Long: `Run an in-memory Kafka-protocol cluster (franz-go's kfake) on 127.0.0.1 until interrupted. Any Kafka
client, kcat included, works against it. Data is not persisted. Not for production.`,
		Example: `  ebb dev kafka --listen 127.0.0.1:9092 --brokers 3 --topic orders:12
  kcat -b 127.0.0.1:9092 -L`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			port, err := devkafka.ParseListen(listen)
			if err != nil {
				return err
			}
			cfg := devkafka.Config{Brokers: brokers, Port: port, DefaultPartitions: partitions, Topics: map[string]int32{}}
			for _, t := range topics {
				name, n, err := devkafka.ParseTopic(t)
				if err != nil {
					return fmt.Errorf("--topic: %w", err)
				}
				cfg.Topics[name] = n
			}
			if (saslUser == "") != (saslPass == "") {
				return fmt.Errorf("--sasl-user and --sasl-password go together")
			}
			if saslUser != "" {
				cfg.SASL = &devkafka.SASLUser{Mechanism: strings.ToUpper(saslMech), User: saslUser, Password: saslPass}
			}
			c, err := devkafka.Start(cfg)
			if err != nil {
				return err
			}
			defer c.Close()
			_, _ = fmt.Fprintf(cmd.OutOrStdout(), "ebb dev kafka: ready: %d broker(s) at %s; Ctrl-C stops\n",
				len(c.ListenAddrs()), strings.Join(c.ListenAddrs(), ","))
			<-cmd.Context().Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:9092", "address of the first broker; the others take the next ports (port 0: random ports)")
	f.IntVar(&brokers, "brokers", 1, "number of brokers")
	f.StringArrayVar(&topics, "topic", nil, "topic to create, as name or name:partitions (repeatable)")
	f.IntVar(&partitions, "default-partitions", 10, "partitions of topics created automatically")
	f.StringVar(&saslMech, "sasl-mechanism", "SCRAM-SHA-256", "SASL mechanism when --sasl-user is set: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	f.StringVar(&saslUser, "sasl-user", "", "require SASL authentication as this user")
	f.StringVar(&saslPass, "sasl-password", "", "password of --sasl-user")
	return cmd
}
