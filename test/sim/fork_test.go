package sim

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
)

// A rollback requested of a drive whose status says Archived while a volume
// of it is unrecorded (a launch the drive never adopted, stopped at once) is
// taken only once that volume is archived. Taken first, the volume's
// snapshot would end it at once, and the next restore would be the newest,
// not the one asked for (seed 285 of the fork and rollback model).
func TestRollbackWaitsForUnrecordedVolume(t *testing.T) {
	s := newScenario(t)
	s.running()
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	s.until("home archived with a snapshot", func() bool {
		st := s.Drive("home").Status
		return st.Phase == v1alpha1.XDrivePhaseArchived && st.LatestSnapshotID != "" && s.Workstation("dev").Status.Phase == v1alpha1.WorkstationPhaseStopped
	})
	first := s.Drive("home").Status.LatestSnapshotID
	s.SetState("dev", v1alpha1.WorkstationStateRunning)
	s.stoppedBeforeAdopted()
	xd := s.Drive("home")
	if xd.Status.Phase != v1alpha1.XDrivePhaseArchived || xd.Status.VolumeID != "" || s.Workstation("dev").Status.Phase != v1alpha1.WorkstationPhaseStopped {
		t.Fatalf("want dev stopped and home Archived without a recorded volume; home %+v", xd.Status)
	}
	xd.Annotations = map[string]string{v1alpha1.RollbackAnnotation: first + "@" + s.Clock.Now().UTC().Format(time.RFC3339)}
	if err := s.Client.Update(context.Background(), xd); err != nil {
		t.Fatal(err)
	}
	s.logf("user: rollback xd/home to %s", first)
	s.settle()
	st := s.Drive("home").Status
	if st.Rollback == nil || st.Rollback.SnapshotID != first || st.RestoreSnapshotID != first || st.LatestSnapshotID == first {
		t.Fatalf("want the rollback to %s in effect after the launch's volume was archived (a newer snapshot kept); status rollback %+v, restore %s, latest %s",
			first, st.Rollback, st.RestoreSnapshotID, st.LatestSnapshotID)
	}
}

// A rollback requested while the Workstation is started again: the launch
// records its restore (the newest snapshot) in the drive's lease before its
// own status, and the drive, reading its holder as it was before the start,
// does not take the rollback after it unseen. It waits until it sees the
// launch, then refuses the rollback as the drive is in use. Taken, the
// volume would be the newest snapshot's while the rollback said the older
// one was in effect (seed 574348045, I14).
func TestRollbackRacingStart(t *testing.T) {
	s := newScenario(t)
	s.running()
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	s.until("home archived with a snapshot", func() bool {
		st := s.Drive("home").Status
		return st.Phase == v1alpha1.XDrivePhaseArchived && st.LatestSnapshotID != "" && s.Workstation("dev").Status.Phase == v1alpha1.WorkstationPhaseStopped
	})
	first := s.Drive("home").Status.LatestSnapshotID
	s.SetState("dev", v1alpha1.WorkstationStateRunning)
	s.until("dev running again with the drive mounted", func() bool {
		ws := s.Workstation("dev")
		return ws.Status.Phase == v1alpha1.WorkstationPhaseRunning && s.Agent.Mounted(ws.Status.InstanceID)
	})
	s.mustWrite(s.Workstation("dev").Status.InstanceID)
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	s.until("home archived with a newer snapshot", func() bool {
		st := s.Drive("home").Status
		return st.Phase == v1alpha1.XDrivePhaseArchived && st.LatestSnapshotID != first && s.Workstation("dev").Status.Phase == v1alpha1.WorkstationPhaseStopped
	})
	newest := s.Drive("home").Status.RestoreSnapshotID
	stopped := s.Workstation("dev")
	xd := s.Drive("home")
	xd.Annotations = map[string]string{v1alpha1.RollbackAnnotation: first + "@" + s.Clock.Now().UTC().Format(time.RFC3339)}
	if err := s.Client.Update(context.Background(), xd); err != nil {
		t.Fatal(err)
	}
	s.logf("user: rollback xd/home to %s", first)
	s.SetState("dev", v1alpha1.WorkstationStateRunning)
	for range 3 {
		if s.Workstation("dev").Status.Launch != nil {
			break
		}
		s.ReconcileWorkstation("dev")
	}
	if l := s.Workstation("dev").Status.Launch; l == nil || l.SnapshotID != newest {
		t.Fatalf("want dev's launch recorded, restoring %s; launch %+v", newest, l)
	}
	s.lagReads = map[string][]client.Object{key(stopped): {stopped, stopped}} // the drive reads dev as it was before the start
	s.ReconcileDrive("home")
	s.ReconcileDrive("home")
	s.lagReads = nil
	s.check()
	if st := s.Drive("home").Status; st.Rollback != nil || st.RestoreSnapshotID != newest {
		t.Fatalf("the rollback to %s was taken beside the launch restoring %s: status rollback %+v, restore %s", first, newest, st.Rollback, st.RestoreSnapshotID)
	}
	s.settle()
	if st := s.Drive("home").Status; st.Rollback != nil || st.LastRollbackRequest == nil {
		t.Fatalf("want the rollback refused (the drive was in use); status rollback %+v, last request %v", st.Rollback, st.LastRollbackRequest)
	}
}

