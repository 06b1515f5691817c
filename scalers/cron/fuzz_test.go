package cron

import (
	"strings"
	"testing"
	"time"
)

// fuzzZones are the zones FuzzWindow places schedules in: UTC, ordinary daylight saving on either side
// of the equator, a 30-minute shift, a shift at midnight, a negative one, a two-hour one, and a day
// that never happened (Samoa skipped 30 December 2011).
var fuzzZones = []string{
	"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Sao_Paulo", "America/Havana",
	"Europe/Dublin", "Antarctica/Troll", "Pacific/Apia", "Pacific/Chatham", "Asia/Kolkata", "America/St_Johns",
}

// fuzzEpoch and fuzzSpan place a fuzzed time between 1990 and 2190.
var (
	fuzzEpoch = time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)
	fuzzSpan  = int64(200 * 365 * 24 * time.Hour / time.Second)
)

// FuzzSchedule parses a fuzzed schedule. Whatever the text: no panic; an error that quotes the schedule
// (a message that names what to fix); or a schedule that, from a fuzzed time in a fuzzed zone, next fires
// after that time and within the search bound, at a minute it names (or as the clocks jump over it), and
// last fired at or before it.
func FuzzSchedule(f *testing.F) {
	for _, s := range []string{"0 9 * * 1-5", "*/15 * * * *", "30 2 * * *", "0 0 29 2 *", "0 0 31 * *", "59 23 31 12 *",
		"0 0 1,15 * MON", "0 0 ? * SUN", "5-10/2 1-3 * JAN-MAR 0-6", "0 24 * * *", "@daily", "0 9 31 4 *", "TZ=UTC 0 * * * *", "0 0 30 2 *"} {
		f.Add(s, uint8(1), int64(1_100_000_000))
	}
	f.Add("30 2 * * *", uint8(1), int64(1_144_800_000)) // near a spring-forward in Berlin
	f.Add("0 0 30 12 *", uint8(8), int64(693_000_000))  // Samoa's missing day
	f.Add("0 0 * * *", uint8(4), int64(914_000_000))    // São Paulo's midnight jump
	f.Add("15 1 * * *", uint8(6), int64(int64(1<<62)))  // far out of the span: wrapped
	f.Fuzz(func(t *testing.T, text string, zone uint8, at int64) {
		var s schedule
		if err := s.UnmarshalText([]byte(text)); err != nil {
			if !strings.Contains(err.Error(), `"`) {
				t.Fatalf("error %q does not quote the schedule", err)
			}
			return
		}
		loc, now := fuzzPlace(t, zone, at)
		next, ok := s.next(now, loc)
		if !ok {
			t.Fatalf("%q parsed, but has no next time after %s in %s", s.text, now, loc)
		}
		if !next.After(now) || next.Sub(now) > searchYears*366*24*time.Hour {
			t.Fatalf("%q: next time after %s in %s is %s", s.text, now, loc, next)
		}
		if !s.matches(wall(next, loc)) && !isJump(next, loc) {
			t.Fatalf("%q: next time %s (%s in %s) is not a minute it names, nor a clock jump", s.text, next, wall(next, loc), loc)
		}
		last, ok := s.last(now, loc)
		if !ok {
			t.Fatalf("%q parsed, but has no last time before %s in %s", s.text, now, loc)
		}
		if last.After(now) || !last.Before(next) {
			t.Fatalf("%q: last time %s and next time %s around %s in %s", s.text, last, next, now, loc)
		}
	})
}

// FuzzWindow builds a fuzzed window (start, end and zone) as a trigger's metadata does, and asks for its
// state at a fuzzed time. Whatever the input: no panic; an error naming its key; or a state whose next
// change is after the time asked, at which the window has indeed changed.
func FuzzWindow(f *testing.F) {
	for _, c := range []struct{ start, end string }{
		{"0 9 * * 1-5", "0 17 * * 1-5"}, {"0 22 * * *", "0 6 * * *"}, {"0 0 * * 1", "0 0 * * *"}, {"30 2 * * *", "0 4 * * *"},
		{"0 1 * * *", "30 2 * * *"}, {"30 6 * * 1-5", "10 22 * * *"}, {"0 * 1-28 * *", "0 * * * *"}, {"* * * * *", "0 0 * * *"},
		{"0 0 29 2 *", "0 0 1 3 *"}, {"15 2 * * *", "45 2 * * *"},
	} {
		f.Add(c.start, c.end, uint8(1), int64(1_100_000_000))
		f.Add(c.start, c.end, uint8(8), int64(693_000_000))
	}
	f.Fuzz(func(t *testing.T, start, end string, zone uint8, at int64) {
		loc, now := fuzzPlace(t, zone, at)
		m, err := parse(map[string]string{"timezone": loc.String(), "start": start, "end": end, "desiredReplicas": "1"}, nil)
		if err != nil {
			if !strings.Contains(err.Error(), "start") && !strings.Contains(err.Error(), "end") {
				t.Fatalf("error %q names neither start nor end", err)
			}
			return
		}
		w := window{start: m.Start, end: m.End, loc: loc}
		st := w.at(now)
		if st.Next.IsZero() {
			return
		}
		if !st.Next.After(now) {
			t.Fatalf("start %q, end %q in %s: at %s (open %t) the next change is %s, not after it", start, end, loc, now, st.Open, st.Next)
		}
		if after := w.at(st.Next); after.Open == st.Open {
			t.Fatalf("start %q, end %q in %s: at %s open is %t until %s, but it is %t then", start, end, loc, now, st.Open, st.Next, after.Open)
		}
	})
}

// fuzzPlace is the zone and time a fuzzed zone index and number stand for.
func fuzzPlace(t *testing.T, zone uint8, at int64) (*time.Location, time.Time) {
	t.Helper()
	loc, err := time.LoadLocation(fuzzZones[int(zone)%len(fuzzZones)])
	if err != nil {
		t.Fatal(err)
	}
	off := at % fuzzSpan
	if off < 0 {
		off += fuzzSpan
	}
	return loc, fuzzEpoch.Add(time.Duration(off) * time.Second)
}

// isJump reports whether t is an instant at which loc's clocks change offset.
func isJump(t time.Time, loc *time.Location) bool {
	start, _ := t.In(loc).ZoneBounds()
	return start.Equal(t)
}
