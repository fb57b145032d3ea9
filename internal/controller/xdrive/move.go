package xdrive

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/controller/common"
	"github.com/xdrive-io/xdrive/internal/controller/handoff"
	"github.com/xdrive-io/xdrive/internal/drives"
)

// A drive moves between regions only at rest, and only while its lease asks
// for the region: its restore snapshot is copied there, and the drive's
// region changes once the copy has completed. Until then the drive stays
// where it is, whole; the holder launches nowhere meanwhile
// (handoff.InRegion). A fork whose source is in another region imports the
// source's snapshot the same way, into its own region.

// moveRequested is the region the lease asks the drive to move to, "" for none.
func (s *scope) moveRequested() string {
	want := handoff.LeaseRegion(s.xd, s.r.Region)
	if want == s.region() || !s.xd.DeletionTimestamp.IsZero() {
		return ""
	}
	return want
}

// moveStep runs while the drive is at rest with its restore resolved: it
// starts, follows or abandons a move. done is false while a copy is under way.
func (s *scope) moveStep(ctx context.Context) (res ctrl.Result, done bool, err error) {
	want := s.moveRequested()
	m := s.st.Move
	if s.blocked != nil && (m == nil || m.Region != s.region()) {
		return ctrl.Result{}, true, nil // nothing to move until the restore is resolved; a fork's import goes on
	}
	if m != nil && m.Region != s.region() && (m.Region != want || m.SourceSnapshotID != s.st.RestoreSnapshotID) {
		// The lease asks for another region now, or the restore changed: this copy would be stale,
		// unless its source is gone and it holds the writes alone: then the drive goes where it is.
		carried, err := s.moveCarriesRestore(ctx)
		if err != nil {
			return ctrl.Result{}, false, err
		}
		if !carried {
			if err := s.abandonMove(ctx); err != nil {
				return ctrl.Result{}, false, err
			}
			m = nil
		}
	}
	if want == "" && m == nil {
		return ctrl.Result{}, true, nil
	}
	if m == nil {
		if s.st.Rollback != nil {
			s.ev.Add(true, v1alpha1.ReasonMoveRefused, "Move", "A rollback to %s is in effect; the drive stays in region %s until the next snapshot ends it",
				s.st.Rollback.SnapshotID, s.region())
			return ctrl.Result{}, true, nil
		}
		if _, ok := s.r.in(want); !ok {
			s.ev.Add(true, v1alpha1.ReasonMoveRefused, "Move", "Region %s is not served by this operator (--regions); the drive stays in region %s", want, s.region())
			return ctrl.Result{}, true, nil
		}
		if s.st.RestoreSnapshotID == "" {
			// Nothing written yet: the drive moves without a copy.
			s.switchRegion(want, drives.Snapshot{})
			return ctrl.Result{}, true, nil
		}
		// Recorded before CopySnapshot: a retry after a crash finds the copy by its tags.
		s.st.Move = &v1alpha1.DriveMove{Region: want, SourceRegion: s.region(), SourceSnapshotID: s.st.RestoreSnapshotID, StartTime: metav1.NewTime(s.now)}
		s.ev.Add(false, v1alpha1.ReasonMoving, "Move", "Moving to region %s: copying snapshot %s there", want, s.st.RestoreSnapshotID)
		return ctrl.Result{RequeueAfter: time.Millisecond}, false, nil
	}
	return s.followCopy(ctx)
}

