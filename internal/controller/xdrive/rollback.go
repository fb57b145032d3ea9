package xdrive

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/controller/handoff"
	"github.com/xdrive-io/xdrive/internal/drives"
)

// rollbackRequest reads the rollback annotation: the snapshot and the
// request's time; ok is false if there is none newer than the last acted on.
// A malformed one comes with its problem, to be refused.
func (s *scope) rollbackRequest() (snapshotID string, at time.Time, ok bool, problem string) {
	raw := s.xd.Annotations[v1alpha1.RollbackAnnotation]
	if raw == "" {
		return "", time.Time{}, false, ""
	}
	id, when, found := strings.Cut(raw, "@")
	at, err := time.Parse(time.RFC3339, when)
	switch {
	case !found || err != nil:
		// Refused at each look (rare: a drive at rest is not requeued); the plugin writes it well formed.
		return raw, time.Time{}, true, fmt.Sprintf("annotation %s=%q is not <snapshot ID>@<RFC3339 time>", v1alpha1.RollbackAnnotation, raw)
	case s.st.LastRollbackRequest != nil && !at.After(s.st.LastRollbackRequest.Time):
		return "", time.Time{}, false, ""
	}
	return id, at, true, ""
}

// rollbackWaits reports a new request that waits for the drive to be
// archived: its Workstation stopped, and the volume still being archived or kept.
func (s *scope) rollbackWaits() bool {
	_, _, ok, problem := s.rollbackRequest()
	return ok && problem == "" && !s.holderActive()
}

// takeRollback acts on a new rollback request: at rest, with the holder
// stopped, the next restore becomes that snapshot; in use, it is refused.
// While the drive is still being archived (a stop under way, a kept
// volume), it waits.
func (s *scope) takeRollback(ctx context.Context) error {
	id, at, ok, problem := s.rollbackRequest()
	if !ok {
		return nil
	}
	st := s.st
	atRest := st.Phase == v1alpha1.XDrivePhaseArchived || st.Phase == v1alpha1.XDrivePhasePending
	switch {
	case problem != "":
	case !s.xd.DeletionTimestamp.IsZero():
		problem = "the drive is being deleted"
	case s.holderActive() || st.Phase == v1alpha1.XDrivePhaseRestoring || st.Phase == v1alpha1.XDrivePhaseAttached:
		problem = fmt.Sprintf("the drive is in use (%s); stop its Workstation first", orDefault(string(st.Phase), "new"))
	case !atRest:
		return nil // archived first: the request waits
	case s.launchUnseen():
		return nil // the holder's launch decides: in use once seen
	}
	requested := metav1.NewTime(at)
	if problem != "" {
		if !at.IsZero() {
			st.LastRollbackRequest = &requested
		}
		s.ev.Add(true, v1alpha1.ReasonRollbackRefused, "Rollback", "Rollback to %s refused: %s", id, problem)
		return nil
	}
	owned, err := s.listSnapshots(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(owned, func(sn drives.Snapshot) bool { return sn.ID == id && sn.State == drives.SnapshotCompleted })
	st.LastRollbackRequest = &requested
	if i < 0 {
		s.ev.Add(true, v1alpha1.ReasonRollbackRefused, "Rollback", "Rollback to %s refused: it is not a completed snapshot of this drive", id)
		return nil
	}
	sn := owned[i]
	st.Rollback = &v1alpha1.DriveRollback{SnapshotID: sn.ID, SnapshotTime: metav1.NewTime(sn.StartTime), RequestTime: requested}
	st.RestoreSnapshotID = sn.ID
	s.ev.Add(false, v1alpha1.ReasonRolledBack, "Rollback",
		"The next restore is snapshot %s of %s; the %d newer snapshots are kept, whatever the retention, until the next snapshot completes",
		sn.ID, sn.StartTime.UTC().Format(time.RFC3339), i)
	return nil
}

// launchUnseen reports that the lease records a launch of the holder that
// the drive's read of the holder does not show yet (it lags): the launch
// restores what the drive said before any rollback now. Past
// launchRecordWithin the holder never recorded it (its status write was lost).
func (s *scope) launchUnseen() bool {
	h := s.st.Holder
	if h == nil || h.Launch == nil {
		return false
	}
	return handoff.LaunchesRecorded(s.holder) < h.Launch.Attempt && s.now.Before(h.Launch.StartTime.Add(launchRecordWithin))
}

// keptByRollback reports a snapshot newer than the rollback's: kept while it is in effect.
func (s *scope) keptByRollback(sn drives.Snapshot) bool {
	rb := s.st.Rollback
	return rb != nil && sn.StartTime.After(rb.SnapshotTime.Time)
}

// endRollback ends a rollback once a snapshot completes after it.
func (s *scope) endRollback(completed string) {
	if rb := s.st.Rollback; rb != nil {
		s.ev.Add(false, v1alpha1.ReasonRolledBack, "Rollback", "Rollback to %s ended: snapshot %s completed after it; retention applies again", rb.SnapshotID, completed)
		s.st.Rollback = nil
	}
}

// rollbackRestore keeps the rollback's snapshot as the restore; false if it is gone.
func (s *scope) rollbackRestore(owned []drives.Snapshot) bool {
	rb := s.st.Rollback
	if rb == nil {
		return false
	}
	if slices.ContainsFunc(owned, func(sn drives.Snapshot) bool { return sn.ID == rb.SnapshotID && sn.State == drives.SnapshotCompleted }) {
		s.st.RestoreSnapshotID = rb.SnapshotID
		return true
	}
	s.ev.Add(true, v1alpha1.ReasonRestoreMissing, "Rollback", "Snapshot %s of the rollback is gone; the next restore is the newest snapshot", rb.SnapshotID)
	s.st.Rollback = nil
	return false
}

// maxListedSnapshots bounds status.snapshots.
const maxListedSnapshots = 100

// recordSnapshots lists the completed snapshots in status, newest first.
func (s *scope) recordSnapshots(owned []drives.Snapshot) {
	var list []v1alpha1.DriveSnapshot
	for _, sn := range owned {
		if sn.State != drives.SnapshotCompleted || len(list) == maxListedSnapshots {
			continue
		}
		list = append(list, driveSnapshot(sn))
	}
	s.st.Snapshots = list
}

// recordCompleted puts a snapshot that just completed first in status.snapshots.
func (s *scope) recordCompleted(sn drives.Snapshot) {
	list := slices.DeleteFunc(s.st.Snapshots, func(d v1alpha1.DriveSnapshot) bool { return d.ID == sn.ID })
	list = append([]v1alpha1.DriveSnapshot{driveSnapshot(sn)}, list...)
	s.st.Snapshots = list[:min(len(list), maxListedSnapshots)]
}

// forgetSnapshots drops deleted snapshots from status.snapshots.
func (s *scope) forgetSnapshots(ids []string) {
	s.st.Snapshots = slices.DeleteFunc(s.st.Snapshots, func(d v1alpha1.DriveSnapshot) bool { return slices.Contains(ids, d.ID) })
}

func driveSnapshot(sn drives.Snapshot) v1alpha1.DriveSnapshot {
	return v1alpha1.DriveSnapshot{ID: sn.ID, StartTime: metav1.NewTime(sn.StartTime), SizeGiB: sn.SizeGiB,
		Consistency: v1alpha1.Consistency(sn.Tags[cloud.TagConsistency])}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
