// Package metrics defines xdrive's Prometheus metrics, served on the manager's metrics endpoint.
package metrics

import (
	"context"
	"slices"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/xdrive-io/xdrive/internal/cloud"
)

var (
	// DrivesByState counts XDrives by their state (the Ready reason).
	DrivesByState = gauge("xdrive_drives", "XDrives by state (Archived, Restoring, Attached, Snapshotting, ...).", "state")
	// SnapshotsTaken counts snapshots by outcome (started, completed, failed).
	SnapshotsTaken = counter("xdrive_snapshots_total", "Drive snapshots by outcome.", "outcome")
	// SnapshotDuration observes the time from CreateSnapshot to completed.
	SnapshotDuration = histogram("xdrive_snapshot_duration_seconds", "Time from snapshot start to completed.",
		prometheus.ExponentialBuckets(1, 2, 14))
	// Interruptions counts interruption notices handled, by kind.
	Interruptions = counter("xdrive_interruptions_total", "Interruption notices handled, by kind.", "kind")
	// NoticeToSnapshot observes the time from a notice reaching the operator to CreateSnapshot.
	NoticeToSnapshot = histogram("xdrive_notice_to_snapshot_seconds", "Time from an interruption notice to CreateSnapshot.",
		prometheus.ExponentialBuckets(0.05, 2, 12))
	// AWSCalls counts AWS API calls by service, action and error code ("" on success).
	AWSCalls = counter("xdrive_aws_api_calls_total", "AWS API calls by service, action and error code.",
		"service", "action", "code")
	// HourlyCost is the estimated hourly cost of running Workstations (spot price where known).
	HourlyCost = gauge("xdrive_workstation_hourly_cost_usd",
		"Estimated hourly cost of each running Workstation (spot price at launch).", "namespace", "workstation")
	// WorkstationCost is what Workstations' instances have cost over their life (status.cost), summed by namespace and class.
	WorkstationCost = sampled("xdrive_workstation_cost_usd",
		"Instance time times price of every launch of the Workstations, over their life up to now (status.cost), USD, by namespace and class.",
		"namespace", "class")
	// WorkstationMonthCost is what Workstations' instances have cost this calendar month (status.cost.month), by namespace and class.
	WorkstationMonthCost = sampled("xdrive_workstation_month_cost_usd",
		"Instance time times price of the Workstations in the current calendar month (UTC) up to now (status.cost.month), USD, by namespace and class: what a class's budget counts.",
		"namespace", "class")
	// BudgetLimit is each WorkstationClass's monthly budget (spec.budget), by class and scope.
	BudgetLimit = sampled("xdrive_budget_limit_usd",
		"The monthly budget of each WorkstationClass (spec.budget), USD, by class and scope: namespace (all of a namespace's Workstations of the class) or workstation (each).",
		"class", "scope")
	// DriveStorageCost is the estimated storage cost of XDrives over their life (status.cost), by namespace and kind.
	DriveStorageCost = sampled("xdrive_drive_storage_cost_usd",
		"Estimated storage cost of the XDrives over their life up to now (status.cost), USD, by namespace and kind (volume or snapshot).",
		"namespace", "kind")
	// GarbageCollected counts what the garbage collector did to unreferenced resources.
	GarbageCollected = counter("xdrive_garbage_collected_total",
		"Actions of the garbage collector on unreferenced owned resources, by resource and action.", "resource", "action")
	// IllegalPhaseChanges counts phase changes missing from the kind's table (internal/controller/phases): bugs.
	IllegalPhaseChanges = counter("xdrive_illegal_phase_changes_total",
		"Phase changes that the kind's table of allowed changes does not list (a bug), by kind, from and to.", "kind", "from", "to")
)

// Definition describes one metric, for docs/metrics.md.
type Definition struct {
	Name, Type, Help string
	Labels           []string
}

// defined lists the metrics in the order they are defined; init registers
// exactly these.
var (
	defined    []Definition
	collectors []prometheus.Collector
)

// Definitions are the metrics the manager registers, in the order defined.
func Definitions() []Definition { return slices.Clone(defined) }

func define[C prometheus.Collector](c C, kind, name, help string, labels []string) C {
	defined = append(defined, Definition{Name: name, Type: kind, Help: help, Labels: labels})
	collectors = append(collectors, c)
	return c
}

func counter(name, help string, labels ...string) *prometheus.CounterVec {
	return define(prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels), "counter", name, help, labels)
}

func gauge(name, help string, labels ...string) *prometheus.GaugeVec {
	return define(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels), "gauge", name, help, labels)
}

func histogram(name, help string, buckets []float64) prometheus.Histogram {
	return define(prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}), "histogram", name, help, nil)
}

func init() {
	ctrlmetrics.Registry.MustRegister(collectors...)
}

// CountCalls is an aws.Config APIOptions entry that counts every call by action and error code.
func CountCalls(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("xdriveCountCalls",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleInitialize(ctx, in)
			AWSCalls.WithLabelValues(awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx), cloud.ErrorCode(err)).Inc()
			return out, md, err
		}), middleware.After)
}
