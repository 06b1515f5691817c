package loadgen

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeSink confirms each message latency after Send, failing the ones fail names (by index from 0) and
// refusing the ones refuse names. It records when each Send happened, relative to its creation.
type fakeSink struct {
	latency time.Duration
	fail    map[int]bool
	refuse  map[int]bool

	start time.Time
	mu    sync.Mutex
	n     int
	times []time.Duration
	open  int
	idle  chan struct{} // closed and replaced when open drops to 0
}

func newFakeSink(latency time.Duration) *fakeSink {
	return &fakeSink{latency: latency, start: time.Now(), idle: make(chan struct{})}
}

func (s *fakeSink) Send(_ context.Context, _ []byte, done func(error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.n
	s.n++
	s.times = append(s.times, time.Since(s.start))
	if s.refuse[i] {
		return errors.New("refused")
	}
	s.open++
	time.AfterFunc(s.latency, func() {
		if s.fail[i] {
			done(errors.New("lost"))
		} else {
			done(nil)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.open--; s.open == 0 {
			close(s.idle)
			s.idle = make(chan struct{})
		}
	})
	return nil
}

func (s *fakeSink) Flush(ctx context.Context) error {
	s.mu.Lock()
	if s.open == 0 {
		s.mu.Unlock()
		return nil
	}
	idle := s.idle
	s.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// progress is what a test compares of a Stats.
type progress struct {
	Elapsed                      time.Duration
	Due, Sent, Confirmed, Failed int64
}

func of(s Stats) progress {
	return progress{Elapsed: s.Elapsed, Due: s.Due, Sent: s.Sent, Confirmed: s.Confirmed, Failed: s.Failed}
}

// Time in these tests is synctest's: it moves only when every goroutine waits, so each message goes out
// exactly when the schedule says and the counts at each progress report are exact.
func TestRunPacesAndCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := newFakeSink(50 * ms)
		var reports []progress
		st, err := Run(t.Context(), sink, Schedule{Burst: 5, Rate: 10, Duration: 2 * time.Second}, Options{
			ProgressEvery: 730 * ms,
			Progress:      func(s Stats) { reports = append(reports, of(s)) },
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []time.Duration{0, 0, 0, 0, 0}
		for k := range 20 {
			want = append(want, time.Duration(k+1)*100*ms)
		}
		if diff := cmp.Diff(sink.times, want); diff != "" {
			t.Errorf("send times (-got +want):\n%s", diff)
		}
		wantReports := []progress{
			{Elapsed: 730 * ms, Due: 12, Sent: 12, Confirmed: 11},
			{Elapsed: 1460 * ms, Due: 19, Sent: 19, Confirmed: 19},
		}
		if diff := cmp.Diff(reports, wantReports); diff != "" {
			t.Errorf("progress (-got +want):\n%s", diff)
		}
		// The run ends when the last confirmation arrives, 50 ms after the last message.
		if diff := cmp.Diff(of(st), progress{Elapsed: 2050 * ms, Due: 25, Sent: 25, Confirmed: 25}); diff != "" {
			t.Errorf("final stats (-got +want):\n%s", diff)
		}
		if got, want := st.Rate(), 25/2.05; got != want {
			t.Errorf("Rate() = %v, want %v", got, want)
		}
	})
}

func TestRunCountsFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := newFakeSink(10 * ms)
		sink.refuse = map[int]bool{1: true}
		sink.fail = map[int]bool{3: true, 4: true}
		st, err := Run(t.Context(), sink, Schedule{Burst: 6}, Options{})
		if !errors.Is(err, ErrFailed) {
			t.Fatalf("Run() error = %v, want ErrFailed", err)
		}
		if diff := cmp.Diff(of(st), progress{Elapsed: 10 * ms, Due: 6, Sent: 5, Confirmed: 3, Failed: 3}); diff != "" {
			t.Errorf("stats (-got +want):\n%s", diff)
		}
		if st.FirstError == nil || st.FirstError.Error() != "refused" {
			t.Errorf("FirstError = %v, want the refusal", st.FirstError)
		}
	})
}

// Ctrl-C: sending stops at once, and what was sent is still waited for and counted.
func TestRunInterrupted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(550*ms, cancel)
		sink := newFakeSink(time.Second)
		st, err := Run(ctx, sink, Schedule{Rate: 10, Duration: time.Minute}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(of(st), progress{Elapsed: 1500 * ms, Due: 5, Sent: 5, Confirmed: 5}); diff != "" {
			t.Errorf("stats (-got +want):\n%s", diff)
		}
	})
}

// A broker that never confirms: after Ctrl-C, Run waits FlushTimeout and reports the wait as an error.
func TestRunFlushTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(150*ms, cancel)
		sink := newFakeSink(time.Hour)
		st, err := Run(ctx, sink, Schedule{Rate: 10}, Options{FlushTimeout: 2 * time.Second})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Run() error = %v, want the flush's deadline", err)
		}
		if diff := cmp.Diff(of(st), progress{Elapsed: 2150 * ms, Due: 1, Sent: 1}); diff != "" {
			t.Errorf("stats (-got +want):\n%s", diff)
		}
	})
}

func TestRunRejectsBadSchedule(t *testing.T) {
	if _, err := Run(t.Context(), newFakeSink(0), Schedule{}, Options{}); err == nil {
		t.Fatal("Run() with an empty schedule succeeded")
	}
}
