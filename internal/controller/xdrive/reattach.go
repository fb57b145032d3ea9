package xdrive

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/controller/handoff"
	"github.com/xdrive-io/xdrive/internal/drives"
	"github.com/xdrive-io/xdrive/internal/instances"
)

// reattachRequest is the holder's instance that waits for the drive's released
// volume, and that volume; empty when none waits, or its reattach failed.
func (s *scope) reattachRequest() (instanceID, volumeID string) {
	id, vol := handoff.ReattachRequest(s.holder, s.st.AttachedTo)
	if f := s.st.FailedReattach; id == "" || f != nil && f.InstanceID == id {
		return "", ""
	}
	return id, vol
}

// reattach attaches the released volume to the holder's new instance once the
// old one has let go of it. The snapshot of the release goes on: it is
// followed as the trailing snapshot. Any failure leaves the drive on its way
// to the archive, and the Workstation restores from the snapshot instead.
func (s *scope) reattach(ctx context.Context, instanceID string) (ctrl.Result, error) {
	st := s.st
	inst, known, err := s.instanceByID(ctx, instanceID)
	switch {
	case err != nil:
		return ctrl.Result{}, err
	case known && inst.Gone():
		return s.step(ctx) // its Workstation tears it down and launches again
	case !known || inst.State != instances.StateRunning:
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil // EC2 attaches only to a running instance
	}
	vol, found, err := s.describeVolume(ctx, st.VolumeID)
	switch {
	case err != nil:
		return ctrl.Result{}, err
	case !found:
		s.failReattach(instanceID, st.VolumeID, "the volume is gone")
		return s.step(ctx)
	case vol.AttachedTo == instanceID:
		s.reattached(vol, instanceID) // attached by an earlier reconcile whose status write was lost
		return s.live(ctx)
	case handoff.TearsDown(s.holder, instanceID):
		return s.step(ctx) // released before it got the drive: it never will
	case !vol.Detached():
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil // the old instance still has it
	case vol.Zone != inst.Zone:
		s.failReattach(instanceID, vol.ID, "the instance is in "+inst.Zone+", the volume in "+vol.Zone)
		return s.step(ctx)
	}
	// The reattach is written down before AttachVolume: from then on the
	// volume belongs to the new instance, and a release of that instance is
	// snapshotted before the volume may go, whether the attach took effect or not.
	s.reattached(vol, instanceID)
	return ctrl.Result{RequeueAfter: time.Millisecond}, nil
}

// attachReattached attaches the volume of a recorded reattach to its new
// instance; done once it is attached, or when the normal path must go on
// (the instance is gone). A refusal is recorded as a failed reattach, and the
// drive then waits for the holder to release the instance.
func (s *scope) attachReattached(ctx context.Context, inst instances.Instance, known bool) (res ctrl.Result, done bool, err error) {
	st := s.st
	if known && inst.Gone() {
		return ctrl.Result{}, true, nil
	}
	if f := st.FailedReattach; f != nil && f.InstanceID == st.AttachedTo {
		return ctrl.Result{RequeueAfter: 2 * time.Second}, false, nil
	}
	vol, found, err := s.describeVolume(ctx, st.VolumeID)
	switch {
	case err != nil:
		return ctrl.Result{}, false, err
	case !found:
		s.failReattach(st.AttachedTo, st.VolumeID, "the volume is gone")
		return ctrl.Result{RequeueAfter: 2 * time.Second}, false, nil
	case vol.AttachedTo == st.AttachedTo:
		return ctrl.Result{}, true, nil
	case !vol.Detached():
		return ctrl.Result{RequeueAfter: 2 * time.Second}, false, nil
	}
	err = s.attachVolume(ctx, vol, st.AttachedTo, bootstrap.DriveDevice)
	switch code := cloud.ErrorCode(err); {
	case err == nil:
		return ctrl.Result{}, true, nil
	case code == "VolumeInUse" || code == "IncorrectState":
		// The volume is not available: perhaps an earlier try took effect
		// and its answer was lost. Look again before calling it a failure.
		return ctrl.Result{RequeueAfter: time.Second}, false, nil
	}
	switch cloud.Classify(err) {
	case cloud.KindNotFound, cloud.KindIncorrectState, cloud.KindInvalidInput:
		s.failReattach(st.AttachedTo, vol.ID, cloud.ErrorCode(err))
		return ctrl.Result{RequeueAfter: 2 * time.Second}, false, nil
	}
	return ctrl.Result{}, false, err
}

// reattachPending reports whether the holder has recorded a launch that
// asks for this volume, but not its instance yet: the volume waits for it.
func (s *scope) reattachPending() bool {
	return handoff.ReattachAwaited(s.holder, s.st.VolumeID) && s.xd.DeletionTimestamp.IsZero()
}

// instanceByID is the instance from the cache, else from EC2.
func (s *scope) instanceByID(ctx context.Context, id string) (instances.Instance, bool, error) {
	if inst, ok := s.svc().Instances.Cached(id); ok {
		return inst, true, nil
	}
	return s.describeInstance(ctx, id)
}

