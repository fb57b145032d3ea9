package fakeec2

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/drives"
	"github.com/xdrive-io/xdrive/internal/instances"
)

const cluster = "prod"

// world is a fake with the operator's real clients in front of it.
type world struct {
	*Fake
	launcher *instances.Launcher
	drives   *drives.Service
	cache    *instances.Cache
}

func newWorld(t *testing.T, o Options) world {
	t.Helper()
	o.Cluster = cluster
	f := New(o)
	return world{
		Fake:     f,
		launcher: &instances.Launcher{API: f, Cluster: cluster},
		drives:   drives.NewService(f, cluster, time.Millisecond, nil),
		cache:    instances.NewCache(instances.CacheOptions{API: f, Cluster: cluster, Window: time.Millisecond}),
	}
}

func launchRequest(zone, snapshotID string, attempt int32) instances.LaunchRequest {
	return instances.LaunchRequest{
		Workstation: "ns/ws", WorkstationUID: "uid-1", Drive: "ns/drive", DriveUID: "drive-uid-1", DriveName: "drive",
		Offering: instances.Offering{Type: "t3.large", Zone: zone, Spot: true},
		ImageID:  "ami-00000000000000a01",
		Volume:   instances.DriveVolume{SnapshotID: snapshotID, SizeGiB: 20, VolumeType: "gp3"},
		Attempt:  attempt,
	}
}

// launchRunning launches through the Launcher and lets the instance start.
func (w world) launchRunning(t *testing.T, zone, snapshotID string, attempt int32) instances.Instance {
	t.Helper()
	inst, err := w.launcher.Launch(context.Background(), launchRequest(zone, snapshotID, attempt))
	if err != nil {
		t.Fatalf("launch in %s from %q: %v", zone, snapshotID, err)
	}
	w.mustApply(t, KindInstanceRunning, inst.ID)
	return inst
}

func (w world) mustApply(t *testing.T, kind Kind, id string) {
	t.Helper()
	if err := w.Apply(Transition{Kind: kind, ResourceID: id}); err != nil {
		t.Fatal(err)
	}
}

