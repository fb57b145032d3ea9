// Package cost keeps the cost ledgers in a Workstation's and an XDrive's
// status: the instance time of every launch, and an estimate of the drive's
// own storage. Amounts are decimal strings of USD, computed exactly (no
// floats) and rounded to a millionth of a dollar when stored.
//
// Both ledgers are safe to replay: each change reads the ledger and writes it
// back in the same status write (with an optimistic lock), so a write that is
// lost is redone from the old ledger, and one that landed is never added again.
package cost

import (
	"math/big"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// HoursPerMonth is the month of AWS's per-GB-month prices.
const HoursPerMonth = 730

// usdDecimals is how many decimals a stored amount keeps.
const usdDecimals = 6

// parse reads a decimal string; "" and malformed strings are zero.
func parse(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok || s == "" || r.Sign() < 0 {
		return new(big.Rat)
	}
	return r
}

// format writes an amount with at most usdDecimals decimals, without
// trailing zeros; zero is "0".
func format(r *big.Rat, decimals int) string {
	s := r.FloatString(decimals)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// over is rate (USD per hour) times the time from since to until; zero if until is not after since.
func over(ratePerHour string, since, until time.Time) *big.Rat {
	d := until.Sub(since)
	if d <= 0 {
		return new(big.Rat)
	}
	hours := new(big.Rat).SetFrac64(d.Milliseconds(), int64(time.Hour/time.Millisecond))
	return hours.Mul(hours, parse(ratePerHour))
}

// add returns a + b as a stored amount.
func add(a string, b *big.Rat) string {
	return format(new(big.Rat).Add(parse(a), b), usdDecimals)
}

// Format writes an amount of USD for people: in cents, or to a hundredth of a cent under one.
func Format(usd string) string {
	r := parse(usd)
	if r.Cmp(big.NewRat(1, 100)) < 0 && r.Sign() > 0 {
		return "$" + r.FloatString(4)
	}
	return "$" + r.FloatString(2)
}

// Sum adds amounts.
func Sum(amounts ...string) string {
	total := new(big.Rat)
	for _, a := range amounts {
		total.Add(total, parse(a))
	}
	return format(total, usdDecimals)
}

// Float is an amount for a metric (metrics are floats; the API is not).
func Float(usd string) float64 {
	f, _ := parse(usd).Float64()
	return f
}

func timeOf(t *metav1.Time, fallback time.Time) time.Time {
	if t == nil || t.IsZero() {
		return fallback
	}
	return t.Time
}
