package metrics_test

import (
	"slices"
	"testing"

	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/xdrive-io/xdrive/internal/docgen"
	"github.com/xdrive-io/xdrive/internal/metrics"
)

// TestMetricsDoc: docs/metrics.md lists the metrics the manager registers
// (make docs rewrites it), and each of them is in controller-runtime's registry.
func TestMetricsDoc(t *testing.T) {
	defs := metrics.Definitions()
	if len(defs) == 0 {
		t.Fatal("no metrics defined")
	}
	// A histogram is gathered without observations; vectors need one child.
	metrics.DrivesByState.WithLabelValues("Test").Add(0)
	metrics.SnapshotsTaken.WithLabelValues("test").Add(0)
	metrics.Interruptions.WithLabelValues("test").Add(0)
	metrics.AWSCalls.WithLabelValues("test", "test", "").Add(0)
	metrics.HourlyCost.WithLabelValues("test", "test").Add(0)
	metrics.GarbageCollected.WithLabelValues("test", "test").Add(0)
	metrics.IllegalPhaseChanges.WithLabelValues("test", "test", "test").Add(0)
	for _, c := range []*metrics.Sampled{metrics.WorkstationCost, metrics.WorkstationMonthCost, metrics.BudgetLimit, metrics.DriveStorageCost} {
		c.SetSource(func() []metrics.Sample { return []metrics.Sample{{Labels: []string{"test", "test"}}} })
		defer c.SetSource(nil)
	}
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var registered []string
	for _, f := range families {
		registered = append(registered, f.GetName())
	}
	for _, d := range defs {
		if !slices.Contains(registered, d.Name) {
			t.Errorf("%s is defined but not registered", d.Name)
		}
	}
	if err := docgen.Sync("../../docs/metrics.md", docgen.Metrics(defs)); err != nil {
		t.Error(err)
	}
}
