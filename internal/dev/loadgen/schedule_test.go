package loadgen

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const ms = time.Millisecond

func TestScheduleDue(t *testing.T) {
	tests := []struct {
		name  string
		s     Schedule
		at    []time.Duration
		want  []int64
		total int64
		ends  bool
	}{{
		name:  "rate",
		s:     Schedule{Rate: 10, Duration: time.Second},
		at:    []time.Duration{0, 99 * ms, 100 * ms, 250 * ms, time.Second, 5 * time.Second},
		want:  []int64{0, 0, 1, 2, 10, 10},
		total: 10, ends: true,
	}, {
		name:  "burst-once",
		s:     Schedule{Burst: 500},
		at:    []time.Duration{0, time.Hour},
		want:  []int64{500, 500},
		total: 500, ends: true,
	}, {
		name:  "burst-then-rate",
		s:     Schedule{Burst: 100, Rate: 2, Duration: 3 * time.Second},
		at:    []time.Duration{0, 500 * ms, 2 * time.Second, 3 * time.Second, 4 * time.Second},
		want:  []int64{100, 101, 104, 106, 106},
		total: 106, ends: true,
	}, {
		name:  "repeated-bursts-stop-before-duration",
		s:     Schedule{Burst: 10, BurstEvery: time.Second, Duration: 3 * time.Second},
		at:    []time.Duration{0, 999 * ms, time.Second, 2500 * ms, 3 * time.Second, time.Minute},
		want:  []int64{10, 10, 20, 30, 30, 30},
		total: 30, ends: true,
	}, {
		name:  "repeated-bursts-duration-not-a-multiple",
		s:     Schedule{Burst: 10, BurstEvery: time.Second, Duration: 3500 * ms},
		at:    []time.Duration{3 * time.Second, time.Minute},
		want:  []int64{40, 40},
		total: 40, ends: true,
	}, {
		name:  "capped-by-messages",
		s:     Schedule{Rate: 1000, Messages: 5},
		at:    []time.Duration{2 * ms, time.Second},
		want:  []int64{2, 5},
		total: 5, ends: true,
	}, {
		name: "endless-rate",
		s:    Schedule{Rate: 1},
		at:   []time.Duration{-time.Second, time.Hour},
		want: []int64{0, 3600},
	}, {
		name: "endless-bursts",
		s:    Schedule{Burst: 3, BurstEvery: time.Minute},
		at:   []time.Duration{time.Hour},
		want: []int64{183},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int64
			for _, at := range tt.at {
				got = append(got, tt.s.Due(at))
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Due (-got +want):\n%s", diff)
			}
			total, ends := tt.s.Total()
			if total != tt.total || ends != tt.ends {
				t.Errorf("Total() = %d, %t; want %d, %t", total, ends, tt.total, tt.ends)
			}
		})
	}
}

// TestScheduleNext walks a schedule from its start with Next, as Run does, and checks every wake-up time
// and that each one makes more messages due.
func TestScheduleNext(t *testing.T) {
	tests := []struct {
		name string
		s    Schedule
		want []time.Duration // wake-ups after the start, until Next says there are none
	}{{
		name: "rate",
		s:    Schedule{Rate: 4, Duration: time.Second},
		want: []time.Duration{250 * ms, 500 * ms, 750 * ms, time.Second},
	}, {
		name: "burst-once",
		s:    Schedule{Burst: 5},
		want: nil,
	}, {
		name: "bursts-and-rate-interleave",
		s:    Schedule{Burst: 2, BurstEvery: 500 * ms, Rate: 3, Duration: time.Second},
		want: []time.Duration{333333334, 500 * ms, 666666667, time.Second},
	}, {
		name: "rate-that-does-not-divide-a-second",
		s:    Schedule{Rate: 3, Messages: 4},
		want: []time.Duration{333333334, 666666667, time.Second, 1333333334},
	}, {
		name: "capped-before-the-end",
		s:    Schedule{Rate: 10, Messages: 3, Duration: time.Hour},
		want: []time.Duration{100 * ms, 200 * ms, 300 * ms},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []time.Duration
			at := time.Duration(0)
			for range 100 {
				next, ok := tt.s.Next(at)
				if !ok {
					break
				}
				if next <= at || tt.s.Due(next) <= tt.s.Due(at) {
					t.Fatalf("Next(%v) = %v: not later, or nothing more due (%d then %d)", at, next, tt.s.Due(at), tt.s.Due(next))
				}
				got = append(got, next)
				at = next
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("wake-ups (-got +want):\n%s", diff)
			}
		})
	}
}

func TestScheduleValidate(t *testing.T) {
	tests := []struct {
		name string
		s    Schedule
		want []string // substrings of the error; none: valid
	}{
		{name: "rate", s: Schedule{Rate: 1}},
		{name: "burst", s: Schedule{Burst: 1}},
		{name: "nothing", s: Schedule{Duration: time.Second}, want: []string{"nothing to send"}},
		{name: "negatives", s: Schedule{Rate: -1, Burst: -2, Duration: -time.Second, Messages: -1},
			want: []string{"rate -1", "burst -2", "duration -1s", "messages -1", "nothing to send"}},
		{name: "interval-without-burst", s: Schedule{Rate: 1, BurstEvery: time.Second}, want: []string{"needs a burst size"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}
