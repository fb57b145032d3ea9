package xdrive

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/controller/common"
	"github.com/xdrive-io/xdrive/internal/controller/handoff"
	"github.com/xdrive-io/xdrive/internal/drives"
)

// atRest handles a drive without a volume: it looks for one when one may
// exist, resolves the restore source, and finalizes a deleted drive.
func (s *scope) atRest(ctx context.Context) (ctrl.Result, error) {
	deleting := !s.xd.DeletionTimestamp.IsZero()
	if wait := s.launchUnrecorded(); wait > 0 && !deleting {
		// The launch's volume is looked for once the holder records its instance, which wakes the drive.
		s.setPhase(v1alpha1.XDrivePhaseArchived)
		s.hold.Until(s.now, s.now.Add(wait))
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	// A volume of this drive may exist that no status records: a launch's, or a leftover.
	found, err := s.findVolume(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	if found {
		return s.live(ctx)
	}
	// At rest only now: a status that says Archived may miss a volume still being archived (a crash).
	prior := s.st.Rollback
	if err := s.takeRollback(ctx); err != nil {
		return ctrl.Result{}, err
	}
	// A rollback taken now is recorded before a prune acts on it: its status
	// write may be lost, and the one recorded may keep more (I13).
	pruning := s.st.Rollback == prior
	if deleting {
		s.setPhase(v1alpha1.XDrivePhaseDeleting)
		return s.finalize(ctx)
	}
	if s.st.Phase == v1alpha1.XDrivePhasePending || s.restoreReportedMissing() || s.st.ObservedGeneration != s.gen {
		if err := s.resolveRestore(ctx); err != nil {
			return ctrl.Result{}, err
		}
		if s.blocked == nil && pruning {
			if err := s.prune(ctx); err != nil {
				return ctrl.Result{}, err
			}
		}
		if s.st.ObservedGeneration != s.gen {
			// A retention changed in spec holds in the regions left too.
			if err := s.pruneElsewhere(ctx, "", false); err != nil {
				return ctrl.Result{}, err
			}
		}
	}
	if s.blocked == nil && pruning {
		// A prune that failed after the volume was deleted is done here.
		if err := s.pruneBeyondRetention(ctx); err != nil {
			return ctrl.Result{}, err
		}
	}
	res, settled, err := s.moveStep(ctx)
	if !pruning && (res.RequeueAfter == 0 || res.RequeueAfter > time.Second) {
		res.RequeueAfter = time.Second // the prune, once the rollback is recorded
	}
	switch {
	case s.blocked != nil:
		s.setPhase(v1alpha1.XDrivePhasePending)
		if settled {
			res = ctrl.Result{RequeueAfter: time.Minute}
		}
		return res, err
	case err != nil || !settled:
		s.setPhase(v1alpha1.XDrivePhaseArchived)
		return res, err
	}
	s.setPhase(v1alpha1.XDrivePhaseArchived)
	if s.holderActive() || s.launchUnseen() {
		// The launch's volume may not be listed yet; a rollback waits to see the launch.
		// Its attach reports the lease too: a report of the lease alone waits for it, a while.
		if l := s.st.Holder; l != nil && l.Launch != nil {
			s.hold.Until(s.now, l.Launch.StartTime.Add(launchAttachWithin))
		}
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	return ctrl.Result{RequeueAfter: res.RequeueAfter}, nil
}

// launchRecordWithin bounds the wait for a holder to record the instance of
// its launch; past it the drive looks for the launch's volume anyway.
const launchRecordWithin = time.Minute

// launchAttachWithin bounds how long after a launch's start a report that
// its attach would carry (the lease, Bound) waits for it.
const launchAttachWithin = 30 * time.Second

// launchUnrecorded returns how much longer to wait for the holder to record
// the instance of a launch under way (zero: look now). The holder records
// every instance of its launch, after a crash too, so a lookup before that
// finds nothing the next one would miss.
func (s *scope) launchUnrecorded() time.Duration {
	start, ok := handoff.UnrecordedLaunch(s.holder)
	if !ok || s.st.Phase != v1alpha1.XDrivePhaseArchived {
		return 0
	}
	return max(0, start.Add(launchRecordWithin).Sub(s.now))
}

// holderActive reports whether the holder may have an instance, and so the drive a volume.
func (s *scope) holderActive() bool {
	return handoff.Active(s.holder)
}

// restoreReportedMissing reports that the holder's launch found the restore snapshot gone.
func (s *scope) restoreReportedMissing() bool {
	failed := handoff.FailedRestore(s.holder)
	return failed != "" && failed == s.st.RestoreSnapshotID
}

// resolveRestore picks the newest completed snapshot the drive owns, else its source.
func (s *scope) resolveRestore(ctx context.Context) error {
	st := s.st
	owned, err := s.listSnapshots(ctx)
	if err != nil {
		return err
	}
	failed := handoff.FailedRestore(s.holder)
	st.SnapshotCount = countCompleted(owned)
	// A move whose copy alone holds the restore's writes carries the restore: nothing older replaces it.
	if carried, err := s.moveCarriesRestore(ctx); err != nil || carried {
		return err
	}
	i := slices.IndexFunc(owned, func(sn drives.Snapshot) bool { return sn.State == drives.SnapshotCompleted && sn.ID != failed })
	if i >= 0 && s.rollbackRestore(owned) {
		st.LatestSnapshotID = owned[i].ID
		return nil
	}
	if len(st.Elsewhere) > 0 {
		newer, err := s.newerElsewhere(ctx, owned, i)
		if err != nil || newer != nil {
			if newer != nil {
				s.importNewer(*newer)
			}
			return err
		}
	}
	if i >= 0 {
		if st.RestoreSnapshotID != "" && st.RestoreSnapshotID != owned[i].ID && st.LatestSnapshotID != owned[i].ID {
			s.ev.Add(true, v1alpha1.ReasonRestoreMissing, "Restore", "Snapshot %s is gone; restoring from %s instead", st.RestoreSnapshotID, owned[i].ID)
		}
		st.RestoreSnapshotID = owned[i].ID
		st.LatestSnapshotID = owned[i].ID
		t := metav1.NewTime(owned[i].StartTime)
		st.LatestSnapshotTime = &t
		if st.SizeGiB == 0 {
			st.SizeGiB = owned[i].SizeGiB
		}
		return nil
	}
	if st.LatestSnapshotID != "" {
		// The drive had data, and every snapshot of it is gone: never hand out a blank drive for it.
		s.blocked = &blocker{v1alpha1.ReasonSnapshotMissing, fmt.Sprintf(
			"Every snapshot of the drive is gone (the newest was %s), deleted outside xdrive; restore one, or recreate the XDrive to start blank", st.LatestSnapshotID)}
		return nil
	}
	src := s.xd.Spec.Source
	switch {
	case src == nil:
		st.RestoreSnapshotID = ""
	case src.SnapshotID != "":
		sn, found, err := s.describeSnapshot(ctx, src.SnapshotID)
		if err != nil {
			return err
		}
		if !found || sn.State != drives.SnapshotCompleted || sn.ID == failed {
			s.blocked = &blocker{v1alpha1.ReasonSourceNotFound,
				fmt.Sprintf("source.snapshotID %s is not a completed snapshot in this account and region", src.SnapshotID)}
			return nil
		}
		if s.svc().Snapshots.Foreign(sn, s.key, string(s.xd.UID)) {
			s.blocked = &blocker{v1alpha1.ReasonForeignSnapshot,
				fmt.Sprintf("source.snapshotID %s belongs to another drive (its xdrive.io tags name another namespace, drive, installation or an earlier XDrive of this name); a drive restores only its own snapshots or untagged ones", src.SnapshotID)}
			return nil
		}
		st.RestoreSnapshotID = sn.ID
	case src.XDrive != nil:
		return s.resolveFork(ctx, src.XDrive, failed)
	default:
		sn, found, err := s.newestSnapshotNamed(ctx, src.NameTag)
		if err != nil {
			return err
		}
		if !found || sn.ID == failed {
			s.blocked = &blocker{v1alpha1.ReasonSourceNotFound, fmt.Sprintf(
				"source.nameTag: no completed snapshot is tagged Name=%s, other than snapshots of other drives", src.NameTag)}
			return nil
		}
		st.RestoreSnapshotID = sn.ID
		s.ev.Add(false, "Adopted", "Restore", "Adopting snapshot %s tagged Name=%s", sn.ID, src.NameTag)
	}
	return nil
}

// resolveFork restores a fork from its source drive's newest completed
// snapshot, or the one named; until the fork has snapshots of its own. The
// source must exist, and the snapshot be its own. A source in another
// namespace is read through the cache like any drive; whether its data may
// be restored here is the Workstation's class's to say, before the launch.
func (s *scope) resolveFork(ctx context.Context, fork *v1alpha1.ForkSource, failed string) error {
	st := s.st
	srcNS := fork.NamespaceOf(s.xd.Namespace)
	if fork.Name == s.xd.Name && srcNS == s.xd.Namespace {
		s.blocked = &blocker{v1alpha1.ReasonSourceNotFound, "source.xdrive names this drive itself; a fork needs another drive"}
		return nil
	}
	var src v1alpha1.XDrive
	if err := s.r.Get(ctx, client.ObjectKey{Namespace: srcNS, Name: fork.Name}, &src); err != nil {
		if apierrors.IsNotFound(err) {
			msg := fmt.Sprintf("source.xdrive: XDrive %s does not exist in namespace %s", fork.Name, srcNS)
			if st.RestoreSnapshotID != "" {
				msg += fmt.Sprintf("; it was deleted before this fork made a snapshot of its own, and its snapshot %s may be gone with it: the fork has nothing to restore until the source is back", st.RestoreSnapshotID)
			}
			s.blocked = &blocker{v1alpha1.ReasonSourceNotFound, msg}
			return nil
		}
		return fmt.Errorf("read XDrive %s/%s, the source of fork %s: %w", srcNS, fork.Name, s.key, err)
	}
	srcKey := cloud.ObjectKey(src.Namespace, src.Name)
	name := fork.Name // as the user wrote it: ns/name across namespaces
	if srcNS != s.xd.Namespace {
		name = srcKey
	}
	srcRegion := handoff.Region(&src, s.r.Region)
	srcSvc, ok := s.r.in(srcRegion)
	if !ok {
		s.blocked = &blocker{v1alpha1.ReasonSourceNotFound, fmt.Sprintf(
			"source.xdrive: XDrive %s is in region %s, which this operator does not serve (--regions)", name, srcRegion)}
		return nil
	}
	list, err := srcSvc.Snapshots.DriveSnapshots(ctx, srcKey, string(src.UID))
	if err != nil {
		return fmt.Errorf("list the snapshots of XDrive %s in region %s, the source of fork %s: %w", srcKey, srcRegion, s.key, err)
	}
	i := slices.IndexFunc(list, func(sn drives.Snapshot) bool {
		return sn.State == drives.SnapshotCompleted && sn.ID != failed && (fork.SnapshotID == "" || sn.ID == fork.SnapshotID)
	})
	if i < 0 {
		msg := fmt.Sprintf("source.xdrive: XDrive %s has no completed snapshot yet; the fork starts once it has one", name)
		if fork.SnapshotID != "" {
			msg = fmt.Sprintf("source.xdrive: %s is not a completed snapshot of XDrive %s", fork.SnapshotID, name)
		}
		s.blocked = &blocker{v1alpha1.ReasonSourceNotFound, msg}
		return nil
	}
	if size := list[i].SizeGiB; size > s.xd.Spec.SizeGiB {
		s.blocked = &blocker{v1alpha1.ReasonInvalidSpec, fmt.Sprintf(
			"sizeGiB %d is smaller than snapshot %s of XDrive %s (%d GiB); a volume cannot shrink", s.xd.Spec.SizeGiB, list[i].ID, name, size)}
		return nil
	}
	if srcRegion != s.region() && srcNS != s.xd.Namespace {
		// The copy would be the fork's own snapshot, which no class check of the source's namespace would see.
		s.blocked = &blocker{v1alpha1.ReasonMoveRefused, fmt.Sprintf(
			"source.xdrive: XDrive %s is in region %s and this fork in %s; a fork of another namespace's drive is not copied across regions", name, srcRegion, s.region())}
		return nil
	}
	if srcRegion != s.region() {
		return s.importFork(name, srcRegion, list[i].ID)
	}
	if st.RestoreSnapshotID != list[i].ID {
		s.ev.Add(false, "Forked", "Restore", "Forking XDrive %s: the first volume is restored from its snapshot %s", name, list[i].ID)
	}
	st.RestoreSnapshotID = list[i].ID
	return nil
}

type blocker struct{ reason, message string }

func countCompleted(list []drives.Snapshot) int32 {
	n := int32(0)
	for _, sn := range list {
		if sn.State == drives.SnapshotCompleted {
			n++
		}
	}
	return n
}

// prune deletes completed snapshots beyond the retention (within the
// lease's bounds), never the newest.
func (s *scope) prune(ctx context.Context) error {
	keep, capped := s.xd.BoundedSnapshotRetention()
	if keep == 0 {
		return nil
	}
	owned, err := s.listSnapshots(ctx)
	if err != nil {
		return err
	}
	var pruned []string
	for _, sn := range drives.Prunable(owned, int(keep)) {
		if sn.ID == s.st.LatestSnapshotID || sn.ID == s.st.RestoreSnapshotID || s.keptByRollback(sn) {
			continue
		}
		if err := s.deleteSnapshot(ctx, sn); err != nil {
			return err
		}
		pruned = append(pruned, sn.ID)
		s.ev.Add(false, "SnapshotPruned", "Prune", "Deleted snapshot %s beyond retention %d", sn.ID, keep)
	}
	if capped && len(pruned) > 0 {
		asked := fmt.Sprintf("snapshotRetention %d", s.xd.Spec.SnapshotRetention)
		if s.xd.Spec.SnapshotRetention == 0 {
			asked = "snapshotRetention (absent: every snapshot)"
		}
		s.reportCapped("Prune", asked, "maxSnapshotRetention", keep, fmt.Sprintf("pruned %s, %d kept", strings.Join(pruned, ", "), keep))
	}
	s.forgetSnapshots(pruned)
	s.st.SnapshotCount = countCompleted(owned) - int32(len(pruned))
	return nil
}

// finalize runs once the drive has no volume and no holder.
func (s *scope) finalize(ctx context.Context) (ctrl.Result, error) {
	if s.holder != nil {
		return ctrl.Result{}, nil
	}
	if s.st.Move != nil {
		if err := s.abandonMove(ctx); err != nil {
			return ctrl.Result{}, err
		}
	}
	if s.xd.Spec.DeletionPolicy == v1alpha1.DeletionPolicyDelete {
		if err := s.pruneElsewhere(ctx, "", true); err != nil {
			return ctrl.Result{}, err
		}
		owned, err := s.listSnapshots(ctx)
		if err != nil {
			return ctrl.Result{}, err
		}
		for _, sn := range owned {
			if sn.State == drives.SnapshotPending {
				return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
			}
			if sn.Tags[cloud.TagDriveUID] != "" && sn.Tags[cloud.TagDriveUID] != string(s.xd.UID) {
				continue // an earlier drive of this name left it; Retain or not, it is not ours
			}
			if err := s.deleteSnapshot(ctx, sn); err != nil {
				return ctrl.Result{}, err
			}
		}
	}
	s.removeFinalizer = true
	return ctrl.Result{}, nil
}

func (s *scope) set(condType string, status metav1.ConditionStatus, reason, msg string) {
	v1alpha1.SetCondition(&s.st.Conditions, s.gen, condType, status, reason, msg)
}

func (s *scope) removeCondition(condType string) {
	meta.RemoveStatusCondition(&s.st.Conditions, condType)
}

// report sets the conditions from the status: they report, and are never read back.
func (s *scope) report(err error) {
	st := s.st
	if st.Holder != nil {
		s.set(v1alpha1.ConditionBound, metav1.ConditionTrue, v1alpha1.ReasonBound, "Held by Workstation "+st.Holder.Name)
	} else {
		s.set(v1alpha1.ConditionBound, metav1.ConditionFalse, v1alpha1.ReasonUnbound, "No Workstation holds the drive")
	}
	if !s.xd.DeletionTimestamp.IsZero() && s.holder != nil {
		s.set(v1alpha1.ConditionDeletionBlocked, metav1.ConditionTrue, v1alpha1.ReasonDriveInUse,
			fmt.Sprintf("Deletion waits until Workstation %s releases the drive (stop or delete it)", st.Holder.Name))
	} else {
		s.removeCondition(v1alpha1.ConditionDeletionBlocked)
	}
	if meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionSnapshotsHealthy).Status == metav1.ConditionUnknown {
		s.set(v1alpha1.ConditionSnapshotsHealthy, metav1.ConditionTrue, v1alpha1.ReasonSnapshotsOK, "No snapshot has failed")
	} else {
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionSnapshotsHealthy)
		s.set(c.Type, c.Status, c.Reason, c.Message) // current for this generation
	}
	status, reason, msg := s.volumeReady()
	if err != nil {
		status = metav1.ConditionUnknown
		reason, msg = common.Failure(err)
	}
	s.set(v1alpha1.ConditionVolumeReady, status, reason, msg)
	if status, reason, msg, ok := s.hydrated(); ok {
		s.set(v1alpha1.ConditionHydrated, status, reason, msg)
	} else {
		s.removeCondition(v1alpha1.ConditionHydrated)
	}
	st.ObservedGeneration = s.gen
	v1alpha1.SetReady(&st.Conditions, s.gen, "", v1alpha1.XDriveDependents)
}

func (s *scope) volumeReady() (metav1.ConditionStatus, string, string) {
	st := s.st
	switch st.Phase {
	case v1alpha1.XDrivePhasePending:
		if s.blocked != nil {
			return metav1.ConditionFalse, s.blocked.reason, s.blocked.message
		}
		return metav1.ConditionUnknown, v1alpha1.ReasonPending, "Resolving where the drive is restored from"
	case v1alpha1.XDrivePhaseArchived:
		if st.RestoreSnapshotID == "" {
			return metav1.ConditionTrue, v1alpha1.ReasonArchived, "No volume; the next one is created blank"
		}
		return metav1.ConditionTrue, v1alpha1.ReasonArchived, "No volume; the next one is restored from " + st.RestoreSnapshotID
	case v1alpha1.XDrivePhaseRestoring:
		return metav1.ConditionFalse, v1alpha1.ReasonRestoring,
			fmt.Sprintf("Volume %s is being restored in %s for instance %s", st.VolumeID, st.AvailabilityZone, orNone(st.AttachedTo))
	case v1alpha1.XDrivePhaseAttached:
		return metav1.ConditionTrue, v1alpha1.ReasonAttached,
			fmt.Sprintf("Volume %s in %s is attached to %s", st.VolumeID, st.AvailabilityZone, st.AttachedTo)
	case v1alpha1.XDrivePhaseDetaching:
		return metav1.ConditionFalse, v1alpha1.ReasonDetaching,
			fmt.Sprintf("Volume %s was released without a flush; it is snapshotted once detached from %s", st.VolumeID, orNone(st.AttachedTo))
	case v1alpha1.XDrivePhaseSnapshotting:
		if st.PendingSnapshot == nil {
			return metav1.ConditionFalse, v1alpha1.ReasonSnapshotting, fmt.Sprintf("A new snapshot of volume %s is being started", st.VolumeID)
		}
		return metav1.ConditionFalse, v1alpha1.ReasonSnapshotting,
			fmt.Sprintf("Snapshot %s of volume %s is pending (%s)", st.PendingSnapshot.ID, st.VolumeID, st.PendingSnapshot.Consistency)
	case v1alpha1.XDrivePhaseKept:
		return metav1.ConditionTrue, v1alpha1.ReasonKept,
			fmt.Sprintf("Volume %s in %s is kept until %s for a fast restart there; snapshot %s holds its data",
				st.VolumeID, st.AvailabilityZone, st.KeptUntil.UTC().Format(time.RFC3339), st.LatestSnapshotID)
	case v1alpha1.XDrivePhaseDeletingVolume:
		return metav1.ConditionFalse, v1alpha1.ReasonDeletingVolume,
			fmt.Sprintf("Snapshot %s completed; volume %s is deleted once detached", st.LatestSnapshotID, st.VolumeID)
	}
	return metav1.ConditionFalse, string(st.Phase), "The XDrive is being deleted"
}
