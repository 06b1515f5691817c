package loadgen

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Schedule is when messages are due, counted from the start of a run. The zero value sends nothing.
type Schedule struct {
	// Rate is the steady rate in messages per second, on top of bursts; message k (from 1) of the steady
	// stream is due at k/Rate seconds. 0: no steady stream.
	Rate float64
	// Burst is the number of messages due at once at the start and, with BurstEvery, at every multiple of
	// BurstEvery before Duration. 0: no bursts.
	Burst int64
	// BurstEvery repeats the burst. 0: one burst, at the start.
	BurstEvery time.Duration
	// Duration ends the schedule: nothing is due after it (a burst exactly at Duration is not sent; the
	// steady stream sends Rate x Duration messages). 0: no end but Messages (or Ctrl-C).
	Duration time.Duration
	// Messages caps the total. 0: no cap.
	Messages int64
}

// Validate reports a schedule that makes no sense: negative values, a burst interval without a burst, or
// nothing to send. A schedule without an end is valid: it runs until interrupted.
func (s Schedule) Validate() error {
	var errs []error
	if s.Rate < 0 || math.IsNaN(s.Rate) || math.IsInf(s.Rate, 0) {
		errs = append(errs, fmt.Errorf("rate %v: want a finite number >= 0", s.Rate))
	}
	if s.Burst < 0 {
		errs = append(errs, fmt.Errorf("burst %d: want >= 0", s.Burst))
	}
	if s.BurstEvery < 0 {
		errs = append(errs, fmt.Errorf("burst interval %v: want >= 0", s.BurstEvery))
	}
	if s.BurstEvery > 0 && s.Burst == 0 {
		errs = append(errs, errors.New("a burst interval needs a burst size"))
	}
	if s.Duration < 0 {
		errs = append(errs, fmt.Errorf("duration %v: want >= 0", s.Duration))
	}
	if s.Messages < 0 {
		errs = append(errs, fmt.Errorf("messages %d: want >= 0", s.Messages))
	}
	if s.Rate <= 0 && s.Burst <= 0 {
		errs = append(errs, errors.New("nothing to send: set a rate, a burst or both"))
	}
	return errors.Join(errs...)
}

// Due is the number of messages due by elapsed (those due at exactly elapsed included).
func (s Schedule) Due(elapsed time.Duration) int64 {
	if elapsed < 0 {
		return 0
	}
	if s.Duration > 0 && elapsed > s.Duration {
		elapsed = s.Duration
	}
	var n int64
	if s.Burst > 0 {
		bursts := int64(1)
		if s.BurstEvery > 0 {
			bursts = int64(elapsed/s.BurstEvery) + 1
			if s.Duration > 0 {
				// Bursts fall strictly before Duration: at 0, E, 2E, ... < Duration.
				bursts = min(bursts, int64((s.Duration-1)/s.BurstEvery)+1)
			}
		}
		n += bursts * s.Burst
	}
	n += s.steady(elapsed)
	if s.Messages > 0 {
		n = min(n, s.Messages)
	}
	return n
}

// steady is the number of steady-stream messages due by elapsed: floor(Rate x elapsed).
func (s Schedule) steady(elapsed time.Duration) int64 {
	if s.Rate <= 0 {
		return 0
	}
	return int64(math.Floor(s.Rate * elapsed.Seconds()))
}

// Total is the number of messages the schedule sends in all, and false when it has no end (a steady
// stream or repeated bursts without Duration or Messages).
func (s Schedule) Total() (int64, bool) {
	switch {
	case s.Duration > 0:
		return s.Due(s.Duration), true
	case s.Messages > 0:
		return s.Messages, true
	case s.Rate <= 0 && s.BurstEvery <= 0:
		return s.Due(0), true
	}
	return 0, false
}

// Next is the earliest time after elapsed at which more messages are due, and false when none will be.
func (s Schedule) Next(elapsed time.Duration) (time.Duration, bool) {
	if elapsed < 0 {
		return 0, true
	}
	if total, ok := s.Total(); ok && s.Due(elapsed) >= total {
		return 0, false
	}
	next := time.Duration(math.MaxInt64)
	if s.Burst > 0 && s.BurstEvery > 0 {
		b := (elapsed/s.BurstEvery + 1) * s.BurstEvery
		if s.Duration == 0 || b < s.Duration {
			next = b
		}
	}
	if s.Rate > 0 {
		k := s.steady(elapsed) + 1
		t := time.Duration(math.Ceil(float64(k) / s.Rate * float64(time.Second)))
		for s.steady(t) < k { // floating point: never report a time at which the message is not yet due
			t++
		}
		if (s.Duration == 0 || t <= s.Duration) && t < next {
			next = t
		}
	}
	if next == time.Duration(math.MaxInt64) {
		return 0, false
	}
	return next, true
}