// followCopy starts the move's copy, or reads it, and ends the move once it has completed.
func (s *scope) followCopy(ctx context.Context) (ctrl.Result, bool, error) {
	m := s.st.Move
	dst, ok := s.r.in(m.Region)
	if !ok {
		s.st.Move = nil
		return ctrl.Result{}, true, nil
	}
	if m.CopySnapshotID == "" {
		src, ok := s.r.in(m.SourceRegion)
		if !ok {
			s.st.Move = nil
			return ctrl.Result{}, true, nil
		}
		sn, found, err := src.Snapshots.Snapshot(ctx, m.SourceSnapshotID)
		if err != nil {
			return ctrl.Result{}, false, fmt.Errorf("describe snapshot %s, which drive %s copies to region %s: %w", m.SourceSnapshotID, s.key, m.Region, err)
		}
		if !found {
			// Gone from outside: a copy made before (its answer lost) still holds its writes.
			cp, copied, err := dst.Copies.FindCopy(ctx, string(s.xd.UID), m.SourceSnapshotID)
			if err != nil {
				return ctrl.Result{}, false, fmt.Errorf("find the copy of snapshot %s, gone, that drive %s copies to region %s: %w", m.SourceSnapshotID, s.key, m.Region, err)
			}
			if copied {
				m.CopySnapshotID = cp.ID
				return ctrl.Result{RequeueAfter: time.Millisecond}, false, nil
			}
			// One that failed holds nothing, and only its tags record it.
			if err := dst.Copies.DeleteFailedCopies(ctx, string(s.xd.UID), m.SourceSnapshotID); err != nil {
				return ctrl.Result{}, false, fmt.Errorf("delete the failed copies of snapshot %s, gone, that drive %s copied to region %s: %w", m.SourceSnapshotID, s.key, m.Region, err)
			}
		}
		if !found || sn.State != drives.SnapshotCompleted {
			// Gone from outside: the restore is resolved again, and a move begins from what it picks.
			s.ev.Add(true, v1alpha1.ReasonRestoreMissing, "Move", "Snapshot %s, to be copied to region %s, is gone", m.SourceSnapshotID, m.Region)
			s.st.Move = nil
			return ctrl.Result{RequeueAfter: time.Millisecond}, false, s.resolveRestore(ctx)
		}
		cp, err := dst.Copies.CopySnapshot(ctx, drives.CopyRequest{
			Source: sn, SourceRegion: m.SourceRegion, Drive: s.key, DriveUID: string(s.xd.UID), DriveName: s.xd.Name,
			Encrypted: s.xd.Spec.IsEncrypted(), KMSKeyID: s.xd.Spec.KMSKeyID,
		})
		if err != nil {
			return ctrl.Result{}, false, fmt.Errorf("copy snapshot %s of drive %s to region %s: %w", sn.ID, s.key, m.Region, err)
		}
		m.CopySnapshotID, m.Attempts = cp.ID, m.Attempts+1
		return ctrl.Result{RequeueAfter: 5 * time.Second}, false, nil
	}
	cp, found, err := dst.Snapshots.Snapshot(ctx, m.CopySnapshotID)
	if err != nil {
		return ctrl.Result{}, false, fmt.Errorf("describe copy %s of drive %s in region %s: %w", m.CopySnapshotID, s.key, m.Region, err)
	}
	switch {
	case !found:
		m.Failure = fmt.Sprintf("copy %s was deleted outside xdrive", m.CopySnapshotID)
		m.CopySnapshotID = ""
		s.ev.Add(true, v1alpha1.ReasonMoveFailed, "Move", "Copying to region %s again: %s", m.Region, m.Failure)
		return ctrl.Result{RequeueAfter: time.Millisecond}, false, nil
	case cp.State == drives.SnapshotError:
		m.Failure = fmt.Sprintf("copy %s failed", cp.ID)
		if err := dst.Snapshots.DeleteSnapshot(ctx, cp); err != nil {
			return ctrl.Result{}, false, fmt.Errorf("delete the failed copy %s of drive %s in region %s: %w", cp.ID, s.key, m.Region, err)
		}
		m.CopySnapshotID = ""
		s.ev.Add(true, v1alpha1.ReasonMoveFailed, "Move", "Copying to region %s again: %s", m.Region, m.Failure)
		return ctrl.Result{RequeueAfter: common.Backoff(int(m.Attempts), 10*time.Second, 5*time.Minute)}, false, nil
	case cp.State != drives.SnapshotCompleted:
		m.Progress = cp.Progress
		return ctrl.Result{RequeueAfter: 10 * time.Second}, false, nil
	}
	if m.Region == s.region() {
		// An import (a fork's source's snapshot, or the drive's own newer one
		// from a region it left): now its own, and its restore.
		s.st.Move, s.st.RestoreSnapshotID, s.blocked = nil, cp.ID, nil
		s.ev.Add(false, v1alpha1.ReasonMoved, "Move", "Copied snapshot %s from region %s as %s", m.SourceSnapshotID, m.SourceRegion, cp.ID)
		return ctrl.Result{}, true, nil
	}
	from := s.region()
	s.switchRegion(m.Region, cp)
	if err := s.pruneElsewhere(ctx, from, false); err != nil {
		return ctrl.Result{}, true, err
	}
	// The new region may hold snapshots of an earlier stay: listed, and pruned to the retention.
	owned, err := s.listSnapshots(ctx)
	if err != nil {
		return ctrl.Result{}, true, err
	}
	s.st.SnapshotCount = countCompleted(owned)
	return ctrl.Result{}, true, s.prune(ctx)
}

