package kafka

import "math"

// partitionOffsets is what the lag of one partition is computed from.
type partitionOffsets struct {
	Topic     string
	Partition int32
	// End is the partition's high watermark.
	End int64
	// Committed is the group's committed offset, or -1 when the group has committed none.
	Committed int64
}

// lagResult is a trigger's reading.
type lagResult struct {
	// Lag is the value the HPA sees: the total lag after persistent lag is excluded and the caps applied.
	Lag float64
	// LagWithPersistent is the total lag including persistent lag (what activity is judged on, as in KEDA).
	LagWithPersistent float64
	// CappedAt is the partition count Lag was capped at (partitions x threshold), 0 when it was not.
	CappedAt int
}

// lagOptions are the metadata that shape the computation.
type lagOptions struct {
	Threshold                  float64
	Earliest                   bool
	AllowIdleConsumers         bool
	LimitToPartitionsWithLag   bool
	ExcludePersistentLag       bool
	ScaleToZeroOnInvalidOffset bool
	EvenDistribution           bool
}

// partitionKey names a partition in the persistent-lag memory.
type partitionKey struct {
	topic     string
	partition int32
}

// computeLag is KEDA's lag, partition by partition:
//   - committed: end - committed (never below zero);
//   - nothing committed, offsetResetPolicy latest: 1 (the consumer would start at the end, but something
//     must wake it to commit a first offset), or 0 with scaleToZeroOnInvalidOffset;
//   - nothing committed, offsetResetPolicy earliest: end (everything would be read), or 0 with
//     scaleToZeroOnInvalidOffset (as KEDA does since it applied that option to both policies);
//   - excludePersistentLag: a partition whose committed offset has not moved since the previous reading
//     counts 0 toward Lag (but still toward LagWithPersistent). previous is updated in place.
//
// Then, unless allowIdleConsumers, Lag is capped so the HPA never asks for more replicas than partitions
// (with limitToPartitionsWithLag: partitions that have lag); with ensureEvenDistributionOfPartitions it is
// rounded up so the replica count divides the partition count.
func computeLag(parts []partitionOffsets, o lagOptions, previous map[partitionKey]int64) lagResult {
	var total, withPersistent float64
	withLag := 0
	// seen serves only to forget, in previous, partitions no longer watched; without excludePersistentLag
	// (previous nil) it is not built, which saves a map of every partition on every sample.
	var seen map[partitionKey]struct{}
	if previous != nil {
		seen = make(map[partitionKey]struct{}, len(parts))
	}
	for _, p := range parts {
		k := partitionKey{p.Topic, p.Partition}
		if seen != nil {
			seen[k] = struct{}{}
		}
		lag, lagPersistent := partitionLag(p, o, previous, k)
		total += float64(lag)
		withPersistent += float64(lagPersistent)
		if lag > 0 {
			withLag++
		}
	}
	for k := range previous {
		if _, ok := seen[k]; !ok {
			delete(previous, k) // a partition no longer watched
		}
	}
	n := len(parts)
	capped := 0
	if !o.AllowIdleConsumers || o.LimitToPartitionsWithLag {
		upper := n
		if o.LimitToPartitionsWithLag {
			upper = withLag
		}
		if total/o.Threshold > float64(upper) {
			total = float64(upper) * o.Threshold
			capped = upper
		}
	}
	if o.EvenDistribution && n > 0 && total > 0 {
		want := int(math.Ceil(total / o.Threshold))
		total = float64(nextFactor(n, want)) * o.Threshold
	}
	return lagResult{Lag: total, LagWithPersistent: withPersistent, CappedAt: capped}
}

func partitionLag(p partitionOffsets, o lagOptions, previous map[partitionKey]int64, k partitionKey) (lag, withPersistent int64) {
	if p.Committed < 0 {
		switch {
		case o.ScaleToZeroOnInvalidOffset:
			return 0, 0
		case o.Earliest:
			return max(p.End, 0), max(p.End, 0)
		default:
			return 1, 1
		}
	}
	lag = max(p.End-p.Committed, 0)
	if o.ExcludePersistentLag && previous != nil {
		prev, ok := previous[k]
		previous[k] = p.Committed
		if ok && prev == p.Committed {
			return 0, lag
		}
	}
	return lag, lag
}

// nextFactor is the smallest factor of n that is at least want (n itself when want exceeds every other).
func nextFactor(n, want int) int {
	if want >= n {
		return n
	}
	for f := max(want, 1); f < n; f++ {
		if n%f == 0 {
			return f
		}
	}
	return n
}
