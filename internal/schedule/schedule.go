// Package schedule reads a Workstation's spec.schedule: its cron times in
// their time zone, the window they open, and the lead a start needs so that
// the Workstation is Ready, with its drive loaded, at the start time. It is
// pure: the controller gives it the time and what it measured.
package schedule

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // the manager's image may have no zoneinfo

	"github.com/robfig/cron/v3"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// parser reads 5-field cron expressions, without descriptors (@daily) or a
// time zone prefix: the time zone is spec.schedule.timeZone.
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// Spec is a parsed schedule.
type Spec struct {
	loc         *time.Location
	start, stop cron.Schedule
}

// Parse checks a schedule: its time zone and both cron expressions.
func Parse(s v1alpha1.Schedule) (*Spec, error) {
	name := s.TimeZone
	if name == "" {
		name = "UTC"
	}
	if strings.EqualFold(name, "local") {
		return nil, fmt.Errorf("timeZone %q: name an IANA time zone, e.g. Europe/Berlin", s.TimeZone)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("timeZone %q is not an IANA time zone: %w", s.TimeZone, err)
	}
	start, err := parse("start", s.Start)
	if err != nil {
		return nil, err
	}
	stop, err := parse("stop", s.Stop)
	if err != nil {
		return nil, err
	}
	return &Spec{loc: loc, start: start, stop: stop}, nil
}

func parse(field, expr string) (cron.Schedule, error) {
	if strings.Contains(expr, "TZ=") || strings.HasPrefix(strings.TrimSpace(expr), "@") {
		return nil, fmt.Errorf("%s %q: a 5-field cron expression without a time zone or descriptor (set timeZone)", field, expr)
	}
	sched, err := parser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("%s %q is not a 5-field cron expression: %w", field, expr, err)
	}
	if next(sched, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, fmt.Errorf("%s %q never fires", field, expr)
	}
	return sched, nil
}

// Location is the schedule's time zone.
func (s *Spec) Location() *time.Location { return s.loc }

// next is the first fire strictly after t, in the schedule's zone; zero if none within 5 years.
func next(c cron.Schedule, t time.Time) time.Time { return c.Next(t) }

// NextStart is the first start strictly after t.
func (s *Spec) NextStart(t time.Time) time.Time { return next(s.start, t.In(s.loc)) }

// NextStop is the first stop strictly after t.
func (s *Spec) NextStop(t time.Time) time.Time { return next(s.stop, t.In(s.loc)) }

// LastStart is the latest start at or before t; zero if none in 8 years.
func (s *Spec) LastStart(t time.Time) time.Time { return last(s.start, t.In(s.loc)) }

// LastStop is the latest stop at or before t; zero if none in 8 years.
func (s *Spec) LastStop(t time.Time) time.Time { return last(s.stop, t.In(s.loc)) }

// lookbacks are how far last looks back for a first fire, growing.
var lookbacks = []time.Duration{time.Hour, 25 * time.Hour, 8 * 24 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour, 4 * 367 * 24 * time.Hour, 8 * 367 * 24 * time.Hour}

// last finds the latest fire at or before t: a fire in a growing window
// back, then a bisection between it and t (cron has no Prev), so that a
// schedule firing every minute costs as little as a yearly one.
func last(c cron.Schedule, t time.Time) time.Time {
	t = t.Truncate(time.Minute)
	var lo time.Time
	for _, back := range lookbacks {
		if f := next(c, t.Add(-back)); !f.IsZero() && !f.After(t) {
			lo = f
			break
		}
	}
	if lo.IsZero() {
		return time.Time{}
	}
	// lo is a fire at or before t; no fire lies in (hi, t].
	hi := t
	for hi.Sub(lo) >= time.Minute {
		mid := lo.Add(hi.Sub(lo) / 2)
		if f := next(c, mid); !f.IsZero() && !f.After(t) {
			lo = f
		} else {
			hi = mid
		}
	}
	return lo
}

// LongestWindow is the longest window (a start to the first stop after it)
// among the starts in [from, from+horizon), and the start it opens at; a
// start with no stop after it within 5 years is an endless window.
func (s *Spec) LongestWindow(from time.Time, horizon time.Duration) (time.Duration, time.Time) {
	var longest time.Duration
	var at time.Time
	for st := s.NextStart(from.Add(-time.Minute)); !st.IsZero() && st.Before(from.Add(horizon)); st = s.NextStart(st) {
		stop := s.NextStop(st.Add(-time.Second)) // a stop at the start's minute ends it
		d := time.Duration(1<<63 - 1)
		if !stop.IsZero() {
			d = stop.Sub(st)
		}
		if d > longest {
			longest, at = d, st
		}
	}
	return longest, at
}

// Decision is what the schedule wants now.
type Decision struct {
	Window v1alpha1.ScheduleWindow
	// WindowStart is the start the open window belongs to (possibly ahead,
	// by the lead); zero when closed.
	WindowStart time.Time
	// NextStart is the start the Workstation is to be Ready by: the open
	// window's while it is ahead, else the first after now.
	NextStart time.Time
	// LaunchAt is NextStart less the lead.
	LaunchAt time.Time
	// NextStop is the first stop after now.
	NextStop time.Time
}

// Open reports whether the schedule wants the Workstation running.
func (d Decision) Open() bool { return d.Window != v1alpha1.ScheduleWindowClosed }

// Decide says whether the window is open at now with the given lead. A
// window opens lead before a start and closes at the first stop after that
// start: wasOpenFor, the start a window opened for earlier (zero if none),
// keeps it open whatever the lead became since. resumed is the time of a
// start by hand (the resume annotation; zero if none): at or after the last
// stop, it keeps a closed window open until the next stop.
func (s *Spec) Decide(now time.Time, lead time.Duration, wasOpenFor, resumed time.Time) Decision {
	lastStop := s.LastStop(now)
	d := Decision{Window: v1alpha1.ScheduleWindowClosed, NextStop: s.NextStop(now)}
	switch start := s.LastStart(now.Add(lead)); {
	case !start.IsZero() && start.After(lastStop):
		d.Window, d.WindowStart = v1alpha1.ScheduleWindowOpen, start
	case !wasOpenFor.IsZero() && wasOpenFor.After(lastStop):
		d.Window, d.WindowStart = v1alpha1.ScheduleWindowOpen, wasOpenFor
	case !resumed.IsZero() && !resumed.Before(lastStop):
		d.Window = v1alpha1.ScheduleWindowResumed
	}
	d.NextStart = s.NextStart(now)
	if d.Window == v1alpha1.ScheduleWindowOpen && d.WindowStart.After(now) {
		d.NextStart = d.WindowStart
	}
	if !d.NextStart.IsZero() {
		d.LaunchAt = d.NextStart.Add(-lead)
	}
	return d
}

// Wake is when the decision may change next: the launch for the next start
// or the next stop, whichever comes first after now; zero if neither.
func (d Decision) Wake(now time.Time) time.Time {
	var at time.Time
	for _, t := range []time.Time{d.LaunchAt, d.NextStop} {
		if t.After(now) && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	return at
}
