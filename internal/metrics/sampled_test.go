package metrics_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/xdrive-io/xdrive/internal/metrics"
)

// TestSampledSums sums the samples of one namespace and class at each scrape.
func TestSampledSums(t *testing.T) {
	defer metrics.WorkstationCost.SetSource(nil)
	metrics.WorkstationCost.SetSource(func() []metrics.Sample {
		return []metrics.Sample{
			{Labels: []string{"alice", "gpu"}, Value: 1.5},
			{Labels: []string{"alice", "gpu"}, Value: 2},
			{Labels: []string{"bob", "cpu"}, Value: 0.25},
		}
	})
	want := `
# HELP xdrive_workstation_cost_usd Instance time times price of every launch of the Workstations, over their life up to now (status.cost), USD, by namespace and class.
# TYPE xdrive_workstation_cost_usd gauge
xdrive_workstation_cost_usd{class="gpu",namespace="alice"} 3.5
xdrive_workstation_cost_usd{class="cpu",namespace="bob"} 0.25
`
	if err := testutil.CollectAndCompare(metrics.WorkstationCost, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	metrics.WorkstationCost.SetSource(nil)
	if n := testutil.CollectAndCount(metrics.WorkstationCost); n != 0 {
		t.Fatalf("no source, %d series", n)
	}
}