// moveCarriesRestore reports whether a move under way to another region,
// from the drive's restore, holds that restore's writes alone: the restore
// is gone from outside, and its copy is there, pending or completed. Such a
// move is neither abandoned nor re-resolved past: it goes on, and the drive
// with it. A copy found by its tags only (its answer lost) is recorded.
func (s *scope) moveCarriesRestore(ctx context.Context) (bool, error) {
	m := s.st.Move
	if m == nil || m.Region == s.region() || m.SourceSnapshotID == "" || m.SourceSnapshotID != s.st.RestoreSnapshotID {
		return false, nil
	}
	src, ok := s.r.in(m.SourceRegion)
	dst, ok2 := s.r.in(m.Region)
	if !ok || !ok2 {
		return false, nil
	}
	sn, found, err := src.Snapshots.Snapshot(ctx, m.SourceSnapshotID)
	if err != nil {
		return false, fmt.Errorf("describe snapshot %s, which drive %s copies to region %s: %w", m.SourceSnapshotID, s.key, m.Region, err)
	}
	if found && sn.State == drives.SnapshotCompleted {
		return false, nil // the source still holds the writes
	}
	if m.CopySnapshotID != "" {
		cp, found, err := dst.Snapshots.Snapshot(ctx, m.CopySnapshotID)
		if err != nil {
			return false, fmt.Errorf("describe copy %s of drive %s in region %s: %w", m.CopySnapshotID, s.key, m.Region, err)
		}
		return found && cp.State != drives.SnapshotError, nil
	}
	cp, copied, err := dst.Copies.FindCopy(ctx, string(s.xd.UID), m.SourceSnapshotID)
	if err != nil {
		return false, fmt.Errorf("find the copy of snapshot %s, gone, that drive %s copies to region %s: %w", m.SourceSnapshotID, s.key, m.Region, err)
	}
	if copied {
		m.CopySnapshotID = cp.ID
	}
	return copied, nil
}

// switchRegion makes region the drive's, with the completed copy (if any)
// as its restore; what it leaves is listed under elsewhere.
func (s *scope) switchRegion(region string, cp drives.Snapshot) {
	st := s.st
	from := s.region()
	if st.LatestSnapshotID != "" {
		left := v1alpha1.RegionSnapshots{Region: from, LatestSnapshotID: st.LatestSnapshotID, LatestSnapshotTime: st.LatestSnapshotTime,
			SnapshotCount: st.SnapshotCount}
		st.Elsewhere = setRegion(st.Elsewhere, left)
	}
	st.Elsewhere = dropRegion(st.Elsewhere, region)
	st.Region, st.Move = region, nil
	if cp.ID == "" {
		st.RestoreSnapshotID, st.LatestSnapshotID, st.LatestSnapshotTime, st.SnapshotCount, st.Snapshots = "", "", nil, 0, nil
	} else {
		t := metav1.NewTime(cp.TakenAt())
		st.RestoreSnapshotID, st.LatestSnapshotID, st.LatestSnapshotTime = cp.ID, cp.ID, &t
		st.Snapshots = nil // listed again in the new region
	}
	s.ev.Add(false, v1alpha1.ReasonMoved, "Move", "Moved from region %s to region %s%s", from, region, restoreFrom(cp.ID))
}

