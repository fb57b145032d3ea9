package integration_test

import (
	"fmt"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/test/harness"
)

// readyWorkstation starts a harness with one Workstation on one drive in us-east-1a and waits for Ready.
func readyWorkstation(t *testing.T, drive *v1alpha1.XDrive) *harness.Harness {
	t.Helper()
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.Start()
	if drive == nil {
		drive = h.NewDrive("data", 10)
	}
	drive.Namespace = h.Namespace
	h.Create(drive, h.NewWorkstation("box", drive.Name, []string{"t3.large"}, "us-east-1a"))
	h.Eventually(converge, "workstation Ready", h.WorkstationReady("box"))
	return h
}

// TestSlowSnapshotKeepsVolume: while the snapshot taken on stop is pending,
// the drive stays Snapshotting and its volume stays; once it completes the
// drive is archived and the volume deleted.
func TestSlowSnapshotKeepsVolume(t *testing.T) {
	h := readyWorkstation(t, nil)
	volume := h.Drive("data").Status.VolumeID
	h.Proxy.HoldSnapshots(true)
	h.SetState("box", v1alpha1.WorkstationStateStopped)

	h.Eventually(converge, "drive Snapshotting", h.DriveState("data", v1alpha1.ReasonSnapshotting))
	h.Eventually(converge, "a snapshot created", func() (bool, string) {
		n := len(h.Proxy.CreatedSnapshots())
		return n == 1, fmt.Sprintf("%d created", n)
	})
	snapshot := h.Proxy.CreatedSnapshots()[0]
	describes := h.Proxy.Count("DescribeSnapshots")
	h.Consistently(6*time.Second, "drive Snapshotting with its volume", func() (bool, string) {
		xd := h.Drive("data")
		_, reason := harness.ReadyReason(xd.Status.Conditions)
		_, exists := h.Volume(volume)
		ok := reason == v1alpha1.ReasonSnapshotting && xd.Status.VolumeID == volume &&
			xd.Status.PendingSnapshotID() == snapshot && exists
		return ok, fmt.Sprintf("reason %s, volume in EC2 %t, status %+v", reason, exists, xd.Status)
	})
	if n := h.Proxy.Count("DescribeSnapshots") - describes; n < 2 {
		t.Fatalf("the pending snapshot was checked %d times while held, want several reconciles", n)
	}

	h.Proxy.HoldSnapshots(false)
	h.Eventually(converge, "drive Archived", h.DriveState("data", v1alpha1.ReasonArchived))
	xd := h.Drive("data")
	if xd.Status.LatestSnapshotID != snapshot || xd.Status.PendingSnapshotID() != "" || xd.Status.VolumeID != "" {
		t.Fatalf("archived drive status = %+v, want latest %s, no pending snapshot, no volume", xd.Status, snapshot)
	}
	if _, exists := h.Volume(volume); exists {
		t.Fatalf("volume %s still exists after the drive was archived", volume)
	}
	if n := h.Proxy.Count("CreateSnapshot"); n != 1 {
		t.Fatalf("CreateSnapshot calls = %d, want 1", n)
	}
}

