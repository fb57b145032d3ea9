package integration_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/test/faultproxy"
	"github.com/xdrive-io/xdrive/test/harness"
)

// TestConvergesUnderFaults: with throttling and server errors on a tenth of
// all EC2 calls each, four Workstations come up and go down again without a
// duplicate instance or snapshot and without leaking a volume.
func TestConvergesUnderFaults(t *testing.T) {
	t.Run("sdk-retries", func(t *testing.T) { convergeUnderFaults(t, 0) })
	// Without SDK retries every fault reaches the controllers.
	t.Run("no-sdk-retries", func(t *testing.T) { convergeUnderFaults(t, 1) })
}

func convergeUnderFaults(t *testing.T, attempts int) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	if attempts > 0 {
		h.SetAWSAttempts(attempts)
	}
	h.Proxy.Seed(20261129)
	throttled := h.Proxy.Inject(faultproxy.Rule{Probability: 0.1, Fault: faultproxy.Throttle()})
	failed := h.Proxy.Inject(faultproxy.Rule{Probability: 0.1, Fault: faultproxy.ServerError()})
	h.Start()

	const n = 4
	zones := []string{"us-east-1a", "us-east-1b", "us-east-1c", "us-east-1a"}
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("ws%d", i)
		h.Create(h.NewDrive(fmt.Sprintf("drive%d", i), 10),
			h.NewWorkstation(names[i], fmt.Sprintf("drive%d", i), []string{"t3.large"}, zones[i]))
	}
	for _, name := range names {
		h.Eventually(4*converge, name+" Ready", h.WorkstationReady(name))
	}
	volumes := map[string]string{}
	for i := range n {
		volumes[names[i]] = h.Drive(fmt.Sprintf("drive%d", i)).Status.VolumeID
	}

	for _, name := range names {
		h.SetState(name, v1alpha1.WorkstationStateStopped)
	}
	for i := range n {
		h.Eventually(4*converge, fmt.Sprintf("drive%d Archived", i), h.DriveState(fmt.Sprintf("drive%d", i), v1alpha1.ReasonArchived))
	}
	h.Eventually(converge, "no live instance", func() (bool, string) {
		live := h.Instances()
		return len(live) == 0, fmt.Sprintf("live %v", harness.InstanceIDs(live))
	})
	for _, name := range names {
		h.Eventually(converge, name+" Stopped", h.WorkstationPhase(name, v1alpha1.WorkstationPhaseStopped))
	}

	if throttled.Fired() == 0 || failed.Fired() == 0 {
		t.Fatalf("faults fired: throttle %d, server error %d; the test exercised nothing", throttled.Fired(), failed.Fired())
	}
	t.Logf("faults fired: throttle %d, server error %d, of %d calls", throttled.Fired(), failed.Fired(), h.Proxy.Total())
	for i, name := range names {
		ws := h.Workstation(name)
		all := h.WorkstationInstances(name)
		if len(all) != 1 || ws.Status.Launches != 1 {
			t.Errorf("%s: instances ever = %v with %d launches recorded, want exactly 1", name, harness.InstanceIDs(all), ws.Status.Launches)
		}
		for _, inst := range all {
			if inst.State.Name != ec2types.InstanceStateNameTerminated {
				t.Errorf("%s: instance %s is %s, want terminated", name, aws.ToString(inst.InstanceId), inst.State.Name)
			}
		}
		drive := fmt.Sprintf("drive%d", i)
		snaps := h.DriveSnapshots(drive)
		xd := h.Drive(drive)
		if len(snaps) != 1 || aws.ToString(snaps[0].SnapshotId) != xd.Status.LatestSnapshotID ||
			aws.ToString(snaps[0].VolumeId) != volumes[name] || snaps[0].State != ec2types.SnapshotStateCompleted {
			t.Errorf("%s: snapshots %v (latest %s), want exactly one completed snapshot of %s",
				drive, harness.SnapshotIDs(snaps), xd.Status.LatestSnapshotID, volumes[name])
		}
		if xd.Status.SnapshotCount != 1 {
			t.Errorf("%s: status.snapshotCount = %d, want 1", drive, xd.Status.SnapshotCount)
		}
		if status, reason := harness.ReadyReason(ws.Status.Conditions); reason != v1alpha1.ReasonStopped {
			t.Errorf("%s: Ready = %s/%s, want Stopped", name, status, reason)
		}
	}
	if vols := h.Volumes(); len(vols) != 0 {
		t.Errorf("volumes left: %v", harness.VolumeIDs(vols))
	}
}

