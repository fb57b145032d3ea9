package integration_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/test/harness"
)

func objectMeta(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }

// legacySnapshot creates, straight in moto, a snapshot of volume tagged Name=name.
func legacySnapshot(t *testing.T, h *harness.Harness, volume, name string) string {
	t.Helper()
	out, err := h.EC2.CreateSnapshot(context.Background(), &ec2.CreateSnapshotInput{
		VolumeId: aws.String(volume),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot,
			Tags: []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String(name)}}}},
	})
	if err != nil {
		t.Fatalf("creating snapshot of %s: %v", volume, err)
	}
	return aws.ToString(out.SnapshotId)
}

// TestAdoptByNameTag: source.nameTag adopts the newest completed snapshot
// with that Name tag, and the first volume is restored from it.
func TestAdoptByNameTag(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	vol, err := h.EC2.CreateVolume(context.Background(), &ec2.CreateVolumeInput{
		AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(8),
	})
	if err != nil {
		t.Fatal(err)
	}
	volume := aws.ToString(vol.VolumeId)
	var legacy []string
	for i := range 3 {
		if i > 0 {
			time.Sleep(1100 * time.Millisecond) // distinct start times
		}
		legacy = append(legacy, legacySnapshot(t, h, volume, "legacy"))
	}
	time.Sleep(1100 * time.Millisecond)
	unrelated := legacySnapshot(t, h, volume, "unrelated") // the newest overall, with another name
	newest := legacy[2]

	h.Start()
	xd := h.NewDrive("data", 10)
	xd.Spec.Source = &v1alpha1.DriveSource{NameTag: "legacy"}
	h.Create(xd)
	h.Eventually(converge, "drive archived with a restore source", func() (bool, string) {
		d := h.Drive("data")
		c := harness.Condition(d.Status.Conditions, v1alpha1.ConditionVolumeReady)
		return c.Status == "True" && c.Reason == v1alpha1.ReasonArchived && d.Status.RestoreSnapshotID != "", fmt.Sprintf("%+v", d.Status)
	})
	if got := h.Drive("data").Status.RestoreSnapshotID; got != newest {
		t.Fatalf("status.restoreSnapshotID = %s, want the newest legacy snapshot %s (legacy %v, unrelated %s)",
			got, newest, legacy, unrelated)
	}

	h.Create(h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1b"))
	h.Eventually(converge, "workstation Ready", h.WorkstationReady("box"))
	d := h.Drive("data")
	restored, ok := h.Volume(d.Status.VolumeID)
	if !ok {
		t.Fatalf("drive volume %q is not in EC2", d.Status.VolumeID)
	}
	if got := aws.ToString(restored.SnapshotId); got != newest {
		t.Fatalf("drive volume %s was created from %q, want %s", d.Status.VolumeID, got, newest)
	}
	if aws.ToString(restored.AvailabilityZone) != "us-east-1b" {
		t.Fatalf("drive volume is in %s, want us-east-1b", aws.ToString(restored.AvailabilityZone))
	}
	// The adopted snapshots are not the cluster's: none of them is touched.
	out, err := h.EC2.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{
		SnapshotIds: append(slices.Clone(legacy), unrelated)})
	if err != nil || len(out.Snapshots) != 4 {
		t.Fatalf("legacy snapshots after adoption: %d found (%v), want all 4", len(out.Snapshots), err)
	}
}