func restoreFrom(id string) string {
	if id == "" {
		return " (blank: nothing to copy)"
	}
	return "; the next restore is copy " + id
}

// abandonMove ends a move the lease no longer asks for, deleting its copy:
// the drive's own region still holds every write. The copy is looked up by
// its tags too: a CopySnapshot whose answer was lost left no ID in the move.
func (s *scope) abandonMove(ctx context.Context) error {
	m := s.st.Move
	if dst, ok := s.r.in(m.Region); ok {
		id := m.CopySnapshotID
		if id != "" {
			cp, found, err := dst.Snapshots.Snapshot(ctx, id)
			if err != nil {
				return fmt.Errorf("describe the abandoned copy %s of drive %s in region %s: %w", id, s.key, m.Region, err)
			}
			if found {
				if err := dst.Snapshots.DeleteSnapshot(ctx, cp); err != nil {
					return fmt.Errorf("delete the abandoned copy %s of drive %s in region %s: %w", id, s.key, m.Region, err)
				}
			}
		}
		list, err := dst.Snapshots.DriveSnapshots(ctx, s.key, string(s.xd.UID))
		if err != nil {
			return fmt.Errorf("list the copies of drive %s in region %s: %w", s.key, m.Region, err)
		}
		for _, sn := range list {
			if sn.ID == id || sn.Tags[cloud.TagCopiedFrom] != m.SourceSnapshotID || sn.Tags[cloud.TagDriveUID] != string(s.xd.UID) || s.keptElsewhere(m.Region, sn.ID) {
				continue
			}
			if err := dst.Snapshots.DeleteSnapshot(ctx, sn); err != nil {
				return fmt.Errorf("delete the abandoned copy %s of drive %s in region %s: %w", sn.ID, s.key, m.Region, err)
			}
		}
	}
	s.ev.Add(false, v1alpha1.ReasonMoved, "Move", "Stopped moving to region %s: the drive stays in region %s", m.Region, s.region())
	s.st.Move = nil
	return nil
}

// pruneElsewhere keeps the drive's retention in the regions it left, and
// deletes every snapshot there when deleting is asked: all keys are the
// drive's own tags, in that region.
// region "" is every region left.
func (s *scope) pruneElsewhere(ctx context.Context, region string, all bool) error {
	keep, _ := s.xd.BoundedSnapshotRetention()
	for i := range s.st.Elsewhere {
		e := &s.st.Elsewhere[i]
		svc, ok := s.r.in(e.Region)
		if !ok || region != "" && e.Region != region {
			continue
		}
		list, err := svc.Snapshots.DriveSnapshots(ctx, s.key, string(s.xd.UID))
		if err != nil {
			return fmt.Errorf("list the snapshots of drive %s in region %s: %w", s.key, e.Region, err)
		}
		doomed := list
		if !all {
			if keep == 0 {
				continue
			}
			doomed = drives.Prunable(list, int(keep))
		}
		deleted := int32(0)
		for _, sn := range doomed {
			if !all && sn.ID == e.LatestSnapshotID || sn.Tags[cloud.TagDriveUID] != string(s.xd.UID) {
				continue
			}
			if err := svc.Snapshots.DeleteSnapshot(ctx, sn); err != nil {
				return fmt.Errorf("delete snapshot %s of drive %s in region %s: %w", sn.ID, s.key, e.Region, err)
			}
			deleted++
		}
		e.SnapshotCount = max(0, countCompleted(list)-deleted)
	}
	return nil
}

func setRegion(list []v1alpha1.RegionSnapshots, r v1alpha1.RegionSnapshots) []v1alpha1.RegionSnapshots {
	list = dropRegion(list, r.Region)
	return append(list, r)
}

func dropRegion(list []v1alpha1.RegionSnapshots, region string) []v1alpha1.RegionSnapshots {
	out := list[:0:0]
	for _, r := range list {
		if r.Region != region {
			out = append(out, r)
		}
	}
	return out
}

