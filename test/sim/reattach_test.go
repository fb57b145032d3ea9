package sim

import (
	"testing"
	"time"

	"k8s.io/utils/ptr"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/test/fakeec2"
)

// holdSnapshots keeps every snapshot pending, as a slow EBS would.
func (s *scenario) holdSnapshots() {
	for _, sn := range s.EC2.Snapshots() {
		if sn.State == fakeec2.SnapshotPending {
			s.EC2.Hold(sn.ID)
		}
	}
}

func (s *scenario) releaseSnapshots() {
	for _, sn := range s.EC2.Snapshots() {
		s.EC2.Release(sn.ID)
	}
}

// runningOn reports whether dev runs a new instance with the drive mounted on the given volume.
func (s *scenario) runningOn(old, volume string) bool {
	ws, xd := s.Workstation("dev"), s.Drive("home")
	return ws.Status.Phase == v1alpha1.WorkstationPhaseRunning && ws.Status.InstanceID != old &&
		xd.Status.Phase == v1alpha1.XDrivePhaseAttached && xd.Status.VolumeID == volume && s.Agent.Mounted(ws.Status.InstanceID)
}

// After a spot interruption the relaunch lands in the volume's zone and gets
// the volume back while the release's snapshot is still pending; the
// snapshot completes later, and every write is kept.
func TestReattachAfterInterruption(t *testing.T) {
	s := newScenario(t)
	s.ReattachTolerance = ptr.To[int32](1000)
	id := s.running()
	vol := s.Drive("home").Status.VolumeID
	s.Notice("dev", v1alpha1.NoticeSpotInterruption, id, s.Clock.Now())
	s.until("dev relaunched on the same volume", func() bool {
		s.holdSnapshots()
		return s.runningOn(id, vol)
	})
	xd := s.Drive("home")
	if xd.Status.TrailingSnapshot == nil || xd.Status.ReattachedAt == nil {
		t.Fatalf("reattached without following the release's snapshot: %+v", xd.Status)
	}
	if snaps := s.snapshotsOf(vol); len(snaps) != 1 || snaps[0].State != fakeec2.SnapshotPending {
		t.Fatalf("snapshots of %s: %+v, want the release's, still pending", vol, snaps)
	}
	s.mustWrite(s.Workstation("dev").Status.InstanceID)
	s.releaseSnapshots()
	s.until("the trailing snapshot recorded", func() bool {
		st := s.Drive("home").Status
		return st.TrailingSnapshot == nil && st.LatestSnapshotID == xd.Status.TrailingSnapshot.ID
	})
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	s.settle()
	if st := s.Drive("home").Status; st.Phase != v1alpha1.XDrivePhaseArchived || st.LatestSnapshotID == xd.Status.TrailingSnapshot.ID {
		t.Fatalf("after the stop the drive is %s with newest snapshot %s; want Archived with a snapshot taken after the reattach",
			st.Phase, st.LatestSnapshotID)
	}
}

// A Stop keeps the volume for the warm period; a Start within it reattaches
// the volume, and after it the volume is deleted once its snapshot completed.
func TestWarmPeriodAfterStop(t *testing.T) {
	s := newScenario(t)
	s.KeepVolumeForMinutes = 10
	s.ReattachTolerance = ptr.To[int32](1000)
	id := s.running()
	vol := s.Drive("home").Status.VolumeID
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	s.until("dev stopped, its volume kept, the lease given back", func() bool {
		xd := s.Drive("home")
		return s.Workstation("dev").Status.Phase == v1alpha1.WorkstationPhaseStopped && xd.Status.Phase == v1alpha1.XDrivePhaseKept && xd.Status.Holder == nil
	})
	if st := s.Drive("home").Status; st.VolumeID != vol || st.KeptUntil == nil || st.Holder != nil {
		t.Fatalf("kept drive: volume %s, keptUntil %v, holder %v; want %s, a time, no holder", st.VolumeID, st.KeptUntil, st.Holder, vol)
	}
	s.SetState("dev", v1alpha1.WorkstationStateRunning)
	s.until("dev started on the kept volume", func() bool { return s.runningOn(id, vol) })
	s.mustWrite(s.Workstation("dev").Status.InstanceID)
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	s.until("the volume kept again", func() bool { return s.Drive("home").Status.Phase == v1alpha1.XDrivePhaseKept })
	s.Advance(11 * time.Minute)
	s.until("the volume deleted after the period", func() bool { return s.Drive("home").Status.Phase == v1alpha1.XDrivePhaseArchived })
	for _, v := range s.EC2.Volumes() {
		if v.ID == vol && !v.Deleted {
			t.Fatalf("volume %s still exists after the warm period", vol)
		}
	}
	s.settle()
}

// A reattach that EC2 refuses sends the Workstation back to the snapshot: the
// drive-less instance ends, and the next launch restores a new volume.
func TestReattachFailureFallsBackToSnapshot(t *testing.T) {
	s := newScenario(t)
	s.ReattachTolerance = ptr.To[int32](1000)
	id := s.running()
	vol := s.Drive("home").Status.VolumeID
	s.EC2.InjectError("AttachVolume", "IncorrectInstanceState", false, 1)
	s.Notice("dev", v1alpha1.NoticeSpotInterruption, id, s.Clock.Now())
	s.until("dev relaunched from the snapshot", func() bool {
		ws, xd := s.Workstation("dev"), s.Drive("home")
		return ws.Status.Phase == v1alpha1.WorkstationPhaseRunning && xd.Status.Phase == v1alpha1.XDrivePhaseAttached &&
			xd.Status.VolumeID != "" && xd.Status.VolumeID != vol && s.Agent.Mounted(ws.Status.InstanceID)
	})
	if got := s.EC2.Calls()["AttachVolume"]; got != 1 {
		t.Fatalf("AttachVolume called %d times, want 1 (the refused one)", got)
	}
	if st := s.Workstation("dev").Status; st.DeclinedVolumeID != vol {
		t.Fatalf("declinedVolumeID = %q, want %s", st.DeclinedVolumeID, vol)
	}
	s.settle()
}