// reattached records the volume as live on the new instance; a snapshot of
// the release still pending is followed until it completes.
func (s *scope) reattached(v drives.Volume, instanceID string) {
	st := s.st
	trailing := st.PendingSnapshot
	if trailing != nil && trailing.CompletionTime == nil {
		st.TrailingSnapshot = trailing.DeepCopy()
	}
	st.KeptUntil, st.FailedReattach = nil, nil
	s.record(v, instanceID)
	// Rounded up to the second, as status keeps it: a snapshot from the same
	// second counts as older, and another is taken.
	at := metav1.NewTime(s.now.Truncate(time.Second).Add(time.Second))
	st.ReattachedAt = &at
	s.ev.Add(false, v1alpha1.ReasonReattached, "Reattach", "Volume %s in %s reattached to instance %s; no restore from a snapshot",
		v.ID, v.Zone, instanceID)
}

func (s *scope) failReattach(instanceID, volumeID, why string) {
	s.st.FailedReattach = &v1alpha1.FailedReattach{InstanceID: instanceID, VolumeID: volumeID, Reason: why}
	s.ev.Add(true, v1alpha1.ReasonReattachFailed, "Reattach", "Volume %s cannot be attached to %s: %s", volumeID, instanceID, why)
}

// trail follows the snapshot of an earlier release after a reattach: it is
// recorded as the newest snapshot unless a newer one was taken meanwhile.
func (s *scope) trail(ctx context.Context, res ctrl.Result) (ctrl.Result, error) {
	st := s.st
	ts := st.TrailingSnapshot
	sn, found, err := s.describeSnapshot(ctx, ts.ID)
	switch {
	case err != nil:
		return res, nil // the next reconcile looks again
	case found && sn.State == drives.SnapshotPending, !found && s.now.Sub(ts.StartTime.Time) < snapshotVisibleWithin:
		if res.RequeueAfter == 0 || res.RequeueAfter > 10*time.Second {
			res.RequeueAfter = 10 * time.Second
		}
		return res, nil
	case found && sn.State == drives.SnapshotCompleted:
		st.SnapshotCount++
		if st.PendingSnapshot == nil && (st.LatestSnapshotTime == nil || st.LatestSnapshotTime.Before(&ts.StartTime)) {
			st.LatestSnapshotID, st.RestoreSnapshotID = sn.ID, sn.ID
			t := metav1.NewTime(ts.StartTime.Time)
			st.LatestSnapshotTime = &t
		}
		s.recordCompleted(sn)
		s.endRollback(sn.ID)
		s.ev.Add(false, "SnapshotCompleted", "Snapshot", "Snapshot %s of the release before the reattach completed", sn.ID)
	default:
		s.ev.Add(true, v1alpha1.ReasonSnapshotFailed, "Snapshot", "Snapshot %s of the release before the reattach failed; the live volume holds its data", ts.ID)
	}
	st.TrailingSnapshot = nil
	return res, nil
}

// keepVolume reports whether the detached volume, its snapshot completed, is
// kept for a reattach rather than deleted now.
func (s *scope) keepVolume() bool {
	return s.keepFor() > 0 && s.st.KeptUntil == nil && s.xd.DeletionTimestamp.IsZero() && !s.declined()
}

// declined reports that the holder will not reattach the volume.
func (s *scope) declined() bool {
	return handoff.Declined(s.holder, s.st.VolumeID)
}

// keep starts the warm period, within the lease's bounds.
func (s *scope) keep() (ctrl.Result, error) {
	keep, capped := s.xd.BoundedKeepVolume()
	until := metav1.NewTime(s.now.Add(keep))
	s.st.KeptUntil = &until
	s.setPhase(v1alpha1.XDrivePhaseKept)
	s.ev.Add(false, v1alpha1.ReasonKept, "Archive", "Volume %s is kept until %s for a fast restart; snapshot %s holds its data",
		s.st.VolumeID, until.UTC().Format(time.RFC3339), s.st.LatestSnapshotID)
	if capped {
		s.reportKeepCapped(keep, "volume "+s.st.VolumeID+" is kept until "+until.UTC().Format(time.RFC3339))
	}
	return ctrl.Result{RequeueAfter: keep}, nil
}

// kept waits out the warm period; then, or once the holder declines the
// volume or the drive is deleted, the volume is deleted as usual.
func (s *scope) kept(ctx context.Context) (ctrl.Result, error) {
	left := s.st.KeptUntil.Sub(s.now)
	if left > 0 && s.keepFor() > 0 && s.xd.DeletionTimestamp.IsZero() && !s.declined() && !s.rollbackWaits() {
		return ctrl.Result{RequeueAfter: left}, nil
	}
	if s.reattachPending() {
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	s.setPhase(v1alpha1.XDrivePhaseDeletingVolume)
	return s.deletingVolume(ctx)
}