// TestFailedSnapshotIsRetaken: a snapshot that fails keeps the volume, marks
// the drive unhealthy, and a second snapshot is taken; only after it
// completes is the volume deleted.
func TestFailedSnapshotIsRetaken(t *testing.T) {
	h := readyWorkstation(t, nil)
	volume := h.Drive("data").Status.VolumeID

	// Record, at each DeleteVolume, whether the second snapshot had been released.
	var released atomic.Bool
	var mu sync.Mutex
	var order []string
	h.Proxy.OnCall(func(action string, form url.Values) {
		if action != "CreateSnapshot" && action != "DeleteVolume" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		order = append(order, fmt.Sprintf("%s(released=%t)", action, released.Load()))
	})
	h.Proxy.HoldSnapshots(true)
	h.SetState("box", v1alpha1.WorkstationStateStopped)

	h.Eventually(converge, "a first snapshot", func() (bool, string) {
		n := len(h.Proxy.CreatedSnapshots())
		return n >= 1, fmt.Sprintf("%d created", n)
	})
	first := h.Proxy.CreatedSnapshots()[0]
	h.Proxy.FailSnapshot(first)

	h.Eventually(converge, "SnapshotsHealthy False/SnapshotFailed", func() (bool, string) {
		c := harness.Condition(h.Drive("data").Status.Conditions, v1alpha1.ConditionSnapshotsHealthy)
		return c.Status == "False" && c.Reason == v1alpha1.ReasonSnapshotFailed, fmt.Sprintf("%+v", c)
	})
	if _, exists := h.Volume(volume); !exists {
		t.Fatalf("volume %s was deleted although its snapshot %s failed", volume, first)
	}
	h.Eventually(2*converge, "a second snapshot of the volume", func() (bool, string) {
		created := h.Proxy.CreatedSnapshots()
		xd := h.Drive("data")
		return len(created) >= 2 && xd.Status.PendingSnapshotID() == created[len(created)-1],
			fmt.Sprintf("created %v, status %+v", created, xd.Status)
	})
	created := h.Proxy.CreatedSnapshots()
	second := created[len(created)-1]
	if second == first {
		t.Fatalf("the second snapshot is the failed one")
	}
	if _, exists := h.Volume(volume); !exists {
		t.Fatalf("volume %s was deleted before the second snapshot %s completed", volume, second)
	}
	if c := harness.Condition(h.Drive("data").Status.Conditions, v1alpha1.ConditionSnapshotsHealthy); c.Status != "False" {
		t.Fatalf("SnapshotsHealthy = %+v while the retaken snapshot is pending, want still False", c)
	}

	released.Store(true)
	h.Proxy.HoldSnapshot(second, false)
	h.Eventually(converge, "drive Archived", h.DriveState("data", v1alpha1.ReasonArchived))
	xd := h.Drive("data")
	if xd.Status.LatestSnapshotID != second || xd.Status.VolumeID != "" {
		t.Fatalf("archived drive status = %+v, want latest %s and no volume", xd.Status, second)
	}
	if c := harness.Condition(xd.Status.Conditions, v1alpha1.ConditionSnapshotsHealthy); c.Status != "True" {
		t.Fatalf("SnapshotsHealthy = %+v after the retaken snapshot completed, want True", c)
	}
	if _, exists := h.Volume(volume); exists {
		t.Fatalf("volume %s still exists after the drive was archived", volume)
	}
	if n := h.Proxy.Count("CreateSnapshot"); n < 2 {
		t.Fatalf("CreateSnapshot calls = %d, want at least 2", n)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, call := range order {
		if call == "DeleteVolume(released=false)" {
			t.Fatalf("the volume was deleted before the retaken snapshot completed: %v", order)
		}
	}
	h.Proxy.OnCall(nil)
}

// TestSnapshotRetention: with snapshotRetention 2, three stop/start cycles
// leave exactly the two newest snapshots.
func TestSnapshotRetention(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.Start()
	xd := h.NewDrive("data", 10)
	xd.Spec.SnapshotRetention = 2
	h.Create(xd, h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a"))
	h.Eventually(converge, "workstation Ready", h.WorkstationReady("box"))

	var taken []string // latestSnapshotID after each stop, oldest first
	for cycle := 1; cycle <= 3; cycle++ {
		h.SetState("box", v1alpha1.WorkstationStateStopped)
		h.Eventually(converge, fmt.Sprintf("drive Archived after stop %d", cycle), func() (bool, string) {
			d := h.Drive("data")
			_, reason := harness.ReadyReason(d.Status.Conditions)
			fresh := d.Status.LatestSnapshotID != "" && !slices.Contains(taken, d.Status.LatestSnapshotID)
			return reason == v1alpha1.ReasonArchived && fresh && d.Status.VolumeID == "", fmt.Sprintf("%+v", d.Status)
		})
		taken = append(taken, h.Drive("data").Status.LatestSnapshotID)
		h.Eventually(converge, "workstation Stopped", func() (bool, string) {
			status, reason := harness.ReadyReason(h.Workstation("box").Status.Conditions)
			return reason == v1alpha1.ReasonStopped, fmt.Sprintf("%s/%s", status, reason)
		})
		h.SetState("box", v1alpha1.WorkstationStateRunning)
		h.Eventually(converge, fmt.Sprintf("workstation Ready after start %d", cycle), h.WorkstationReady("box"))
	}

	snaps := h.DriveSnapshots("data")
	got := harness.SnapshotIDs(snaps)
	want := slices.Sorted(slices.Values(taken[1:]))
	if !slices.Equal(got, want) {
		t.Fatalf("snapshots of the drive = %v, want the two newest %v (all taken: %v)", got, want, taken)
	}
	for _, s := range snaps {
		if s.State != ec2types.SnapshotStateCompleted {
			t.Fatalf("snapshot %s is %s, want completed", aws.ToString(s.SnapshotId), s.State)
		}
	}
	d := h.Drive("data")
	if !slices.Contains(got, d.Status.LatestSnapshotID) || d.Status.LatestSnapshotID != taken[2] {
		t.Fatalf("status.latestSnapshotID = %s, want the newest %s among %v", d.Status.LatestSnapshotID, taken[2], got)
	}
	if d.Status.SnapshotCount != 2 {
		t.Fatalf("status.snapshotCount = %d, want 2", d.Status.SnapshotCount)
	}
	vol, ok := h.Volume(d.Status.VolumeID)
	if !ok || aws.ToString(vol.SnapshotId) != taken[2] {
		t.Fatalf("the running volume %s is restored from %s, want the newest snapshot %s",
			d.Status.VolumeID, aws.ToString(vol.SnapshotId), taken[2])
	}
}
