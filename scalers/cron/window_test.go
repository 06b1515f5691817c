package cron

import (
	"testing"
	"time"
)

// mustSchedule parses a schedule or fails the test.
func mustSchedule(t *testing.T, text string) schedule {
	t.Helper()
	var s schedule
	if err := s.UnmarshalText([]byte(text)); err != nil {
		t.Fatal(err)
	}
	return s
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// utc reads "2006-01-02 15:04" as UTC.
func utc(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestWindow: where a window is open and when it next changes, across weekdays, midnight, ties of start
// and end, and both daylight-saving transitions. Times are UTC; Berlin is UTC+1 in winter (CET) and UTC+2
// in summer (CEST); in 2026 its clocks jump from 02:00 to 03:00 on 29 March and fall back from 03:00 to
// 02:00 on 25 October.
func TestWindow(t *testing.T) {
	type check struct {
		at   string // UTC
		open bool
		next string // UTC
	}
	tests := []struct {
		name, zone, start, end string
		checks                 []check
	}{
		{
			name: "office-hours", zone: "Europe/Berlin", start: "0 9 * * 1-5", end: "0 17 * * 1-5",
			checks: []check{
				{at: "2026-12-07 07:59", open: false, next: "2026-12-07 08:00"}, // Monday 08:59 in Berlin
				{at: "2026-12-07 08:00", open: true, next: "2026-12-07 16:00"},
				{at: "2026-12-07 15:59", open: true, next: "2026-12-07 16:00"},
				{at: "2026-12-07 16:00", open: false, next: "2026-12-08 08:00"},
				{at: "2026-12-12 11:00", open: false, next: "2026-12-14 08:00"}, // Saturday
			},
		},
		{
			name: "across-midnight", zone: "Europe/Berlin", start: "0 22 * * *", end: "0 6 * * *",
			checks: []check{
				{at: "2026-12-07 20:59", open: false, next: "2026-12-07 21:00"},
				{at: "2026-12-07 21:00", open: true, next: "2026-12-08 05:00"},
				{at: "2026-12-08 02:00", open: true, next: "2026-12-08 05:00"}, // 03:00 the next day
				{at: "2026-12-08 05:00", open: false, next: "2026-12-08 21:00"},
			},
		},
		{
			name: "over-the-weekend", zone: "America/New_York", start: "0 22 * * 5", end: "0 6 * * 1",
			checks: []check{
				{at: "2026-12-10 15:00", open: false, next: "2026-12-12 03:00"}, // Thursday; Friday 22:00 EST
				{at: "2026-12-12 03:00", open: true, next: "2026-12-14 11:00"},
				{at: "2026-12-13 17:00", open: true, next: "2026-12-14 11:00"}, // Sunday noon
				{at: "2026-12-14 11:00", open: false, next: "2026-12-19 03:00"},
			},
		},
		{
			// KEDA #4677: weekday starts, daily ends. The window closes at Friday's end and stays closed
			// over the weekend; the weekend's ends close a closed window.
			name: "weekday-start-daily-end", zone: "Europe/Prague", start: "30 6 * * 1-5", end: "10 22 * * *",
			checks: []check{
				{at: "2026-12-11 21:09", open: true, next: "2026-12-11 21:10"}, // Friday 22:09
				{at: "2026-12-11 21:10", open: false, next: "2026-12-14 05:30"},
				{at: "2026-12-12 12:00", open: false, next: "2026-12-14 05:30"},
				{at: "2026-12-13 21:30", open: false, next: "2026-12-14 05:30"}, // after Sunday's end
				{at: "2026-12-14 05:30", open: true, next: "2026-12-14 21:10"},
			},
		},
		{
			// Start and end name the same minute (midnight on Mondays): the window is open; it closes at the
			// next end that is not also a start.
			name: "tie-keeps-open", zone: "UTC", start: "0 0 * * 1", end: "0 0 * * *",
			checks: []check{
				{at: "2026-12-06 23:59", open: false, next: "2026-12-07 00:00"},
				{at: "2026-12-07 00:00", open: true, next: "2026-12-08 00:00"},
				{at: "2026-12-07 12:00", open: true, next: "2026-12-08 00:00"},
				{at: "2026-12-08 00:00", open: false, next: "2026-12-14 00:00"},
			},
		},
		{
			// 02:30 does not exist on 29 March: the window opens as the clocks jump (03:00 CEST), rather
			// than not that day (robfig/cron's Next skips the day).
			name: "start-in-skipped-hour", zone: "Europe/Berlin", start: "30 2 * * *", end: "0 4 * * *",
			checks: []check{
				{at: "2026-03-28 01:30", open: true, next: "2026-03-28 03:00"}, // the day before: 02:30 CET
				{at: "2026-03-29 00:59", open: false, next: "2026-03-29 01:00"},
				{at: "2026-03-29 01:00", open: true, next: "2026-03-29 02:00"}, // 03:00 CEST until 04:00 CEST
				{at: "2026-03-29 02:00", open: false, next: "2026-03-30 00:30"},
			},
		},
		{
			name: "end-in-skipped-hour", zone: "Europe/Berlin", start: "0 1 * * *", end: "30 2 * * *",
			checks: []check{
				{at: "2026-03-29 00:30", open: true, next: "2026-03-29 01:00"}, // closes as the clocks jump
				{at: "2026-03-29 01:00", open: false, next: "2026-03-29 23:00"},
			},
		},
		{
			// 01:30 CEST to 03:30 CET on 25 October: the repeated hour (02:00-02:59) is inside, so the window
			// lasts three hours, and is open in both passes of it.
			name: "across-repeated-hour", zone: "Europe/Berlin", start: "30 1 * * *", end: "30 3 * * *",
			checks: []check{
				{at: "2026-10-24 23:30", open: true, next: "2026-10-25 02:30"},
				{at: "2026-10-25 00:15", open: true, next: "2026-10-25 02:30"}, // 02:15 CEST
				{at: "2026-10-25 01:15", open: true, next: "2026-10-25 02:30"}, // 02:15 CET
				{at: "2026-10-25 02:30", open: false, next: "2026-10-26 00:30"},
			},
		},
		{
			// Inside the repeated hour: each reading happens once, at its first occurrence, so the window
			// is open once (in summer time), not twice.
			name: "inside-repeated-hour", zone: "Europe/Berlin", start: "10 2 * * *", end: "50 2 * * *",
			checks: []check{
				{at: "2026-10-25 00:10", open: true, next: "2026-10-25 00:50"}, // 02:10 CEST
				{at: "2026-10-25 00:50", open: false, next: "2026-10-26 01:10"},
				{at: "2026-10-25 01:20", open: false, next: "2026-10-26 01:10"}, // 02:20 CET
			},
		},
		{
			name: "end-in-repeated-hour", zone: "America/New_York", start: "0 0 * * *", end: "30 1 * * *",
			checks: []check{
				{at: "2026-11-01 05:29", open: true, next: "2026-11-01 05:30"}, // 01:29 EDT
				{at: "2026-11-01 05:30", open: false, next: "2026-11-02 05:00"},
				{at: "2026-11-01 06:40", open: false, next: "2026-11-02 05:00"}, // 01:40 EST
			},
		},
		{
			name: "spring-forward-new-york", zone: "America/New_York", start: "15 2 * * 0", end: "0 5 * * 0",
			checks: []check{
				{at: "2026-03-08 06:59", open: false, next: "2026-03-08 07:00"}, // 01:59 EST; 03:00 EDT
				{at: "2026-03-08 07:00", open: true, next: "2026-03-08 09:00"},
				{at: "2026-03-15 06:15", open: true, next: "2026-03-15 09:00"}, // a week later: 02:15 EDT
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := window{start: mustSchedule(t, tt.start), end: mustSchedule(t, tt.end), loc: mustZone(t, tt.zone)}
			for _, c := range tt.checks {
				got := w.at(utc(t, c.at))
				if got.Open != c.open || !got.Next.Equal(utc(t, c.next)) {
					t.Errorf("at %s UTC: open %v, next %s UTC; want open %v, next %s UTC", c.at, got.Open, got.Next.UTC().Format("2006-01-02 15:04"), c.open, c.next)
				}
			}
		})
	}
}

// instant places every reading of the days of both transitions, and the clocks agree with it.
func TestInstantAroundTransitions(t *testing.T) {
	loc := mustZone(t, "Europe/Berlin")
	for _, day := range []string{"2026-03-29", "2026-10-25"} {
		w := utc(t, day+" 00:00")
		for range 24 * 60 {
			in := instant(w, loc)
			switch got := wall(in, loc); {
			case got.Equal(w):
			case day == "2026-03-29" && w.Hour() == 2:
				if !got.Equal(utc(t, day+" 03:00")) {
					t.Errorf("skipped %s placed at %s, want the jump (03:00)", w.Format("15:04"), got.Format("15:04"))
				}
			default:
				t.Errorf("%s %s placed at %s", day, w.Format("15:04"), in)
			}
			if day == "2026-10-25" && w.Hour() == 2 && in.In(loc).Format("MST") != "CEST" {
				t.Errorf("repeated %s placed in %s, want its first occurrence (CEST)", w.Format("15:04"), in.In(loc).Format("MST"))
			}
			w = w.Add(time.Minute)
		}
	}
}

// In a zone without daylight-saving time, next agrees with robfig/cron's Next for every schedule, and
// last is the fire before next: the bit-set walk reads schedules as the parser meant them.
func TestNextAndLastAgreeWithRobfig(t *testing.T) {
	schedules := []string{
		"* * * * *", "0 9 * * 1-5", "30 6 * * *", "*/15 8-17 * * *", "0 0 1 * *", "0 9 1,15 * 1",
		"0 0 29 2 *", "5 4 * 2 0", "59 23 31 12 *", "0 12 * JAN,JUL SAT", "0 0 13 * 5", "10-20/5 3 * * ?",
	}
	loc := mustZone(t, "Asia/Tokyo") // no daylight-saving time since 1951
	for _, text := range schedules {
		s := mustSchedule(t, text)
		spec, err := parser.Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, loc)
		for i := range 300 {
			at = at.Add(time.Duration(1+(i*i)%1000) * 37 * time.Minute) // uneven steps, over about ten years
			want := spec.Next(at.In(loc))
			if want.IsZero() {
				continue // robfig/cron looks five years ahead, ebb nine (29 February around 2100)
			}
			got, ok := s.next(at, loc)
			if !ok || !got.Equal(want) {
				t.Fatalf("%q after %s: next %s (%v), robfig says %s", text, at, got, ok, want)
			}
			last, ok := s.last(got.Add(-time.Second), loc)
			if !ok || !spec.Next(last.In(loc)).Equal(got) || last.After(at) {
				t.Fatalf("%q: last before %s is %s (%v), robfig's next after it is %s", text, got, last, ok, spec.Next(last))
			}
		}
	}
}
