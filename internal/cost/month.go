package cost

import (
	"math/big"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// MonthStart is the first instant of t's calendar month, UTC.
func MonthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// NextMonth is the first instant of the calendar month after t's, UTC.
func NextMonth(t time.Time) time.Time {
	return MonthStart(t).AddDate(0, 1, 0)
}

// fold adds the time from since to end at price to instanceUSD, and the
// part of it inside the ledger's month to the month's share. The month is
// first brought to end's, so a launch that straddles the turn counts in the
// new month from its first instant only.
func fold(c *v1alpha1.WorkstationCost, price string, since, end time.Time) {
	c.InstanceUSD = add(c.InstanceUSD, over(price, since, end))
	rollMonth(c, end)
	m := c.Month
	if share := over(price, maxTime(since, m.Start.Time), end); share.Sign() > 0 {
		m.InstanceUSD = add(m.InstanceUSD, share)
	}
}

// rollMonth starts the ledger's month again, at zero, when at is in a later
// month than the one it holds; it never goes back (a late or skewed time).
func rollMonth(c *v1alpha1.WorkstationCost, at time.Time) {
	start := MonthStart(at)
	if c.Month != nil && !c.Month.Start.Time.Before(start) {
		return
	}
	c.Month = &v1alpha1.MonthCost{Start: metav1.NewTime(start)}
}

// MonthUSD is what a Workstation's instances cost in now's calendar month
// (UTC) up to now: the ledger's month share, if it is this month's, plus the
// current launch's time since the later of its last fold and the month's start.
func MonthUSD(st *v1alpha1.WorkstationStatus, now time.Time) string {
	start := MonthStart(now)
	total := new(big.Rat)
	c := st.Cost
	if c != nil && c.Month != nil && c.Month.Start.Time.Equal(start) {
		total.Add(total, parse(c.Month.InstanceUSD))
	}
	switch {
	case c != nil && c.Open != nil && c.Open.InstanceID == st.InstanceID:
		total.Add(total, over(c.Open.PricePerHour, maxTime(c.Open.Since.Time, start), now))
	case st.InstanceID != "" && st.InstanceID != lastCounted(c) && st.LaunchTime != nil:
		total.Add(total, over(st.PricePerHour, maxTime(st.LaunchTime.Time, start), now))
	}
	return format(total, usdDecimals)
}

// RatePerHour is what the Workstation's current launch costs per hour, USD; "" without one.
func RatePerHour(st *v1alpha1.WorkstationStatus) string {
	c := st.Cost
	switch {
	case st.InstanceID == "" || st.InstanceID == lastCounted(c):
		return ""
	case c != nil && c.Open != nil && c.Open.InstanceID == st.InstanceID:
		return c.Open.PricePerHour
	}
	return st.PricePerHour
}

// Less reports whether amount a is below amount b.
func Less(a, b string) bool {
	return parse(a).Cmp(parse(b)) < 0
}

// Fraction is a / b as a float, for a ratio of two amounts; 0 when b is zero.
func Fraction(a, b string) float64 {
	d := parse(b)
	if d.Sign() == 0 {
		return 0
	}
	f, _ := new(big.Rat).Quo(parse(a), d).Float64()
	return f
}

// Until is how long spending at ratePerHour takes to reach limit from spent;
// ok is false when it never does (no rate) and true with 0 when it already has.
func Until(spent, limit, ratePerHour string) (time.Duration, bool) {
	left := new(big.Rat).Sub(parse(limit), parse(spent))
	if left.Sign() <= 0 {
		return 0, true
	}
	rate := parse(ratePerHour)
	if rate.Sign() == 0 {
		return 0, false
	}
	hours, _ := left.Quo(left, rate).Float64()
	const maxHours = 24 * 366
	if hours > maxHours {
		return 0, false
	}
	return time.Duration(hours * float64(time.Hour)), true
}

// Scale is amount times num / den, as a stored amount.
func Scale(amount string, num, den int64) string {
	return format(new(big.Rat).Mul(parse(amount), big.NewRat(num, den)), usdDecimals)
}
