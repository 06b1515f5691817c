package devkafka

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Config configures a development cluster. The zero value is one broker on a random port with automatic
// topic creation.
type Config struct {
	// Brokers is the number of brokers. Default 1.
	Brokers int
	// Port is the first broker's port; the others take the ports after it. Default 0: random ports.
	Port int
	// Host is the address the brokers listen on and advertise. Default 127.0.0.1. A real node's pods reach
	// a broker on the node address (localcluster.NodeIP), and so does this machine.
	Host string
	// Topics are created at start, as name -> partitions.
	Topics map[string]int32
	// DefaultPartitions is the partition count of automatically created topics. Default 10.
	DefaultPartitions int
	// NoAutoCreateTopics makes producing to an unknown topic fail instead of creating it.
	NoAutoCreateTopics bool
	// SASL, when set, requires SASL authentication with this user.
	SASL *SASLUser
}

// SASLUser is a SASL user of a development cluster.
type SASLUser struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string
	User      string
	Password  string
}

// Start starts a cluster. Close it with Close.
func Start(cfg Config) (*kfake.Cluster, error) {
	brokers := cfg.Brokers
	if brokers <= 0 {
		brokers = 1
	}
	opts := []kfake.Opt{kfake.NumBrokers(brokers)}
	if cfg.Port != 0 {
		ports := make([]int, brokers)
		for i := range ports {
			ports[i] = cfg.Port + i
		}
		opts = append(opts, kfake.Ports(ports...))
	}
	if cfg.Host != "" && cfg.Host != "127.0.0.1" {
		host := cfg.Host
		opts = append(opts, kfake.ListenFn(func(network, address string) (net.Listener, error) {
			_, port, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			return net.Listen(network, net.JoinHostPort(host, port))
		}))
	}
	if !cfg.NoAutoCreateTopics {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if cfg.DefaultPartitions > 0 {
		opts = append(opts, kfake.DefaultNumPartitions(cfg.DefaultPartitions))
	}
	for name, partitions := range cfg.Topics {
		opts = append(opts, kfake.SeedTopics(partitions, name))
	}
	if cfg.SASL != nil {
		switch cfg.SASL.Mechanism {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			return nil, fmt.Errorf("devkafka: SASL mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", cfg.SASL.Mechanism)
		}
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser(cfg.SASL.Mechanism, cfg.SASL.User, cfg.SASL.Password))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("devkafka: %w", err)
	}
	return c, nil
}

// ParseTopic parses "name" or "name:partitions".
func ParseTopic(s string) (string, int32, error) {
	name, parts, found := strings.Cut(s, ":")
	if name == "" {
		return "", 0, fmt.Errorf("topic %q: empty name", s)
	}
	if !found {
		return name, -1, nil
	}
	n, err := strconv.ParseInt(parts, 10, 32)
	if err != nil || n < 1 {
		return "", 0, fmt.Errorf("topic %q: partitions must be a positive integer", s)
	}
	return name, int32(n), nil
}

// ParseListen parses the --listen address of `ebb dev kafka`; only 127.0.0.1 and localhost hosts work,
// because kfake binds the loopback address.
func ParseListen(s string) (int, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return 0, fmt.Errorf("listen address %q: %w", s, err)
	}
	if host != "" && host != "127.0.0.1" && host != "localhost" {
		return 0, fmt.Errorf("listen address %q: the development broker listens on 127.0.0.1 only", s)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return 0, fmt.Errorf("listen address %q: bad port", s)
	}
	return p, nil
}
