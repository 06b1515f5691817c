package kafka

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// metadata is the trigger's configuration, parsed by scalers.Parse. Names and defaults are KEDA's.
type metadata struct {
	BootstrapServers []string `ebb:"bootstrapServers"`
	ConsumerGroup    string   `ebb:"consumerGroup"`
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

	// Security: from metadata or (wins) the TriggerAuthentication.
	SASL      string `ebb:"sasl,default=none,enum=none|plaintext|scram_sha256|scram_sha512"`
	Username  string `ebb:"username,optional"`
	Password  string `ebb:"password,optional,secret"`
	TLS       string `ebb:"tls,default=disable,enum=enable|disable"`
	CA        string `ebb:"ca,optional,secret"`
	Cert      string `ebb:"cert,optional,secret"`
	Key       string `ebb:"key,optional,secret"`
	UnsafeSSL bool   `ebb:"unsafeSsl,default=false"`
}

// Validate checks the rules that span keys; each message names both keys.
func (m *metadata) Validate() error {
	var errs []string
	if len(m.PartitionLimitation) > 0 && m.Topic == "" {
		errs = append(errs, "partitionLimitation needs topic: partitions are numbered per topic")
	}
	if m.AllowIdleConsumers && m.LimitToPartitionsWithLag {
		errs = append(errs, "allowIdleConsumers and limitToPartitionsWithLag cannot both be true: one lifts the cap on replicas per partition, the other tightens it")
	}
	if m.EnsureEvenDistributionOfPartitions && m.AllowIdleConsumers {
		errs = append(errs, "ensureEvenDistributionOfPartitions and allowIdleConsumers cannot both be true: even distribution sizes to a factor of the partition count")
	}
	if m.EnsureEvenDistributionOfPartitions && m.LimitToPartitionsWithLag {
		errs = append(errs, "ensureEvenDistributionOfPartitions and limitToPartitionsWithLag cannot both be true: the first sizes to a factor of all partitions, the second to the partitions with lag")
	}
	if m.SASL != "none" && (m.Username == "" || m.Password == "") {
		errs = append(errs, fmt.Sprintf("sasl %s needs username and password (password from a TriggerAuthentication)", m.SASL))
	}
	if set := setKeys(map[string]bool{"username": m.Username != "", "password": m.Password != ""}); m.SASL == "none" && set != "" {
		errs = append(errs, set+" set but sasl is none; set sasl to plaintext, scram_sha256 or scram_sha512")
	}
	if (m.Cert == "") != (m.Key == "") {
		errs = append(errs, "cert and key go together: set both for TLS client authentication, or neither")
	}
	if set := setKeys(map[string]bool{"ca": m.CA != "", "cert": m.Cert != "", "key": m.Key != "", "unsafeSsl": m.UnsafeSSL}); m.TLS == "disable" && set != "" {
		errs = append(errs, set+" set but tls is disable; set tls: enable")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// setKeys lists the keys that are set, as "a is" or "a, b are", or "" when none is.
func setKeys(set map[string]bool) string {
	var keys []string
	for k, ok := range set {
		if ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	switch len(keys) {
	case 0:
		return ""
	case 1:
		return keys[0] + " is"
	}
	return strings.Join(keys, ", ") + " are"
}

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
