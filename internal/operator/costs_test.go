package operator

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cost"
	"github.com/xdrive-io/xdrive/internal/metrics"
)

// TestBudgetMetrics: the month's spend is summed by namespace and class
// from the cache, and each class's limits are reported by scope.
func TestBudgetMetrics(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	month := metav1.NewTime(cost.MonthStart(time.Now()))
	ws := func(ns, name, class, spent string) *v1alpha1.Workstation {
		w := &v1alpha1.Workstation{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		w.Status.Class = &v1alpha1.ResolvedClass{Name: class}
		w.Status.Cost = &v1alpha1.WorkstationCost{InstanceUSD: "100", Month: &v1alpha1.MonthCost{Start: month, InstanceUSD: spent}}
		return w
	}
	last := metav1.NewTime(month.AddDate(0, -1, 0))
	old := ws("alice", "old", "gpu", "7") // last month's share: none of it this month
	old.Status.Cost.Month.Start = last
	cls := &v1alpha1.WorkstationClass{ObjectMeta: metav1.ObjectMeta{Name: "gpu"},
		Spec: v1alpha1.WorkstationClassSpec{Budget: &v1alpha1.ClassBudget{MonthlyUSDPerNamespace: "50", MonthlyUSDPerWorkstation: "20.5"}}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(ws("alice", "a", "gpu", "2.5"), ws("alice", "b", "gpu", "1"),
		ws("bob", "c", "cpu", "0.25"), old, cls, &v1alpha1.WorkstationClass{ObjectMeta: metav1.ObjectMeta{Name: "free"}}).Build()
	costMetrics(c)
	defer func() {
		for _, s := range []*metrics.Sampled{metrics.WorkstationCost, metrics.WorkstationMonthCost, metrics.BudgetLimit, metrics.DriveStorageCost} {
			s.SetSource(nil)
		}
	}()
	want := `
# HELP xdrive_workstation_month_cost_usd Instance time times price of the Workstations in the current calendar month (UTC) up to now (status.cost.month), USD, by namespace and class: what a class's budget counts.
# TYPE xdrive_workstation_month_cost_usd gauge
xdrive_workstation_month_cost_usd{class="gpu",namespace="alice"} 3.5
xdrive_workstation_month_cost_usd{class="cpu",namespace="bob"} 0.25
# HELP xdrive_budget_limit_usd The monthly budget of each WorkstationClass (spec.budget), USD, by class and scope: namespace (all of a namespace's Workstations of the class) or workstation (each).
# TYPE xdrive_budget_limit_usd gauge
xdrive_budget_limit_usd{class="gpu",scope="namespace"} 50
xdrive_budget_limit_usd{class="gpu",scope="workstation"} 20.5
`
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics.WorkstationMonthCost, metrics.BudgetLimit)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}
