package integration_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/operator"
	"github.com/xdrive-io/xdrive/test/harness"
)

func spotWarning(t *testing.T, h *harness.Harness, instanceID string) {
	t.Helper()
	eb := eventbridge.NewFromConfig(h.AWSConfig())
	out, err := eb.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
		Source:     aws.String("aws.ec2"),
		DetailType: aws.String("EC2 Spot Instance Interruption Warning"),
		Detail:     aws.String(fmt.Sprintf(`{"instance-id":%q,"instance-action":"terminate"}`, instanceID)),
		Resources:  []string{"arn:aws:ec2:us-east-1b:123456789012:instance/" + instanceID},
	}}})
	if err != nil {
		t.Fatalf("PutEvents: %v", err)
	}
	if out.FailedEntryCount != 0 {
		t.Fatalf("PutEvents: %d entries failed", out.FailedEntryCount)
	}
}

func interruptionHarness(t *testing.T) *harness.Harness {
	h := harness.New(t, harness.Config{Env: requireEnv(t), Options: operator.Options{
		QueueName: "xdrive-interruptions", CreateQueue: true, PollInterval: time.Minute,
	}})
	h.Proxy.SetSpotPrice("t3.large", "us-east-1a", "0.0200")
	h.Proxy.SetSpotPrice("t3.large", "us-east-1b", "0.0300")
	h.Start()
	return h
}

// TestSpotInterruptionRelaunchesElsewhere: a notice leads to a flushed
// snapshot, then a relaunch in another zone from that snapshot.
func TestSpotInterruptionRelaunchesElsewhere(t *testing.T) {
	h := interruptionHarness(t)
	h.Create(h.NewDrive("data", 10), h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a", "us-east-1b"))
	h.Eventually(converge, "workstation Ready", h.WorkstationReady("box"))
	first := h.Workstation("box").Status
	if first.AvailabilityZone != "us-east-1a" {
		t.Fatalf("first launch in %s, want the cheaper us-east-1a", first.AvailabilityZone)
	}

	spotWarning(t, h, first.InstanceID)
	h.Eventually(converge, "relaunch in us-east-1b", func() (bool, string) {
		ws := h.Workstation("box")
		ready := meta.IsStatusConditionTrue(ws.Status.Conditions, v1alpha1.ConditionReady)
		return ready && ws.Status.InstanceID != first.InstanceID, fmt.Sprintf("%+v", ws.Status)
	})
	ws := h.Workstation("box")
	if ws.Status.AvailabilityZone != "us-east-1b" || ws.Status.Interruptions != 1 || ws.Status.LastInterruptionTime == nil {
		t.Fatalf("after interruption: zone %s, interruptions %d", ws.Status.AvailabilityZone, ws.Status.Interruptions)
	}
	// The interrupted launch is counted once, at its price; the relaunch is open at its own.
	if c := ws.Status.Cost; c == nil || c.Launches != 1 || c.LastCountedInstanceID != first.InstanceID ||
		c.Open == nil || c.Open.InstanceID != ws.Status.InstanceID || c.Open.PricePerHour != ws.Status.PricePerHour {
		t.Fatalf("status.cost after the interruption = %+v", c)
	}
	xd := h.Drive("data")
	vol, ok := h.Volume(xd.Status.VolumeID)
	if !ok || aws.ToString(vol.SnapshotId) != xd.Status.LatestSnapshotID || xd.Status.LatestSnapshotID == "" {
		t.Fatalf("relaunched volume %s is not restored from the interruption snapshot %s", xd.Status.VolumeID, xd.Status.LatestSnapshotID)
	}
	snaps := h.Snapshots()
	if len(snaps) != 1 {
		t.Fatalf("snapshots = %d, want exactly 1", len(snaps))
	}
	if h.Agent.Releases() != 1 {
		t.Fatalf("flushes = %d, want 1 before the snapshot", h.Agent.Releases())
	}

	// The same notice again, and one for an unknown instance, change nothing.
	spotWarning(t, h, first.InstanceID)
	spotWarning(t, h, "i-0123456789abcdef0")
	time.Sleep(3 * time.Second)
	ws = h.Workstation("box")
	if ws.Status.Interruptions != 1 || len(h.Instances()) != 1 || len(h.Snapshots()) != 1 {
		t.Fatalf("duplicate or unknown notice changed state: interruptions %d, instances %d, snapshots %d",
			ws.Status.Interruptions, len(h.Instances()), len(h.Snapshots()))
	}
}

// TestInterruptionPolicyStop keeps the Workstation stopped after a notice.
func TestInterruptionPolicyStop(t *testing.T) {
	h := interruptionHarness(t)
	ws := h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a")
	ws.Spec.InterruptionPolicy = v1alpha1.InterruptionPolicyStop
	h.Create(h.NewDrive("data", 10), ws)
	h.Eventually(converge, "workstation Ready", h.WorkstationReady("box"))
	spotWarning(t, h, h.Workstation("box").Status.InstanceID)
	h.Eventually(converge, "drive archived", h.DriveState("data", v1alpha1.ReasonArchived))
	h.Eventually(converge, "no instance", func() (bool, string) { return len(h.Instances()) == 0, "instances" })
	h.Eventually(converge, "workstation stopped", func() (bool, string) {
		status, reason := harness.ReadyReason(h.Workstation("box").Status.Conditions)
		return status == "False" && reason == v1alpha1.ReasonStopped, string(status) + "/" + reason
	})
	if n := len(h.Instances()); n != 0 {
		t.Fatalf("instances = %d after an interruption with policy Stop, want 0", n)
	}
}

// TestVanishedInstanceIsSnapshotted: an instance terminated with no notice
// still ends with a snapshot of its surviving volume, and a relaunch.
func TestVanishedInstanceIsSnapshotted(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t), Options: operator.Options{PollInterval: time.Second}})
	h.Start()
	h.Create(h.NewDrive("data", 10), h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a", "us-east-1b"))
	h.Eventually(converge, "workstation Ready", h.WorkstationReady("box"))
	first := h.Workstation("box").Status.InstanceID
	volume := h.Drive("data").Status.VolumeID
	if _, err := h.EC2.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{first}}); err != nil {
		t.Fatal(err)
	}
	h.Eventually(converge, "relaunch", func() (bool, string) {
		ws := h.Workstation("box")
		return ws.Status.InstanceID != "" && ws.Status.InstanceID != first &&
			meta.IsStatusConditionTrue(ws.Status.Conditions, v1alpha1.ConditionReady), fmt.Sprintf("%+v", ws.Status)
	})
	var fromVolume int
	for _, s := range h.Snapshots() {
		if aws.ToString(s.VolumeId) == volume {
			fromVolume++
		}
	}
	if fromVolume != 1 {
		t.Fatalf("snapshots of the vanished instance's volume = %d, want 1", fromVolume)
	}
	if _, exists := h.Volume(volume); exists {
		t.Fatalf("old volume %s was not deleted after its snapshot", volume)
	}
	if h.Agent.Releases() != 0 {
		t.Fatalf("a vanished instance cannot be flushed, but %d releases were recorded", h.Agent.Releases())
	}
}
