package cron

import "time"

// Wall-clock times are time.Time values in UTC that stand for a reading of a zone's clock (a "naive"
// time): arithmetic on them has no daylight-saving jumps, and instant places one in a zone.

// searchYears bounds a search for a schedule's next or previous time: a schedule that fires at all fires
// within eight years (29 February skips a leap year around 2100).
const searchYears = 9

func bit(n int) uint64 { return 1 << uint(n) }

// matches reports whether the wall-clock minute w is one s names.
func (s schedule) matches(w time.Time) bool {
	return s.month&bit(int(w.Month())) != 0 && s.dayMatches(w) && s.hour&bit(w.Hour()) != 0 && s.minute&bit(w.Minute()) != 0
}

// dayMatches follows cron (and robfig/cron): when either day field is *, both must match; otherwise
// either may ("0 0 1,15 * 1" is the 1st, the 15th and every Monday).
func (s schedule) dayMatches(w time.Time) bool {
	dom := s.dom&bit(w.Day()) != 0
	dow := s.dow&bit(int(w.Weekday())) != 0
	if s.dom&starBit != 0 || s.dow&starBit != 0 {
		return dom && dow
	}
	return dom || dow
}

// nextWall is the first wall-clock minute at or after w (a whole minute) that s names.
func (s schedule) nextWall(w time.Time) (time.Time, bool) {
	limit := w.AddDate(searchYears, 0, 0)
	for !w.After(limit) {
		switch {
		case s.month&bit(int(w.Month())) == 0:
			w = time.Date(w.Year(), w.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		case !s.dayMatches(w):
			w = time.Date(w.Year(), w.Month(), w.Day()+1, 0, 0, 0, 0, time.UTC)
		case s.hour&bit(w.Hour()) == 0:
			w = w.Truncate(time.Hour).Add(time.Hour)
		case s.minute&bit(w.Minute()) == 0:
			w = w.Add(time.Minute)
		default:
			return w, true
		}
	}
	return time.Time{}, false
}

// prevWall is the last wall-clock minute at or before w (a whole minute) that s names.
func (s schedule) prevWall(w time.Time) (time.Time, bool) {
	limit := w.AddDate(-searchYears, 0, 0)
	for !w.Before(limit) {
		switch {
		case s.month&bit(int(w.Month())) == 0:
			w = time.Date(w.Year(), w.Month(), 1, 0, 0, 0, 0, time.UTC).Add(-time.Minute)
		case !s.dayMatches(w):
			w = time.Date(w.Year(), w.Month(), w.Day(), 0, 0, 0, 0, time.UTC).Add(-time.Minute)
		case s.hour&bit(w.Hour()) == 0:
			w = w.Truncate(time.Hour).Add(-time.Minute)
		case s.minute&bit(w.Minute()) == 0:
			w = w.Add(-time.Minute)
		default:
			return w, true
		}
	}
	return time.Time{}, false
}

// wall is the reading of loc's clock at t.
func wall(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// instant is when loc's clock reads w. A reading the clocks repeat (when they fall back) happens at its
// first occurrence; a reading they skip (when they spring forward) happens at the jump, so a window that
// starts or ends in the skipped hour starts or ends as the clocks leave it, rather than not at all.
func instant(w time.Time, loc *time.Location) time.Time {
	// The instant is w minus loc's UTC offset then, and offsets lie within -12 h and +14 h: the offsets in
	// force 15 h before and 13 h after w (read as UTC) are those on either side of any transition near it.
	var found, latest time.Time
	for _, probe := range []time.Duration{-15 * time.Hour, 0, 13 * time.Hour} {
		_, off := w.Add(probe).In(loc).Zone()
		t := w.Add(-time.Duration(off) * time.Second)
		if wall(t, loc).Equal(w) && (found.IsZero() || t.Before(found)) {
			found = t
		}
		if t.After(latest) {
			latest = t
		}
	}
	if !found.IsZero() {
		return found
	}
	// Skipped: read with the offset from before the jump, w lands after it, in the zone the jump began.
	if start, _ := latest.In(loc).ZoneBounds(); !start.IsZero() {
		return start
	}
	return latest
}

// lastReading is the latest reading of loc's clock whose instant is at or before t. It is wall(t), except
// in the second pass of a repeated hour: every reading of that hour has then happened already (at its
// first occurrence).
func lastReading(t time.Time, loc *time.Location) time.Time {
	w := wall(t, loc)
	if start, _ := t.In(loc).ZoneBounds(); !start.IsZero() {
		if before := wall(start.Add(-time.Nanosecond), loc); before.After(w) {
			return before
		}
	}
	return w
}

// last is the latest time at or before t that s names in loc.
func (s schedule) last(t time.Time, loc *time.Location) (time.Time, bool) {
	w, ok := s.prevWall(lastReading(t, loc).Truncate(time.Minute))
	if !ok {
		return time.Time{}, false
	}
	return instant(w, loc), true
}

// next is the first time after t that s names in loc.
func (s schedule) next(t time.Time, loc *time.Location) (time.Time, bool) {
	w := lastReading(t, loc).Truncate(time.Minute).Add(time.Minute)
	for range 100 {
		f, ok := s.nextWall(w)
		if !ok {
			return time.Time{}, false
		}
		if in := instant(f, loc); in.After(t) {
			return in, true
		}
		w = f.Add(time.Minute) // a skipped reading whose jump is behind t
	}
	return time.Time{}, false
}

// window is a trigger's start and end schedules in its zone.
type window struct {
	start, end schedule
	loc        *time.Location
}

// state is the window at one time: open or not, and when that next changes (zero: never).
type state struct {
	Open bool
	Next time.Time
}

// at says whether the window is open at t: whether a start has fired, and no end since. When start and
// end fire at the same time the window is open (a day-long window can end at the midnight the next one
// starts at).
func (w window) at(t time.Time) state {
	ls, started := w.start.last(t, w.loc)
	le, ended := w.end.last(t, w.loc)
	open := started && (!ended || !ls.Before(le))
	var st state
	st.Open = open
	if !open {
		st.Next, _ = w.start.next(t, w.loc)
		return st
	}
	// The first end that is not also a start closes the window.
	e := t
	for range 1000 {
		n, ok := w.end.next(e, w.loc)
		if !ok {
			return st
		}
		if s, ok := w.start.last(n, w.loc); !ok || !s.Equal(n) {
			st.Next = n
			return st
		}
		e = n
	}
	return st
}
