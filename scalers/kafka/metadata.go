package kafka

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/ebbscale/ebb/scalers"
)

// Connection is how a trigger reaches its cluster: the keys a trigger and a dead-letter topic share. The
// parser reads it embedded in their metadata; from metadata or (wins) the TriggerAuthentication.
type Connection struct {
	BootstrapServers []string `ebb:"bootstrapServers"`
	SASL             string   `ebb:"sasl,default=none,enum=none|plaintext|scram_sha256|scram_sha512"`
	scalers.Credentials
	scalers.TLS
}

// Validate checks the broker addresses, and what sasl and tls say about the other keys; each message
// names its keys.
func (c *Connection) Validate() error {
	var errs []*scalers.FieldError
	for _, s := range c.BootstrapServers {
		if !isHostPort(s) {
			shown := s
			if i := strings.LastIndex(s, "@"); i >= 0 {
				shown = "..." + s[i:] // what is before an @ may be a password
			}
			errs = append(errs, &scalers.FieldError{Key: "bootstrapServers", Msg: fmt.Sprintf("%q is not host:port, such as kafka-0.kafka:9092 (no scheme, and credentials go in a TriggerAuthentication with sasl)", shown)})
		}
	}
	if c.SASL != "none" && (c.Username == "" || c.Password == "") {
		errs = append(errs, &scalers.FieldError{Key: "sasl", Msg: fmt.Sprintf("sasl %s needs username and password (password from a TriggerAuthentication)", c.SASL)})
	}
	if set := c.Credentials.Set(); c.SASL == "none" && len(set) > 0 {
		errs = append(errs, &scalers.FieldError{Key: "sasl", Msg: scalers.KeysAre(set) + " set but sasl is none; set sasl to plaintext, scram_sha256 or scram_sha512"})
	}
	if set := c.TLS.Set(); !c.Enabled() && len(set) > 0 {
		errs = append(errs, &scalers.FieldError{Key: "tls", Msg: scalers.KeysAre(set) + " set but tls is disable; set tls: enable"})
	}
	return scalers.JoinFieldErrors(errs)
}

// isHostPort reports whether s is a broker address: host:port, [ipv6]:port, or a host alone (the client
// then uses port 9092), with a port from 1 to 65535 and no scheme, path or user info.
func isHostPort(s string) bool {
	if strings.ContainsAny(s, "@/ ") {
		return false
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return !strings.Contains(s, ":") && s != ""
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535 && host != ""
}

// metadata is the trigger's configuration, parsed by scalers.Parse. Names and defaults are KEDA's.
type metadata struct {
	Connection
	ConsumerGroup string `ebb:"consumerGroup"`
	// Topic, when empty, means every topic the group has committed offsets for.
	Topic                              string       `ebb:"topic,optional"`
	PartitionLimitation                partitionSet `ebb:"partitionLimitation,optional"`
	LagThreshold                       float64      `ebb:"lagThreshold,default=10,min=0.001"`
	ActivationLagThreshold             float64      `ebb:"activationLagThreshold,default=0,min=0"`
	OffsetResetPolicy                  string       `ebb:"offsetResetPolicy,default=latest,enum=latest|earliest"`
	AllowIdleConsumers                 bool         `ebb:"allowIdleConsumers,default=false"`
	LimitToPartitionsWithLag           bool         `ebb:"limitToPartitionsWithLag,default=false"`
	ExcludePersistentLag               bool         `ebb:"excludePersistentLag,default=false"`
	ScaleToZeroOnInvalidOffset         bool         `ebb:"scaleToZeroOnInvalidOffset,default=false"`
	EnsureEvenDistributionOfPartitions bool         `ebb:"ensureEvenDistributionOfPartitions,default=false"`
}

// Validate checks the rules that span the scaling keys; each message names both keys.
func (m *metadata) Validate() error {
	var errs []*scalers.FieldError
	if len(m.PartitionLimitation) > 0 && m.Topic == "" {
		errs = append(errs, &scalers.FieldError{Key: "topic", Msg: "partitionLimitation needs topic: partitions are numbered per topic"})
	}
	if m.AllowIdleConsumers && m.LimitToPartitionsWithLag {
		errs = append(errs, &scalers.FieldError{Key: "allowIdleConsumers", Msg: "allowIdleConsumers and limitToPartitionsWithLag cannot both be true: one lifts the cap on replicas per partition, the other tightens it"})
	}
	if m.EnsureEvenDistributionOfPartitions && m.AllowIdleConsumers {
		errs = append(errs, &scalers.FieldError{Key: "ensureEvenDistributionOfPartitions", Msg: "ensureEvenDistributionOfPartitions and allowIdleConsumers cannot both be true: even distribution sizes to a factor of the partition count"})
	}
	if m.EnsureEvenDistributionOfPartitions && m.LimitToPartitionsWithLag {
		errs = append(errs, &scalers.FieldError{Key: "ensureEvenDistributionOfPartitions", Msg: "ensureEvenDistributionOfPartitions and limitToPartitionsWithLag cannot both be true: the first sizes to a factor of all partitions, the second to the partitions with lag"})
	}
	return scalers.JoinFieldErrors(errs)
}

// deadLetterMetadata is a dead-letter reader's configuration: the topic and how to reach its cluster.
type deadLetterMetadata struct {
	Connection
	// Topic is required; the reader checks it itself, so its message survives other problems.
	Topic string `ebb:"topic,optional"`
}

// maxListedPartitions bounds the partitions a partitionLimitation lists, repeats counted: twice the
// largest range it takes.
const maxListedPartitions = 1 << 17

// partitionSet is a partitionLimitation: "1,2,10-12" is partitions 1, 2, 10, 11 and 12.
type partitionSet []int32

// UnmarshalText parses a comma-separated list of partitions and inclusive ranges.
func (p *partitionSet) UnmarshalText(b []byte) error {
	var out []int32
	for item := range strings.SplitSeq(string(b), ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(item, "-")
		a, err := strconv.ParseInt(strings.TrimSpace(lo), 10, 32)
		if err != nil || a < 0 {
			return fmt.Errorf("%q is not a partition number or a range such as 10-12", item)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseInt(strings.TrimSpace(hi), 10, 32); err != nil || b < a {
				return fmt.Errorf("%q is not a range from a lower to a higher partition, such as 10-12", item)
			}
			if b-a > 1<<16 {
				return fmt.Errorf("range %q is larger than any topic", item)
			}
		}
		// Each range is bounded, but a list of them is not: bound what the list adds up to (repeats
		// counted), so a few kilobytes of metadata cannot cost gigabytes.
		if len(out)+int(b-a+1) > maxListedPartitions {
			return fmt.Errorf("lists more than %d partitions (repeats counted), more than any topic has", maxListedPartitions)
		}
		for i := a; i <= b; i++ {
			out = append(out, int32(i))
		}
	}
	slices.Sort(out)
	*p = slices.Compact(out)
	return nil
}

func (p partitionSet) contains(partition int32) bool {
	if len(p) == 0 {
		return true
	}
	_, ok := slices.BinarySearch(p, partition)
	return ok
}
