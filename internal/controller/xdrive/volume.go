package xdrive

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/controller/handoff"
	"github.com/xdrive-io/xdrive/internal/drives"
	"github.com/xdrive-io/xdrive/internal/instances"
	"github.com/xdrive-io/xdrive/internal/metrics"
)

// snapshotVisibleWithin is how long a new snapshot may be missing from EC2's answers.
const snapshotVisibleWithin = 2 * time.Minute

// adopt records a live volume of this drive as the drive's volume.
func (s *scope) adopt(v drives.Volume, instanceID string) {
	s.record(v, instanceID)
	if v.SnapshotID == "" {
		// A blank volume has nothing to load: no DescribeVolumeStatus for it.
		s.st.Initialization = &v1alpha1.VolumeInitialization{VolumeID: v.ID}
	}
	s.ev.Add(false, v1alpha1.ReasonRestoring, "Restore", "Volume %s in %s adopted for instance %s", v.ID, v.Zone, orNone(instanceID))
}

// record makes the volume the drive's live volume, on its way to the instance.
func (s *scope) record(v drives.Volume, instanceID string) {
	s.st.VolumeID, s.st.AvailabilityZone, s.st.AttachedTo = v.ID, v.Zone, instanceID
	s.st.Release, s.st.PendingSnapshot, s.st.ReattachedAt = nil, nil, nil
	if s.st.SizeGiB == 0 || v.SizeGiB > 0 {
		s.st.SizeGiB = max(v.SizeGiB, s.st.SizeGiB)
	}
	s.setPhase(v1alpha1.XDrivePhaseRestoring)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// findVolume looks for a live volume of this drive by its tags, which also
// finds a volume whose instance is gone.
func (s *scope) findVolume(ctx context.Context) (bool, error) {
	vols, err := s.listVolumes(ctx)
	if err != nil {
		return false, err
	}
	for _, v := range vols { // the oldest first: each leftover is archived in turn
		ours, err := s.isDriveVolume(ctx, v)
		if err != nil {
			return false, err
		}
		if ours {
			s.adopt(v, v.AttachedTo)
			return true, nil
		}
	}
	return false, nil
}

// isDriveVolume tells the drive's volume from the other volumes a launch tags alike.
func (s *scope) isDriveVolume(ctx context.Context, v drives.Volume) (bool, error) {
	known := handoff.KnownSnapshots(s.xd)
	if id, ok := handoff.LaunchSnapshot(s.holder); ok {
		known = append(known, id)
	}
	ours, err := s.svc().Volumes.IsDriveVolume(ctx, v, bootstrap.DriveDevice, handoff.SnapshotOwners(s.xd), known...)
	if err != nil {
		return false, fmt.Errorf("tell whether volume %s belongs to drive %s: %w", v.ID, s.key, err)
	}
	return ours, nil
}

// live follows a volume from its creation to its release.
func (s *scope) live(ctx context.Context) (ctrl.Result, error) {
	st := s.st
	if rel := s.holderRelease(); rel != nil && st.Release == nil {
		st.Release = rel.DeepCopy()
	}
	inst, known, err := s.instance(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	if st.Phase == v1alpha1.XDrivePhaseRestoring && st.ReattachedAt != nil && st.Release == nil {
		if res, done, err := s.attachReattached(ctx, inst, known); !done || err != nil {
			return res, err
		}
	}
	switch {
	case st.Release != nil && st.Release.Consistency == v1alpha1.ConsistencyFlushed:
		return s.snapshot(ctx, v1alpha1.ConsistencyFlushed, false)
	case st.Release != nil, st.AttachedTo == "", known && inst.Gone(), s.holderLost():
		// No flush can be had: wait until no instance can write, then snapshot.
		st.Release = nil
		s.setPhase(v1alpha1.XDrivePhaseDetaching)
		return s.detaching(ctx, inst, known)
	case !known && st.Phase == v1alpha1.XDrivePhaseAttached:
		// Missing from EC2's answers is not gone: it stays attached until EC2 says more.
		return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
	case !known || inst.State == instances.StatePending:
		s.setPhase(v1alpha1.XDrivePhaseRestoring)
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	s.setPhase(v1alpha1.XDrivePhaseAttached)
	again, err := s.hydrate(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	res, err := s.resize(ctx)
	if again > 0 && (res.RequeueAfter == 0 || res.RequeueAfter > again) {
		res.RequeueAfter = again
	}
	return res, err
}

// holderRelease is the holder's release of the drive's current instance.
func (s *scope) holderRelease() *v1alpha1.DriveRelease {
	return handoff.ReleaseOf(s.holder, s.st.AttachedTo)
}

// holderLost reports that no existing Workstation vouches for the volume's
// instance: neither as its instance, nor one it tears down, nor a launch it awaits.
func (s *scope) holderLost() bool {
	return !handoff.Vouches(s.holder, s.st.AttachedTo)
}

func (s *scope) instance(ctx context.Context) (instances.Instance, bool, error) {
	if s.st.AttachedTo == "" {
		return instances.Instance{}, false, nil
	}
	return s.instanceByID(ctx, s.st.AttachedTo)
}

// firstDetachLook is how long after a crash release the volume is first
// looked at: its instance's terminate was asked for then.
const firstDetachLook = 250 * time.Millisecond

// detaching waits until the volume is detached, so that no write can follow the snapshot.
func (s *scope) detaching(ctx context.Context, inst instances.Instance, known bool) (ctrl.Result, error) {
	st := s.st
	if rel := s.holderRelease(); rel != nil && rel.Consistency == v1alpha1.ConsistencyFlushed {
		st.Release = rel.DeepCopy()
		return s.snapshot(ctx, v1alpha1.ConsistencyFlushed, false)
	}
	if rel := s.holderRelease(); rel != nil && s.now.Sub(rel.Time.Time) < firstDetachLook {
		// A crash release: the instance's terminate was asked for just now, nothing is detached yet.
		return ctrl.Result{RequeueAfter: firstDetachLook - s.now.Sub(rel.Time.Time)}, nil
	}
	vol, found, err := s.describeVolume(ctx, st.VolumeID)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !found {
		if s.now.Sub(s.releaseOrNow()) < snapshotVisibleWithin {
			return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
		}
		s.volumeLost()
		return ctrl.Result{RequeueAfter: time.Millisecond}, nil
	}
	if !vol.Detached() {
		if st.AttachedTo != "" && s.holderRelease() == nil && !s.holderLost() && (!known || !inst.Gone()) {
			// The holder found its instance again (a lost status write): it is live.
			s.setPhase(v1alpha1.XDrivePhaseRestoring)
		}
		if rel := s.holderRelease(); rel != nil {
			// A crash release: its instance is being terminated. Look soon, then less often.
			return ctrl.Result{RequeueAfter: min(max(s.now.Sub(rel.Time.Time), firstDetachLook), 2*time.Second)}, nil
		}
		if known && inst.Gone() {
			return ctrl.Result{RequeueAfter: 2 * time.Second}, nil // EC2 detaches it within seconds
		}
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	if st.Release == nil || st.Release.Consistency != v1alpha1.ConsistencyCrash {
		// The moment the volume was seen detached is the last possible write.
		st.Release = &v1alpha1.DriveRelease{InstanceID: st.AttachedTo, Consistency: v1alpha1.ConsistencyCrash, Time: metav1.NewTime(s.now)}
	}
	if st.AttachedTo == "" {
		st.Release.InstanceID = "none"
	}
	return s.snapshot(ctx, v1alpha1.ConsistencyCrash, true)
}

func (s *scope) releaseOrNow() time.Time {
	if s.st.Release != nil {
		return s.st.Release.Time.Time
	}
	return s.now
}

// volumeLost records a volume that vanished from outside before it was archived.
func (s *scope) volumeLost() {
	s.ev.Add(true, v1alpha1.ReasonVolumeLost, "Archive", "Volume %s disappeared before it was archived; the drive goes back to snapshot %s",
		s.st.VolumeID, orNone(s.st.LatestSnapshotID))
	s.clearVolume()
}

func (s *scope) clearVolume() {
	st := s.st
	st.VolumeID, st.AvailabilityZone, st.AttachedTo = "", "", ""
	st.Release, st.PendingSnapshot, st.KeptUntil, st.Initialization, st.ReattachedAt = nil, nil, nil, nil, nil
	s.setPhase(v1alpha1.XDrivePhaseArchived)
}

// snapshot starts (or finds again) a snapshot taken after the release.
func (s *scope) snapshot(ctx context.Context, c v1alpha1.Consistency, detached bool) (ctrl.Result, error) {
	st := s.st
	req := drives.SnapshotRequest{
		VolumeID: st.VolumeID, Drive: s.key, DriveUID: string(s.xd.UID), DriveName: s.xd.Name,
		Consistency: string(c), Detached: detached,
	}
	if !detached {
		// A snapshot of a detached volume is good whenever it was taken; one of
		// an attached volume only if it started after the flushed release.
		req.NotBefore = st.Release.Time.Time
	}
	if st.ReattachedAt != nil && req.NotBefore.Before(st.ReattachedAt.Time) {
		req.NotBefore = st.ReattachedAt.Time // none from before the reattach, whatever the release
	}
	sn, err := s.createSnapshot(ctx, req)
	if cloud.IsNotFound(err) {
		s.volumeLost()
		return ctrl.Result{RequeueAfter: time.Millisecond}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	start := sn.StartTime
	if start.IsZero() {
		start = s.now // an answer without a start time: the call itself is later than the release
	}
	st.PendingSnapshot = &v1alpha1.PendingSnapshot{ID: sn.ID, VolumeID: st.VolumeID, StartTime: metav1.NewTime(start), Consistency: c}
	s.setPhase(v1alpha1.XDrivePhaseSnapshotting)
	metrics.SnapshotsTaken.WithLabelValues("started").Inc()
	if at, ok := handoff.InterruptedAt(s.holder); ok {
		metrics.NoticeToSnapshot.Observe(s.now.Sub(at).Seconds())
	}
	s.ev.Add(false, v1alpha1.ReasonSnapshotting, "Snapshot", "Snapshot %s of %s started (%s)", sn.ID, st.VolumeID, c)
	return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
}

// snapshotting waits for the snapshot; only a completed one lets the volume go.
func (s *scope) snapshotting(ctx context.Context) (ctrl.Result, error) {
	st := s.st
	ps := st.PendingSnapshot
	if ps == nil {
		// A failed snapshot's retake did not start (its CreateSnapshot failed): start it again.
		return s.snapshotAgain(ctx)
	}
	sn, found, err := s.describeSnapshot(ctx, ps.ID)
	if err != nil {
		return ctrl.Result{}, err
	}
	switch {
	case !found && s.now.Sub(ps.StartTime.Time) < snapshotVisibleWithin:
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	case !found, sn.State == drives.SnapshotError:
		why := "failed"
		if !found {
			why = "disappeared"
		}
		s.set(v1alpha1.ConditionSnapshotsHealthy, metav1.ConditionFalse, v1alpha1.ReasonSnapshotFailed,
			fmt.Sprintf("Snapshot %s of volume %s %s; the volume is kept and a new snapshot is taken", ps.ID, st.VolumeID, why))
		s.ev.Add(true, v1alpha1.ReasonSnapshotFailed, "Snapshot", "Snapshot %s %s; volume %s kept", ps.ID, why, st.VolumeID)
		metrics.SnapshotsTaken.WithLabelValues("failed").Inc()
		st.PendingSnapshot = nil
		return s.snapshotAgain(ctx)
	case sn.State != drives.SnapshotCompleted:
		ps.Progress = sn.Progress // for people (kubectl xdrive stop --wait); nothing reads it back
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	st.LatestSnapshotID, st.RestoreSnapshotID = sn.ID, sn.ID
	s.recordCompleted(sn)
	s.endRollback(sn.ID)
	completed := metav1.NewTime(s.now)
	ps.CompletionTime = &completed
	t := metav1.NewTime(ps.StartTime.Time)
	st.LatestSnapshotTime = &t
	st.SnapshotCount++
	metrics.SnapshotsTaken.WithLabelValues("completed").Inc()
	metrics.SnapshotDuration.Observe(s.now.Sub(sn.StartTime).Seconds())
	s.set(v1alpha1.ConditionSnapshotsHealthy, metav1.ConditionTrue, v1alpha1.ReasonSnapshotsOK, "Snapshot "+sn.ID+" completed")
	s.ev.Add(false, "SnapshotCompleted", "Snapshot", "Snapshot %s completed", sn.ID)
	// The completed snapshot is recorded before the volume is touched.
	s.setPhase(v1alpha1.XDrivePhaseDeletingVolume)
	return ctrl.Result{RequeueAfter: time.Millisecond}, nil
}

// snapshotAgain retakes a snapshot that failed or vanished: the release still stands.
func (s *scope) snapshotAgain(ctx context.Context) (ctrl.Result, error) {
	if s.st.Release.Consistency == v1alpha1.ConsistencyFlushed {
		return s.snapshot(ctx, v1alpha1.ConsistencyFlushed, false)
	}
	s.setPhase(v1alpha1.XDrivePhaseDetaching)
	return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
}

// MayDeleteVolume is invariant I1 as the controller holds it: the volume may
// go only after a completed snapshot that started after its last possible
// write: after a flushed release, or while the volume was detached.
func MayDeleteVolume(st *v1alpha1.XDriveStatus) bool {
	ps, rel := st.PendingSnapshot, st.Release
	if st.Phase != v1alpha1.XDrivePhaseDeletingVolume || ps == nil || rel == nil || ps.VolumeID != st.VolumeID || ps.ID != st.LatestSnapshotID {
		return false
	}
	if st.ReattachedAt != nil && ps.StartTime.Before(st.ReattachedAt) {
		return false // a snapshot from before the reattach lacks the writes since
	}
	if ps.Consistency == v1alpha1.ConsistencyCrash {
		return rel.Consistency == v1alpha1.ConsistencyCrash // taken only once the volume was seen detached
	}
	return rel.Consistency == v1alpha1.ConsistencyFlushed && !ps.StartTime.Before(&rel.Time)
}

// deletingVolume deletes the volume once it is detached.
func (s *scope) deletingVolume(ctx context.Context) (ctrl.Result, error) {
	st := s.st
	if !MayDeleteVolume(st) {
		// Not reachable by the state machine; never delete on doubt.
		s.setPhase(v1alpha1.XDrivePhaseDetaching)
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	if s.reattachPending() {
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil // a recorded launch asks for it
	}
	vol, found, err := s.describeVolume(ctx, st.VolumeID)
	if err != nil {
		return ctrl.Result{}, err
	}
	if found {
		if !vol.Detached() {
			return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
		}
		if ok, err := s.snapshotStillThere(ctx); err != nil || !ok {
			if err != nil {
				return ctrl.Result{}, err
			}
			s.ev.Add(true, v1alpha1.ReasonSnapshotFailed, "Archive", "Snapshot %s is gone before volume %s was deleted; snapshotting again", st.PendingSnapshot.ID, vol.ID)
			st.PendingSnapshot = nil
			return s.snapshotAgain(ctx)
		}
		if s.keepVolume() {
			// Pruned now, within the lease's bounds: the lease may be given back while the volume is kept.
			if err := s.pruneBeyondRetention(ctx); err != nil {
				return ctrl.Result{}, err
			}
			return s.keep()
		}
		if err := s.deleteVolume(ctx, vol); err != nil {
			return ctrl.Result{}, err
		}
		s.ev.Add(false, "VolumeDeleted", "Archive", "Volume %s deleted after snapshot %s", vol.ID, st.LatestSnapshotID)
		if keep, capped := s.xd.BoundedKeepVolume(); capped && keep == 0 && st.KeptUntil == nil {
			s.reportKeepCapped(keep, "volume "+vol.ID+" is deleted, not kept")
		}
	}
	s.clearVolume()
	s.removeCondition(v1alpha1.ConditionResizing)
	if err := s.pruneBeyondRetention(ctx); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: time.Millisecond}, nil
}

// recheckSnapshotAfter is how long a completed snapshot is trusted before
// its volume is deleted without looking at it again.
const recheckSnapshotAfter = time.Minute

// snapshotStillThere reports whether the completed snapshot still exists: it
// may have been deleted from outside while the volume detached. One seen
// completed moments ago is not described again.
func (s *scope) snapshotStillThere(ctx context.Context) (bool, error) {
	ps := s.st.PendingSnapshot
	if ps.CompletionTime != nil && s.now.Sub(ps.CompletionTime.Time) < recheckSnapshotAfter {
		return true, nil
	}
	sn, ok, err := s.describeSnapshot(ctx, ps.ID)
	return ok && sn.State == drives.SnapshotCompleted, err
}

// resize grows the attached volume when sizeGiB grew.
func (s *scope) resize(ctx context.Context) (ctrl.Result, error) {
	st := s.st
	want := s.xd.Spec.SizeGiB
	if want <= st.SizeGiB {
		return ctrl.Result{}, nil
	}
	mod, found, err := s.describeModification(ctx, st.VolumeID)
	if err != nil {
		return ctrl.Result{}, err
	}
	switch {
	case found && mod.TargetSize >= want && mod.State == "failed":
		s.set(v1alpha1.ConditionResizing, metav1.ConditionFalse, v1alpha1.ReasonAWSError, "ModifyVolume failed for "+st.VolumeID)
		return ctrl.Result{}, nil
	case found && mod.TargetSize >= want && mod.State == "modifying":
		return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
	case found && mod.TargetSize >= want:
		st.SizeGiB = want
		s.set(v1alpha1.ConditionResizing, metav1.ConditionFalse, v1alpha1.ReasonResized,
			fmt.Sprintf("Volume %s is %d GiB; a running instance grows its filesystem to it when its kernel sees the new size, else the next boot does", st.VolumeID, want))
		return ctrl.Result{}, nil
	}
	vol, found, err := s.describeVolume(ctx, st.VolumeID)
	if err != nil || !found {
		return ctrl.Result{RequeueAfter: 5 * time.Second}, err
	}
	if err := s.growVolume(ctx, vol, want); err != nil {
		return ctrl.Result{}, err
	}
	s.set(v1alpha1.ConditionResizing, metav1.ConditionTrue, v1alpha1.ReasonResizing,
		fmt.Sprintf("Growing volume %s from %d to %d GiB", st.VolumeID, st.SizeGiB, want))
	s.ev.Add(false, v1alpha1.ReasonResizing, "Resize", "Growing volume %s to %d GiB", st.VolumeID, want)
	return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
}