func (w world) mustWrite(t *testing.T, volumeID string) int64 {
	t.Helper()
	id, err := w.Write(volumeID)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (w world) volume(t *testing.T, id string) VolumeView {
	t.Helper()
	for _, v := range w.Volumes() {
		if v.ID == id {
			return v
		}
	}
	t.Fatalf("no volume %s", id)
	return VolumeView{}
}

func (w world) snapshot(t *testing.T, id string) SnapshotView {
	t.Helper()
	for _, s := range w.Snapshots() {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no snapshot %s", id)
	return SnapshotView{}
}

func (w world) instance(t *testing.T, id string) InstanceView {
	t.Helper()
	for _, i := range w.Instances() {
		if i.ID == id {
			return i
		}
	}
	t.Fatalf("no instance %s", id)
	return InstanceView{}
}

// completedSnapshot snapshots the volume through the drives service and completes it.
func (w world) completedSnapshot(t *testing.T, volumeID string) drives.Snapshot {
	t.Helper()
	snap, err := w.drives.CreateSnapshot(context.Background(), drives.SnapshotRequest{
		VolumeID: volumeID, Drive: "ns/drive", DriveName: "drive", Consistency: "crash",
	})
	if err != nil {
		t.Fatal(err)
	}
	w.mustApply(t, KindSnapshotCompleted, snap.ID)
	return snap
}

func TestLaunchFromSnapshotInZoneB(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, Options{})
	first := w.launchRunning(t, "us-east-1a", "", 0)
	written := w.mustWrite(t, first.DriveVolumeID)
	snap := w.completedSnapshot(t, first.DriveVolumeID)

	inst, err := w.launcher.Launch(ctx, launchRequest("us-east-1b", snap.ID, 1))
	if err != nil {
		t.Fatal(err)
	}
	if inst.State != StatePending || inst.Zone != "us-east-1b" || inst.DriveVolumeID == "" || inst.DriveVolumeID == first.DriveVolumeID {
		t.Fatalf("launched %+v, want a pending instance in us-east-1b with a new drive volume", inst)
	}
	v := w.volume(t, inst.DriveVolumeID)
	if v.Zone != "us-east-1b" || v.State != VolumeInUse || v.SnapshotID != snap.ID || v.SizeGiB != 20 || v.Type != "gp3" {
		t.Errorf("drive volume %+v, want in-use in us-east-1b from %s, 20 GiB gp3", v, snap.ID)
	}
	if v.Attachment == nil || *v.Attachment != (Attachment{InstanceID: inst.ID, Device: bootstrap.DriveDevice}) {
		t.Errorf("attachment %+v, want %s at %s kept on termination", v.Attachment, inst.ID, bootstrap.DriveDevice)
	}
	if !v.Data.Has(written) {
		t.Errorf("restored volume lacks write %d", written)
	}
	if v.Tags[cloud.TagDrive] != "ns/drive" || v.Tags[cloud.TagName] != "drive" || v.Tags[cloud.TagCluster] != cluster {
		t.Errorf("volume tags %v, want the launch's volume tags", v.Tags)
	}
	described, found, err := w.drives.Volume(ctx, inst.DriveVolumeID)
	if err != nil || !found || described.AttachedTo != inst.ID || described.Zone != "us-east-1b" {
		t.Errorf("drives.Volume = %+v, %v, %v", described, found, err)
	}

	got, found, err := w.cache.Get(ctx, inst.ID)
	if err != nil || !found || got.State != StatePending {
		t.Fatalf("cache.Get = %+v, %v, %v; want pending", got, found, err)
	}
	w.mustApply(t, KindInstanceRunning, inst.ID)
	got, _, _ = w.cache.Get(ctx, inst.ID)
	if got.State != StateRunning || got.DriveVolumeID != inst.DriveVolumeID || !got.Spot || got.PublicIP == "" {
		t.Errorf("after running: %+v", got)
	}
}

func TestTerminationKeepsDriveAndDeletesRoot(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, Options{})
	inst := w.launchRunning(t, "us-east-1a", "", 0)
	volumes := w.instance(t, inst.ID).VolumeIDs
	if len(volumes) != 2 || volumes[0] != inst.DriveVolumeID {
		t.Fatalf("attached volumes %v, want drive %s (/dev/sdf) then root (/dev/xvda)", volumes, inst.DriveVolumeID)
	}
	root := volumes[1]
	if tags := w.volume(t, root).Tags; tags[cloud.TagDriveUID] != "drive-uid-1" {
		t.Errorf("root volume tags %v: EC2 gives every volume made at launch the volume TagSpecification", tags)
	}
	before := w.mustWrite(t, inst.DriveVolumeID)

	if err := w.launcher.Terminate(ctx, inst); err != nil {
		t.Fatal(err)
	}
	if s := w.instance(t, inst.ID).State; s != StateShuttingDown {
		t.Fatalf("state after TerminateInstances = %s", s)
	}
	during := w.mustWrite(t, inst.DriveVolumeID) // the OS still runs while shutting down
	w.mustApply(t, KindInstanceTerminated, inst.ID)

	drive := w.volume(t, inst.DriveVolumeID)
	if drive.State != VolumeAvailable || drive.Attachment != nil || drive.Deleted || !drive.Data.Has(before) || !drive.Data.Has(during) {
		t.Errorf("drive after termination: %+v", drive)
	}
	if r := w.volume(t, root); !r.Deleted || r.State != VolumeDeleted {
		t.Errorf("root volume after termination: %+v, want deleted", r)
	}
	if _, err := w.Write(inst.DriveVolumeID); err == nil {
		t.Error("write to an available volume was accepted")
	}
	out, err := w.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{inst.ID}})
	if err != nil {
		t.Fatal(err)
	}
	i := out.Reservations[0].Instances[0]
	if i.State.Name != StateTerminated || len(i.BlockDeviceMappings) != 0 || aws.ToString(i.StateReason.Code) != ReasonUserShutdown {
		t.Errorf("terminated instance described as %s with %d mappings, reason %v", i.State.Name, len(i.BlockDeviceMappings), i.StateReason)
	}

	if err := w.Forget(inst.ID); err != nil {
		t.Fatal(err)
	}
	_, err = w.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{inst.ID}})
	if cloud.ErrorCode(err) != codeInstanceNotFound || cloud.Classify(err) != cloud.KindNotFound {
		t.Errorf("describing a forgotten instance: %v", err)
	}
}

