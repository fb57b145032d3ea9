// Package metrics defines xdrive's Prometheus metrics, served on the manager's metrics endpoint.
package metrics

import (
	"context"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/xdrive-io/xdrive/internal/cloud"
)

var (
	// DrivesByState counts XDrives by their state (the Ready reason).
	DrivesByState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "xdrive_drives", Help: "XDrives by state (Archived, Restoring, Attached, Snapshotting, ...).",
	}, []string{"state"})
	// SnapshotsTaken counts snapshots by outcome (started, completed, failed).
	SnapshotsTaken = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xdrive_snapshots_total", Help: "Drive snapshots by outcome.",
	}, []string{"outcome"})
	// SnapshotDuration observes the time from CreateSnapshot to completed.
	SnapshotDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "xdrive_snapshot_duration_seconds", Help: "Time from snapshot start to completed.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 14),
	})
	// Interruptions counts interruption notices handled, by kind.
	Interruptions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xdrive_interruptions_total", Help: "Interruption notices handled, by kind.",
	}, []string{"kind"})
	// NoticeToSnapshot observes the time from a notice reaching the operator to CreateSnapshot.
	NoticeToSnapshot = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "xdrive_notice_to_snapshot_seconds", Help: "Time from an interruption notice to CreateSnapshot.",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
	})
	// AWSCalls counts AWS API calls by service, action and error code ("" on success).
	AWSCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xdrive_aws_api_calls_total", Help: "AWS API calls by service, action and error code.",
	}, []string{"service", "action", "code"})
	// HourlyCost is the estimated hourly cost of running Workstations (spot price where known).
	HourlyCost = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "xdrive_workstation_hourly_cost_usd", Help: "Estimated hourly cost of each running Workstation (spot price at launch).",
	}, []string{"namespace", "workstation"})
	// GarbageCollected counts what the garbage collector did to unreferenced resources.
	GarbageCollected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xdrive_garbage_collected_total", Help: "Actions of the garbage collector on unreferenced owned resources, by resource and action.",
	}, []string{"resource", "action"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(DrivesByState, SnapshotsTaken, SnapshotDuration, Interruptions,
		NoticeToSnapshot, AWSCalls, HourlyCost, GarbageCollected)
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

// Since returns the seconds elapsed since t.
func Since(t time.Time) float64 { return time.Since(t).Seconds() }
