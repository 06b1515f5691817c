package kafka

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/ebbscale/ebb/scalers"
)

// Type is the trigger type.
const Type = "kafka"

// Pool hands out the clients of every kafka trigger, one per cluster and credentials. It is the trigger
// type's factory: register Pool.New in the registry. The zero value is not usable; call NewPool.
type Pool struct {
	opts []kgo.Opt

	mu       sync.Mutex
	clusters map[string]*cluster
}

// NewPool returns a Pool whose clients also get opts (tests add hooks; nothing is needed in production).
func NewPool(opts ...kgo.Opt) *Pool {
	return &Pool{opts: opts, clusters: map[string]*cluster{}}
}

// Clusters is how many clients the pool holds.
func (p *Pool) Clusters() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.clusters)
}

// Close closes every client.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, c := range p.clusters {
		c.cl.Close()
		delete(p.clusters, k)
	}
}

// Scaler is one kafka trigger.
type Scaler struct {
	md       metadata
	pool     *Pool
	cluster  *cluster
	version  uint64
	interval time.Duration

	// deadLetter: this is the dead-letter reader of md.Topic (NewDeadLetter), not a trigger.
	deadLetter bool

	mu       sync.Mutex
	previous map[partitionKey]int64 // committed offsets at the previous sample, for excludePersistentLag
	// committed holds the committed offsets at the previous sample, for Progress (nil before the first), in
	// the order partitions lists them, and committedAt when its reading started. A slice, reused from tick to
	// tick: a map per trigger tripled the heap of 1,000 triggers.
	committed   []committedOffset
	committedAt time.Time
	// ended and endedAt: the sum of a dead-letter topic's end offsets at the previous sample, and when
	// its reading started (zero before the first).
	ended   int64
	endedAt time.Time
	lastSeq uint64 // the reading the last sample was computed from
	last    scalers.Sample
}

var (
	_ scalers.Scaler         = (*Scaler)(nil)
	_ scalers.TriggerType    = (*Pool)(nil)
	_ scalers.DeadLetterType = (*Pool)(nil)
)

// New is the factory of the kafka trigger type.
func (p *Pool) New(cfg scalers.Config) (scalers.Scaler, error) {
	s := &Scaler{pool: p, interval: cfg.PollingInterval}
	if err := scalers.Parse(cfg.Metadata, cfg.Auth, &s.md); err != nil {
		return nil, err
	}
	if s.md.ExcludePersistentLag {
		s.previous = map[partitionKey]int64{}
	}
	c, err := p.cluster(s.md.Connection)
	if err != nil {
		return nil, err
	}
	s.cluster = c
	s.version = c.Add(s, watch{group: s.md.ConsumerGroup, topic: s.md.Topic})
	return s, nil
}

