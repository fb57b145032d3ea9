package integration_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/test/harness"
)

const converge = 60 * time.Second

// TestRoundTrip: a drive gets a volume in zone A, is archived on stop, and is
// restored from that snapshot in zone B.
func TestRoundTrip(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.Start()
	h.Create(h.NewDrive("data", 20), h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a"))

	h.Eventually(converge, "workstation Ready", h.WorkstationReady("box"))
	xd := h.Drive("data")
	if xd.Status.AvailabilityZone != "us-east-1a" || xd.Status.VolumeID == "" || xd.Status.HolderName() != "box" {
		t.Fatalf("drive status after launch = %+v", xd.Status)
	}
	if status, reason := harness.ReadyReason(xd.Status.Conditions); status != "True" || reason != v1alpha1.ReasonAttached {
		t.Fatalf("drive Ready = %s/%s after launch, want True/Attached", status, reason)
	}
	firstVolume := xd.Status.VolumeID
	if got := len(h.Instances()); got != 1 {
		t.Fatalf("live instances = %d, want 1", got)
	}

	h.UpdateWorkstation("box", func(ws *v1alpha1.Workstation) { ws.Spec.State = v1alpha1.WorkstationStateStopped })
	h.Eventually(converge, "drive Archived after stop", h.DriveState("data", v1alpha1.ReasonArchived))
	xd = h.Drive("data")
	if xd.Status.LatestSnapshotID == "" || xd.Status.VolumeID != "" || xd.Status.SnapshotCount != 1 {
		t.Fatalf("drive status after stop = %+v", xd.Status)
	}
	if status, _ := harness.ReadyReason(xd.Status.Conditions); status != "True" {
		t.Fatalf("archived drive Ready = %s, want True", status)
	}
	if _, exists := h.Volume(firstVolume); exists {
		t.Fatalf("volume %s still exists after the drive was archived", firstVolume)
	}
	h.Eventually(converge, "no live instance", func() (bool, string) { n := len(h.Instances()); return n == 0, "instances" })
	h.Eventually(converge, "workstation Stopped once its instance is terminated", h.WorkstationPhase("box", v1alpha1.WorkstationPhaseStopped))
	if status, reason := harness.ReadyReason(h.Workstation("box").Status.Conditions); status != "False" || reason != v1alpha1.ReasonStopped {
		t.Fatalf("stopped workstation Ready = %s/%s, want False/Stopped", status, reason)
	}
	if h.Agent.Releases() != 1 {
		t.Fatalf("teardown releases = %d, want 1", h.Agent.Releases())
	}
	snapshot := xd.Status.LatestSnapshotID

	h.UpdateWorkstation("box", func(ws *v1alpha1.Workstation) {
		ws.Spec.State = v1alpha1.WorkstationStateRunning
		ws.Spec.AvailabilityZones = []string{"us-east-1b"}
	})
	h.Eventually(converge, "workstation Ready again", h.WorkstationReady("box"))
	xd = h.Drive("data")
	vol, ok := h.Volume(xd.Status.VolumeID)
	if !ok {
		t.Fatalf("restored volume %s not in EC2", xd.Status.VolumeID)
	}
	if aws.ToString(vol.AvailabilityZone) != "us-east-1b" || aws.ToString(vol.SnapshotId) != snapshot {
		t.Fatalf("restored volume in %s from %s, want us-east-1b from %s",
			aws.ToString(vol.AvailabilityZone), aws.ToString(vol.SnapshotId), snapshot)
	}
	if got := len(h.Volumes()); got != 1 {
		t.Fatalf("volumes = %d, want exactly 1", got)
	}
}
