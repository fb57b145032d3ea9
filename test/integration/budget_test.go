package integration_test

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/controller/workstation"
	"github.com/xdrive-io/xdrive/internal/cost"
	"github.com/xdrive-io/xdrive/test/harness"
)

// TestBudgetStopsSafely: a class's monthly budget per namespace (summed from
// the cache) warns at 80% (an Event, a notice on the instance), then stops
// the Workstation through the normal teardown at 100%: the drive flushed,
// its snapshot completed, its volume deleted, spec.state still Running, and
// Ready False with reason BudgetExceeded until the month's turn. Nothing
// relaunches it until the limit is raised; then it starts again. The
// instance is priced by the class at $3.60/h, a tenth of a cent a second.
// Once deleted, its spend stays in the namespace's sum (the class's
// status.retiredSpend): a new Workstation under a limit it meets never launches.
func TestBudgetStopsSafely(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	cls := newClass(h, "budget", map[string]string{corev1.LabelMetadataName: h.Namespace})
	cls.Spec.OnDemandPrices = []v1alpha1.InstanceTypePrice{{InstanceType: "t3.large", PricePerHour: "3.6"}}
	cls.Spec.Budget = &v1alpha1.ClassBudget{MonthlyUSDPerNamespace: "1000"}
	h.Create(cls)
	h.Start()
	ws := h.NewWorkstation("spender", "spender-data", []string{"t3.large"}, "us-east-1a")
	ws.Spec.ClassName, ws.Spec.CapacityType = cls.Name, v1alpha1.CapacityTypeOnDemand
	h.Create(h.NewDrive("spender-data", 10), ws)
	h.Eventually(converge, "spender Ready", h.WorkstationReady("spender"))
	first := h.Workstation("spender")
	if first.Status.PricePerHour != "3.6" || first.Status.Budget == nil || first.Status.Budget.WarningTime != nil {
		t.Fatalf("spender at $%s/h, status.budget %+v; want the class's price and a budget far from its limit", first.Status.PricePerHour, first.Status.Budget)
	}
	volumeID := h.Drive("spender-data").Status.VolumeID
	addr := first.Status.PublicIP
	if addr == "" {
		addr = first.Status.PrivateIP
	}

	// Four cents spent, the limit is set to 125% of the spend: warned at
	// once, and spent some 10 s later with nothing else happening.
	var spent string
	h.Eventually(converge, "four cents spent", func() (bool, string) {
		spent = cost.MonthUSD(&h.Workstation("spender").Status, time.Now())
		return !cost.Less(spent, "0.04"), "spent " + spent
	})
	limit := cost.Scale(spent, 5, 4)
	updateClass(t, h, cls.Name, func(c *v1alpha1.WorkstationClass) {
		c.Spec.Budget = &v1alpha1.ClassBudget{MonthlyUSDPerNamespace: limit}
	})
	h.Eventually(converge, "spender stopped by its budget", func() (bool, string) {
		w := h.Workstation("spender")
		status, reason := harness.ReadyReason(w.Status.Conditions)
		return w.Status.Phase == v1alpha1.WorkstationPhaseStopped && status == "False" && reason == v1alpha1.ReasonBudgetExceeded,
			fmt.Sprintf("phase %s, Ready %s/%s, budget %+v", w.Status.Phase, status, reason, w.Status.Budget)
	})
	stopped := h.Workstation("spender")
	b := stopped.Status.Budget
	nextMonth := cost.NextMonth(time.Now())
	if stopped.Spec.State != v1alpha1.WorkstationStateRunning || stopped.Generation != first.Generation {
		t.Fatalf("the budget stop wrote the spec: state %s, generation %d (was %d)", stopped.Spec.State, stopped.Generation, first.Generation)
	}
	if b == nil || b.ExceededTime == nil || b.WarningTime == nil || b.Scope != v1alpha1.BudgetScopeNamespace || b.LimitUSD != limit ||
		b.StoppedUntil == nil || !b.StoppedUntil.Time.Equal(nextMonth) || cost.Less(b.SpentUSD, limit) {
		t.Fatalf("status.budget %+v; want warned, exceeded at the namespace's limit %s, stopped until %s", b, limit, nextMonth)
	}
	if ready := readyMessage(stopped); !strings.Contains(ready, "starts again at "+nextMonth.Format(time.RFC3339)) {
		t.Errorf("Ready's message does not say until when: %q", ready)
	}
	if !b.WarningTime.Before(b.ExceededTime) {
		t.Errorf("warned at %s, stopped at %s: the warning came no sooner", b.WarningTime, b.ExceededTime)
	}
	for _, reason := range []string{v1alpha1.ReasonBudgetWarning, v1alpha1.ReasonBudgetExceeded} {
		if ok, events := h.FindEvent("Workstation", "spender", reason); !ok {
			t.Fatalf("no %s Event; events: %s", reason, events)
		}
	}
	if !slices.ContainsFunc(h.Agent.Calls(), func(c string) bool { return strings.HasPrefix(c, "notify "+addr+" budget ") }) {
		t.Fatalf("no budget notice to %s at the warning; calls: %q", addr, h.Agent.Calls())
	}
	// The normal stop: flushed over the agent, snapshot completed, volume deleted.
	if ok, events := h.FindEvent("Workstation", "spender", v1alpha1.ReasonStopping, "flushed the drive"); !ok {
		t.Fatalf("the budget stop did not flush the drive over the agent; events: %s", events)
	}
	h.Eventually(converge, "spender's drive archived", h.DriveState("spender-data", v1alpha1.ReasonArchived))
	xd := h.Drive("spender-data")
	if xd.Status.LatestSnapshotID == "" || xd.Status.VolumeID != "" {
		t.Fatalf("the drive after the budget stop = %+v, want a snapshot and no volume", xd.Status)
	}
	for _, sn := range h.DriveSnapshots("spender-data") {
		if *sn.SnapshotId == xd.Status.LatestSnapshotID && sn.State != "completed" {
			t.Fatalf("the drive's snapshot %s is %s", *sn.SnapshotId, sn.State)
		}
	}
	h.Eventually(converge, "the running drive's volume deleted", func() (bool, string) {
		vol, found := h.Volume(volumeID)
		return !found || vol.State == "deleted", fmt.Sprintf("volume %s is %s", volumeID, vol.State)
	})
	// Nothing relaunches it while the limit stands.
	h.Consistently(5*time.Second, "spender stays stopped", func() (bool, string) {
		w := h.Workstation("spender")
		live := h.LiveWorkstationInstances("spender")
		return w.Status.Phase == v1alpha1.WorkstationPhaseStopped && len(live) == 0,
			fmt.Sprintf("phase %s, %d live instances", w.Status.Phase, len(live))
	})

	// The stop lives in status: a manager that restarts keeps it, and the month's spend.
	monthBefore := h.Workstation("spender").Status.Cost.Month.DeepCopy()
	h.Restart()
	h.Consistently(5*time.Second, "spender stays stopped after a restart", func() (bool, string) {
		w := h.Workstation("spender")
		live := h.LiveWorkstationInstances("spender")
		return w.Status.Phase == v1alpha1.WorkstationPhaseStopped && workstation.BudgetStopped(w) && len(live) == 0,
			fmt.Sprintf("phase %s, budget %+v, %d live instances", w.Status.Phase, w.Status.Budget, len(live))
	})
	if m := h.Workstation("spender").Status.Cost.Month; m == nil || m.InstanceUSD != monthBefore.InstanceUSD || !m.Start.Equal(&monthBefore.Start) {
		t.Fatalf("the month's spend after a restart: %+v, before %+v", m, monthBefore)
	}

	// Raising the limit lifts the stop: spender starts again, on a new instance.
	raised := new(big.Rat).Mul(new(big.Rat).SetInt64(2), mustRat(t, limit))
	updateClass(t, h, cls.Name, func(c *v1alpha1.WorkstationClass) {
		c.Spec.Budget = &v1alpha1.ClassBudget{MonthlyUSDPerNamespace: raised.FloatString(6)}
	})
	h.Eventually(converge, "spender Ready again", h.WorkstationReady("spender"))
	again := h.Workstation("spender")
	if again.Status.InstanceID == first.Status.InstanceID || again.Status.Budget == nil || again.Status.Budget.ExceededTime != nil {
		t.Fatalf("after the raise: instance %s (was %s), status.budget %+v", again.Status.InstanceID, first.Status.InstanceID, again.Status.Budget)
	}
	if ok, events := h.FindEvent("Workstation", "spender", v1alpha1.ReasonBudgetRestored, "raised"); !ok {
		t.Fatalf("no BudgetRestored Event; events: %s", events)
	}

	// Deleting the Workstation does not take its spend out of the namespace's sum:
	// the class keeps it, and a new Workstation under a limit it already meets never launches.
	h.Delete(again)
	h.Eventually(converge, "spender gone", func() (bool, string) {
		return !h.Exists(&v1alpha1.Workstation{}, "spender"), "spender still stored"
	})
	before := mustRat(t, monthBefore.InstanceUSD) // the first launch's; the second one's (a minute at least) adds to it
	var kept v1alpha1.RetiredSpend
	stored := &v1alpha1.WorkstationClass{}
	if err := h.Client.Get(context.Background(), types.NamespacedName{Name: cls.Name}, stored); err != nil {
		t.Fatal(err)
	}
	if stored.Status == nil {
		t.Fatalf("WorkstationClass %s has no status after spender's deletion", cls.Name)
	}
	for _, r := range stored.Status.RetiredSpend {
		if r.Namespace == h.Namespace {
			kept = r
		}
	}
	if !kept.Month.Time.Equal(cost.MonthStart(time.Now())) || mustRat(t, kept.InstanceUSD).Cmp(before) <= 0 || !slices.Contains(kept.Workstations, string(again.UID)) {
		t.Fatalf("the class's retired spend for %s: %+v; want this month's, more than the %s of the first launch, naming %s",
			h.Namespace, kept, before.FloatString(6), again.UID)
	}
	updateClass(t, h, cls.Name, func(c *v1alpha1.WorkstationClass) {
		c.Spec.Budget = &v1alpha1.ClassBudget{MonthlyUSDPerNamespace: kept.InstanceUSD}
	})
	next := h.NewWorkstation("successor", "spender-data", []string{"t3.large"}, "us-east-1a")
	next.Spec.ClassName, next.Spec.CapacityType = cls.Name, v1alpha1.CapacityTypeOnDemand
	h.Create(next)
	h.Eventually(converge, "successor stopped by the deleted Workstation's spend", func() (bool, string) {
		w := h.Workstation("successor")
		status, reason := harness.ReadyReason(w.Status.Conditions)
		return w.Status.Phase == v1alpha1.WorkstationPhaseStopped && reason == v1alpha1.ReasonBudgetExceeded && workstation.BudgetStopped(w),
			fmt.Sprintf("phase %s, Ready %s/%s, budget %+v", w.Status.Phase, status, reason, w.Status.Budget)
	})
	if live := h.LiveWorkstationInstances("successor"); len(live) != 0 || h.Workstation("successor").Status.Launches != 0 {
		t.Fatalf("successor launched under a spent budget: %d live instances, %d launches", len(live), h.Workstation("successor").Status.Launches)
	}
}

func mustRat(t *testing.T, s string) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		t.Fatalf("not an amount: %q", s)
	}
	return r
}

func readyMessage(w *v1alpha1.Workstation) string {
	for _, c := range w.Status.Conditions {
		if c.Type == v1alpha1.ConditionReady {
			return c.Message
		}
	}
	return ""
}
