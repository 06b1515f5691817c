package kafka

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// p is a partition of topic "t" with its end offset and the group's committed offset (-1: none).
func p(partition int32, end, committed int64) partitionOffsets {
	return partitionOffsets{Topic: "t", Partition: partition, End: end, Committed: committed}
}

func TestComputeLag(t *testing.T) {
	tests := []struct {
		name  string
		parts []partitionOffsets
		opts  lagOptions
		want  lagResult
	}{
		{
			name:  "committed",
			parts: []partitionOffsets{p(0, 30, 10), p(1, 10, 10), p(2, 7, 0)},
			opts:  lagOptions{Threshold: 100},
			want:  lagResult{Lag: 20 + 0 + 7, LagWithPersistent: 27},
		},
		{
			name: "no-partitions",
			opts: lagOptions{Threshold: 10},
			want: lagResult{},
		},
		{
			name:  "uncommitted-latest-counts-one",
			parts: []partitionOffsets{p(0, 50, -1), p(1, 0, -1), p(2, 30, 10)},
			opts:  lagOptions{Threshold: 100},
			want:  lagResult{Lag: 1 + 1 + 20, LagWithPersistent: 22},
		},
		{
			name:  "uncommitted-earliest-counts-everything",
			parts: []partitionOffsets{p(0, 50, -1), p(1, 0, -1), p(2, 30, 10)},
			opts:  lagOptions{Threshold: 100, Earliest: true},
			want:  lagResult{Lag: 50 + 0 + 20, LagWithPersistent: 70},
		},
		{
			name:  "scale-to-zero-on-invalid-offset-latest",
			parts: []partitionOffsets{p(0, 50, -1), p(1, 0, -1), p(2, 30, 10)},
			opts:  lagOptions{Threshold: 100, ScaleToZeroOnInvalidOffset: true},
			want:  lagResult{Lag: 20, LagWithPersistent: 20},
		},
		{
			// KEDA applies scaleToZeroOnInvalidOffset to both policies.
			name:  "scale-to-zero-on-invalid-offset-earliest",
			parts: []partitionOffsets{p(0, 50, -1), p(1, 0, -1), p(2, 30, 10)},
			opts:  lagOptions{Threshold: 100, Earliest: true, ScaleToZeroOnInvalidOffset: true},
			want:  lagResult{Lag: 20, LagWithPersistent: 20},
		},
		{
			// A committed offset past the end (topic recreated, records deleted) is no lag, not negative lag.
			name:  "never-negative",
			parts: []partitionOffsets{p(0, 5, 9), p(1, 30, 10)},
			opts:  lagOptions{Threshold: 100},
			want:  lagResult{Lag: 20, LagWithPersistent: 20},
		},
		{
			name:  "capped-at-partitions-times-threshold",
			parts: []partitionOffsets{p(0, 100, 0), p(1, 50, 0)},
			opts:  lagOptions{Threshold: 10},
			want:  lagResult{Lag: 2 * 10, LagWithPersistent: 150, CappedAt: 2},
		},
		{
			// KEDA divides integers (25/10 = 2, not above 2 partitions), reports 25 and the HPA asks for
			// 3 replicas for 2 partitions; ebb caps at 20: 2 replicas.
			name:  "cap-uses-exact-division",
			parts: []partitionOffsets{p(0, 13, 0), p(1, 12, 0)},
			opts:  lagOptions{Threshold: 10},
			want:  lagResult{Lag: 20, LagWithPersistent: 25, CappedAt: 2},
		},
		{
			name:  "below-cap",
			parts: []partitionOffsets{p(0, 8, 0), p(1, 7, 0)},
			opts:  lagOptions{Threshold: 10},
			want:  lagResult{Lag: 15, LagWithPersistent: 15},
		},
		{
			name:  "cap-with-fractional-threshold",
			parts: []partitionOffsets{p(0, 10, 0)},
			opts:  lagOptions{Threshold: 2.5},
			want:  lagResult{Lag: 2.5, LagWithPersistent: 10, CappedAt: 1},
		},
		{
			name:  "allow-idle-consumers-lifts-cap",
			parts: []partitionOffsets{p(0, 100, 0), p(1, 50, 0)},
			opts:  lagOptions{Threshold: 10, AllowIdleConsumers: true},
			want:  lagResult{Lag: 150, LagWithPersistent: 150},
		},
		{
			name:  "limit-to-partitions-with-lag",
			parts: []partitionOffsets{p(0, 100, 0), p(1, 5, 5), p(2, 0, 0), p(3, 9, 9)},
			opts:  lagOptions{Threshold: 10, LimitToPartitionsWithLag: true},
			want:  lagResult{Lag: 1 * 10, LagWithPersistent: 100, CappedAt: 1},
		},
		{
			// An uncommitted partition (lag 1 under latest) is a partition with lag.
			name:  "limit-to-partitions-with-lag-counts-uncommitted",
			parts: []partitionOffsets{p(0, 100, 0), p(1, 5, -1), p(2, 0, 0), p(3, 9, 9)},
			opts:  lagOptions{Threshold: 10, LimitToPartitionsWithLag: true},
			want:  lagResult{Lag: 2 * 10, LagWithPersistent: 101, CappedAt: 2},
		},
		{
			name:  "limit-to-partitions-with-lag-below-cap",
			parts: []partitionOffsets{p(0, 8, 0), p(1, 7, 0), p(2, 0, 0), p(3, 0, 0)},
			opts:  lagOptions{Threshold: 10, LimitToPartitionsWithLag: true},
			want:  lagResult{Lag: 15, LagWithPersistent: 15},
		},
		{
			name:  "limit-to-partitions-with-lag-none",
			parts: []partitionOffsets{p(0, 8, 8), p(1, 7, 7)},
			opts:  lagOptions{Threshold: 10, LimitToPartitionsWithLag: true},
			want:  lagResult{},
		},
		{
			// 12 partitions, lag 35: 4 replicas would do, and 4 divides 12.
			name:  "even-distribution-factor",
			parts: evenParts(12, 35),
			opts:  lagOptions{Threshold: 10, EvenDistribution: true},
			want:  lagResult{Lag: 40, LagWithPersistent: 35},
		},
		{
			// 12 partitions, lag 41: 5 replicas would do; the next factor of 12 is 6.
			name:  "even-distribution-next-factor",
			parts: evenParts(12, 41),
			opts:  lagOptions{Threshold: 10, EvenDistribution: true},
			want:  lagResult{Lag: 60, LagWithPersistent: 41},
		},
		{
			name:  "even-distribution-prime",
			parts: evenParts(7, 25),
			opts:  lagOptions{Threshold: 10, EvenDistribution: true},
			want:  lagResult{Lag: 70, LagWithPersistent: 25},
		},
		{
			name:  "even-distribution-capped",
			parts: evenParts(6, 500),
			opts:  lagOptions{Threshold: 10, EvenDistribution: true},
			want:  lagResult{Lag: 60, LagWithPersistent: 500, CappedAt: 6},
		},
		{
			// KEDA reports one threshold (one replica) here; ebb reports no lag.
			name:  "even-distribution-no-lag",
			parts: evenParts(6, 0),
			opts:  lagOptions{Threshold: 10, EvenDistribution: true},
			want:  lagResult{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := computeLag(tc.parts, tc.opts, nil)
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("computeLag (-got +want):\n%s", diff)
			}
		})
	}
}

