package cost

import (
	"testing"
	"time"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// jan31 is an hour before the month turns.
var jan31 = time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC)

func TestMonthStart(t *testing.T) {
	for _, tc := range []struct{ at, start, next time.Time }{
		{time.Date(2026, 1, 31, 23, 59, 59, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		// 00:30 on 1 March in UTC+2 is still February in UTC.
		{time.Date(2026, 3, 1, 0, 30, 0, 0, time.FixedZone("EET", 2*3600)), time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if got := MonthStart(tc.at); !got.Equal(tc.start) {
			t.Errorf("MonthStart(%s) = %s, want %s", tc.at, got, tc.start)
		}
		if got := NextMonth(tc.at); !got.Equal(tc.next) {
			t.Errorf("NextMonth(%s) = %s, want %s", tc.at, got, tc.next)
		}
	}
}

// A launch that straddles the month's turn counts in the new month from its
// first instant only, while it runs and once it ended; the life total keeps all of it.
func TestMonthStraddlingLaunch(t *testing.T) {
	st := &v1alpha1.WorkstationStatus{}
	launch(st, "i-1", jan31.Add(-2*time.Hour), "1") // 21:00 on 31 January
	Observe(st, jan31)
	if got := MonthUSD(st, jan31); got != "2" {
		t.Fatalf("January so far: %s, want 2", got)
	}
	feb := jan31.Add(3 * time.Hour) // 02:00 on 1 February
	if got := MonthUSD(st, feb); got != "2" {
		t.Fatalf("February so far, before any reconcile in February: %s, want 2 (00:00 to 02:00)", got)
	}
	Observe(st, feb)
	if !st.Cost.Month.Start.Time.Equal(NextMonth(jan31)) || st.Cost.Month.InstanceUSD != "" {
		t.Fatalf("the month turned: %+v", st.Cost.Month)
	}
	end(st, feb.Add(time.Hour))
	if got := MonthUSD(st, feb.Add(5*time.Hour)); got != "3" {
		t.Fatalf("February after the launch ended at 03:00: %s, want 3", got)
	}
	if got := InstanceUSD(st, feb.Add(5*time.Hour)); got != "6" {
		t.Fatalf("the life total: %s, want 6", got)
	}
}

// A launch that ended before the turn, and was closed after it (the manager
// was down), adds nothing to the new month.
func TestMonthCloseAfterTurn(t *testing.T) {
	st := &v1alpha1.WorkstationStatus{}
	launch(st, "i-1", jan31, "1")
	Observe(st, jan31)
	Close(st, "i-1", jan31.Add(30*time.Minute)) // terminated at 23:30
	st.InstanceID, st.LaunchTime, st.PricePerHour = "", nil, ""
	Observe(st, jan31.Add(2*time.Hour)) // seen at 01:00 on 1 February
	if got := MonthUSD(st, jan31.Add(2*time.Hour)); got != "0" {
		t.Fatalf("February: %s, want 0", got)
	}
	if st.Cost.InstanceUSD != "0.5" {
		t.Fatalf("life: %s", st.Cost.InstanceUSD)
	}
}

// The month's share lives in status: a manager that restarts (a new process
// reading the status written before) carries on, and a replayed write adds nothing twice.
func TestMonthAcrossRestartsAndReplays(t *testing.T) {
	st := &v1alpha1.WorkstationStatus{}
	at := time.Date(2026, 2, 10, 8, 0, 0, 0, time.UTC)
	launch(st, "i-1", at, "0.5")
	Observe(st, at)
	end(st, at.Add(4*time.Hour)) // $2
	written := st.DeepCopy()     // what the first manager wrote

	restarted := written.DeepCopy()
	launch(restarted, "i-2", at.Add(24*time.Hour), "0.25")
	Observe(restarted, at.Add(24*time.Hour))
	Close(restarted, "i-2", at.Add(28*time.Hour)) // $1
	replay := restarted.DeepCopy()
	Close(restarted, "i-2", at.Add(30*time.Hour)) // the same close, replayed
	if restarted.Cost.Month.InstanceUSD != "3" || replay.Cost.Month.InstanceUSD != "3" {
		t.Fatalf("month after restart and replay: %s / %s, want 3", restarted.Cost.Month.InstanceUSD, replay.Cost.Month.InstanceUSD)
	}
}

// A price change mid-launch folds the old price's time into the month too.
func TestMonthPriceChange(t *testing.T) {
	st := &v1alpha1.WorkstationStatus{}
	at := time.Date(2026, 2, 10, 8, 0, 0, 0, time.UTC)
	launch(st, "i-1", at, "1")
	Observe(st, at)
	st.PricePerHour = "3"
	Observe(st, at.Add(time.Hour))
	if got := MonthUSD(st, at.Add(2*time.Hour)); got != "4" {
		t.Fatalf("1 h at 1 and 1 h at 3: %s", got)
	}
	if st.Cost.Month.InstanceUSD != "1" || RatePerHour(st) != "3" {
		t.Fatalf("month %+v, rate %s", st.Cost.Month, RatePerHour(st))
	}
}

// A launch not yet opened by the ledger counts from the later of its launch and the month's start.
func TestMonthUnopenedLaunch(t *testing.T) {
	st := &v1alpha1.WorkstationStatus{}
	launch(st, "i-1", jan31, "2")
	if got := MonthUSD(st, jan31.Add(90*time.Minute)); got != "1" {
		t.Fatalf("from 00:00 to 00:30 at $2/h: %s", got)
	}
}

func TestUntil(t *testing.T) {
	for _, tc := range []struct {
		spent, limit, rate string
		want               time.Duration
		ok                 bool
	}{
		{"8", "10", "1", 2 * time.Hour, true},
		{"10", "10", "1", 0, true},
		{"11", "10", "", 0, true},
		{"5", "10", "", 0, false},
		{"0", "10", "0.000001", 0, false}, // beyond a year
	} {
		got, ok := Until(tc.spent, tc.limit, tc.rate)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Until(%s, %s, %s) = %s %v, want %s %v", tc.spent, tc.limit, tc.rate, got, ok, tc.want, tc.ok)
		}
	}
}
