package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// config is the consumer's configuration. Every flag has an environment variable (CONSUMER_ + the flag's
// name in upper case, dashes as underscores) so a Deployment can set it; a flag given wins.
type config struct {
	Broker     string  // kafka or rabbitmq
	Brokers    string  // Kafka bootstrap servers, comma-separated
	URL        string  // RabbitMQ AMQP URL
	Topic      string  // Kafka topic
	Group      string  // Kafka consumer group
	Queue      string  // RabbitMQ queue
	Rate       float64 // messages per second per replica; 0: as fast as it can
	FailRatio  float64 // share of messages dead-lettered, 0 to 1
	DeadLetter string  // dead-letter topic or queue
	Results    string  // results topic or queue; empty: none
	ID         string  // this replica's name, the value of its results
	Prefetch   int     // RabbitMQ prefetch; Kafka: most records a poll
	LogEvery   time.Duration
}

func parseConfig(args []string, getenv func(string) string) (config, error) {
	host, _ := os.Hostname()
	fs := flag.NewFlagSet("consumer", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cfg config
	fs.StringVar(&cfg.Broker, "broker", "", "kafka or rabbitmq (required)")
	fs.StringVar(&cfg.Brokers, "brokers", "127.0.0.1:9092", "Kafka bootstrap servers, comma-separated")
	fs.StringVar(&cfg.URL, "url", "amqp://guest:guest@127.0.0.1:5672/", "RabbitMQ AMQP URL")
	fs.StringVar(&cfg.Topic, "topic", "", "Kafka topic to consume (required for kafka)")
	fs.StringVar(&cfg.Group, "group", "consumer", "Kafka consumer group")
	fs.StringVar(&cfg.Queue, "queue", "", "RabbitMQ queue to consume (required for rabbitmq)")
	fs.Float64Var(&cfg.Rate, "rate", 10, "messages per second per replica (processing time simulated); 0: no limit")
	fs.Float64Var(&cfg.FailRatio, "fail-ratio", 0, "share of messages (by key) that fail and go to the dead-letter topic or queue, 0 to 1")
	fs.StringVar(&cfg.DeadLetter, "dead-letter", "", "dead-letter topic (Kafka; default <topic>.dlq) or queue (RabbitMQ; default: reject, so the queue's dead-letter exchange takes it)")
	fs.StringVar(&cfg.Results, "results", "", "topic or queue that gets each processed message's key (value: --id); empty: none")
	fs.StringVar(&cfg.ID, "id", host, "this replica's name, the value of its results records")
	fs.IntVar(&cfg.Prefetch, "prefetch", 10, "messages fetched ahead of processing (RabbitMQ prefetch, Kafka records a poll)")
	fs.DurationVar(&cfg.LogEvery, "log-every", time.Second, "how often to log the processed count")

	set := map[string]bool{}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config{}, &helpError{usage(fs)}
		}
		return config{}, fmt.Errorf("%w\n%s", err, usage(fs))
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		env := envName(f.Name)
		if v := getenv(env); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
		}
	})
	switch cfg.Broker {
	case "kafka":
		if cfg.Topic == "" {
			errs = append(errs, errors.New("--topic is required with --broker kafka"))
		}
		if cfg.DeadLetter == "" {
			cfg.DeadLetter = cfg.Topic + ".dlq"
		}
	case "rabbitmq":
		if cfg.Queue == "" {
			errs = append(errs, errors.New("--queue is required with --broker rabbitmq"))
		}
	default:
		errs = append(errs, fmt.Errorf("--broker %q: want kafka or rabbitmq", cfg.Broker))
	}
	if cfg.Rate < 0 || cfg.Rate != cfg.Rate {
		errs = append(errs, fmt.Errorf("--rate %v: want 0 or more", cfg.Rate))
	}
	if !(cfg.FailRatio >= 0 && cfg.FailRatio <= 1) {
		errs = append(errs, fmt.Errorf("--fail-ratio %v: want 0 to 1", cfg.FailRatio))
	}
	if cfg.Prefetch < 1 {
		errs = append(errs, fmt.Errorf("--prefetch %d: want 1 or more", cfg.Prefetch))
	}
	if cfg.LogEvery <= 0 {
		errs = append(errs, fmt.Errorf("--log-every %v: want more than 0", cfg.LogEvery))
	}
	return cfg, errors.Join(errs...)
}

// helpError is the answer to --help: the usage, for stdout.
type helpError struct{ usage string }

func (e *helpError) Error() string { return e.usage }

func envName(flagName string) string {
	return "CONSUMER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func usage(fs *flag.FlagSet) string {
	var b strings.Builder
	b.WriteString("usage: consumer --broker kafka|rabbitmq [flags]\n")
	fs.VisitAll(func(f *flag.Flag) {
		def := ""
		if f.DefValue != "" {
			def = " (default " + strconv.Quote(f.DefValue) + ")"
		}
		fmt.Fprintf(&b, "  --%s, $%s\n    \t%s%s\n", f.Name, envName(f.Name), f.Usage, def)
	})
	return b.String()
}