// TestDriveVolumeKnownAfterItsSnapshotIsGone: a launch's drive volume
// names the snapshot it is restored from, so the drive knows it once
// detached even after that snapshot is deleted and no status records it;
// a kept root volume, tagged alike, is not taken for it.
func TestDriveVolumeKnownAfterItsSnapshotIsGone(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, Options{KeepRootVolumes: true})
	first := w.launchRunning(t, "us-east-1a", "", 0)
	snap := w.completedSnapshot(t, first.DriveVolumeID)
	inst := w.launchRunning(t, "us-east-1a", snap.ID, 1)
	root := w.instance(t, inst.ID).VolumeIDs[1]
	if err := w.launcher.Terminate(ctx, inst); err != nil {
		t.Fatal(err)
	}
	w.mustApply(t, KindInstanceTerminated, inst.ID)
	if err := w.DeleteSnapshotOutside(snap.ID); err != nil {
		t.Fatal(err)
	}
	vols, err := w.drives.DriveVolumes(ctx, "drive-uid-1")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, v := range vols {
		if v.ID != inst.DriveVolumeID && v.ID != root {
			continue
		}
		seen++
		ours, err := w.drives.IsDriveVolume(ctx, v, bootstrap.DriveDevice, []string{"ns/drive"})
		if err != nil || ours != (v.ID == inst.DriveVolumeID) {
			t.Errorf("IsDriveVolume(%s, from %s, tags %v) = %t, %v; want %t", v.ID, v.SnapshotID, v.Tags, ours, err, v.ID == inst.DriveVolumeID)
		}
	}
	if seen != 2 {
		t.Fatalf("the drive's volumes %+v: want the drive volume %s and the kept root %s", vols, inst.DriveVolumeID, root)
	}
}

func TestSpotReclaim(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, Options{})
	inst := w.launchRunning(t, "us-east-1c", "", 0)
	if err := w.TerminateOutside(inst.ID); err != nil {
		t.Fatal(err)
	}
	got, _, err := w.cache.Get(ctx, inst.ID)
	if err != nil || got.State != StateShuttingDown || got.StateReason != ReasonSpotTermination {
		t.Fatalf("after reclaim: %+v, %v", got, err)
	}
	if s := w.volume(t, inst.DriveVolumeID).State; s != VolumeInUse {
		t.Errorf("drive is %s while the instance shuts down, want in-use", s)
	}
	if err := w.TerminateOutside(inst.ID); err == nil {
		t.Error("a second TerminateOutside was accepted")
	}
	w.mustApply(t, KindInstanceTerminated, inst.ID)
	if s := w.volume(t, inst.DriveVolumeID).State; s != VolumeAvailable {
		t.Errorf("drive is %s after termination, want available", s)
	}
}

func TestSnapshotStates(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, Options{})
	inst := w.launchRunning(t, "us-east-1a", "", 0)
	before := w.mustWrite(t, inst.DriveVolumeID)
	req := drives.SnapshotRequest{VolumeID: inst.DriveVolumeID, Drive: "ns/drive", DriveName: "drive", Consistency: "crash"}
	snap, err := w.drives.CreateSnapshot(ctx, req)
	if err != nil || snap.State != SnapshotPending {
		t.Fatalf("CreateSnapshot = %+v, %v; want pending", snap, err)
	}
	after := w.mustWrite(t, inst.DriveVolumeID)
	again, err := w.drives.CreateSnapshot(ctx, req)
	if err != nil || again.ID != snap.ID || w.Calls()["CreateSnapshot"] != 1 {
		t.Fatalf("second CreateSnapshot = %+v, %v after %d calls; want the pending %s", again, err, w.Calls()["CreateSnapshot"], snap.ID)
	}
	if got, _, _ := w.drives.Snapshot(ctx, snap.ID); got.State != SnapshotPending || got.Progress != "0%" {
		t.Errorf("pending snapshot described as %s %s", got.State, got.Progress)
	}
	w.mustApply(t, KindSnapshotCompleted, snap.ID)
	if got, _, _ := w.drives.Snapshot(ctx, snap.ID); got.State != SnapshotCompleted || got.Progress != "100%" || got.SizeGiB != 20 {
		t.Errorf("completed snapshot described as %+v", got)
	}
	if d := w.snapshot(t, snap.ID).Data; !d.Has(before) || d.Has(after) {
		t.Errorf("snapshot data has %d: %v, %d: %v; want only the write before CreateSnapshot", before, d.Has(before), after, d.Has(after))
	}

	failing, err := w.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(inst.DriveVolumeID)})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(failing.SnapshotId)
	if err := w.FailSnapshot(id); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := w.drives.Snapshot(ctx, id); got.State != SnapshotError {
		t.Errorf("failed snapshot described as %s", got.State)
	}
	if err := w.FailSnapshot(id); err == nil {
		t.Error("failing a snapshot twice was accepted")
	}
	if err := w.Apply(Transition{Kind: KindSnapshotCompleted, ResourceID: id}); err == nil {
		t.Error("a failed snapshot completed")
	}

	if err := w.DeleteSnapshotOutside(snap.ID); err != nil {
		t.Fatal(err)
	}
	if _, found, err := w.drives.Snapshot(ctx, snap.ID); found || err != nil {
		t.Errorf("snapshot deleted outside: found=%v err=%v", found, err)
	}
	if !w.snapshot(t, snap.ID).Deleted {
		t.Error("deleted snapshot not marked Deleted")
	}
}

