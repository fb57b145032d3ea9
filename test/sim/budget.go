package sim

import (
	"fmt"
	"time"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/test/fakeec2"
)

// seedBudget gives the default class a monthly budget in some seeds, and
// starts half of those 25 minutes before the month turns (the scenarios have none).
func (w *World) seedBudget(seed uint64) {
	w.Budget = budgetOf(seed)
	if w.Budget == nil {
		return
	}
	w.Clock.SetTime(seedStart(seed))
	w.restoreClass()
	w.logf("admin: WorkstationClass default budget %+v", w.Budget)
}

// budgetOf is the default class's monthly budget: none in most seeds; in
// a tenth, a limit per Workstation, in another tenth one per namespace, both
// small enough that a few minutes of an instance spend them. It depends on
// the seed alone, not on its stream of draws, so the other seeds play as
// they did before budgets.
func budgetOf(seed uint64) *v1alpha1.ClassBudget {
	switch seed % 10 {
	case 1, 6:
		return &v1alpha1.ClassBudget{MonthlyUSDPerWorkstation: "0.0012"}
	case 3, 8:
		return &v1alpha1.ClassBudget{MonthlyUSDPerNamespace: "0.002"}
	}
	return nil
}

// raisedBudget is an admin's raise: far above what a seed spends.
func raisedBudget() *v1alpha1.ClassBudget {
	return &v1alpha1.ClassBudget{MonthlyUSDPerNamespace: "1000"}
}

// seedStart is the seed's first instant: half the seeds with a budget start
// 25 minutes before the month turns, which lifts their stops.
func seedStart(seed uint64) time.Time {
	if seed%10 == 6 || seed%10 == 8 {
		return time.Date(2026, 1, 31, 23, 35, 0, 0, time.UTC)
	}
	return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
}

// budgetKept is I11: a Workstation its budget stopped (status.budget) gets
// no instance launched after the stop, until the stop is lifted (the month
// turns or the limit is raised, which clears it). Its stop is a teardown
// like any other, flushed before the snapshot: I1 checks that nothing of
// it is lost.
func (w *World) budgetKept(insts []fakeec2.InstanceView) error {
	for _, ws := range w.Workstations() {
		b := ws.Status.Budget
		if b == nil || b.ExceededTime == nil {
			continue
		}
		for _, i := range insts {
			// Status keeps times to the second.
			if i.Tags[cloud.TagOwnerUID] == string(ws.UID) && i.LaunchTime.Truncate(time.Second).After(b.ExceededTime.Time) {
				return fmt.Errorf("I11: Workstation %s was stopped by its budget at %s, and instance %s was launched at %s",
					ws.Name, b.ExceededTime.UTC().Format(time.RFC3339), i.ID, i.LaunchTime.UTC().Format(time.RFC3339))
			}
		}
	}
	return nil
}
