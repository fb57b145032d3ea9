package integration_test

import (
	"math/big"
	"testing"
	"time"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cost"
	"github.com/xdrive-io/xdrive/test/harness"
)

// TestCostAcrossLaunches: a Workstation started, stopped and started again
// shows in status.cost the sum of both launches, each its instance time at
// its own price, and its drive's storage is estimated beside it.
func TestCostAcrossLaunches(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.Start()
	h.Create(h.NewDrive("data", 20), h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a"))

	// runStop runs one launch and returns what it must have added: its price
	// times its time, between the stop being asked for and it being seen
	// stopped, and a minute at least (EC2's least billed time).
	runStop := func() (low, high *big.Rat, instanceID string) {
		t.Helper()
		h.Eventually(converge, "workstation Ready", h.WorkstationReady("box"))
		var open *v1alpha1.OpenLaunchCost
		h.Eventually(converge, "the launch opened in status.cost", func() (bool, string) {
			ws := h.Workstation("box")
			if c := ws.Status.Cost; c != nil && c.Open != nil && c.Open.InstanceID == ws.Status.InstanceID {
				open = c.Open
				return true, ""
			}
			return false, "status.cost.open"
		})
		if open.PricePerHour == "" || open.PricePerHour != h.Workstation("box").Status.PricePerHour {
			t.Fatalf("the launch is counted at %q, the instance's price is %q", open.PricePerHour, h.Workstation("box").Status.PricePerHour)
		}
		asked := time.Now()
		h.UpdateWorkstation("box", func(ws *v1alpha1.Workstation) { ws.Spec.State = v1alpha1.WorkstationStateStopped })
		h.Eventually(converge, "workstation Stopped", h.WorkstationPhase("box", v1alpha1.WorkstationPhaseStopped))
		seen := time.Now()
		at := func(end time.Time) *big.Rat {
			if least := open.Since.Add(cost.MinimumBilled); end.Before(least) {
				end = least
			}
			r, _ := new(big.Rat).SetString(open.PricePerHour)
			return r.Mul(r, new(big.Rat).SetFrac64(end.Sub(open.Since.Time).Milliseconds(), int64(time.Hour/time.Millisecond)))
		}
		return at(asked), at(seen), open.InstanceID
	}
	within := func(what, got string, low, high *big.Rat) {
		t.Helper()
		g, ok := new(big.Rat).SetString(got)
		margin := big.NewRat(1, 1_000_000) // the ledger keeps a millionth of a dollar
		if !ok || g.Cmp(new(big.Rat).Sub(low, margin)) < 0 || g.Cmp(new(big.Rat).Add(high, margin)) > 0 {
			t.Fatalf("%s = %s, want between %s and %s", what, got, low.FloatString(6), high.FloatString(6))
		}
	}

	low1, high1, first := runStop()
	c := h.Workstation("box").Status.Cost
	if c == nil || c.Launches != 1 || c.LastCountedInstanceID != first || c.Open != nil {
		t.Fatalf("status.cost after the first launch = %+v", c)
	}
	within("the first launch", c.InstanceUSD, low1, high1)
	afterFirst := c.InstanceUSD

	h.UpdateWorkstation("box", func(ws *v1alpha1.Workstation) { ws.Spec.State = v1alpha1.WorkstationStateRunning })
	low2, high2, second := runStop()
	if second == first {
		t.Fatalf("the second launch reused instance %s", first)
	}
	c = h.Workstation("box").Status.Cost
	if c.Launches != 2 || c.LastCountedInstanceID != second || c.Open != nil {
		t.Fatalf("status.cost after the second launch = %+v", c)
	}
	first1, _ := new(big.Rat).SetString(afterFirst)
	within("both launches", c.InstanceUSD, new(big.Rat).Add(first1, low2), new(big.Rat).Add(first1, high2))
	if got := cost.InstanceUSD(&h.Workstation("box").Status, time.Now().Add(time.Hour)); got != c.InstanceUSD {
		t.Fatalf("a stopped Workstation's cost grows: %s an hour later, %s now", got, c.InstanceUSD)
	}

	// The drive had a volume while it ran, and keeps a snapshot now.
	xd := h.Drive("data")
	dc := xd.Status.Cost
	if dc == nil || dc.VolumeUSDPerHour != "" || dc.SnapshotUSDPerHour == "" {
		t.Fatalf("the archived drive's status.cost = %+v", dc)
	}
	if v, _ := new(big.Rat).SetString(dc.VolumeUSD); v == nil || v.Sign() <= 0 {
		t.Fatalf("the drive's volume time was not counted: %+v", dc)
	}
}
