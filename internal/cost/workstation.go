package cost

import (
	"math/big"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// Observe brings a Workstation's ledger in line with its current instance,
// at the end of each reconcile: it opens the current instance's launch (from
// EC2's launch time, so time before a lost status write counts too), and
// folds the time at the old price into instanceUSD when the price changes.
// A launch whose instance is no longer current but was not closed (it should
// have been, by Close) ends now. It changes nothing when nothing changed.
func Observe(st *v1alpha1.WorkstationStatus, now time.Time) {
	c := st.Cost
	if c != nil && c.Open != nil && c.Open.InstanceID != st.InstanceID {
		closeOpen(c, c.Open.Since.Time, now)
	}
	if st.InstanceID == "" || st.InstanceID == lastCounted(st.Cost) {
		if c != nil {
			rollMonth(c, now)
		}
		return
	}
	if c == nil {
		c = &v1alpha1.WorkstationCost{}
		st.Cost = c
	}
	switch {
	case c.Open == nil:
		c.Open = &v1alpha1.OpenLaunchCost{InstanceID: st.InstanceID,
			Since: metav1.NewTime(timeOf(st.LaunchTime, now)), PricePerHour: st.PricePerHour}
	case c.Open.PricePerHour != st.PricePerHour:
		at := maxTime(now, c.Open.Since.Time)
		fold(c, c.Open.PricePerHour, c.Open.Since.Time, at)
		c.Open.Since, c.Open.PricePerHour = metav1.NewTime(at), st.PricePerHour
	}
	rollMonth(c, now)
}

// Close adds the ended instance's time, up to end, to instanceUSD: once.
// The Workstation calls it when the instance is terminated, before it
// forgets the instance; end is when it was terminated or seen going.
func Close(st *v1alpha1.WorkstationStatus, instanceID string, end time.Time) {
	if instanceID == "" || instanceID == lastCounted(st.Cost) {
		return
	}
	if st.Cost == nil || st.Cost.Open == nil || st.Cost.Open.InstanceID != instanceID {
		// Never observed open (a status from before the ledger): count it from its launch.
		if st.InstanceID != instanceID || st.LaunchTime == nil {
			return
		}
		Observe(st, st.LaunchTime.Time)
	}
	launched := st.Cost.Open.Since.Time
	if st.InstanceID == instanceID && st.LaunchTime != nil && st.LaunchTime.Time.Before(launched) {
		launched = st.LaunchTime.Time
	}
	closeOpen(st.Cost, launched, end)
}

// MinimumBilled is the least instance time EC2 bills a launch: per-second
// billing counts at least a minute, however soon the instance ends.
const MinimumBilled = time.Minute

// closeOpen folds the open launch into instanceUSD up to end, or up to a
// minute after launched if it ended sooner.
func closeOpen(c *v1alpha1.WorkstationCost, launched, end time.Time) {
	o := c.Open
	end = maxTime(end, launched.Add(MinimumBilled))
	fold(c, o.PricePerHour, o.Since.Time, end)
	c.Launches++
	c.LastCountedInstanceID, c.Open = o.InstanceID, nil
}

func lastCounted(c *v1alpha1.WorkstationCost) string {
	if c == nil {
		return ""
	}
	return c.LastCountedInstanceID
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// InstanceUSD is a Workstation's instance cost over its life up to now: the
// ledger's amount plus the current launch's time since it was last folded
// (since its launch, if the ledger has not opened it yet).
func InstanceUSD(st *v1alpha1.WorkstationStatus, now time.Time) string {
	total := new(big.Rat)
	c := st.Cost
	if c != nil {
		total.Add(total, parse(c.InstanceUSD))
	}
	switch {
	case c != nil && c.Open != nil && c.Open.InstanceID == st.InstanceID:
		total.Add(total, over(c.Open.PricePerHour, c.Open.Since.Time, now))
	case st.InstanceID != "" && st.InstanceID != lastCounted(c) && st.LaunchTime != nil:
		total.Add(total, over(st.PricePerHour, st.LaunchTime.Time, now))
	}
	return format(total, usdDecimals)
}

// Launches is how many launches InstanceUSD counts: the ended ones and the current one.
func Launches(st *v1alpha1.WorkstationStatus) int32 {
	n := int32(0)
	if st.Cost != nil {
		n = st.Cost.Launches
	}
	if st.InstanceID != "" && st.InstanceID != lastCounted(st.Cost) {
		n++
	}
	return n
}
