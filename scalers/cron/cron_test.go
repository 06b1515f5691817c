package cron

import (
	"context"
	"math"
	"strconv"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/ebbscale/ebb/scalers"
)

func configFor(md map[string]string) scalers.Config {
	return scalers.Config{TriggerName: "hours", Metadata: md, PollingInterval: 5 * time.Second}
}

// TestSample: inside a window the value is desiredReplicas and the HPA (ceil(value / AverageValue
// target)) asks for exactly that many replicas; outside, the trigger is inactive at 0; the message says
// when the window closes or opens. The clock moves back and forth, through the cache.
func TestSample(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC)) // Monday 08:00 in Berlin
	s, err := NewType(WithClock(clk)).New(configFor(map[string]string{
		"timezone": "Europe/Berlin", "start": "0 9 * * 1-5", "end": "30 17 * * 1-5", "desiredReplicas": "7",
	}))
	if err != nil {
		t.Fatal(err)
	}
	specs := s.Metrics()
	if len(specs) != 1 || specs[0].Target != 1 || specs[0].Activation != 0 || specs[0].Name != "" {
		t.Fatalf("Metrics() = %+v, want one metric with target 1 and activation 0", specs)
	}
	steps := []struct {
		at      time.Time
		value   float64
		message string
	}{
		{time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC), 0, "outside the window; the next opens at 2026-12-07T09:00:00+01:00 (Europe/Berlin)"},
		{time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC), 7, "in a window (7 replicas) until 2026-12-07T17:30:00+01:00 (Europe/Berlin)"},
		{time.Date(2026, 12, 7, 16, 29, 59, 0, time.UTC), 7, "in a window (7 replicas) until 2026-12-07T17:30:00+01:00 (Europe/Berlin)"},
		{time.Date(2026, 12, 7, 16, 30, 0, 0, time.UTC), 0, "outside the window; the next opens at 2026-12-08T09:00:00+01:00 (Europe/Berlin)"},
		{time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), 7, "in a window (7 replicas) until 2026-12-07T17:30:00+01:00 (Europe/Berlin)"}, // back in time
		{time.Date(2026, 12, 12, 12, 0, 0, 0, time.UTC), 0, "outside the window; the next opens at 2026-12-14T09:00:00+01:00 (Europe/Berlin)"},
	}
	for _, st := range steps {
		clk.SetTime(st.at)
		got, err := s.Sample(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Values) != 1 || got.Values[0] != st.value || got.Message != st.message {
			t.Errorf("at %s: values %v, message %q; want [%v], %q", st.at, got.Values, got.Message, st.value, st.message)
		}
	}
}

// The HPA's replica count for an AverageValue target is ceil(value / target), independent of the current
// replicas; the served value must give exactly desiredReplicas for every count.
func TestHPAComputesDesiredReplicas(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	for _, n := range []int32{1, 2, 3, 10, 99, 1000} {
		s, err := NewType(WithClock(clk)).New(configFor(map[string]string{
			"timezone": "UTC", "start": "0 0 * * *", "end": "59 23 * * *", "desiredReplicas": strconv.Itoa(int(n)),
		}))
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Sample(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if r := math.Ceil(got.Values[0] / s.Metrics()[0].Target); r != float64(n) {
			t.Errorf("desiredReplicas %d: the HPA computes %v", n, r)
		}
	}
}
