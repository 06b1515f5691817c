//go:build !ebb_nodev

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ebbscale/ebb/internal/dev/loadgen"
)

// passwordEnv is where `ebb load` reads a password not given with --password (which `ps` shows).
const passwordEnv = "EBB_LOAD_PASSWORD"

// loadFlags are the flags every `ebb load` broker shares: the schedule and the message.
type loadFlags struct {
	rate          float64
	burst         int64
	burstEvery    time.Duration
	duration      time.Duration
	messages      int64
	size          int
	progressEvery time.Duration
	maxInflight   int
	quiet         bool
}

func (f *loadFlags) register(fs *pflag.FlagSet, inflightDefault string) {
	fs.Float64Var(&f.rate, "rate", 0, "steady rate in messages per second (0: none)")
	fs.Int64Var(&f.burst, "burst", 0, "messages sent at once at the start (0: none)")
	fs.DurationVar(&f.burstEvery, "burst-every", 0, "repeat the burst at this interval (0: only at the start)")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "how long to send (0: until --messages or Ctrl-C; with --messages and no --duration, until --messages)")
	fs.Int64Var(&f.messages, "messages", 0, "stop after this many messages (0: no cap)")
	fs.IntVar(&f.size, "size", 100, "message size in bytes")
	fs.DurationVar(&f.progressEvery, "progress-every", time.Second, "interval of the progress lines")
	fs.IntVar(&f.maxInflight, "max-inflight", 0, "messages sent but not yet confirmed, at most (0: "+inflightDefault+")")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "print the summary only")
}

// schedule checks the shared flags and returns the schedule they make. fs tells which flags were given:
// --messages alone ends the run at that count, not at the default --duration.
func (f *loadFlags) schedule(fs *pflag.FlagSet) (loadgen.Schedule, error) {
	var bad []string
	if f.size < 0 {
		bad = append(bad, fmt.Sprintf("--size %d: want >= 0", f.size))
	}
	if f.maxInflight < 0 {
		bad = append(bad, fmt.Sprintf("--max-inflight %d: want >= 0", f.maxInflight))
	}
	if f.progressEvery <= 0 {
		bad = append(bad, fmt.Sprintf("--progress-every %s: want > 0", f.progressEvery))
	}
	if len(bad) > 0 {
		return loadgen.Schedule{}, errors.New(strings.Join(bad, "; "))
	}
	if f.messages > 0 && !fs.Changed("duration") {
		f.duration = 0
	}
	s := loadgen.Schedule{Rate: f.rate, Burst: f.burst, BurstEvery: f.burstEvery, Duration: f.duration, Messages: f.messages}
	if err := s.Validate(); err != nil {
		return s, fmt.Errorf("--rate, --burst, --burst-every, --duration, --messages: %w", err)
	}
	return s, nil
}

// payload is size bytes of readable text.
func payload(size int) []byte {
	const fill = "ebb load "
	b := make([]byte, size)
	for i := range b {
		b[i] = fill[i%len(fill)]
	}
	return b
}

// tlsFlags are the TLS flags, named after the triggers' parameters (ca, cert, key, unsafeSsl) but taking
// files.
type tlsFlags struct {
	files loadgen.TLSFiles
}

func (f *tlsFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.files.CAFile, "ca", "", "PEM file of the authority that signed the server's certificate (default: the system's roots)")
	fs.StringVar(&f.files.CertFile, "cert", "", "PEM file of a client certificate, for mutual TLS (with --key)")
	fs.StringVar(&f.files.KeyFile, "key", "", "PEM file of the client certificate's key")
	fs.BoolVar(&f.files.InsecureSkipVerify, "unsafe-ssl", false, "do not verify the server's certificate")
}

func (f *tlsFlags) set() bool {
	return f.files != (loadgen.TLSFiles{})
}

func newLoadCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Produce a paced load to Kafka, RabbitMQ or NATS JetStream, to try scaling settings before production",
		Long: `Produce messages to a broker at a planned pace: a burst at the start (--burst, repeated with
--burst-every), a steady stream (--rate), or both, for --duration or up to --messages. It prints progress
every second and a summary: messages sent (taken by the client), confirmed (acknowledged by the broker:
Kafka acks from all in-sync replicas, RabbitMQ publisher confirms, JetStream publish acknowledgements), failed, and the achieved rate. It exits
1 when any message failed. Works against any broker, not only ebb dev's.

Passwords: --password, or the ` + passwordEnv + ` environment variable (which ps does not show).`,
		Example: `  ebb load kafka --brokers 127.0.0.1:9092 --topic orders --burst 5000
  ebb load kafka --brokers kafka:9093 --topic orders --tls --ca ca.pem --sasl scram_sha512 --username ebb --rate 200 --duration 5m
  ebb load rabbitmq --url amqp://guest:guest@127.0.0.1:5672/ --queue orders --declare --rate 100 --burst 1000 --burst-every 30s --duration 2m
  ebb load nats --url nats://127.0.0.1:4222 --subject orders.new --stream orders --rate 50 --duration 1m`,
		// Without RunE cobra would ignore Args and print the help, exit 0, for `ebb load kafak`.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newLoadKafkaCommand(), newLoadRabbitMQCommand(), newLoadNATSCommand())
	return cmd
}

func newLoadKafkaCommand() *cobra.Command {
	var (
		lf       loadFlags
		tf       tlsFlags
		cfg      loadgen.KafkaConfig
		useTLS   bool
		sasl     string
		password string
	)
	cmd := &cobra.Command{
		Use:   "kafka",
		Short: "Produce to a Kafka topic (franz-go; acks=all, spread round-robin over partitions, no keys)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sched, err := lf.schedule(cmd.Flags())
			if err != nil {
				return err
			}
			if cfg.Topic == "" {
				return errors.New("--topic is required")
			}
			if len(cfg.Brokers) == 0 || slices.Contains(cfg.Brokers, "") {
				return errors.New("--brokers: give host:port, comma-separated")
			}
			if cfg.Partitions < 0 {
				return fmt.Errorf("--partitions %d: want >= 0", cfg.Partitions)
			}
			cfg.SASL, cfg.Password, cfg.MaxInflight = sasl, passwordOrEnv(password), lf.maxInflight
			if tf.set() && !useTLS {
				return errors.New("--ca, --cert, --key and --unsafe-ssl need --tls")
			}
			if useTLS {
				if cfg.TLS, err = tf.files.Config(); err != nil {
					return err
				}
			}
			sink, err := loadgen.NewKafka(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer sink.Close()
			return runLoad(cmd.Context(), sink, sched, lf, cmd.OutOrStdout(), fmt.Sprintf("topic %s at %s", cfg.Topic, strings.Join(cfg.Brokers, ",")))
		},
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&cfg.Brokers, "brokers", []string{"127.0.0.1:9092"}, "bootstrap servers, host:port, comma-separated (the trigger's bootstrapServers)")
	fs.StringVar(&cfg.Topic, "topic", "", "topic to produce to (required)")
	fs.Int32Var(&cfg.Partitions, "partitions", 0, "create the topic with this many partitions when it does not exist (0: it must exist or the brokers create it)")
	fs.StringVar(&sasl, "sasl", "none", "SASL mechanism: none, plaintext, scram_sha256 or scram_sha512 (the trigger's sasl)")
	fs.StringVar(&cfg.Username, "username", "", "SASL user")
	fs.StringVar(&password, "password", "", "SASL password (or $"+passwordEnv+")")
	fs.BoolVar(&useTLS, "tls", false, "connect with TLS (the trigger's tls: enable)")
	tf.register(fs)
	lf.register(fs, "10000")
	return cmd
}