// TestSourceSnapshotNotFound: a source.snapshotID that does not exist keeps the
// drive at SourceNotFound and launches nothing.
func TestSourceSnapshotNotFound(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.Start()
	xd := h.NewDrive("data", 10)
	xd.Spec.Source = &v1alpha1.DriveSource{SnapshotID: "snap-0123456789abcdef0"}
	h.Create(xd, h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a"))

	h.Eventually(converge, "VolumeReady False/SourceNotFound", func() (bool, string) {
		c := harness.Condition(h.Drive("data").Status.Conditions, v1alpha1.ConditionVolumeReady)
		return c.Status == "False" && c.Reason == v1alpha1.ReasonSourceNotFound, fmt.Sprintf("%+v", c)
	})
	h.Eventually(converge, "workstation waiting", func() (bool, string) {
		c := harness.Condition(h.Workstation("box").Status.Conditions, v1alpha1.ConditionLaunched)
		return c.Status == "False", fmt.Sprintf("%+v", c)
	})
	h.Consistently(5*time.Second, "nothing launched", func() (bool, string) {
		ws := h.Workstation("box")
		c := harness.Condition(h.Drive("data").Status.Conditions, v1alpha1.ConditionVolumeReady)
		n, calls := len(h.WorkstationInstances("box")), h.Proxy.Count("RunInstances")
		return n == 0 && calls == 0 && ws.Status.InstanceID == "" && c.Reason == v1alpha1.ReasonSourceNotFound,
			fmt.Sprintf("instances %d, RunInstances calls %d, status %+v, VolumeReady %+v", n, calls, ws.Status, c)
	})
	if vols := h.Volumes(); len(vols) != 0 {
		t.Fatalf("volumes = %v, want none", harness.VolumeIDs(vols))
	}
}

// TestDriveBinding: a drive is held by one Workstation at a time; the second
// waits (DriveInUse) and launches only once the first is deleted.
func TestDriveBinding(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.Start()
	h.Create(h.NewDrive("data", 10), h.NewWorkstation("first", "data", []string{"t3.large"}, "us-east-1a"))
	h.Eventually(converge, "first Ready", h.WorkstationReady("first"))
	h.Create(h.NewWorkstation("second", "data", []string{"t3.large"}, "us-east-1a"))

	h.Eventually(converge, "second waits with DriveInUse", func() (bool, string) {
		c := harness.Condition(h.Workstation("second").Status.Conditions, v1alpha1.ConditionLaunched)
		return c.Status == "False" && c.Reason == v1alpha1.ReasonDriveInUse, fmt.Sprintf("%+v", c)
	})
	h.Consistently(5*time.Second, "second holds off", func() (bool, string) {
		c := harness.Condition(h.Workstation("second").Status.Conditions, v1alpha1.ConditionLaunched)
		second, live := len(h.WorkstationInstances("second")), len(h.Instances())
		bound := h.Drive("data").Status.HolderName()
		return c.Reason == v1alpha1.ReasonDriveInUse && second == 0 && live == 1 && bound == "first",
			fmt.Sprintf("Launched %+v, second's instances %d, live instances %d, boundTo %q", c, second, live, bound)
	})
	firstInstance := h.Workstation("first").Status.InstanceID
	firstVolume := h.Drive("data").Status.VolumeID

	h.Delete(&v1alpha1.Workstation{ObjectMeta: objectMeta("first")})
	h.Eventually(converge, "first deleted", func() (bool, string) {
		return !h.Exists(&v1alpha1.Workstation{}, "first"), "first still exists"
	})
	h.Eventually(2*converge, "second Ready", func() (bool, string) {
		ok, detail := h.WorkstationReady("second")()
		return ok, fmt.Sprintf("%s; drive status %+v", detail, h.Drive("data").Status)
	})

	ws := h.Workstation("second")
	xd := h.Drive("data")
	if xd.Status.HolderName() != "second" || xd.Status.AttachedTo != ws.Status.InstanceID || xd.Status.VolumeID == firstVolume {
		t.Fatalf("drive status = %+v, want bound to second and a new volume attached to %s", xd.Status, ws.Status.InstanceID)
	}
	live := h.Instances()
	if len(live) != 1 || aws.ToString(live[0].InstanceId) != ws.Status.InstanceID {
		t.Fatalf("live instances = %v, want only second's %s", harness.InstanceIDs(live), ws.Status.InstanceID)
	}
	if inst, ok := h.Instance(firstInstance); !ok || inst.State.Name != ec2types.InstanceStateNameTerminated {
		t.Fatalf("first's instance %s is not terminated", firstInstance)
	}
	vol, _ := h.Volume(xd.Status.VolumeID)
	if aws.ToString(vol.SnapshotId) == "" || aws.ToString(vol.SnapshotId) != xd.Status.LatestSnapshotID {
		t.Fatalf("second's volume is created from %q, want first's final snapshot %q",
			aws.ToString(vol.SnapshotId), xd.Status.LatestSnapshotID)
	}
	if _, exists := h.Volume(firstVolume); exists {
		t.Fatalf("first's volume %s was not deleted", firstVolume)
	}
	if n := len(h.WorkstationInstances("second")); n != 1 {
		t.Fatalf("second's instances = %d, want 1", n)
	}
}

// TestDeleteBoundDrive: deleting an XDrive that a Workstation holds waits
// until the Workstation is stopped and the drive archived; then its snapshots
// are deleted or kept as deletionPolicy says.
func TestDeleteBoundDrive(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.Start()
	gone := h.NewDrive("gone", 10)
	gone.Spec.DeletionPolicy = v1alpha1.DeletionPolicyDelete
	kept := h.NewDrive("kept", 10)
	kept.Spec.DeletionPolicy = v1alpha1.DeletionPolicyRetain
	h.Create(gone, kept,
		h.NewWorkstation("box-gone", "gone", []string{"t3.large"}, "us-east-1a"),
		h.NewWorkstation("box-kept", "kept", []string{"t3.large"}, "us-east-1a"))
	h.Eventually(converge, "box-gone Ready", h.WorkstationReady("box-gone"))
	h.Eventually(converge, "box-kept Ready", h.WorkstationReady("box-kept"))

	drives := []string{"gone", "kept"}
	for _, name := range drives {
		h.Delete(&v1alpha1.XDrive{ObjectMeta: objectMeta(name)})
	}
	for _, name := range drives {
		h.Eventually(converge, name+" DeletionBlocked", func() (bool, string) {
			xd := h.Drive(name)
			c := harness.Condition(xd.Status.Conditions, v1alpha1.ConditionDeletionBlocked)
			return !xd.DeletionTimestamp.IsZero() && c.Status == "True" && c.Reason == v1alpha1.ReasonDriveInUse,
				fmt.Sprintf("deletionTimestamp %v, DeletionBlocked %+v", xd.DeletionTimestamp, c)
		})
	}
	h.Consistently(4*time.Second, "bound drives stay", func() (bool, string) {
		for _, name := range drives {
			xd := h.Drive(name)
			_, attached := h.Volume(xd.Status.VolumeID)
			ready, _ := harness.ReadyReason(h.Workstation("box-" + name).Status.Conditions)
			if !attached || ready != "True" {
				return false, fmt.Sprintf("drive %s: volume in EC2 %t, workstation Ready %s", name, attached, ready)
			}
		}
		return len(h.Instances()) == 2, fmt.Sprintf("live instances %d", len(h.Instances()))
	})

	for _, name := range drives {
		h.SetState("box-"+name, v1alpha1.WorkstationStateStopped)
	}
	for _, name := range drives {
		h.Eventually(2*converge, name+" deleted", func() (bool, string) {
			xd := &v1alpha1.XDrive{}
			return !h.Exists(xd, name), fmt.Sprintf("%+v", xd.Status)
		})
	}
	if snaps := h.DriveSnapshots("gone"); len(snaps) != 0 {
		t.Fatalf("snapshots of the deleted drive with deletionPolicy Delete: %v, want none", harness.SnapshotIDs(snaps))
	}
	snaps := h.DriveSnapshots("kept")
	if len(snaps) != 1 || snaps[0].State != ec2types.SnapshotStateCompleted {
		t.Fatalf("snapshots of the deleted drive with deletionPolicy Retain: %v, want its one completed snapshot", harness.SnapshotIDs(snaps))
	}
	if vols := h.Volumes(); len(vols) != 0 {
		t.Fatalf("volumes left: %v", harness.VolumeIDs(vols))
	}
	if live := h.Instances(); len(live) != 0 {
		t.Fatalf("live instances left: %v", harness.InstanceIDs(live))
	}
}

// TestNewDriveReportsReady: a drive that has never been snapshotted reports
// its state in Ready like any other: Archived at rest, Attached once in use.
func TestNewDriveReportsReady(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.Start()
	h.Create(h.NewDrive("data", 10))
	h.Eventually(converge, "new drive Ready True/Archived", func() (bool, string) {
		status, reason := harness.ReadyReason(h.Drive("data").Status.Conditions)
		return status == "True" && reason == v1alpha1.ReasonArchived, fmt.Sprintf("%+v", h.Drive("data").Status.Conditions)
	})
	h.Create(h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a"))
	h.Eventually(converge, "workstation Ready", h.WorkstationReady("box"))
	h.Eventually(converge, "drive Ready True/Attached", func() (bool, string) {
		status, reason := harness.ReadyReason(h.Drive("data").Status.Conditions)
		return status == "True" && reason == v1alpha1.ReasonAttached, fmt.Sprintf("%+v", h.Drive("data").Status.Conditions)
	})
}

// TestForkIsIndependent: source.xdrive starts a drive from another drive's
// newest completed snapshot; from then on each keeps and prunes its own
// snapshots, and the fork restores from its own. A fork of a missing drive,
// or one too small for the snapshot, waits and says why. A fork from another
// namespace launches only once its class's allowForkFrom selects that
// namespace, and is as independent (crossFork).
func TestForkIsIndependent(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	cross := startCrossFork(t, h)
	h.Create(h.NewDrive("gold", 10), h.NewWorkstation("g", "gold", []string{"t3.large"}, "us-east-1a"))
	h.Eventually(converge, "g Ready", h.WorkstationReady("g"))
	h.SetState("g", v1alpha1.WorkstationStateStopped)
	h.Eventually(converge, "gold archived with a snapshot", func() (bool, string) {
		st := h.Drive("gold").Status
		return st.Phase == v1alpha1.XDrivePhaseArchived && st.LatestSnapshotID != "", fmt.Sprintf("%+v", st)
	})
	gold := h.Drive("gold")
	goldSnap := gold.Status.LatestSnapshotID

	mine := h.NewDrive("mine", 10)
	mine.Spec.Source = &v1alpha1.DriveSource{XDrive: &v1alpha1.ForkSource{Name: "gold"}}
	mine.Spec.SnapshotRetention = 1
	missing := h.NewDrive("orphan", 10)
	missing.Spec.Source = &v1alpha1.DriveSource{XDrive: &v1alpha1.ForkSource{Name: "nope"}}
	small := h.NewDrive("small", 5)
	small.Spec.Source = &v1alpha1.DriveSource{XDrive: &v1alpha1.ForkSource{Name: "gold", SnapshotID: goldSnap}}
	h.Create(mine, missing, small)
	cross.create()
	h.Eventually(converge, "mine archived on gold's snapshot", func() (bool, string) {
		st := h.Drive("mine").Status
		return st.Phase == v1alpha1.XDrivePhaseArchived && st.RestoreSnapshotID == goldSnap, fmt.Sprintf("want restore from %s: %+v", goldSnap, st)
	})
	if ok, detail := h.FindEvent("XDrive", "mine", "Forked", "gold", goldSnap); !ok {
		t.Errorf("no Forked Event naming gold and %s: %s", goldSnap, detail)
	}
	for name, want := range map[string]string{"orphan": v1alpha1.ReasonSourceNotFound, "small": v1alpha1.ReasonInvalidSpec} {
		h.Eventually(converge, name+" waits with "+want, func() (bool, string) {
			c := harness.Condition(h.Drive(name).Status.Conditions, v1alpha1.ConditionVolumeReady)
			return c.Status == "False" && c.Reason == want, fmt.Sprintf("%+v", c)
		})
	}
	// Another namespace's fork is restored only where its class allows it.
	cross.refused(goldSnap)
	cross.allow()

	h.Create(h.NewWorkstation("m", "mine", []string{"t3.large"}, "us-east-1a"))
	h.Eventually(converge, "m Ready", h.WorkstationReady("m"))
	cross.launched(goldSnap)
	first := h.Drive("mine").Status.VolumeID
	if vol, _ := h.Volume(first); aws.ToString(vol.SnapshotId) != goldSnap {
		t.Fatalf("the fork's volume %s is created from %q, want gold's snapshot %s", first, aws.ToString(vol.SnapshotId), goldSnap)
	}
	h.SetState("m", v1alpha1.WorkstationStateStopped)
	cross.stop()
	h.Eventually(converge, "mine archived with its own snapshot", func() (bool, string) {
		st := h.Drive("mine").Status
		return st.Phase == v1alpha1.XDrivePhaseArchived && st.LatestSnapshotID != "" && st.LatestSnapshotID != goldSnap, fmt.Sprintf("%+v", st)
	})
	own := h.Drive("mine").Status.LatestSnapshotID
	if snaps := harness.SnapshotIDs(h.DriveSnapshots("mine")); len(snaps) != 1 || snaps[0] != own {
		t.Errorf("mine's snapshots %v, want only its own %s", snaps, own)
	}
	if snaps := harness.SnapshotIDs(h.DriveSnapshots("gold")); len(snaps) != 1 || snaps[0] != goldSnap {
		t.Errorf("gold's snapshots %v after the fork pruned to 1, want %s untouched", snaps, goldSnap)
	}
	if st := h.Drive("gold").Status; st.LatestSnapshotID != goldSnap || st.VolumeID != "" {
		t.Errorf("gold's status changed by the fork: %+v", st)
	}
	cross.independent(goldSnap)

	h.SetState("m", v1alpha1.WorkstationStateRunning)
	h.Eventually(converge, "m Ready again", h.WorkstationReady("m"))
	if vol, _ := h.Volume(h.Drive("mine").Status.VolumeID); aws.ToString(vol.SnapshotId) != own {
		t.Fatalf("the fork's second volume is created from %q, want its own snapshot %s", aws.ToString(vol.SnapshotId), own)
	}

	// A fork restores its source's snapshots only: one whose status is
	// forged to name another drive's snapshot is refused before the launch.
	forged := h.NewDrive("forged", 10)
	forged.Spec.Source = &v1alpha1.DriveSource{XDrive: &v1alpha1.ForkSource{Name: "gold"}}
	h.Create(forged)
	h.Eventually(converge, "forged archived on gold's snapshot", func() (bool, string) {
		st := h.Drive("forged").Status
		return st.Phase == v1alpha1.XDrivePhaseArchived && st.RestoreSnapshotID == goldSnap, fmt.Sprintf("%+v", st)
	})
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		xd := h.Drive("forged")
		xd.Status.RestoreSnapshotID = own // mine's, not gold's
		return h.Client.Status().Update(context.Background(), xd)
	}); err != nil {
		t.Fatal(err)
	}
	h.Create(h.NewWorkstation("thief", "forged", []string{"t3.large"}, "us-east-1a"))
	h.Eventually(converge, "the forged restore refused", classAllowed(h, "thief", "False", v1alpha1.ReasonForeignSnapshot, own))
	refusedAndIdle(t, h, "thief", v1alpha1.ReasonForeignSnapshot)
}