func TestRestoreKeepsLineage(t *testing.T) {
	w := newWorld(t, Options{})
	a := w.launchRunning(t, "us-east-1a", "", 0)
	w1 := w.mustWrite(t, a.DriveVolumeID)
	snap := w.completedSnapshot(t, a.DriveVolumeID)
	w2 := w.mustWrite(t, a.DriveVolumeID)

	b := w.launchRunning(t, "us-east-1c", snap.ID, 1)
	w3 := w.mustWrite(t, b.DriveVolumeID)
	restored := w.volume(t, b.DriveVolumeID).Data
	if !restored.Has(w1) || restored.Has(w2) || !restored.Has(w3) {
		t.Errorf("restored volume has w1=%v w2=%v w3=%v; want w1 and w3 only", restored.Has(w1), restored.Has(w2), restored.Has(w3))
	}
	original := w.volume(t, a.DriveVolumeID).Data
	if !original.Has(w1) || !original.Has(w2) || original.Has(w3) {
		t.Errorf("original volume has w1=%v w2=%v w3=%v; want w1 and w2 only", original.Has(w1), original.Has(w2), original.Has(w3))
	}
	writes := w.AllWrites()
	if len(writes) != 3 || writes[2] != (WriteRecord{ID: w3, VolumeID: b.DriveVolumeID, Time: defaultEpoch}) {
		t.Errorf("AllWrites = %+v", writes)
	}
}

func TestWriteNeedsALiveAttachment(t *testing.T) {
	w := newWorld(t, Options{})
	loose, err := w.SeedVolume("us-east-1a", 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(loose); err == nil {
		t.Error("write to an available volume was accepted")
	}
	if _, err := w.Write("vol-00000000000000999"); err == nil {
		t.Error("write to an unknown volume was accepted")
	}
	inst, err := w.launcher.Launch(context.Background(), launchRequest("us-east-1a", "", 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(inst.DriveVolumeID); err != nil {
		t.Errorf("write while the instance is pending: %v", err)
	}
	if w.volume(t, loose).Data != nil {
		t.Error("a refused write changed the volume")
	}
}

func TestVolumeInitialization(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, Options{})
	a := w.launchRunning(t, "us-east-1a", "", 0)
	snap := w.completedSnapshot(t, a.DriveVolumeID)
	b := w.launchRunning(t, "us-east-1b", snap.ID, 1)

	status := func() map[string]int64 {
		out, err := w.DescribeVolumeStatus(ctx, &ec2.DescribeVolumeStatusInput{VolumeIds: []string{a.DriveVolumeID, b.DriveVolumeID}})
		if err != nil {
			t.Fatal(err)
		}
		progress := map[string]int64{}
		for _, s := range out.VolumeStatuses {
			if s.InitializationStatusDetails != nil {
				progress[aws.ToString(s.VolumeId)] = aws.ToInt64(s.InitializationStatusDetails.Progress)
			}
		}
		return progress
	}
	if got := status(); len(got) != 1 || got[b.DriveVolumeID] != 0 {
		t.Errorf("initialization before: %v, want only the restored volume at 0", got)
	}
	w.mustApply(t, KindVolumeInitialized, b.DriveVolumeID)
	if got := status(); got[b.DriveVolumeID] != 100 {
		t.Errorf("initialization after: %v, want 100", got)
	}
}
