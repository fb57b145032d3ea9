package operator

import (
	"context"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cost"
	"github.com/xdrive-io/xdrive/internal/metrics"
)

// costMetrics computes the lifetime cost gauges from the cache at each scrape.
func costMetrics(reader client.Reader) {
	list := func(l client.ObjectList) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := reader.List(ctx, l); err != nil {
			log.Log.WithName("metrics").Error(err, "Could not list objects for the cost metrics")
			return false
		}
		return true
	}
	// byClass samples each Workstation's amount, labelled by namespace and class.
	byClass := func(amount func(*v1alpha1.WorkstationStatus, time.Time) string) func() []metrics.Sample {
		return func() []metrics.Sample {
			var wss v1alpha1.WorkstationList
			if !list(&wss) {
				return nil
			}
			now := time.Now()
			out := make([]metrics.Sample, 0, len(wss.Items))
			for i := range wss.Items {
				w := &wss.Items[i]
				class := ""
				if w.Status.Class != nil {
					class = w.Status.Class.Name
				}
				out = append(out, metrics.Sample{Labels: []string{w.Namespace, class}, Value: cost.Float(amount(&w.Status, now))})
			}
			return out
		}
	}
	metrics.WorkstationCost.SetSource(byClass(cost.InstanceUSD))
	metrics.WorkstationMonthCost.SetSource(byClass(cost.MonthUSD))
	metrics.BudgetLimit.SetSource(func() []metrics.Sample {
		var classes v1alpha1.WorkstationClassList
		if !list(&classes) {
			return nil
		}
		var out []metrics.Sample
		for _, c := range classes.Items {
			if b := c.Spec.Budget; b != nil {
				for scope, limit := range map[string]string{"namespace": b.MonthlyUSDPerNamespace, "workstation": b.MonthlyUSDPerWorkstation} {
					if limit != "" {
						out = append(out, metrics.Sample{Labels: []string{c.Name, scope}, Value: cost.Float(limit)})
					}
				}
			}
		}
		return out
	})
	metrics.DriveStorageCost.SetSource(func() []metrics.Sample {
		var xds v1alpha1.XDriveList
		if !list(&xds) {
			return nil
		}
		now := time.Now()
		out := make([]metrics.Sample, 0, 2*len(xds.Items))
		for i := range xds.Items {
			x := &xds.Items[i]
			volume, snapshots := cost.DriveUSD(&x.Status, now)
			out = append(out, metrics.Sample{Labels: []string{x.Namespace, "volume"}, Value: cost.Float(volume)},
				metrics.Sample{Labels: []string{x.Namespace, "snapshot"}, Value: cost.Float(snapshots)})
		}
		return out
	})
}
