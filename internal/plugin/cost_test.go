package plugin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// TestCost: kubectl xdrive cost sums each Workstation's instances this
// month and over their life, its drive's storage, and the namespace's total
// (each XDrive once), what deleted Workstations spent this month (kept by
// their class), and shows a budget stop.
func TestCost(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := time.Date(2026, 2, 1, 2, 0, 0, 0, time.UTC) // dev runs at $0.0208/h since 2 January, 10:00
	f.opts.Now = func() time.Time { return now }
	feb := metav1.NewTime(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	march := metav1.NewTime(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	gpu := &v1alpha1.Workstation{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "gpu"},
		Spec: v1alpha1.WorkstationSpec{DriveRef: v1alpha1.DriveReference{Name: "home"}, InstanceTypes: []string{"g5.xlarge"}}}
	xd := &v1alpha1.XDrive{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "home"}, Spec: v1alpha1.XDriveSpec{SizeGiB: 100}}
	if err := f.c.Create(ctx, gpu); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Create(ctx, xd); err != nil {
		t.Fatal(err)
	}
	gpu.Status = v1alpha1.WorkstationStatus{Phase: v1alpha1.WorkstationPhaseStopped, Class: &v1alpha1.ResolvedClass{Name: "team"},
		Cost: &v1alpha1.WorkstationCost{InstanceUSD: "12.5", Launches: 3, LastCountedInstanceID: "i-0fedcba9876543210",
			Month: &v1alpha1.MonthCost{Start: feb, InstanceUSD: "3.25"}},
		Budget: &v1alpha1.BudgetState{Month: feb, WarningTime: &feb, ExceededTime: &feb, StoppedUntil: &march,
			Scope: v1alpha1.BudgetScopeNamespace, LimitUSD: "3", SpentUSD: "3.25"}}
	if err := f.c.Status().Update(ctx, gpu); err != nil {
		t.Fatal(err)
	}
	xd.Status = v1alpha1.XDriveStatus{Phase: v1alpha1.XDrivePhaseArchived,
		Cost: &v1alpha1.DriveCost{VolumeUSD: "1.5", SnapshotUSD: "0.5", AsOf: metav1.NewTime(now.Add(-time.Hour))}}
	if err := f.c.Status().Update(ctx, xd); err != nil {
		t.Fatal(err)
	}
	// What deleted Workstations of a class spent in the namespace this month; another namespace's is not shown.
	cls := &v1alpha1.WorkstationClass{ObjectMeta: metav1.ObjectMeta{Name: "cost-" + f.ns, Annotations: map[string]string{v1alpha1.DefaultClassAnnotation: "false"}},
		Spec: v1alpha1.WorkstationClassSpec{NamespaceSelector: &metav1.LabelSelector{}}}
	if err := f.c.Create(ctx, cls); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.c.Delete(context.Background(), cls) })
	cls.Status = &v1alpha1.WorkstationClassStatus{RetiredSpend: []v1alpha1.RetiredSpend{{Namespace: f.ns, Month: feb, InstanceUSD: "1.5", Workstations: []string{"uid-old"}},
		{Namespace: f.ns + "-other", Month: feb, InstanceUSD: "7"}}}
	if err := f.c.Status().Update(ctx, cls); err != nil {
		t.Fatal(err)
	}
	out, _, err := f.run("cost")
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		rows = append(rows, strings.Join(strings.Fields(l), " "))
	}
	want := []string{
		"NAMESPACE WORKSTATION CLASS MONTH INSTANCES DRIVE TOTAL BUDGET",
		// 2 h of February and 712 h in all at $0.0208/h; the drive's $2 is shown on both, and counted once below.
		f.ns + " dev - $0.04 $14.81 $2.00 $16.81 -",
		f.ns + " gpu team $3.25 $12.50 $2.00 $14.50 stopped until 2026-03-01 (namespace limit $3.00)",
		f.ns + " (deleted) cost-" + f.ns + " $1.50 - - - -",
		f.ns + " (total) $4.79 $27.31 $2.00 $29.31",
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("cost:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
}

// TestStartWaitBudgetStopped: start --wait on a Workstation its budget
// stopped ends at once, saying until when and what lifts it.
func TestStartWaitBudgetStopped(t *testing.T) {
	f := newFixture(t)
	feb := metav1.NewTime(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	march := metav1.NewTime(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	f.setStatus("", func(st *v1alpha1.WorkstationStatus) {
		*st = v1alpha1.WorkstationStatus{Phase: v1alpha1.WorkstationPhaseStopped, Budget: &v1alpha1.BudgetState{Month: feb, ExceededTime: &feb,
			StoppedUntil: &march, Scope: v1alpha1.BudgetScopeWorkstation, LimitUSD: "5", SpentUSD: "5.01"}}
	})
	_, _, err := f.run("start", "dev", "--wait", "--timeout", "20s")
	if err == nil || !strings.Contains(err.Error(), "stopped by its class's monthly budget (workstation limit $5.00, $5.01 spent) until 2026-03-01T00:00:00Z") {
		t.Fatalf("start --wait of a budget-stopped Workstation: %v", err)
	}
}