func newLoadRabbitMQCommand() *cobra.Command {
	var (
		lf       loadFlags
		tf       tlsFlags
		cfg      loadgen.RabbitMQConfig
		password string
	)
	cmd := &cobra.Command{
		Use:   "rabbitmq",
		Short: "Publish to a RabbitMQ queue or exchange (amqp091-go, publisher confirms, mandatory)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sched, err := lf.schedule(cmd.Flags())
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("queue") && cmd.Flags().Changed("routing-key") {
				return errors.New("--queue and --routing-key: give one (--queue is the routing key of the default exchange)")
			}
			cfg.Password, cfg.MaxInflight = passwordOrEnv(password), lf.maxInflight
			if tf.set() {
				if !strings.HasPrefix(cfg.URL, "amqps://") {
					return errors.New("--ca, --cert, --key and --unsafe-ssl need an amqps:// --url")
				}
				if cfg.TLS, err = tf.files.Config(); err != nil {
					return err
				}
			}
			sink, err := loadgen.NewRabbitMQ(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer func() { _ = sink.Close() }()
			where := fmt.Sprintf("queue %s", cfg.RoutingKey)
			if cfg.Exchange != "" {
				where = fmt.Sprintf("exchange %s, routing key %q", cfg.Exchange, cfg.RoutingKey)
			}
			return runLoad(cmd.Context(), sink, sched, lf, cmd.OutOrStdout(), where)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.URL, "url", "amqp://guest:guest@127.0.0.1:5672/", "server, amqp://user:password@host:port/vhost or amqps://... (the trigger's host)")
	fs.StringVar(&cfg.RoutingKey, "queue", "", "queue to publish to, through the default exchange")
	fs.StringVar(&cfg.RoutingKey, "routing-key", "", "routing key, with --exchange")
	fs.StringVar(&cfg.Exchange, "exchange", "", "exchange to publish to (default: the default exchange)")
	fs.BoolVar(&cfg.Declare, "declare", false, "declare --queue as a durable classic queue first")
	fs.BoolVar(&cfg.Persistent, "persistent", false, "persistent messages (confirms wait for the disk)")
	fs.StringVar(&cfg.Username, "username", "", "user, overriding the URL's (with --password)")
	fs.StringVar(&password, "password", "", "password, overriding the URL's (or $"+passwordEnv+")")
	tf.register(fs)
	lf.register(fs, "1000")
	return cmd
}

func passwordOrEnv(p string) string {
	if p != "" {
		return p
	}
	return os.Getenv(passwordEnv)
}

// runLoad runs the schedule against sink, printing progress and a summary on out.
func runLoad(ctx context.Context, sink loadgen.Sink, sched loadgen.Schedule, lf loadFlags, out io.Writer, where string) error {
	plan := "until Ctrl-C"
	if total, ok := sched.Total(); ok {
		plan = fmt.Sprintf("%d messages", total)
	}
	_, _ = fmt.Fprintf(out, "ebb load: %s of %d bytes to %s\n", plan, lf.size, where)
	opts := loadgen.Options{Payload: payload(lf.size), ProgressEvery: lf.progressEvery}
	if !lf.quiet {
		opts.Progress = func(s loadgen.Stats) { _, _ = fmt.Fprintln(out, "ebb load: "+statsLine(s)) }
	}
	st, err := loadgen.Run(ctx, sink, sched, opts)
	_, _ = fmt.Fprintf(out, "ebb load: done: %s\n", statsLine(st))
	if ctx.Err() != nil && err == nil {
		_, _ = fmt.Fprintln(out, "ebb load: interrupted")
	}
	return err
}

func statsLine(s loadgen.Stats) string {
	return fmt.Sprintf("%s: sent %d, confirmed %d, failed %d; %.0f msg/s confirmed",
		s.Elapsed.Round(100*time.Millisecond), s.Sent, s.Confirmed, s.Failed, s.Rate())
}