// TestVolumeDeletionRetriedAfterAWSError: when deleting the snapshotted volume
// fails once, the next reconcile deletes it; the completed snapshot is
// neither taken nor counted twice.
func TestVolumeDeletionRetriedAfterAWSError(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.SetAWSAttempts(1) // the fault reaches the controller
	h.Start()
	h.Create(h.NewDrive("data", 10), h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a"))
	h.Eventually(converge, "workstation Ready", h.WorkstationReady("box"))
	volume := h.Drive("data").Status.VolumeID

	fault := h.Proxy.Inject(faultproxy.Rule{Action: "DeleteVolume", Times: 1, Fault: faultproxy.ServerError()})
	h.SetState("box", v1alpha1.WorkstationStateStopped)
	h.Eventually(converge, "drive Archived", h.DriveState("data", v1alpha1.ReasonArchived))
	if fault.Fired() != 1 {
		t.Fatalf("the DeleteVolume fault fired %d times, want 1", fault.Fired())
	}
	if _, exists := h.Volume(volume); exists {
		t.Fatalf("volume %s still exists", volume)
	}
	xd := h.Drive("data")
	snaps := h.DriveSnapshots("data")
	if len(snaps) != 1 || harness.SnapshotIDs(snaps)[0] != xd.Status.LatestSnapshotID {
		t.Fatalf("snapshots = %v, want exactly the latest %s", harness.SnapshotIDs(snaps), xd.Status.LatestSnapshotID)
	}
	if n := h.Proxy.Count("CreateSnapshot"); n != 1 {
		t.Fatalf("CreateSnapshot calls = %d, want 1", n)
	}
	if xd.Status.SnapshotCount != 1 {
		t.Fatalf("status.snapshotCount = %d with one snapshot in EC2", xd.Status.SnapshotCount)
	}
}

// TestPruneRetriedAfterAWSError: when listing the drive's snapshots for
// pruning fails once, retention is still enforced without waiting for the
// next stop.
func TestPruneRetriedAfterAWSError(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.SetAWSAttempts(1) // the fault reaches the controller
	h.Start()
	xd := h.NewDrive("data", 10)
	xd.Spec.SnapshotRetention = 1
	h.Create(xd, h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a"))
	h.Eventually(converge, "workstation Ready", h.WorkstationReady("box"))
	h.SetState("box", v1alpha1.WorkstationStateStopped)
	h.Eventually(converge, "drive Archived", h.DriveState("data", v1alpha1.ReasonArchived))
	first := h.Drive("data").Status.LatestSnapshotID
	h.SetState("box", v1alpha1.WorkstationStateRunning)
	h.Eventually(converge, "workstation Ready again", h.WorkstationReady("box"))

	// The first listing of the drive's snapshots after this stop is the prune's.
	fault := h.Proxy.Inject(faultproxy.Rule{
		Action: "DescribeSnapshots",
		Match: func(f url.Values) bool {
			for k, vs := range f {
				if strings.HasSuffix(k, ".Name") && slices.Contains(vs, "tag:"+cloud.TagDrive) {
					return true
				}
			}
			return false
		},
		Times: 1, Fault: faultproxy.ServerError(),
	})
	h.SetState("box", v1alpha1.WorkstationStateStopped)
	h.Eventually(converge, "drive Archived with a new snapshot", func() (bool, string) {
		d := h.Drive("data")
		_, reason := harness.ReadyReason(d.Status.Conditions)
		return reason == v1alpha1.ReasonArchived && d.Status.LatestSnapshotID != first, fmt.Sprintf("%+v", d.Status)
	})
	if fault.Fired() != 1 {
		t.Fatalf("the fault fired %d times, want 1", fault.Fired())
	}
	latest := h.Drive("data").Status.LatestSnapshotID
	h.Eventually(converge, "retention 1 enforced", func() (bool, string) {
		ids := harness.SnapshotIDs(h.DriveSnapshots("data"))
		return slices.Equal(ids, []string{latest}), fmt.Sprintf("snapshots %v, latest %s", ids, latest)
	})
	if n := h.Drive("data").Status.SnapshotCount; n != 1 {
		t.Fatalf("status.snapshotCount = %d, want 1", n)
	}
}