// A fork's first volume is made from its source's snapshot, which is tagged
// for the source. Left unrecorded (a launch stopped before the fork
// adopted it), and the fork's status no longer naming that snapshot (a
// forged restore), it is still the fork's: the drive adopts and archives
// it, and the Workstation launches no second volume beside it. Before, the
// fork knew only snapshots tagged for itself: the volume leaked, or a
// second was launched beside it (seeds 910002508, I3; 920004727, I2).
// Launches now tag the volume with its snapshot too (TagDriveSnapshot,
// LaunchSnapshotGone); this plays a volume launched before that, which only
// the source as an owner knows.
func TestForkFirstVolumeKnownBySource(t *testing.T) {
	s := newScenario(t)
	s.running()
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	s.until("home archived with a snapshot", func() bool {
		st := s.Drive("home").Status
		return st.Phase == v1alpha1.XDrivePhaseArchived && st.LatestSnapshotID != "" && s.Workstation("dev").Status.Phase == v1alpha1.WorkstationPhaseStopped
	})
	home := s.Drive("home")
	fork := &v1alpha1.XDrive{}
	fork.Namespace, fork.Name, fork.UID = Namespace, "fork", s.uid()
	fork.Spec = v1alpha1.XDriveSpec{SizeGiB: home.Spec.SizeGiB, VolumeType: v1alpha1.VolumeTypeGP3, Filesystem: v1alpha1.FilesystemExt4,
		DeletionPolicy: v1alpha1.DeletionPolicyRetain, SnapshotRetention: 2, Source: &v1alpha1.DriveSource{XDrive: &v1alpha1.ForkSource{Name: "home"}}}
	s.create(fork)
	s.UpdateWorkstation("dev", "switch drive to fork", func(ws *v1alpha1.Workstation) { ws.Spec.DriveRef.Name = "fork" })
	s.until("fork archived, restoring home's snapshot", func() bool {
		return s.Drive("fork").Status.RestoreSnapshotID == home.Status.LatestSnapshotID && s.Drive("fork").Status.Phase == v1alpha1.XDrivePhaseArchived
	})
	s.SetState("dev", v1alpha1.WorkstationStateRunning)
	for range 10 {
		if s.Workstation("dev").Status.InstanceID != "" {
			break
		}
		s.EC2.Settle()
		s.Poll()
		s.ReconcileWorkstation("dev") // the fork is not reconciled: it never sees the launch
	}
	id := s.Workstation("dev").Status.InstanceID
	if id == "" || s.Drive("fork").Status.VolumeID != "" {
		t.Fatalf("want a launch the fork has not adopted; instance %q, fork volume %q", id, s.Drive("fork").Status.VolumeID)
	}
	// As launched before launches tagged their volumes with the drive
	// volume's snapshot (an upgrade): the source as an owner is what knows it.
	for _, v := range s.EC2.Volumes() {
		if v.Tags[cloud.TagDriveUID] == string(fork.UID) && !v.Root {
			if _, err := s.EC2.CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: []string{v.ID},
				Tags: []ec2types.Tag{{Key: aws.String(cloud.TagDriveSnapshot), Value: aws.String("")}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.EC2.Settle()
	s.Agent.Boot()
	s.mustWrite(id)
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	for range 20 {
		s.EC2.Settle()
		s.Poll()
		s.ReconcileWorkstation("dev")
		s.check()
		s.Advance(10 * time.Second)
	}
	xd := s.Drive("fork")
	xd.Status.RestoreSnapshotID = s.EC2.SeedSnapshot(10, map[string]string{cloud.TagCluster: Cluster, cloud.TagDrive: Namespace + "/other"})
	if err := s.Client.Status().Update(context.Background(), xd); err != nil {
		t.Fatal(err)
	}
	s.logf("tenant: forge xd/fork status.restoreSnapshotID %s", xd.Status.RestoreSnapshotID)
	s.ReconcileDrive("fork")
	if st := s.Drive("fork").Status; st.VolumeID == "" {
		t.Fatalf("the fork did not adopt its first volume, made from home's snapshot %s: status %+v", home.Status.LatestSnapshotID, st)
	}
	s.SetState("dev", v1alpha1.WorkstationStateRunning)
	s.settle()
}

// A relaunch that reads the drive a whole stop cycle old (Archived and held,
// but before its first snapshot: a blank restore) launches nothing from that
// read: the launch is written into the lease with an optimistic lock on the
// drive as read, which fails, and the next read shows the newest snapshot.
// Before, the relaunch restored a blank volume (seed 900000153, I5).
func TestRelaunchFromStaleDriveRefused(t *testing.T) {
	s := newScenario(t)
	s.CreateDrive("home", v1alpha1.DeletionPolicyRetain)
	s.CreateWorkstation("dev", "home", v1alpha1.CapacityTypeSpot, v1alpha1.InterruptionPolicyRelaunch)
	s.until("home held by dev, not yet launched on", func() bool {
		st := s.Drive("home").Status
		return st.HolderName() == "dev" && st.Phase == v1alpha1.XDrivePhaseArchived
	})
	stale := s.Drive("home")
	if stale.Status.RestoreSnapshotID != "" {
		t.Fatalf("want a drive that restores blank, held by dev; restore %s", stale.Status.RestoreSnapshotID)
	}
	s.until("dev running with the drive mounted", func() bool {
		ws := s.Workstation("dev")
		return ws.Status.Phase == v1alpha1.WorkstationPhaseRunning && s.Agent.Mounted(ws.Status.InstanceID)
	})
	s.mustWrite(s.Workstation("dev").Status.InstanceID)
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	s.until("home archived with a snapshot", func() bool {
		st := s.Drive("home").Status
		return st.Phase == v1alpha1.XDrivePhaseArchived && st.LatestSnapshotID != "" && s.Workstation("dev").Status.Phase == v1alpha1.WorkstationPhaseStopped
	})
	newest := s.Drive("home").Status.RestoreSnapshotID
	s.SetState("dev", v1alpha1.WorkstationStateRunning)
	s.lagReads = map[string][]client.Object{key(stale): {stale, stale, stale, stale, stale, stale}}
	for range 3 {
		s.ReconcileWorkstation("dev")
		if l := s.Workstation("dev").Status.Launch; l != nil && l.SnapshotID != newest {
			t.Fatalf("the relaunch restores %q from a drive read a stop cycle old, not the newest snapshot %s", l.SnapshotID, newest)
		}
	}
	s.lagReads = nil
	s.settle()
}
