package workstation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/controller/common"
	"github.com/xdrive-io/xdrive/internal/controller/handoff"
	"github.com/xdrive-io/xdrive/internal/instances"
	"github.com/xdrive-io/xdrive/internal/placement"
)

// invalidSpecError is a spec the instance side cannot run, though the API accepted it.
type invalidSpecError struct{ error }

func (e invalidSpecError) Unwrap() error { return e.error }

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// pending prepares a launch: the drive's lease, the drive at rest, an
// offering. It records the launch before any RunInstances.
func (s launchStep) pending(ctx context.Context) (ctrl.Result, error) {
	s.setPhase(v1alpha1.WorkstationPhasePending)
	if res, done, err := s.confirmLaunch(ctx); done {
		return res, err // a launch dropped in this reconcile too
	}
	if _, err := s.lease().releaseOthers(ctx); err != nil {
		// A drive named before a driveRef change is given back once at rest, as a running Workstation does.
		return ctrl.Result{}, err
	}
	if s.class == nil {
		// The class went away while an instance ran: nothing launches without one.
		s.waitFor(v1alpha1.ReasonClassNotFound, "No WorkstationClass admits this Workstation; it launches once one does")
		return ctrl.Result{}, nil
	}
	xd, err := s.drive(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	if xd == nil {
		s.waitFor(v1alpha1.ReasonDriveNotFound, "XDrive %s does not exist in namespace %s", s.ws.Spec.DriveRef.Name, s.ws.Namespace)
		s.hold.Until(s.now, s.ws.CreationTimestamp.Add(firstReportHold)) // a drive created with it: its creation wakes a new Workstation
		return ctrl.Result{}, nil
	}
	if !xd.DeletionTimestamp.IsZero() {
		// Holding its lease would keep the drive from ever going.
		if _, err := s.lease().releaseLease(ctx); err != nil {
			return ctrl.Result{}, err
		}
		s.waitFor(v1alpha1.ReasonDriveNotFound, "XDrive %s is being deleted; this Workstation launches once a drive of that name exists again", xd.Name)
		return ctrl.Result{}, nil
	}
	if !handoff.Reconciled(xd) {
		// The drive's first look at AWS comes first: a lease written meanwhile would make it look twice.
		s.waitFor(v1alpha1.ReasonWaitingForDrive, "Waiting for XDrive %s to be reconciled", xd.Name)
		s.hold.Until(s.now, s.ws.CreationTimestamp.Add(firstReportHold)) // a new Workstation's first status waits for the report
		return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
	}
	if held, err := s.lease().acquireLease(ctx, xd); err != nil || !held {
		return ctrl.Result{RequeueAfter: time.Minute}, client.IgnoreNotFound(err)
	}
	res, err := s.leased(ctx, xd)
	if flushed, ferr := s.lease().flushLease(ctx, xd); ferr != nil || flushed.RequeueAfter > 0 {
		return flushed, errors.Join(err, ferr)
	}
	return res, err
}

// leased prepares a launch from a drive whose lease this Workstation holds,
// if only in memory (acquireLease).
func (s launchStep) leased(ctx context.Context, xd *v1alpha1.XDrive) (ctrl.Result, error) {
	st := s.st
	reuse := s.reusableVolume(xd)
	if !handoff.Archived(xd) && reuse == "" {
		s.waitFor(v1alpha1.ReasonWaitingForDrive, "Waiting for XDrive %s to be archived (it is %s)", xd.Name, orDefault(string(handoff.Phase(xd)), "new"))
		return ctrl.Result{}, nil
	}
	if st.FailedRestoreSnapshotID != "" {
		if handoff.RestoreSnapshot(xd) == st.FailedRestoreSnapshotID {
			s.waitFor(v1alpha1.ReasonRestoreMissing, "Snapshot %s is gone; waiting for XDrive %s to pick another", st.FailedRestoreSnapshotID, xd.Name)
			return ctrl.Result{}, nil
		}
		st.FailedRestoreSnapshotID = ""
	}
	choice, err := s.place(ctx, xd)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !choice.Found() {
		msg := choice.Reason + "; retrying"
		if n := len(st.AvoidOfferings); n > 0 {
			msg += fmt.Sprintf(" (the last avoided offering is usable again at %s at the latest)", st.AvoidOfferings[n-1].Until.UTC().Format(time.RFC3339))
		}
		s.waitFor(v1alpha1.ReasonNoCapacity, "%s", msg)
		return ctrl.Result{RequeueAfter: common.Backoff(int(st.Launches), 30*time.Second, 5*time.Minute)}, nil
	}
	if !handoff.InRegion(xd, choice.region, s.r.Region) {
		return s.awaitRegion(ctx, xd, choice)
	}
	if adopted, err := s.adoptStray(ctx, s.st.Region, choice.region); err != nil || adopted {
		return ctrl.Result{RequeueAfter: time.Millisecond}, err
	}
	o, reattach := choice.Offering, choice.Reattach
	if choice.Declined != "" {
		st.DeclinedVolumeID = choice.Declined // the drive then deletes it without waiting
	}
	if !reattach && !handoff.Archived(xd) {
		s.waitFor(v1alpha1.ReasonWaitingForDrive, "Waiting for XDrive %s to archive volume %s, which is not reattached (it is %s)",
			xd.Name, handoff.VolumeID(xd), handoff.Phase(xd))
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	if left, err := s.driveVolumeLeft(ctx, xd); err != nil || left != "" && (!reattach || left != reuse) {
		s.waitFor(v1alpha1.ReasonWaitingForDrive, "XDrive %s still has volume %s; waiting for it to be archived", xd.Name, left)
		return ctrl.Result{RequeueAfter: 5 * time.Second}, err
	}
	if recorded, err := s.lease().recordLaunch(ctx, xd, st.Launches+1); err != nil || !recorded {
		return ctrl.Result{RequeueAfter: common.Jitter(time.Second)}, err
	}
	st.Launches++
	st.Launch = &v1alpha1.LaunchAttempt{
		Attempt: st.Launches, Region: choice.region, Offering: o.Key(), SubnetID: o.SubnetID, SpotPrice: spotPrice(o), PricePerHour: o.Price,
		SnapshotID: handoff.RestoreSnapshot(xd), Candidates: int32(choice.Candidates), StartTime: metav1.NewTime(s.now),
		Placement: choice.reason(), RecordedBy: s.r.launches.process(),
	}
	st.ReattachVolumeID = ""
	if reattach {
		st.Launch.SnapshotID, st.ReattachVolumeID = "", reuse
	}
	s.teardown().forgetRelease()
	s.run().forgetPrewarm()
	s.setPhase(v1alpha1.WorkstationPhaseLaunching)
	// The launch is written down before RunInstances, so a retry reuses its client token.
	return ctrl.Result{RequeueAfter: time.Millisecond}, nil
}

// driveVolumeLeft names a volume of the drive that is not archived yet, e.g.
// one of an instance that vanished before the drive saw it: a launch now
// would make a second volume of the drive.
func (s launchStep) driveVolumeLeft(ctx context.Context, xd *v1alpha1.XDrive) (string, error) {
	svc, err := s.services(handoff.Region(xd, s.r.Region))
	if err != nil {
		return "", err
	}
	vols, err := svc.Volumes.DriveVolumes(ctx, string(xd.UID))
	if err != nil {
		return "", fmt.Errorf("list the volumes of XDrive %s for Workstation %s: %w", xd.Name, s.key, err)
	}
	for _, v := range vols {
		ours, err := svc.Volumes.IsDriveVolume(ctx, v, bootstrap.DriveDevice, handoff.SnapshotOwners(xd), handoff.KnownSnapshots(xd)...)
		if err != nil {
			return v.ID, fmt.Errorf("tell whether volume %s belongs to XDrive %s, for Workstation %s: %w", v.ID, xd.Name, s.key, err)
		}
		if ours {
			return v.ID, nil
		}
	}
	return "", nil
}

// acquireLease takes the drive's lease with an optimistic lock: of two
// Workstations racing for one drive, one write fails.
// The lease carries the class's bounds from the start: they are recorded before any launch, so before any release.
// A free lease is taken in memory first: its write goes out with the
// launch's record (recordLaunch), or alone when the step ends (flushLease).
func (s leaseStep) acquireLease(ctx context.Context, xd *v1alpha1.XDrive) (bool, error) {
	me := v1alpha1.DriveHolder{Name: s.ws.Name, UID: string(s.ws.UID), Bounds: driveBounds(s.class.class)}
	h := handoff.Lease(xd)
	if h != nil && h.Name == me.Name && h.UID == me.UID {
		return true, nil
	}
	if h != nil {
		alive, err := s.holderAlive(ctx, *h)
		if err != nil {
			return false, err
		}
		if alive {
			s.waitFor(v1alpha1.ReasonDriveInUse, "XDrive %s is in use by Workstation %s", xd.Name, h.Name)
			return false, nil
		}
	}
	s.leaseRead = xd.DeepCopy()
	*xd = *handoff.WithLease(xd, &me)
	return true, nil
}

// writeLease writes patched, a change of xd's lease, with an optimistic
// lock on the drive as read; a lease taken in memory goes out with it, and
// is announced unless withLaunch (the launch's own Event follows). On any
// failure the drive is read afresh at the next reconcile.
func (s leaseStep) writeLease(ctx context.Context, xd, patched *v1alpha1.XDrive, withLaunch bool) error {
	from, taken := xd, s.leaseRead != nil
	if taken {
		from = s.leaseRead
	}
	s.leaseRead = nil
	if err := s.r.Status().Patch(ctx, patched, client.MergeFromWithOptions(from, client.MergeFromWithOptimisticLock{})); err != nil {
		return err
	}
	if taken && !withLaunch {
		s.event(false, v1alpha1.ReasonBound, "Lease", "Took the lease of XDrive %s", xd.Name)
	}
	// Go on from the write's answer, which shows the lease; later reads wait for the cache to show it too.
	s.r.leases.wrote(s.ws.UID, patched)
	*xd = *patched
	return nil
}

// flushLease writes a lease taken in memory that no launch went out with:
// a Workstation waiting for capacity, the drive or a region holds its drive.
func (s leaseStep) flushLease(ctx context.Context, xd *v1alpha1.XDrive) (ctrl.Result, error) {
	if s.leaseRead == nil {
		return ctrl.Result{}, nil
	}
	err := s.writeLease(ctx, xd, handoff.WithLease(s.leaseRead, handoff.Lease(xd)), false)
	switch {
	case apierrors.IsConflict(err):
		s.waitFor(v1alpha1.ReasonWaitingForDrive, "XDrive %s changed while taking its lease; retrying", xd.Name)
		return ctrl.Result{RequeueAfter: time.Minute}, nil
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("take the lease of XDrive %s for Workstation %s: %w", xd.Name, s.key, err)
	}
	return ctrl.Result{}, nil
}

// recordLaunch writes the launch about to be recorded into the lease, with
// an optimistic lock on the drive as read: the launch restores what that
// read showed, and a rollback the drive read before this write cannot be
// taken after it unseen (its own status write then conflicts; I14). False
// when the drive changed meanwhile: the next read shows why.
func (s leaseStep) recordLaunch(ctx context.Context, xd *v1alpha1.XDrive, attempt int32) (bool, error) {
	if err := s.writeLease(ctx, xd, handoff.WithLaunch(xd, attempt, metav1.NewTime(s.now)), true); err != nil {
		if apierrors.IsConflict(err) {
			s.waitFor(v1alpha1.ReasonWaitingForDrive, "XDrive %s changed while recording the launch in its lease; retrying", xd.Name)
			return false, nil
		}
		return false, fmt.Errorf("record launch %d of Workstation %s in the lease of XDrive %s: %w", attempt, s.key, xd.Name, err)
	}
	return true, nil
}

// driveBounds are the class's limits on what a drive does at a release, as the lease records them.
func driveBounds(cls *v1alpha1.WorkstationClass) *v1alpha1.DriveBounds {
	b := &v1alpha1.DriveBounds{ClassName: cls.Name, MaxSnapshotRetention: cls.Spec.MaxSnapshotRetention}
	if keep := cls.Spec.MaxKeepVolumeForMinutes; keep != nil {
		b.MaxKeepVolumeForMinutes = ptr.To(*keep) // not the cached class's own
	}
	return b
}

// recordBounds keeps the class's bounds current in the lease of a drive this
// Workstation holds: the drive applies them at its next release, whatever
// its spec says by then. Without a class the last ones stay: a missing
// class never widens them.
func (s leaseStep) recordBounds(ctx context.Context, xd *v1alpha1.XDrive) error {
	if s.class == nil || !handoff.HeldBy(xd, string(s.ws.UID)) {
		return nil
	}
	want := driveBounds(s.class.class)
	if equality.Semantic.DeepEqual(handoff.Lease(xd).Bounds, want) {
		return nil
	}
	patched := handoff.WithBounds(xd, want)
	err := s.r.Status().Patch(ctx, patched, client.MergeFromWithOptions(xd, client.MergeFromWithOptimisticLock{}))
	switch {
	case apierrors.IsConflict(err), apierrors.IsNotFound(err):
		return nil // the drive changed: its update wakes this Workstation, which records them then
	case err != nil:
		return fmt.Errorf("record the bounds of WorkstationClass %s in the lease of XDrive %s/%s: %w", want.ClassName, xd.Namespace, xd.Name, err)
	}
	s.event(false, v1alpha1.ReasonBound, "Lease", "Recorded the bounds of WorkstationClass %s in the lease of XDrive %s", want.ClassName, xd.Name)
	return nil
}

// holderAlive reports whether the lease holder still exists as the same object.
func (s leaseStep) holderAlive(ctx context.Context, h v1alpha1.DriveHolder) (bool, error) {
	ws := &v1alpha1.Workstation{}
	err := s.r.APIReader.Get(ctx, types.NamespacedName{Namespace: s.ws.Namespace, Name: h.Name}, ws)
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read Workstation %s, which holds the lease Workstation %s asks for: %w", h.Name, s.key, err)
	}
	return string(ws.UID) == h.UID, nil
}

// releaseLease gives the lease back once the drive is at rest without us.
func (s leaseStep) releaseLease(ctx context.Context) (bool, error) {
	held, err := s.heldDrives(ctx)
	if err != nil {
		return false, err
	}
	released := true
	for i := range held {
		ok, err := s.giveBack(ctx, &held[i])
		if err != nil {
			return false, err
		}
		released = released && ok
	}
	return released, nil
}

// releaseOthers gives back the lease of each drive this Workstation still
// holds but no longer names (spec.driveRef changed during a relaunch), once
// that drive is at rest; until then the drive archives within the class's
// current bounds. It never waits: a running Workstation looks again at its
// next reconcile. It returns the drives it found held, as read.
func (s leaseStep) releaseOthers(ctx context.Context) ([]v1alpha1.XDrive, error) {
	held, err := s.heldDrives(ctx)
	if err != nil {
		return nil, err
	}
	for i := range held {
		xd := &held[i]
		switch {
		case xd.Name == s.ws.Spec.DriveRef.Name:
		case !handoff.LeaseFree(xd):
			if err := s.recordBounds(ctx, xd); err != nil {
				return nil, err
			}
		default:
			if _, err := s.giveBack(ctx, xd); err != nil {
				return nil, err
			}
		}
	}
	return held, nil
}

// earlierDriveOn names a held drive this Workstation no longer names whose
// volume is attached to the instance: the spec changed its driveRef while
// stopped and was started again before the instance was stopped.
func (s leaseStep) earlierDriveOn(held []v1alpha1.XDrive, instanceID string) string {
	for i := range held {
		if _, on := handoff.AttachedVolume(&held[i], instanceID); on && held[i].Name != s.ws.Spec.DriveRef.Name {
			return held[i].Name
		}
	}
	return ""
}

// heldDrives are the drives of the namespace whose lease this Workstation
// holds: its drive, and one it held before spec.driveRef changed.
func (s leaseStep) heldDrives(ctx context.Context) ([]v1alpha1.XDrive, error) {
	var list v1alpha1.XDriveList
	// By the index: a running Workstation asks at every reconcile.
	if err := s.r.List(ctx, &list, client.InNamespace(s.ws.Namespace), client.MatchingFields{common.HolderIndex: string(s.ws.UID)}); err != nil {
		return nil, fmt.Errorf("list the drives Workstation %s holds: %w", s.key, err)
	}
	var out []v1alpha1.XDrive
	for _, xd := range list.Items {
		if handoff.HeldBy(&xd, string(s.ws.UID)) {
			out = append(out, xd)
		}
	}
	return out, nil
}

// giveBack clears one drive's lease once the drive is at rest.
func (s leaseStep) giveBack(ctx context.Context, xd *v1alpha1.XDrive) (bool, error) {
	if !handoff.LeaseFree(xd) {
		s.waitFor(v1alpha1.ReasonWaitingForDrive, "Waiting for XDrive %s to archive the volume before giving up its lease (it is %s)", xd.Name, handoff.Phase(xd))
		// A drive held from before a driveRef change archives within the class's current bounds too.
		return false, s.recordBounds(ctx, xd)
	}
	patched := handoff.WithLease(xd, nil)
	if err := s.r.Status().Patch(ctx, patched, client.MergeFromWithOptions(xd, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return false, fmt.Errorf("give back the lease of XDrive %s/%s: %w", xd.Namespace, xd.Name, err)
	}
	s.event(false, v1alpha1.ReasonUnbound, "Lease", "Gave back the lease of XDrive %s", xd.Name)
	return true, nil
}

// adoptStray finds a live instance of this Workstation that no status
// records, e.g. after a lost status write, and makes it the current one.
// It looks in the regions given: where this Workstation's instances may be.
func (s launchStep) adoptStray(ctx context.Context, regions ...string) (bool, error) {
	var inst instances.Instance
	region := ""
	for i, r := range regions {
		if slices.Contains(regions[:i], r) {
			continue
		}
		svc, err := s.services(r)
		if err != nil {
			return false, err
		}
		owned, err := svc.Instances.Owned(ctx, s.key, string(s.ws.UID))
		if err != nil {
			return false, fmt.Errorf("look for instances of Workstation %s by their tags in region %s: %w", s.key, orDefault(r, s.r.Region), err)
		}
		if len(owned) > 0 {
			inst, region = owned[0], r
			break
		}
	}
	if inst.ID == "" {
		return false, nil
	}
	s.recordInstance(inst, region)
	s.st.UnconfirmedLaunch = nil
	if s.st.Launch != nil {
		s.st.SpotPrice, s.st.PricePerHour = s.st.Launch.SpotPrice, s.st.Launch.PricePerHour
	}
	s.st.Launch = nil
	s.setPhase(v1alpha1.WorkstationPhaseRunning)
	s.event(false, "Adopted", "Launch", "Found instance %s by its tags", inst.ID)
	return true, nil
}

// defaultLaunchLookup is Timings.LaunchLookup's default.
const defaultLaunchLookup = 3 * time.Minute

// confirmLaunch looks for the instance of a dropped launch (dropUnconfirmedLaunch)
// before a Workstation without an instance does anything else: found, it is
// adopted; while the lookup's time lasts, nothing launches, the lease is kept
// and the finalizer stays. done says the reconcile ends here.
func (s launchStep) confirmLaunch(ctx context.Context) (res ctrl.Result, done bool, err error) {
	u := s.st.UnconfirmedLaunch
	if u == nil || (s.st.Phase != v1alpha1.WorkstationPhasePending && s.st.Phase != v1alpha1.WorkstationPhaseStopped) {
		return ctrl.Result{}, false, nil
	}
	if adopted, err := s.adoptStray(ctx, u.Region); err != nil || adopted {
		return ctrl.Result{RequeueAfter: time.Millisecond}, true, err
	}
	svc, err := s.services(u.Region)
	if err != nil {
		return ctrl.Result{}, true, err
	}
	// Not live: it may have run and ended (a spot reclaim) before it was seen.
	inst, found, err := svc.Instances.OfLaunch(ctx, s.key, string(s.ws.UID), u.Attempt)
	if err != nil {
		return ctrl.Result{}, true, fmt.Errorf("look for the instance of launch %d of Workstation %s: %w", u.Attempt, s.key, err)
	}
	if found {
		// Recorded, it is torn down as any instance seen gone, and a notice for it counts.
		s.recordInstance(inst, u.Region)
		s.st.UnconfirmedLaunch = nil
		s.setPhase(v1alpha1.WorkstationPhaseRunning)
		s.event(false, "Adopted", "Launch", "Found instance %s of launch %d by its tags (%s)", inst.ID, u.Attempt, inst.State)
		return ctrl.Result{RequeueAfter: time.Millisecond}, true, nil
	}
	until := u.Since.Add(cmp.Or(s.r.Timings.LaunchLookup, defaultLaunchLookup))
	if s.now.Before(until) {
		s.waitFor(v1alpha1.ReasonConfirmingLaunch, "Launch %d was dropped after its RunInstances may have taken effect; looking for its instance until %s before launching again",
			u.Attempt, until.UTC().Format(time.RFC3339))
		return ctrl.Result{RequeueAfter: min(30*time.Second, until.Sub(s.now))}, true, nil
	}
	s.event(false, v1alpha1.ReasonConfirmingLaunch, "Launch", "No instance of launch %d found by %s: it never started", u.Attempt, until.UTC().Format(time.RFC3339))
	s.st.UnconfirmedLaunch, s.st.ReattachVolumeID = nil, ""
	return ctrl.Result{}, false, nil
}

// launching issues RunInstances for the recorded launch, with its client token.
func (s launchStep) launching(ctx context.Context) (ctrl.Result, error) {
	st := s.st
	if adopted, err := s.adoptStray(ctx, st.Launch.Region); err != nil || adopted {
		return ctrl.Result{RequeueAfter: time.Millisecond}, err
	}
	if !s.wants() {
		s.event(false, v1alpha1.ReasonStopped, "Launch", "Launch %d dropped: the Workstation is stopped", st.Launch.Attempt)
		s.dropUnconfirmedLaunch()
		return s.teardown().stopped(ctx)
	}
	xd, err := s.drive(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	if xd == nil || !handoff.HeldBy(xd, string(s.ws.UID)) || !s.driveReadyFor(xd) {
		s.dropUnconfirmedLaunch()
		return s.pending(ctx)
	}
	o, err := s.offering()
	if err != nil {
		return ctrl.Result{}, err
	}
	creds, err := s.r.credentials(ctx, s.ws)
	if err != nil {
		return ctrl.Result{}, err
	}
	inst, err := s.launchOffering(ctx, xd, creds, o)
	var invalid invalidSpecError
	switch {
	case cloud.Classify(err) == cloud.KindNoCapacity:
		s.avoid(o, cloud.ErrorCode(err))
		s.event(true, v1alpha1.ReasonNoCapacity, "Launch", "No capacity for %s: %s", o.Key(), cloud.ErrorCode(err))
		s.dropLaunch()
		s.setPhase(v1alpha1.WorkstationPhasePending)
		s.waitFor(v1alpha1.ReasonNoCapacity, "No capacity for %s (%s); trying the next offering", o.Key(), cloud.ErrorCode(err))
		return ctrl.Result{RequeueAfter: time.Second}, nil
	case cloud.ErrorCode(err) == "InvalidSnapshot.NotFound" && st.Launch.SnapshotID != "":
		st.FailedRestoreSnapshotID = st.Launch.SnapshotID
		s.event(true, v1alpha1.ReasonRestoreMissing, "Launch", "Snapshot %s no longer exists; XDrive %s picks another", st.Launch.SnapshotID, xd.Name)
		s.dropLaunch()
		s.setPhase(v1alpha1.WorkstationPhasePending)
		s.waitFor(v1alpha1.ReasonRestoreMissing, "Snapshot %s is gone; waiting for XDrive %s to pick another", st.FailedRestoreSnapshotID, xd.Name)
		return ctrl.Result{}, nil
	case errors.As(err, &invalid):
		// Retrying cannot help until the spec changes, which requeues by itself.
		s.event(true, v1alpha1.ReasonInvalidSpec, "Launch", "%v", invalid)
		s.dropLaunch()
		s.setPhase(v1alpha1.WorkstationPhasePending)
		s.waitFor(v1alpha1.ReasonInvalidSpec, "%s", invalid.Error())
		return ctrl.Result{}, nil
	case err != nil:
		return ctrl.Result{}, err
	}
	if svc, err := s.services(st.Launch.Region); err == nil {
		svc.Instances.Remember(inst)
	}
	s.recordInstance(inst, st.Launch.Region)
	st.SpotPrice, st.PricePerHour = st.Launch.SpotPrice, st.Launch.PricePerHour
	from := restoreText(st.Launch.SnapshotID)
	if st.ReattachVolumeID != "" {
		from = "its released volume " + st.ReattachVolumeID + ", to be reattached"
	}
	msg := fmt.Sprintf("Launched %s (%s) in %s from %s", inst.ID, o.Key(), o.Zone, from)
	switch {
	case st.Launch.Placement != "":
		msg += ": " + st.Launch.Placement
	case o.Spot:
		msg += fmt.Sprintf(" at $%s/h, the cheapest of %d offerings", st.Launch.SpotPrice, st.Launch.Candidates)
	case st.Launch.PricePerHour != "":
		msg += fmt.Sprintf(" at $%s/h on demand", st.Launch.PricePerHour)
	}
	var skipped []string
	for _, a := range st.AvoidOfferings {
		skipped = append(skipped, a.Offering+" ("+a.Reason+")")
	}
	if len(skipped) > 0 {
		msg += "; skipped " + strings.Join(skipped, ", ")
	}
	st.Launch = nil
	s.setPhase(v1alpha1.WorkstationPhaseRunning)
	if st.Teardown == nil && st.LastInterruptionTime != nil {
		s.teardown().reportInterrupted(metav1.ConditionFalse, "Relaunched", "Relaunched as "+inst.ID)
	}
	s.reportLaunched(metav1.ConditionTrue, v1alpha1.ReasonLaunching, msg)
	s.event(false, v1alpha1.ReasonLaunching, "Launch", "%s", msg)
	// The same write reports the new instance as running() sees it (pending, mostly).
	return s.run().running(ctx)
}

// offering rebuilds the recorded launch's offering.
func (s launchStep) offering() (instances.Offering, error) {
	l := s.st.Launch
	parts := strings.SplitN(l.Offering, "/", 3)
	if len(parts) != 3 {
		return instances.Offering{}, fmt.Errorf("malformed offering %q in status.launch", l.Offering)
	}
	return instances.Offering{Spot: parts[0] == "Spot", Type: parts[1], Zone: parts[2], SubnetID: l.SubnetID, Price: l.SpotPrice}, nil
}

// nonZero is nil for an unset (zero) optional value.
func nonZero(v int32) *int32 {
	if v == 0 {
		return nil
	}
	return &v
}

func restoreText(snapshotID string) string {
	if snapshotID == "" {
		return "a blank drive"
	}
	return "snapshot " + snapshotID
}

func spotPrice(o instances.Offering) string {
	if o.Spot {
		return o.Price
	}
	return ""
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func (s launchStep) recordInstance(inst instances.Instance, region string) {
	st := s.st
	st.InstanceID, st.InstanceType, st.AvailabilityZone, st.Region = inst.ID, inst.Type, inst.Zone, region
	st.PrivateIP, st.PublicIP = inst.PrivateIP, inst.PublicIP
	if !inst.LaunchTime.IsZero() {
		t := metav1.NewTime(inst.LaunchTime)
		st.LaunchTime = &t
	}
	st.CapacityType = v1alpha1.CapacityTypeOnDemand
	if inst.Spot {
		st.CapacityType = v1alpha1.CapacityTypeSpot
	}
}

// place asks placement for an offering, with the drive's released volume
// to reattach if this Workstation has not declined it.
// regionChoice is a placement and the region it is in.
type regionChoice struct {
	placement.Choice
	region string
	// why says why the region was chosen, when the class allows more than one.
	why string
}

func (c regionChoice) reason() string {
	if c.why == "" {
		return c.Reason
	}
	return c.Reason + "; " + c.why
}

func (s launchStep) place(ctx context.Context, xd *v1alpha1.XDrive) (regionChoice, error) {
	spec := s.ws.Spec
	home := handoff.Region(xd, s.r.Region)
	var options []placement.RegionOption
	var skipped []string
	for _, rp := range s.class.regions {
		// A drive moves only at rest, and not while a rollback is in effect.
		if rp.name != home && (!handoff.Archived(xd) || handoff.RollbackInEffect(xd)) {
			continue
		}
		svc, ok := s.r.in(rp.name)
		if !ok {
			skipped = append(skipped, rp.name+" (not served by this operator)")
			continue
		}
		req := placement.Request{
			Types: spec.InstanceTypes, Zones: spec.AvailabilityZones, SubnetIDs: rp.subnetIDs,
			Spot: spec.CapacityType != v1alpha1.CapacityTypeOnDemand, OnDemandFallback: ptr.Deref(spec.OnDemandFallback, false),
			MaxSpotPrice: s.class.maxSpotPrice, MaxOnDemandPrice: s.class.maxOnDemandPrice, OnDemandPrices: s.class.onDemandPrices,
			Avoid: s.avoided, TolerancePercent: ptr.Deref(spec.ReattachPriceTolerancePercent, defaultReattachTolerance),
		}
		if id, zone := handoff.ReusableVolume(xd, s.st.DeclinedVolumeID); id != "" && rp.name == home {
			req.Volume = placement.Volume{ID: id, Zone: zone}
		}
		choice, err := placement.Place(ctx, svc.Catalog, req)
		if err != nil && rp.name == home {
			return regionChoice{}, fmt.Errorf("place Workstation %s in region %s: %w", s.key, rp.name, err)
		}
		if err != nil {
			// Another region's market is optional: the launch goes on without it.
			s.event(true, v1alpha1.ReasonNoCapacity, "Launch", "Could not read region %s's offerings for Workstation %s: %v", rp.name, s.key, err)
			continue
		}
		options = append(options, placement.RegionOption{Region: rp.name, Choice: choice})
	}
	if len(options) == 0 {
		reason := "No region of the class is usable"
		if len(skipped) > 0 {
			reason += ": " + strings.Join(skipped, ", ")
		}
		return regionChoice{Choice: placement.Choice{Reason: reason}}, nil
	}
	move := placement.DriveMove{From: home, SizeGiB: handoff.SizeGiB(xd), Blank: handoff.RestoreSnapshot(xd) == "",
		HorizonHours: s.class.moveHorizonHours}
	if lease := handoff.LeaseRegion(xd, s.r.Region); lease != home {
		move.Under = lease
	}
	picked, why := placement.PickRegion(options, move)
	if !picked.Choice.Found() {
		return regionChoice{Choice: placement.Choice{Reason: why}}, nil
	}
	if len(options) == 1 && picked.Region == home {
		why = ""
	}
	if picked.Choice.Declined != "" {
		s.event(false, "ReattachDeclined", "Launch", "%s", picked.Choice.Reason)
	}
	return regionChoice{Choice: picked.Choice, region: picked.Region, why: why}, nil
}

// awaitRegion asks the drive, through its lease, to move to the chosen
// region, and waits for it there: the launch restores only a drive in its
// own region (handoff.InRegion).
func (s launchStep) awaitRegion(ctx context.Context, xd *v1alpha1.XDrive, choice regionChoice) (ctrl.Result, error) {
	if handoff.LeaseRegion(xd, s.r.Region) != choice.region {
		err := s.lease().writeLease(ctx, xd, handoff.WithLeaseRegion(xd, choice.region), false)
		switch {
		case apierrors.IsConflict(err), apierrors.IsNotFound(err):
			s.waitFor(v1alpha1.ReasonWaitingForDrive, "XDrive %s changed while asking it to move; retrying", xd.Name)
			return ctrl.Result{RequeueAfter: time.Second}, nil
		case err != nil:
			return ctrl.Result{}, fmt.Errorf("ask XDrive %s to move to region %s for Workstation %s: %w", xd.Name, choice.region, s.key, err)
		}
		s.event(false, v1alpha1.ReasonMoving, "Launch", "Launching in region %s: %s", choice.region, choice.why)
	}
	msg := fmt.Sprintf("Waiting for XDrive %s to move to region %s", xd.Name, choice.region)
	if m := handoff.Move(xd); m != nil && m.Region == choice.region {
		if m.Progress != "" {
			msg += fmt.Sprintf(" (copy %s %s)", m.CopySnapshotID, m.Progress)
		}
		if m.Failure != "" {
			msg += "; the last copy failed: " + m.Failure
		}
	}
	s.waitFor(v1alpha1.ReasonMoving, "%s", msg)
	return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
}

func (s launchStep) launchOffering(ctx context.Context, xd *v1alpha1.XDrive, creds Credentials, o instances.Offering) (instances.Instance, error) {
	svc, err := s.services(s.st.Launch.Region)
	if err != nil {
		return instances.Instance{}, err
	}
	info, err := svc.Catalog.Type(ctx, o.Type)
	if err != nil {
		return instances.Instance{}, fmt.Errorf("describe instance type %s for Workstation %s: %w", o.Type, s.key, err)
	}
	image, err := s.image(ctx, svc.Catalog, info)
	if err != nil {
		return instances.Instance{}, fmt.Errorf("find the image of Workstation %s: %w", s.key, err)
	}
	s.admission().recordImage(image)
	root, err := svc.Catalog.RootMapping(ctx, image)
	if err != nil {
		return instances.Instance{}, fmt.Errorf("describe image %s for Workstation %s: %w", image, s.key, err)
	}
	hostKey, _, err := creds.LaunchHostKey(fmt.Sprint(s.st.Launch.Attempt))
	if err != nil {
		return instances.Instance{}, fmt.Errorf("make the host key of launch %d of Workstation %s: %w", s.st.Launch.Attempt, s.key, err)
	}
	userData, err := s.r.UserData(UserDataInput{Workstation: s.ws, Drive: xd, GPU: info.GPUs > 0, Credentials: creds,
		HostKey: hostKey, BlankDrive: s.blankDrive(xd), Prewarm: s.prewarmDrive(xd)})
	if err != nil {
		return instances.Instance{}, invalidSpecError{fmt.Errorf("rendering the instance bootstrap: %w", err)}
	}
	groups, err := s.access().launchGroups(ctx, o)
	if err != nil {
		return instances.Instance{}, err
	}
	spec := xd.Spec
	s.r.launches.calling(s.ws.UID, s.st.Launch.Attempt) // before the call: it may take effect with its answer lost
	inst, err := svc.Launcher.Launch(ctx, instances.LaunchRequest{
		Workstation: s.key, WorkstationUID: string(s.ws.UID),
		Drive: cloud.ObjectKey(xd.Namespace, xd.Name), DriveUID: string(xd.UID), DriveName: xd.Name,
		Offering: o, ImageID: image, RootMapping: root, UserData: userData,
		Volume: instances.DriveVolume{
			SnapshotID: s.st.Launch.SnapshotID, SizeGiB: spec.SizeGiB, VolumeType: string(spec.VolumeType),
			IOPS: nonZero(spec.IOPS), ThroughputMiBps: nonZero(spec.ThroughputMiBps), Encrypted: spec.IsEncrypted(), KMSKeyID: spec.KMSKeyID,
			InitializationRateMiBps: nonZero(spec.InitializationRateMiBps), Reattach: s.st.ReattachVolumeID != "",
		},
		SecurityGroupIDs: groups, KeyName: s.class.keyName,
		InstanceProfile: s.class.profile, MaxSpotPrice: s.class.maxSpotPrice,
		UserTags: s.class.tags, Attempt: s.st.Launch.Attempt,
		ContainersReachMetadata: ptr.Deref(s.ws.Spec.ContainersReachInstanceMetadata, false),
	})
	if err != nil {
		return inst, fmt.Errorf("launch %d of Workstation %s in %s: %w", s.st.Launch.Attempt, s.key, o.Key(), err)
	}
	return inst, nil
}

func (s launchStep) image(ctx context.Context, catalog Catalog, info instances.TypeInfo) (string, error) {
	rp, _ := s.class.region(orDefault(s.st.Launch.Region, s.r.Region))
	img := s.class.imageSource(info, rp)
	switch {
	case img != nil && img.ID != "":
		return img.ID, nil
	case img != nil && img.SSMParameter != "":
		return s.imageOf(ctx, catalog, img.SSMParameter)
	}
	params := s.r.Images.CPU
	if info.GPUs > 0 {
		params = s.r.Images.GPU
	}
	p, ok := params[info.Arch]
	if !ok {
		return "", invalidSpecError{fmt.Errorf("no default image for %s (gpu=%t); set the class's image", info.Arch, info.GPUs > 0)}
	}
	return s.imageOf(ctx, catalog, p)
}

// imageOf resolves an SSM parameter to the image it names.
func (s launchStep) imageOf(ctx context.Context, catalog Catalog, parameter string) (string, error) {
	id, err := catalog.Image(ctx, parameter)
	if err != nil {
		return "", fmt.Errorf("read image parameter %s: %w", parameter, err)
	}
	return id, nil
}

// reportLaunched sets Launched, its one writer.
func (s launchStep) reportLaunched(status metav1.ConditionStatus, reason, msg string) {
	s.set(v1alpha1.ConditionLaunched, status, reason, msg)
}
