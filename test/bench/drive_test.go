package bench

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/operator"
	"github.com/xdrive-io/xdrive/test/harness"
)

// initSpeedup is how much faster than real time the fault proxy loads a
// restored volume's blocks: a 100 GiB restore at 300 MiB/s takes 341 s on
// EBS, 5.7 s here. Its default (lazy) rate is 50 MiB/s.
const initSpeedup = 60

// BenchmarkTimeToDrive: from spec.state Running (and from the new instance
// running) to a Ready Workstation whose 100 GiB drive is fully initialized (Hydrated), for a
// restore at EBS's default rate, at a provisioned 300 MiB/s, and a reattach
// of the kept volume (keepVolumeForMinutes); and, after a spot interruption whose
// snapshot the fault proxy holds pending for XDRIVE_BENCH_HOLD (10m), from
// the notice to the same point, by reattach and by restore (tolerance 0).
// Initialization runs initSpeedup times faster than on EBS.
func BenchmarkTimeToDrive(b *testing.B) {
	for _, c := range []struct {
		name string
		rate int32
		keep bool
	}{{"cold-default", 0, false}, {"cold-300MiBps", 300, false}, {"warm-reattach", 0, true}} {
		b.Run(c.name, func(b *testing.B) {
			h := start(b, operator.Options{PollInterval: time.Minute})
			h.Proxy.SetInitialization(50, initSpeedup)
			xd := h.NewDrive("home", 100)
			xd.Spec.InitializationRateMiBps = c.rate
			if c.keep {
				xd.Spec.KeepVolumeForMinutes = 60
			}
			h.Create(xd, h.NewWorkstation("dev", "home", []string{"t3.large"}, "us-east-1a"))
			h.Eventually(5*time.Minute, "Ready", h.WorkstationReady("dev"))
			old := h.Workstation("dev").Status.InstanceID
			h.SetState("dev", v1alpha1.WorkstationStateStopped)
			atRest := v1alpha1.XDrivePhaseArchived
			if c.keep {
				atRest = v1alpha1.XDrivePhaseKept
			}
			h.Eventually(5*time.Minute, string(atRest), h.DrivePhase("home", atRest))
			h.Eventually(time.Minute, "Stopped", h.WorkstationPhase("dev", v1alpha1.WorkstationPhaseStopped))
			began := time.Now()
			h.SetState("dev", v1alpha1.WorkstationStateRunning)
			fromStart, took := usableDrive(b, h, old, began)
			b.ReportMetric(fromStart.Seconds(), "s-start-to-usable")
			b.ReportMetric(took.Seconds(), "s-running-to-usable")
			b.Logf("%s: spec.state Running to Ready and Hydrated in %.1f s, of it instance running to that %.1f s (%s)",
				c.name, fromStart.Seconds(), took.Seconds(), h.Drive("home").Status.Initialization.Type)
		})
	}
	for _, c := range []struct {
		name      string
		tolerance int32
	}{{"interruption-reattach", 20}, {"interruption-restore", 0}} {
		b.Run(c.name, func(b *testing.B) {
			hold := 10 * time.Minute
			if d, err := time.ParseDuration(os.Getenv("XDRIVE_BENCH_HOLD")); err == nil {
				hold = d
			}
			h := harness.New(b, harness.Config{Env: harness.Env(b), Options: operator.Options{
				PollInterval: time.Minute, QueueName: "bench-interruptions", CreateQueue: true}})
			h.Proxy.SetInitialization(50, initSpeedup)
			h.Proxy.SetSpotPrice("t3.large", "us-east-1a", "0.0200")
			h.Proxy.SetSpotPrice("t3.large", "us-east-1b", "0.0300")
			h.Proxy.SetSpotPrice("m5.large", "us-east-1a", "0.0340")
			h.Proxy.SetSpotPrice("m5.large", "us-east-1b", "0.0500")
			h.Start()
			ws := h.NewWorkstation("dev", "home", []string{"t3.large", "m5.large"}, "us-east-1a", "us-east-1b")
			ws.Spec.ReattachPriceTolerancePercent = ptr.To(c.tolerance)
			h.Create(h.NewDrive("home", 100), ws)
			h.Eventually(5*time.Minute, "Ready", h.WorkstationReady("dev"))
			old := h.Workstation("dev").Status.InstanceID
			h.Proxy.HoldSnapshots(true)
			release := time.AfterFunc(hold, func() { h.Proxy.HoldSnapshots(false) })
			defer release.Stop()
			sent := time.Now()
			warn(b, h, old)
			fromNotice, took := usableDrive(b, h, old, sent)
			b.ReportMetric(fromNotice.Seconds(), "s-notice-to-usable")
			b.ReportMetric(took.Seconds(), "s-running-to-usable")
			st := h.Workstation("dev").Status
			b.Logf("%s (snapshot held %s): notice to Ready and Hydrated %.1f s, of it state running to that %.1f s; relaunched in %s, reattached %q",
				c.name, hold, fromNotice.Seconds(), took.Seconds(), st.AvailabilityZone, st.ReattachVolumeID)
		})
	}
}

// usableDrive waits until the Workstation runs an instance other than old,
// is Ready, and its drive is Hydrated. It returns the time since since and
// since the new instance was first seen running.
func usableDrive(b *testing.B, h *harness.Harness, old string, since time.Time) (time.Duration, time.Duration) {
	var running time.Time
	h.Eventually(30*time.Minute, "a usable drive", func() (bool, string) {
		st := h.Workstation("dev").Status
		if id := st.InstanceID; running.IsZero() && id != "" && id != old {
			if inst, ok := h.Instance(id); ok && inst.State != nil && inst.State.Name == ec2types.InstanceStateNameRunning {
				running = time.Now()
			}
		}
		xd := h.Drive("home").Status
		ok := !running.IsZero() && meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionReady) &&
			xd.AttachedTo == st.InstanceID && meta.IsStatusConditionTrue(xd.Conditions, v1alpha1.ConditionHydrated)
		return ok, fmt.Sprintf("workstation %s, drive %s %+v", st.Phase, xd.Phase, xd.Initialization)
	})
	now := time.Now()
	return now.Sub(since), now.Sub(running)
}

func warn(b *testing.B, h *harness.Harness, instanceID string) {
	_, err := eventbridge.NewFromConfig(h.AWSConfig()).PutEvents(context.Background(), &eventbridge.PutEventsInput{
		Entries: []ebtypes.PutEventsRequestEntry{{
			Source: aws.String("aws.ec2"), DetailType: aws.String("EC2 Spot Instance Interruption Warning"),
			Detail:    aws.String(fmt.Sprintf(`{"instance-id":%q,"instance-action":"terminate"}`, instanceID)),
			Resources: []string{"arn:aws:ec2:us-east-1a:123456789012:instance/" + instanceID},
		}}})
	if err != nil {
		b.Fatalf("PutEvents: %v", err)
	}
}