// importFork copies the snapshot of a fork's source from the source's region
// into the fork's: the fork restores only from its own region. Until the
// copy completes the fork has nothing to restore.
func (s *scope) importFork(source, region, snapshotID string) error {
	if s.beginImport(region, snapshotID) {
		s.ev.Add(false, "Forked", "Restore", "Forking XDrive %s of region %s: copying its snapshot %s here first", source, region, snapshotID)
	}
	s.st.RestoreSnapshotID = ""
	s.blocked = &blocker{v1alpha1.ReasonMoving, fmt.Sprintf("Copying snapshot %s of XDrive %s from region %s%s", snapshotID, source, region, progressOf(s.st.Move))}
	return nil
}

func progressOf(m *v1alpha1.DriveMove) string {
	if m.Progress == "" {
		return ""
	}
	return " (" + m.Progress + ")"
}

// keptElsewhere reports whether the snapshot is the newest the drive keeps in a region it left.
func (s *scope) keptElsewhere(region, id string) bool {
	for _, e := range s.st.Elsewhere {
		if e.Region == region && e.LatestSnapshotID == id {
			return true
		}
	}
	return false
}

// newerElsewhere is a region the drive left whose newest snapshot holds
// newer writes than the newest completed one here (owned[best]; best < 0:
// none here): after snapshots here were deleted from outside, a restore
// from what is left would take the drive back in time while a region it
// left keeps its newer data. The recorded times are checked against EC2
// (a copy's own time may have been recorded, not its source's), and mended.
func (s *scope) newerElsewhere(ctx context.Context, owned []drives.Snapshot, best int) (*v1alpha1.RegionSnapshots, error) {
	var newer *v1alpha1.RegionSnapshots
	var newerAt time.Time
	for i := range s.st.Elsewhere {
		e := &s.st.Elsewhere[i]
		svc, ok := s.r.in(e.Region)
		if !ok || e.LatestSnapshotID == "" || e.LatestSnapshotTime == nil || best >= 0 && !e.LatestSnapshotTime.After(owned[best].TakenAt()) {
			continue
		}
		sn, found, err := svc.Snapshots.Snapshot(ctx, e.LatestSnapshotID)
		if err != nil {
			return nil, fmt.Errorf("describe snapshot %s that drive %s keeps in region %s: %w", e.LatestSnapshotID, s.key, e.Region, err)
		}
		if !found || sn.State != drives.SnapshotCompleted {
			e.LatestSnapshotTime = nil // gone there too: nothing newer to fetch
			continue
		}
		at := sn.TakenAt()
		e.LatestSnapshotTime = &metav1.Time{Time: at}
		if best >= 0 && !at.After(owned[best].TakenAt()) {
			continue
		}
		if newer == nil || at.After(newerAt) {
			newer, newerAt = e, at
		}
	}
	return newer, nil
}

// importNewer copies the newest snapshot of a region the drive left into the
// drive's own region, as a fork imports its source's; the drive restores
// nothing until the copy completes, and then restores the copy.
func (s *scope) importNewer(e v1alpha1.RegionSnapshots) {
	if s.beginImport(e.Region, e.LatestSnapshotID) {
		s.ev.Add(true, v1alpha1.ReasonRestoreMissing, "Restore", "The newest snapshot in region %s is gone; copying snapshot %s, which region %s keeps and which is newer than any here, before any restore",
			s.region(), e.LatestSnapshotID, e.Region)
	}
	s.st.RestoreSnapshotID = ""
	s.blocked = &blocker{v1alpha1.ReasonMoving, fmt.Sprintf("Copying snapshot %s from region %s, newer than any snapshot here%s", e.LatestSnapshotID, e.Region, progressOf(s.st.Move))}
}

// beginImport records an import of snapshotID from region into the drive's
// own region (a move whose region is its own), unless that import is under
// way; it reports whether it began now.
func (s *scope) beginImport(region, snapshotID string) bool {
	if m := s.st.Move; m != nil && m.Region == s.region() && m.SourceRegion == region && m.SourceSnapshotID == snapshotID {
		return false
	}
	s.st.Move = &v1alpha1.DriveMove{Region: s.region(), SourceRegion: region, SourceSnapshotID: snapshotID, StartTime: metav1.NewTime(s.now)}
	return true
}
