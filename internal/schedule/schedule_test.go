package schedule

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

func mustParse(t *testing.T, tz, start, stop string) *Spec {
	t.Helper()
	s, err := Parse(v1alpha1.Schedule{TimeZone: tz, Start: start, Stop: stop})
	if err != nil {
		t.Fatalf("Parse(%q, %q, %q): %v", tz, start, stop, err)
	}
	return s
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestParse: a time zone that is not IANA's, a cron expression that does
// not parse, has a time zone or a descriptor, or never fires, is refused
// with the field named.
func TestParse(t *testing.T) {
	bad := []struct{ tz, start, stop, words string }{
		{"Mars/Olympus", "0 9 * * 1-5", "0 19 * * 1-5", "timeZone"},
		{"Local", "0 9 * * 1-5", "0 19 * * 1-5", "timeZone"},
		{"", "0 25 * * 1-5", "0 19 * * 1-5", "start"},
		{"", "0 9 * * 1-5", "0 9 * *", "stop"},
		{"", "0 0 9 * * 1-5", "0 19 * * 1-5", "start"}, // 6 fields: seconds are not taken
		{"", "CRON_TZ=UTC 0 9 * * 1-5", "0 19 * * 1-5", "start"},
		{"", "@daily", "0 19 * * 1-5", "start"},
		{"", "0 9 31 2 *", "0 19 * * *", "never fires"},
	}
	for _, c := range bad {
		_, err := Parse(v1alpha1.Schedule{TimeZone: c.tz, Start: c.start, Stop: c.stop})
		if err == nil || !strings.Contains(err.Error(), c.words) {
			t.Errorf("Parse(%q, %q, %q) = %v, want an error naming %q", c.tz, c.start, c.stop, err, c.words)
		}
	}
	s := mustParse(t, "", "0 9 * * 1-5", "0 19 * * 1-5")
	if s.Location() != time.UTC {
		t.Errorf("no timeZone: location %s, want UTC", s.Location())
	}
}

// TestNextAndLastAcrossDST: 9:00 on weekdays in Berlin is 08:00 UTC before
// daylight saving time starts (Sunday 29 March 2026) and 07:00 UTC after;
// in New York, 9:00 is 13:00 UTC before it ends (1 November 2026) and 14:00 after.
func TestNextAndLastAcrossDST(t *testing.T) {
	berlin := mustParse(t, "Europe/Berlin", "0 9 * * 1-5", "0 19 * * 1-5")
	cases := []struct {
		name      string
		got, want time.Time
	}{
		{"Berlin: next start after Friday's", berlin.NextStart(utc("2026-03-27T08:00:00Z")), utc("2026-03-30T07:00:00Z")},
		{"Berlin: last start on Sunday", berlin.LastStart(utc("2026-03-29T12:00:00Z")), utc("2026-03-27T08:00:00Z")},
		{"Berlin: last start on Monday morning", berlin.LastStart(utc("2026-03-30T07:30:00Z")), utc("2026-03-30T07:00:00Z")},
		{"Berlin: a start is its own last", berlin.LastStart(utc("2026-03-30T07:00:00Z")), utc("2026-03-30T07:00:00Z")},
		{"Berlin: last stop on Monday morning", berlin.LastStop(utc("2026-03-30T07:30:00Z")), utc("2026-03-27T18:00:00Z")},
		{"Berlin: next stop after DST", berlin.NextStop(utc("2026-03-30T07:30:00Z")), utc("2026-03-30T17:00:00Z")},
	}
	ny := mustParse(t, "America/New_York", "0 9 * * *", "0 17 * * *")
	cases = append(cases,
		struct {
			name      string
			got, want time.Time
		}{"New York: the start before DST ends", ny.NextStart(utc("2026-10-31T12:00:00Z")), utc("2026-10-31T13:00:00Z")},
		struct {
			name      string
			got, want time.Time
		}{"New York: the start after DST ends", ny.NextStart(utc("2026-10-31T13:00:00Z")), utc("2026-11-01T14:00:00Z")},
		struct {
			name      string
			got, want time.Time
		}{"New York: last start after DST ends", ny.LastStart(utc("2026-11-01T20:00:00Z")), utc("2026-11-01T14:00:00Z")},
	)
	for _, c := range cases {
		if !c.got.Equal(c.want) {
			t.Errorf("%s: %s, want %s", c.name, c.got.UTC().Format(time.RFC3339), c.want.Format(time.RFC3339))
		}
	}
}

// TestLastIsTheLatestFire: last's bisection agrees with Next around it, for
// schedules firing every minute to once a year, in zones with DST (the
// skipped and the repeated hour included): last(t) ≤ t, and the first fire
// after it is after t.
func TestLastIsTheLatestFire(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	exprs := []string{"* * * * *", "*/7 * * * *", "30 2 * * *", "30 1 * * *", "0 9 * * 1-5", "15 3 1 * *", "0 0 1 1 *", "0 0 29 2 *"}
	for _, tz := range []string{"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"} {
		for _, e := range exprs {
			s := mustParse(t, tz, e, e)
			for range 40 {
				now := utc("2026-01-01T00:00:00Z").Add(time.Duration(rng.Int64N(int64(3 * 365 * 24 * time.Hour))))
				l := s.LastStart(now)
				if l.IsZero() {
					t.Errorf("%s %q: no fire before %s", tz, e, now)
					continue
				}
				if l.After(now) || !s.NextStart(l).After(now) {
					t.Errorf("%s %q at %s: last %s, the next after it %s", tz, e, now, l, s.NextStart(l))
				}
			}
		}
	}
}

// TestLongestWindow: the longest start-to-stop window in the next 8 days.
func TestLongestWindow(t *testing.T) {
	from := utc("2026-12-07T00:00:00Z") // a Monday
	for _, c := range []struct {
		start, stop string
		want        time.Duration
	}{
		{"0 9 * * 1-5", "0 19 * * 1-5", 10 * time.Hour},
		{"0 9 * * 1", "0 19 * * 5", 4*24*time.Hour + 10*time.Hour},
		{"0 22 * * *", "0 6 * * *", 8 * time.Hour}, // overnight
		{"0 9 * * *", "0 9 * * *", 0},              // a stop at the start's minute wins: the window never opens
	} {
		got, _ := mustParse(t, "", c.start, c.stop).LongestWindow(from, 8*24*time.Hour)
		if got != c.want {
			t.Errorf("%q to %q: longest window %s, want %s", c.start, c.stop, got, c.want)
		}
	}
}

// TestDecide: the window opens the lead before a start and closes at the
// next stop; a window opened early stays open when the lead shrinks; a
// start by hand after the last stop keeps the Workstation up until the
// next stop, and one from before it does not.
func TestDecide(t *testing.T) {
	s := mustParse(t, "Europe/Berlin", "0 9 * * 1-5", "0 19 * * 1-5") // in December: 08:00 and 18:00 UTC
	lead := 10 * time.Minute
	none := time.Time{}
	cases := []struct {
		name                    string
		now                     string
		lead                    time.Duration
		wasOpenFor, resumed     time.Time
		window                  v1alpha1.ScheduleWindow
		nextStart, launchAt     string
		nextStop, windowStartAt string
	}{
		{"before the lead", "2026-12-07T07:49:00Z", lead, none, none, v1alpha1.ScheduleWindowClosed,
			"2026-12-07T08:00:00Z", "2026-12-07T07:50:00Z", "2026-12-07T18:00:00Z", ""},
		{"the lead before the start", "2026-12-07T07:50:00Z", lead, none, none, v1alpha1.ScheduleWindowOpen,
			"2026-12-07T08:00:00Z", "2026-12-07T07:50:00Z", "2026-12-07T18:00:00Z", "2026-12-07T08:00:00Z"},
		{"mid-day", "2026-12-07T12:00:00Z", lead, none, none, v1alpha1.ScheduleWindowOpen,
			"2026-12-08T08:00:00Z", "2026-12-08T07:50:00Z", "2026-12-07T18:00:00Z", "2026-12-07T08:00:00Z"},
		{"at the stop", "2026-12-07T18:00:00Z", lead, utc("2026-12-07T08:00:00Z"), none, v1alpha1.ScheduleWindowClosed,
			"2026-12-08T08:00:00Z", "2026-12-08T07:50:00Z", "2026-12-08T18:00:00Z", ""},
		{"the weekend", "2026-12-12T12:00:00Z", lead, none, none, v1alpha1.ScheduleWindowClosed,
			"2026-12-14T08:00:00Z", "2026-12-14T07:50:00Z", "2026-12-14T18:00:00Z", ""},
		{"opened early, then the lead shrank", "2026-12-07T07:52:00Z", time.Minute, utc("2026-12-07T08:00:00Z"), none, v1alpha1.ScheduleWindowOpen,
			"2026-12-07T08:00:00Z", "2026-12-07T07:59:00Z", "2026-12-07T18:00:00Z", "2026-12-07T08:00:00Z"},
		{"yesterday's window does not keep today open", "2026-12-08T07:00:00Z", lead, utc("2026-12-07T08:00:00Z"), none, v1alpha1.ScheduleWindowClosed,
			"2026-12-08T08:00:00Z", "2026-12-08T07:50:00Z", "2026-12-08T18:00:00Z", ""},
		{"started by hand after the stop", "2026-12-07T21:00:00Z", lead, none, utc("2026-12-07T20:30:00Z"), v1alpha1.ScheduleWindowResumed,
			"2026-12-08T08:00:00Z", "2026-12-08T07:50:00Z", "2026-12-08T18:00:00Z", ""},
		{"a start by hand before the stop has ended", "2026-12-07T21:00:00Z", lead, none, utc("2026-12-07T17:00:00Z"), v1alpha1.ScheduleWindowClosed,
			"2026-12-08T08:00:00Z", "2026-12-08T07:50:00Z", "2026-12-08T18:00:00Z", ""},
	}
	for _, c := range cases {
		d := s.Decide(utc(c.now), c.lead, c.wasOpenFor, c.resumed)
		got := []string{string(d.Window), fmtTime(d.NextStart), fmtTime(d.LaunchAt), fmtTime(d.NextStop), fmtTime(d.WindowStart)}
		want := []string{string(c.window), c.nextStart, c.launchAt, c.nextStop, c.windowStartAt}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: window, next start, launch at, next stop, window start = %v, want %v", c.name, got, want)
		}
	}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// TestWake: a closed window wakes at the launch, an open one at its stop.
func TestWake(t *testing.T) {
	s := mustParse(t, "", "0 9 * * *", "0 19 * * *")
	if got := s.Decide(utc("2026-12-07T06:00:00Z"), time.Hour, time.Time{}, time.Time{}).Wake(utc("2026-12-07T06:00:00Z")); !got.Equal(utc("2026-12-07T08:00:00Z")) {
		t.Errorf("closed: wake at %s, want the launch at 08:00", got)
	}
	if got := s.Decide(utc("2026-12-07T08:30:00Z"), time.Hour, time.Time{}, time.Time{}).Wake(utc("2026-12-07T08:30:00Z")); !got.Equal(utc("2026-12-07T19:00:00Z")) {
		t.Errorf("open: wake at %s, want the stop at 19:00", got)
	}
}