// evenParts spreads lag over n partitions of topic "t", all committed.
func evenParts(n int, lag int64) []partitionOffsets {
	parts := make([]partitionOffsets, n)
	for i := range parts {
		share := lag / int64(n)
		if int64(i) < lag%int64(n) {
			share++
		}
		parts[i] = p(int32(i), 100+share, 100)
	}
	return parts
}

// excludePersistentLag over successive readings: a partition whose committed offset did not move since the
// previous reading counts 0 toward Lag but its full lag toward LagWithPersistent.
func TestComputeLagExcludePersistentLag(t *testing.T) {
	type reading struct {
		parts []partitionOffsets
		want  lagResult
	}
	tests := []struct {
		name     string
		opts     lagOptions
		readings []reading
	}{
		{
			name: "stuck-and-moving",
			opts: lagOptions{Threshold: 1000, ExcludePersistentLag: true},
			readings: []reading{
				// First reading: nothing to compare with, all lag counts.
				{parts: []partitionOffsets{p(0, 100, 10), p(1, 50, 20)}, want: lagResult{Lag: 90 + 30, LagWithPersistent: 120}},
				// Partition 0 stuck at 10, partition 1 moved to 30.
				{parts: []partitionOffsets{p(0, 110, 10), p(1, 50, 30)}, want: lagResult{Lag: 0 + 20, LagWithPersistent: 100 + 20}},
				// Both stuck.
				{parts: []partitionOffsets{p(0, 110, 10), p(1, 50, 30)}, want: lagResult{Lag: 0, LagWithPersistent: 120}},
				// Partition 0 moved to 100, partition 1 still stuck.
				{parts: []partitionOffsets{p(0, 110, 100), p(1, 60, 30)}, want: lagResult{Lag: 10, LagWithPersistent: 10 + 30}},
			},
		},
		{
			name: "off-counts-stuck-partitions",
			opts: lagOptions{Threshold: 1000},
			readings: []reading{
				{parts: []partitionOffsets{p(0, 100, 10)}, want: lagResult{Lag: 90, LagWithPersistent: 90}},
				{parts: []partitionOffsets{p(0, 100, 10)}, want: lagResult{Lag: 90, LagWithPersistent: 90}},
			},
		},
		{
			// Nothing committed: no offset to be stuck at, so the policy's lag counts every time.
			name: "uncommitted-not-persistent",
			opts: lagOptions{Threshold: 1000, ExcludePersistentLag: true},
			readings: []reading{
				{parts: []partitionOffsets{p(0, 100, -1)}, want: lagResult{Lag: 1, LagWithPersistent: 1}},
				{parts: []partitionOffsets{p(0, 100, -1)}, want: lagResult{Lag: 1, LagWithPersistent: 1}},
			},
		},
		{
			// A partition that leaves the watched set (partitionLimitation changed, topic no longer
			// committed) is forgotten: when it comes back, its first reading counts.
			name: "forgotten-partition-counts-again",
			opts: lagOptions{Threshold: 1000, ExcludePersistentLag: true},
			readings: []reading{
				{parts: []partitionOffsets{p(0, 100, 10), p(1, 50, 20)}, want: lagResult{Lag: 120, LagWithPersistent: 120}},
				{parts: []partitionOffsets{p(1, 50, 25)}, want: lagResult{Lag: 25, LagWithPersistent: 25}},
				{parts: []partitionOffsets{p(0, 100, 10), p(1, 50, 25)}, want: lagResult{Lag: 90, LagWithPersistent: 115}},
			},
		},
		{
			// The cap applies to Lag only; LagWithPersistent is the whole backlog.
			name: "cap-after-exclusion",
			opts: lagOptions{Threshold: 10, ExcludePersistentLag: true},
			readings: []reading{
				{parts: []partitionOffsets{p(0, 100, 10), p(1, 50, 20)}, want: lagResult{Lag: 20, LagWithPersistent: 120, CappedAt: 2}},
				{parts: []partitionOffsets{p(0, 100, 10), p(1, 50, 45)}, want: lagResult{Lag: 5, LagWithPersistent: 95}},
			},
		},
		{
			// Stuck partitions are not partitions with lag.
			name: "limit-to-partitions-with-lag-after-exclusion",
			opts: lagOptions{Threshold: 10, ExcludePersistentLag: true, LimitToPartitionsWithLag: true},
			readings: []reading{
				{parts: []partitionOffsets{p(0, 100, 10), p(1, 50, 20)}, want: lagResult{Lag: 20, LagWithPersistent: 120, CappedAt: 2}},
				{parts: []partitionOffsets{p(0, 100, 10), p(1, 50, 21)}, want: lagResult{Lag: 10, LagWithPersistent: 90 + 29, CappedAt: 1}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var previous map[partitionKey]int64
			if tc.opts.ExcludePersistentLag {
				previous = map[partitionKey]int64{}
			}
			for i, r := range tc.readings {
				got := computeLag(r.parts, tc.opts, previous)
				if diff := cmp.Diff(got, r.want); diff != "" {
					t.Errorf("reading %d: computeLag (-got +want):\n%s", i+1, diff)
				}
			}
		})
	}
}

func TestNextFactor(t *testing.T) {
	tests := []struct {
		name    string
		n, want int
		factor  int
	}{
		{name: "zero-wanted", n: 6, want: 0, factor: 1},
		{name: "one", n: 6, want: 1, factor: 1},
		{name: "exact-factor", n: 12, want: 4, factor: 4},
		{name: "between-factors", n: 12, want: 5, factor: 6},
		{name: "above-half", n: 6, want: 4, factor: 6},
		{name: "prime", n: 7, want: 3, factor: 7},
		{name: "all", n: 6, want: 6, factor: 6},
		{name: "more-than-partitions", n: 6, want: 9, factor: 6},
		{name: "single-partition", n: 1, want: 1, factor: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := nextFactor(tc.n, tc.want); got != tc.factor {
				t.Errorf("nextFactor(%d, %d) = %d, want %d", tc.n, tc.want, got, tc.factor)
			}
		})
	}
}