func (p *Pool) cluster(md Connection) (*cluster, error) {
	key := clusterKey(md)
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clusters[key]; ok {
		return c, nil
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(md.BootstrapServers...),
		kgo.ClientID("ebb"),
		kgo.MetadataMinAge(metadataRefresh),
		kgo.DialTimeout(5 * time.Second),
		kgo.RequestRetries(2),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
	}
	if md.Enabled() {
		tc, err := md.TLS.Config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	var sasl *saslHook
	if md.SASL != "none" {
		sasl = &saslHook{}
		opts = append(opts, kgo.WithHooks(sasl))
	}
	mech, err := SASLMechanism(md.SASL, md.Username, md.Password)
	if err != nil {
		return nil, err
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	cl, err := kgo.NewClient(append(opts, p.opts...)...)
	if err != nil {
		return nil, fmt.Errorf("bootstrapServers: %w", err)
	}
	c := newCluster(key, cl, sasl)
	p.clusters[key] = c
	return c, nil
}

// SASLMechanism is the franz-go mechanism for the trigger parameter sasl (none, plaintext, scram_sha256,
// scram_sha512; "" is none) with these credentials: nil for none, an error naming the choices otherwise.
func SASLMechanism(name, user, password string) (sasl.Mechanism, error) {
	switch name {
	case "", "none":
		return nil, nil
	case "plaintext":
		return plain.Auth{User: user, Pass: password}.AsMechanism(), nil
	case "scram_sha256":
		return scram.Auth{User: user, Pass: password}.AsSha256Mechanism(), nil
	case "scram_sha512":
		return scram.Auth{User: user, Pass: password}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("SASL mechanism %q: want none, plaintext, scram_sha256 or scram_sha512", name)
}

// release drops s from its cluster and closes the client when s was its last trigger.
func (p *Pool) release(s *Scaler) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.cluster.Remove(s) == 0 {
		s.cluster.cl.Close()
		delete(p.clusters, s.cluster.key)
	}
}

// clusterKey identifies a cluster and credentials; secrets enter it only hashed.
func clusterKey(md Connection) string {
	servers := slices.Clone(md.BootstrapServers)
	slices.Sort(servers)
	h := sha256.New()
	for _, s := range []string{md.Password, md.CA, md.Cert, md.Key} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("%s|%s|%s|%s|%t|%s", strings.Join(servers, ","), md.SASL, md.Username, md.Mode, md.UnsafeSSL, hex.EncodeToString(h.Sum(nil)))
}

// Metrics is one metric: the lag, with lagThreshold as its per-replica target.
func (s *Scaler) Metrics() []scalers.MetricSpec {
	return []scalers.MetricSpec{{Target: s.md.LagThreshold, Activation: s.md.ActivationLagThreshold}}
}

// freshness is how old a shared reading may be for this trigger (scalers.Freshness).
func (s *Scaler) freshness() time.Duration { return scalers.Freshness(s.interval) }

// Sample reads the group's lag from a reading shared with every trigger on the cluster.
func (s *Scaler) Sample(ctx context.Context) (scalers.Sample, error) {
	r, err := s.cluster.read(ctx, time.Now().Add(-s.freshness()), s.version)
	if err != nil {
		return scalers.Sample{}, fmt.Errorf("bootstrapServers %s: %w", strings.Join(s.md.BootstrapServers, ","), classify(err))
	}
	if r.Err != nil {
		return scalers.Sample{}, fmt.Errorf("bootstrapServers %s: %w", strings.Join(s.md.BootstrapServers, ","), r.Err)
	}
	if s.deadLetter {
		return s.sampleDeadLetter(r)
	}
	parts, err := s.partitions(r.Val)
	if err != nil {
		return scalers.Sample{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Seq == s.lastSeq {
		// Sampled again within the freshness window: the same reading gives the same answer. Computing
		// it again would see every committed offset unmoved and take all lag for persistent lag.
		return s.copyLast(), nil
	}
	res := computeLag(parts, lagOptions{
		Threshold:                  s.md.LagThreshold,
		Earliest:                   s.md.OffsetResetPolicy == "earliest",
		AllowIdleConsumers:         s.md.AllowIdleConsumers,
		LimitToPartitionsWithLag:   s.md.LimitToPartitionsWithLag,
		ExcludePersistentLag:       s.md.ExcludePersistentLag,
		ScaleToZeroOnInvalidOffset: s.md.ScaleToZeroOnInvalidOffset,
		EvenDistribution:           s.md.EnsureEvenDistributionOfPartitions,
	}, s.previous)
	s.lastSeq = r.Seq
	s.last = scalers.Sample{Values: []float64{res.Lag}, ActivationValues: []float64{res.LagWithPersistent}}
	if res.CappedAt > 0 {
		// Said in status (and by ebb explain): the HPA sees less lag than there is, on purpose.
		s.last.Message = fmt.Sprintf("lag capped at %d partitions x lagThreshold %s = %s (the HPA never asks for more replicas than partitions; allowIdleConsumers lifts the cap)",
			res.CappedAt, strconv.FormatFloat(s.md.LagThreshold, 'f', -1, 64), strconv.FormatFloat(res.Lag, 'f', -1, 64))
	}
	out := s.copyLast()
	out.Progress = s.progress(parts, r.Started)
	return out, nil
}

// copyLast is the last sample again, without its Progress: a second look at the same reading sees no
// progress, and must not count as a poll in which offsets did not move.
func (s *Scaler) copyLast() scalers.Sample {
	return scalers.Sample{Values: slices.Clone(s.last.Values), ActivationValues: slices.Clone(s.last.ActivationValues), Message: s.last.Message}
}

// committedOffset is one partition's committed offset (-1: none) at the previous sample.
type committedOffset struct {
	topic     string
	partition int32
	offset    int64
}

// progress compares the committed offsets of parts, read at at, with those of the previous sample
// (s.committed, which it then replaces). s.mu is held.
func (s *Scaler) progress(parts []partitionOffsets, at time.Time) *scalers.Progress {
	p := &scalers.Progress{Offsets: true, Baseline: s.committed == nil}
	if !p.Baseline {
		p.Elapsed = at.Sub(s.committedAt)
	}
	// partitions lists the same partitions in the same order from one reading to the next unless the
	// topic set or a partition count changed; then the previous offsets are looked up by key.
	same := len(s.committed) == len(parts)
	for i := 0; same && i < len(parts); i++ {
		same = s.committed[i].topic == parts[i].Topic && s.committed[i].partition == parts[i].Partition
	}
	var byKey map[partitionKey]int64
	if !same && s.committed != nil {
		byKey = make(map[partitionKey]int64, len(s.committed))
		for _, c := range s.committed {
			byKey[partitionKey{c.topic, c.partition}] = c.offset
		}
	}
	for i, po := range parts {
		before, ok := int64(-1), false
		if same {
			before, ok = s.committed[i].offset, true
		} else if byKey != nil {
			before, ok = byKey[partitionKey{po.Topic, po.Partition}]
		}
		switch {
		case !ok || po.Committed < 0 || before < 0:
		case po.Committed > before:
			p.Advanced += po.Committed - before
		case po.Committed < before:
			p.RewoundPartitions++
			if len(p.Rewound) < scalers.MaxRewound {
				p.Rewound = append(p.Rewound, fmt.Sprintf("%s/%d by %d", po.Topic, po.Partition, before-po.Committed))
			}
		}
	}
	if !same {
		s.committed = make([]committedOffset, len(parts))
	}
	for i, po := range parts {
		s.committed[i] = committedOffset{po.Topic, po.Partition, po.Committed}
	}
	s.committedAt = at
	return p
}

// partitions lists the offsets of the partitions this trigger watches.
func (s *Scaler) partitions(r *reading) ([]partitionOffsets, error) {
	g := s.md.ConsumerGroup
	if err := r.groupErr[g]; err != nil {
		return nil, fmt.Errorf("consumer group %q: %w", g, err)
	}
	committed := r.committed[g]
	topics := []string{s.md.Topic}
	if s.md.Topic == "" {
		topics = topics[:0]
		for t := range committed {
			topics = append(topics, t)
		}
		if len(topics) == 0 {
			return nil, fmt.Errorf("consumer group %q has committed no offsets: %w; set topic to read its lag before its first commit", g, ErrUnknownGroup)
		}
		slices.Sort(topics)
	}
	n := 0
	for _, t := range topics {
		n += len(r.ends[t])
	}
	out := make([]partitionOffsets, 0, n)
	for _, t := range topics {
		if err := r.topicErr[t]; err != nil {
			return nil, err
		}
		ends, ok := r.ends[t]
		if !ok {
			return nil, fmt.Errorf("topic %q: no end offsets in this reading", t)
		}
		selected := 0
		for p, end := range ends {
			if !s.md.PartitionLimitation.contains(int32(p)) {
				continue
			}
			selected++
			if end < 0 {
				return nil, fmt.Errorf("topic %q partition %d: end offset unknown", t, p)
			}
			c, ok := committed[t][int32(p)]
			if !ok {
				c = -1
			}
			out = append(out, partitionOffsets{Topic: t, Partition: int32(p), End: end, Committed: c})
		}
		if selected == 0 && len(ends) > 0 {
			return nil, fmt.Errorf("partitionLimitation selects none of the %d partitions of topic %q (numbered 0 to %d)", len(ends), t, len(ends)-1)
		}
	}
	return out, nil
}

// Close releases the trigger's share of its cluster's client.
func (s *Scaler) Close() error {
	s.pool.release(s)
	return nil
}
