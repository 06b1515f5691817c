package cron

import (
	"errors"
	"fmt"
	"strings"
	"time"

	robfig "github.com/robfig/cron/v3"

	"github.com/ebbscale/ebb/scalers"
)

// metadata is a cron trigger's metadata, with KEDA's keys.
type metadata struct {
	Timezone        zone     `ebb:"timezone"`
	Start           schedule `ebb:"start"`
	End             schedule `ebb:"end"`
	DesiredReplicas int32    `ebb:"desiredReplicas,min=1"`
}

// Params describes the trigger's metadata keys, for generated docs.
func Params() ([]scalers.Param, error) {
	return scalers.Describe(metadata{})
}

// Validate refuses an end that can never close a window its start opened.
func (m *metadata) Validate() error {
	if !m.End.closes(m.Start) {
		if m.End.sameAs(m.Start) {
			return &scalers.FieldError{Key: "end", Msg: fmt.Sprintf("end is the same schedule as start (%q), so the window would never close (a minute both name keeps it open); for replicas at all times set minReplicas", m.Start.text)}
		}
		return &scalers.FieldError{Key: "end", Msg: fmt.Sprintf("end (%q) fires only at minutes start (%q) also names, so the window would never close (a minute both name keeps it open)", m.End.text, m.Start.text)}
	}
	return nil
}

// parse reads a trigger's metadata. A desiredReplicas of 0 gets a hint: the window is not how to scale
// to zero, minReplicas is.
func parse(md, auth map[string]string) (metadata, error) {
	var m metadata
	err := scalers.Parse(md, auth, &m)
	if err == nil {
		return m, nil
	}
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	for i, e := range list {
		var fe *scalers.FieldError
		if errors.As(e, &fe) && fe.Key == "desiredReplicas" && strings.HasPrefix(fe.Msg, "must be at least") {
			list[i] = &scalers.FieldError{Key: fe.Key, Msg: fe.Msg + ": a window asks the HPA for this many replicas, and outside windows the " +
				"target runs minReplicas; to run no replicas outside windows set minReplicas: 0 (the default), not desiredReplicas: 0"}
		}
	}
	return m, errors.Join(list...)
}

// zone is an IANA time zone, such as Europe/Berlin.
type zone struct{ loc *time.Location }

// UnmarshalText implements encoding.TextUnmarshaler.
func (z *zone) UnmarshalText(b []byte) error {
	name := string(b)
	if name == "Local" {
		return errors.New(`"Local" is the controller's own time zone, which depends on where it runs: name an IANA zone such as Europe/Berlin, America/New_York or UTC`)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return fmt.Errorf("unknown time zone %q: name an IANA zone such as Europe/Berlin, America/New_York or UTC", name)
	}
	z.loc = loc
	return nil
}

// parser reads five fields and nothing else: no seconds, no descriptors (@daily, @every 1h).
var parser = robfig.NewParser(robfig.Minute | robfig.Hour | robfig.Dom | robfig.Month | robfig.Dow)

// starBit marks a day field written as * or ?: robfig/cron's convention, which decides how the two day
// fields combine (both must match when either is *, else either may).
const starBit = 1 << 63

// schedule is a five-field cron schedule: the minutes, hours, days of the month, months and days of the
// week it names, as robfig/cron's bit sets. It names wall-clock times; the trigger's zone places them.
type schedule struct {
	text                          string
	minute, hour, dom, month, dow uint64
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *schedule) UnmarshalText(b []byte) error {
	text := strings.Join(strings.Fields(string(b)), " ")
	switch {
	case strings.HasPrefix(text, "TZ=") || strings.HasPrefix(text, "CRON_TZ="):
		return fmt.Errorf("%q sets a time zone of its own: set the trigger's timezone key instead", text)
	case strings.HasPrefix(text, "@"):
		return fmt.Errorf("%q is a descriptor: write five fields (minute hour day-of-month month day-of-week), such as \"0 9 * * 1-5\"", text)
	}
	parsed, err := parser.Parse(text)
	if err != nil {
		return fmt.Errorf("%q is not a five-field cron schedule (minute hour day-of-month month day-of-week): %w", text, err)
	}
	spec, ok := parsed.(*robfig.SpecSchedule)
	if !ok {
		return fmt.Errorf("%q is not a five-field cron schedule (minute hour day-of-month month day-of-week)", text)
	}
	*s = schedule{text: text, minute: spec.Minute, hour: spec.Hour, dom: spec.Dom, month: spec.Month, dow: spec.Dow}
	if _, ok := s.nextWall(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)); !ok {
		return fmt.Errorf("%q never fires: no date has that day of the month in those months", text)
	}
	return nil
}

// sameAs reports whether s and o name the same times.
func (s schedule) sameAs(o schedule) bool {
	return s.minute == o.minute && s.hour == o.hour && s.dom == o.dom && s.month == o.month && s.dow == o.dow
}

// closes reports whether s, as an end, fires at some minute that start does not name: otherwise every
// end coincides with a start, which keeps the window open. It looks at up to 500 fires of s from 2000.
func (s schedule) closes(start schedule) bool {
	w := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 500 {
		f, ok := s.nextWall(w)
		if !ok {
			return false
		}
		if !start.matches(f) {
			return true
		}
		w = f.Add(time.Minute)
	}
	return false
}
