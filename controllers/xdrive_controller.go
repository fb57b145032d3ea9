package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/drives"
	"github.com/xdrive-io/xdrive/internal/instances"
	"github.com/xdrive-io/xdrive/internal/metrics"
)

// XDriveReconciler keeps a drive's volume and snapshots. It is the only
// writer of the volume after launch, and of the drive's snapshots.
type XDriveReconciler struct {
	client.Client
	Drives    *drives.Service
	Instances *instances.Cache
	Recorder  events.EventRecorder
	// InstanceEvents wakes drives when their instance changes state.
	InstanceEvents <-chan event.TypedGenericEvent[*v1alpha1.XDrive]
	MaxConcurrent  int
}

// +kubebuilder:rbac:groups=xdrive.io,resources=xdrives,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=xdrive.io,resources=xdrives/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=xdrive.io,resources=xdrives/finalizers,verbs=update
// +kubebuilder:rbac:groups=xdrive.io,resources=workstations,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile moves the drive one step along Archived → Restoring → Attached → Snapshotting → Archived.
func (r *XDriveReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	xd := &v1alpha1.XDrive{}
	if found, err := load(ctx, r.Client, req.NamespacedName, xd); !found {
		return ctrl.Result{}, err
	}
	before := xd.DeepCopy()
	s := &driveScope{r: r, xd: xd, key: cloud.ObjectKey(xd.Namespace, xd.Name), gen: xd.Generation,
		ev: pendingEvents{recorder: r.Recorder, obj: xd}}
	v1alpha1.InitConditions(&xd.Status.Conditions, s.gen, v1alpha1.XDriveDependents)

	result, err := s.reconcile(ctx)
	if err != nil {
		s.awsError(err)
	}
	s.snapshotsHealth()
	xd.Status.ObservedGeneration = s.gen
	v1alpha1.SetReady(&xd.Status.Conditions, s.gen, "", v1alpha1.XDriveDependents)
	_, state := readyReason(xd.Status.Conditions)
	if s.removeFinalizer {
		state = ""
	}
	driveStates.set(s.key, state)
	return finish(ctx, r.Client, before, xd, before.Status, xd.Status, &s.ev, s.removeFinalizer, result, err)
}

type driveScope struct {
	r               *XDriveReconciler
	xd              *v1alpha1.XDrive
	key             string
	gen             int64
	ws              *v1alpha1.Workstation // the bound Workstation, if it exists
	ev              pendingEvents
	removeFinalizer bool
}

func (s *driveScope) set(condType string, status metav1.ConditionStatus, reason, msg string) {
	v1alpha1.SetCondition(&s.xd.Status.Conditions, s.gen, condType, status, reason, msg)
}

func (s *driveScope) state(status metav1.ConditionStatus, reason, msg string) {
	s.set(v1alpha1.ConditionVolumeReady, status, reason, msg)
}

func (s *driveScope) awsError(err error) {
	msg := fmt.Sprintf("AWS call failed (%s), retrying: %v", cloud.Classify(err), err)
	if c := meta.FindStatusCondition(s.xd.Status.Conditions, v1alpha1.ConditionVolumeReady); c != nil && c.Reason == v1alpha1.ReasonDeletingVolume {
		// DeletingVolume records that the snapshot after release completed: keep it.
		s.state(metav1.ConditionFalse, v1alpha1.ReasonDeletingVolume, msg)
		return
	}
	s.state(metav1.ConditionUnknown, v1alpha1.ReasonAWSError, msg)
}

func (s *driveScope) reconcile(ctx context.Context) (ctrl.Result, error) {
	if err := s.bind(ctx); err != nil {
		return ctrl.Result{}, err
	}
	st := &s.xd.Status
	if st.PendingSnapshotID != "" {
		return s.awaitSnapshot(ctx)
	}
	if st.VolumeID != "" {
		return s.live(ctx)
	}
	if s.ws != nil && s.ws.Status.InstanceID != "" && s.ws.Status.InstanceID != st.AttachedTo {
		return s.adoptLaunchVolume(ctx)
	}
	if !s.xd.DeletionTimestamp.IsZero() {
		return s.finalize(ctx)
	}
	return s.archived(ctx)
}

// bind gives the drive to at most one Workstation, and takes it back once the
// drive is at rest and the Workstation no longer wants it.
func (s *driveScope) bind(ctx context.Context) error {
	var list v1alpha1.WorkstationList
	if err := s.r.List(ctx, &list, client.InNamespace(s.xd.Namespace), client.MatchingFields{driveRefIndex: s.xd.Name}); err != nil {
		return err
	}
	st := &s.xd.Status
	if st.BoundTo != "" {
		idx := slices.IndexFunc(list.Items, func(w v1alpha1.Workstation) bool { return w.Name == st.BoundTo })
		if idx >= 0 {
			s.ws = &list.Items[idx]
		}
		atRest := st.VolumeID == "" && st.PendingSnapshotID == ""
		if atRest && (s.ws == nil || !wantsDrive(s.ws) && s.ws.Status.InstanceID == "") {
			s.ev.add(false, v1alpha1.ReasonUnbound, "Unbind", "Released by Workstation %s", st.BoundTo)
			st.BoundTo, s.ws = "", nil
		}
	}
	if st.BoundTo == "" && s.xd.DeletionTimestamp.IsZero() {
		var waiting []v1alpha1.Workstation
		for _, w := range list.Items {
			if wantsDrive(&w) {
				waiting = append(waiting, w)
			}
		}
		if len(waiting) > 0 {
			first := slices.MinFunc(waiting, func(a, b v1alpha1.Workstation) int {
				if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
					return c
				}
				return compareStrings(a.Name, b.Name)
			})
			st.BoundTo, s.ws = first.Name, &first
			s.ev.add(false, v1alpha1.ReasonBound, "Bind", "Bound to Workstation %s", first.Name)
		}
	}
	if st.BoundTo == "" {
		s.set(v1alpha1.ConditionBound, metav1.ConditionFalse, v1alpha1.ReasonUnbound, "No Workstation holds the drive")
	} else {
		s.set(v1alpha1.ConditionBound, metav1.ConditionTrue, v1alpha1.ReasonBound, "Bound to Workstation "+st.BoundTo)
	}
	if !s.xd.DeletionTimestamp.IsZero() && st.BoundTo != "" {
		s.set(v1alpha1.ConditionDeletionBlocked, metav1.ConditionTrue, v1alpha1.ReasonDriveInUse,
			fmt.Sprintf("Deletion waits until Workstation %s releases the drive (stop or delete it)", st.BoundTo))
	} else {
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionDeletionBlocked)
	}
	return nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// wantsDrive reports whether the Workstation asks for a running instance.
func wantsDrive(w *v1alpha1.Workstation) bool {
	stoppedByInterruption := meta.IsStatusConditionTrue(w.Status.Conditions, v1alpha1.ConditionInterrupted) &&
		w.Spec.InterruptionPolicy == v1alpha1.InterruptionPolicyStop
	return w.DeletionTimestamp.IsZero() && w.Spec.State != v1alpha1.WorkstationStateStopped && !stoppedByInterruption
}

// archived resolves where the next volume comes from, once per rest period.
func (s *driveScope) archived(ctx context.Context) (ctrl.Result, error) {
	st := &s.xd.Status
	cur := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionVolumeReady)
	if cur != nil && cur.Reason == v1alpha1.ReasonArchived && cur.ObservedGeneration == s.gen {
		return ctrl.Result{}, nil
	}
	if s.ws == nil && cur != nil && cur.Reason == v1alpha1.ReasonArchived {
		s.state(metav1.ConditionTrue, v1alpha1.ReasonArchived, archivedMessage(st))
		return ctrl.Result{}, nil
	}
	if err := s.resolveRestore(ctx); err != nil {
		return ctrl.Result{}, err
	}
	if meta.IsStatusConditionFalse(st.Conditions, v1alpha1.ConditionVolumeReady) &&
		meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionVolumeReady).Reason == v1alpha1.ReasonSourceNotFound {
		return ctrl.Result{RequeueAfter: time.Minute}, nil
	}
	// A prune that failed after the volume was deleted is done here.
	if err := s.prune(ctx); err != nil {
		return ctrl.Result{}, err
	}
	s.state(metav1.ConditionTrue, v1alpha1.ReasonArchived, archivedMessage(st))
	return ctrl.Result{}, nil
}

func archivedMessage(st *v1alpha1.XDriveStatus) string {
	if st.RestoreSnapshotID == "" {
		return "No volume; the next one is created blank"
	}
	return "No volume; the next one is restored from " + st.RestoreSnapshotID
}

// snapshotsHealth keeps SnapshotsHealthy current: False after a failed
// snapshot until the next one completes, True otherwise.
func (s *driveScope) snapshotsHealth() {
	st := &s.xd.Status
	c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionSnapshotsHealthy)
	if c != nil && c.Status == metav1.ConditionFalse {
		s.set(v1alpha1.ConditionSnapshotsHealthy, c.Status, c.Reason, c.Message)
		return
	}
	msg := "No snapshot yet"
	if st.LatestSnapshotID != "" {
		msg = fmt.Sprintf("%d snapshots; the newest is %s", st.SnapshotCount, st.LatestSnapshotID)
	}
	s.set(v1alpha1.ConditionSnapshotsHealthy, metav1.ConditionTrue, v1alpha1.ReasonSnapshotsOK, msg)
}

// resolveRestore picks the newest completed snapshot the drive owns, else its source.
func (s *driveScope) resolveRestore(ctx context.Context) error {
	st := &s.xd.Status
	owned, err := s.r.Drives.DriveSnapshots(ctx, s.key)
	if err != nil {
		return err
	}
	s.countSnapshots(owned)
	if i := slices.IndexFunc(owned, func(sn drives.Snapshot) bool { return sn.State == drives.SnapshotCompleted }); i >= 0 {
		s.recordCompleted(owned[i])
		return nil
	}
	src := s.xd.Spec.Source
	switch {
	case src == nil:
		st.RestoreSnapshotID = ""
	case src.SnapshotID != "":
		sn, found, err := s.r.Drives.Snapshot(ctx, src.SnapshotID)
		if err != nil {
			return err
		}
		if !found || sn.State != drives.SnapshotCompleted {
			s.state(metav1.ConditionFalse, v1alpha1.ReasonSourceNotFound,
				fmt.Sprintf("source.snapshotID %s is not a completed snapshot in this account and region", src.SnapshotID))
			return nil
		}
		st.RestoreSnapshotID = sn.ID
	default:
		sn, found, err := s.r.Drives.NewestNamed(ctx, src.NameTag)
		if err != nil {
			return err
		}
		if !found {
			s.state(metav1.ConditionFalse, v1alpha1.ReasonSourceNotFound,
				fmt.Sprintf("source.nameTag: no completed snapshot is tagged Name=%s", src.NameTag))
			return nil
		}
		st.RestoreSnapshotID = sn.ID
		s.ev.add(false, "Adopted", "Restore", "Adopting snapshot %s tagged Name=%s", sn.ID, src.NameTag)
	}
	return nil
}

func (s *driveScope) countSnapshots(list []drives.Snapshot) {
	n := 0
	for _, sn := range list {
		if sn.State == drives.SnapshotCompleted {
			n++
		}
	}
	s.xd.Status.SnapshotCount = int32(n)
}

func (s *driveScope) recordCompleted(sn drives.Snapshot) {
	st := &s.xd.Status
	st.LatestSnapshotID, st.RestoreSnapshotID = sn.ID, sn.ID
	t := metav1.NewTime(sn.StartTime)
	st.LatestSnapshotTime = &t
	if st.SizeGiB == 0 {
		st.SizeGiB = sn.SizeGiB
	}
}

// adoptLaunchVolume records the volume that RunInstances created for the bound Workstation.
func (s *driveScope) adoptLaunchVolume(ctx context.Context) (ctrl.Result, error) {
	inst, found := s.r.Instances.Cached(s.ws.Status.InstanceID)
	if !found {
		var err error
		if inst, found, err = s.r.Instances.Get(ctx, s.ws.Status.InstanceID); err != nil {
			return ctrl.Result{}, err
		}
	}
	if !found || inst.Gone() || inst.DriveVolumeID == "" || inst.Tags[cloud.TagDrive] != s.key {
		s.state(metav1.ConditionFalse, v1alpha1.ReasonRestoring,
			fmt.Sprintf("Waiting for instance %s to show the drive volume", s.ws.Status.InstanceID))
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
	}
	st := &s.xd.Status
	st.VolumeID, st.AvailabilityZone, st.AttachedTo = inst.DriveVolumeID, inst.Zone, inst.ID
	st.SizeGiB = s.xd.Spec.SizeGiB
	s.ev.add(false, v1alpha1.ReasonRestoring, "Restore", "Volume %s created in %s for instance %s", inst.DriveVolumeID, inst.Zone, inst.ID)
	return s.live(ctx)
}

// live watches an existing volume: attached, resizing, or to be snapshotted.
func (s *driveScope) live(ctx context.Context) (ctrl.Result, error) {
	st := &s.xd.Status
	inst, known, err := s.instance(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	if cur := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionVolumeReady); cur != nil && cur.Reason == v1alpha1.ReasonDeletingVolume {
		return s.deleteVolume(ctx)
	}
	release, consistency := s.released(inst, known)
	if release {
		return s.snapshot(ctx, consistency)
	}
	if !known || inst.State == instances.StatePending {
		s.state(metav1.ConditionFalse, v1alpha1.ReasonRestoring,
			fmt.Sprintf("Volume %s is being restored in %s for instance %s", st.VolumeID, st.AvailabilityZone, st.AttachedTo))
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	s.state(metav1.ConditionTrue, v1alpha1.ReasonAttached,
		fmt.Sprintf("Volume %s in %s is attached to %s", st.VolumeID, st.AvailabilityZone, st.AttachedTo))
	return s.resize(ctx)
}

func (s *driveScope) instance(ctx context.Context) (instances.Instance, bool, error) {
	id := s.xd.Status.AttachedTo
	if id == "" {
		return instances.Instance{}, false, nil
	}
	if inst, ok := s.r.Instances.Cached(id); ok {
		return inst, true, nil
	}
	return s.r.Instances.Get(ctx, id)
}

// released decides whether the volume may be snapshotted now, and how consistent it is.
func (s *driveScope) released(inst instances.Instance, known bool) (bool, string) {
	st := &s.xd.Status
	if s.ws != nil && s.ws.Status.DriveRelease != nil && s.ws.Status.DriveRelease.InstanceID == st.AttachedTo {
		if s.ws.Status.DriveRelease.Flushed {
			return true, "flushed"
		}
		return true, "crash"
	}
	if known && inst.Gone() {
		return true, "crash"
	}
	if !known && s.ws == nil {
		// Nothing holds the volume and its instance is unknown to EC2.
		return true, "crash"
	}
	return false, ""
}

func (s *driveScope) snapshot(ctx context.Context, consistency string) (ctrl.Result, error) {
	st := &s.xd.Status
	sn, err := s.r.Drives.CreateSnapshot(ctx, drives.SnapshotRequest{
		VolumeID: st.VolumeID, Drive: s.key, DriveName: s.xd.Name, Consistency: consistency,
	})
	if err != nil {
		return ctrl.Result{}, err
	}
	st.PendingSnapshotID = sn.ID
	metrics.SnapshotsTaken.WithLabelValues("started").Inc()
	if s.ws != nil && meta.IsStatusConditionTrue(s.ws.Status.Conditions, v1alpha1.ConditionInterrupted) {
		c := meta.FindStatusCondition(s.ws.Status.Conditions, v1alpha1.ConditionInterrupted)
		metrics.NoticeToSnapshot.Observe(metrics.Since(c.LastTransitionTime.Time))
	}
	s.state(metav1.ConditionFalse, v1alpha1.ReasonSnapshotting,
		fmt.Sprintf("Snapshot %s of volume %s is %s (%s)", sn.ID, st.VolumeID, sn.State, consistency))
	s.ev.add(false, v1alpha1.ReasonSnapshotting, "Snapshot", "Snapshot %s of %s started (%s)", sn.ID, st.VolumeID, consistency)
	return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
}

// awaitSnapshot waits for the pending snapshot; only a completed, recorded
// snapshot lets the volume be deleted.
func (s *driveScope) awaitSnapshot(ctx context.Context) (ctrl.Result, error) {
	st := &s.xd.Status
	sn, found, err := s.r.Drives.Snapshot(ctx, st.PendingSnapshotID)
	if err != nil {
		return ctrl.Result{}, err
	}
	switch {
	case !found:
		// EC2 may not list a new snapshot yet; keep waiting, the volume stays.
		s.state(metav1.ConditionFalse, v1alpha1.ReasonSnapshotting, fmt.Sprintf("Waiting for snapshot %s to appear", st.PendingSnapshotID))
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
	case sn.State == drives.SnapshotError:
		s.set(v1alpha1.ConditionSnapshotsHealthy, metav1.ConditionFalse, v1alpha1.ReasonSnapshotFailed,
			fmt.Sprintf("Snapshot %s of volume %s failed; the volume is kept and a new snapshot will be taken", sn.ID, st.VolumeID))
		s.ev.add(true, v1alpha1.ReasonSnapshotFailed, "Snapshot", "Snapshot %s failed; volume %s kept", sn.ID, st.VolumeID)
		st.PendingSnapshotID = ""
		metrics.SnapshotsTaken.WithLabelValues("failed").Inc()
		return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
	case sn.State != drives.SnapshotCompleted:
		s.state(metav1.ConditionFalse, v1alpha1.ReasonSnapshotting,
			fmt.Sprintf("Snapshot %s of volume %s is %s %s", sn.ID, st.VolumeID, sn.State, sn.Progress))
		waits := int(time.Since(sn.StartTime) / (5 * time.Second))
		return ctrl.Result{RequeueAfter: Backoff(waits, 2*time.Second, time.Minute)}, nil
	}
	s.recordCompleted(sn)
	metrics.SnapshotsTaken.WithLabelValues("completed").Inc()
	metrics.SnapshotDuration.Observe(metrics.Since(sn.StartTime))
	st.SnapshotCount++
	st.PendingSnapshotID = ""
	s.set(v1alpha1.ConditionSnapshotsHealthy, metav1.ConditionTrue, v1alpha1.ReasonSnapshotsOK, "Snapshot "+sn.ID+" completed")
	s.state(metav1.ConditionFalse, v1alpha1.ReasonDeletingVolume,
		fmt.Sprintf("Snapshot %s completed; volume %s is deleted once detached", sn.ID, st.VolumeID))
	s.ev.add(false, "SnapshotCompleted", "Snapshot", "Snapshot %s completed", sn.ID)
	// The completed snapshot is recorded before the volume is touched.
	return ctrl.Result{RequeueAfter: time.Millisecond}, nil
}

// deleteVolume ends a volume whose snapshot after release has completed and been recorded.
func (s *driveScope) deleteVolume(ctx context.Context) (ctrl.Result, error) {
	st := &s.xd.Status
	if inst, ok := s.r.Instances.Cached(st.AttachedTo); ok && inst.State != instances.StateTerminated {
		// The instance poll wakes the drive once the instance is terminated.
		s.state(metav1.ConditionFalse, v1alpha1.ReasonDeletingVolume,
			fmt.Sprintf("Snapshot %s completed; volume %s is deleted once %s has terminated", st.LatestSnapshotID, st.VolumeID, inst.ID))
		return ctrl.Result{RequeueAfter: time.Minute}, nil
	}
	vol, found, err := s.r.Drives.Volume(ctx, st.VolumeID)
	if err != nil {
		return ctrl.Result{}, err
	}
	if found {
		if vol.State == "in-use" || vol.AttachedTo != "" {
			s.state(metav1.ConditionFalse, v1alpha1.ReasonDeletingVolume,
				fmt.Sprintf("Volume %s is snapshotted; waiting for it to detach from %s", vol.ID, vol.AttachedTo))
			return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
		}
		if err := s.r.Drives.DeleteVolume(ctx, vol); err != nil {
			return ctrl.Result{}, err
		}
		s.ev.add(false, "VolumeDeleted", "Archive", "Volume %s deleted after snapshot %s", vol.ID, st.LatestSnapshotID)
	}
	st.VolumeID, st.AvailabilityZone, st.AttachedTo = "", "", ""
	meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionResizing)
	if err := s.prune(ctx); err != nil {
		return ctrl.Result{}, err
	}
	s.state(metav1.ConditionTrue, v1alpha1.ReasonArchived, archivedMessage(st))
	// The drive is at rest only now: look again at who holds it.
	return ctrl.Result{RequeueAfter: time.Millisecond}, nil
}

func (s *driveScope) prune(ctx context.Context) error {
	keep := s.xd.Spec.SnapshotRetention
	if keep == nil {
		return nil
	}
	owned, err := s.r.Drives.DriveSnapshots(ctx, s.key)
	if err != nil {
		return err
	}
	for _, sn := range drives.Prunable(owned, int(*keep)) {
		if sn.ID == s.xd.Status.LatestSnapshotID {
			continue
		}
		if err := s.r.Drives.DeleteSnapshot(ctx, sn); err != nil {
			return err
		}
		s.ev.add(false, "SnapshotPruned", "Prune", "Deleted snapshot %s beyond retention %d", sn.ID, *keep)
	}
	s.countSnapshots(owned)
	s.xd.Status.SnapshotCount = min(s.xd.Status.SnapshotCount, *keep)
	return nil
}

// resize grows the attached volume when sizeGiB grew.
func (s *driveScope) resize(ctx context.Context) (ctrl.Result, error) {
	st := &s.xd.Status
	want := s.xd.Spec.SizeGiB
	resizing := meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionResizing)
	if !resizing && want <= st.SizeGiB {
		return ctrl.Result{}, nil
	}
	if !resizing {
		vol, found, err := s.r.Drives.Volume(ctx, st.VolumeID)
		if err != nil || !found {
			return ctrl.Result{RequeueAfter: 5 * time.Second}, err
		}
		if err := s.r.Drives.Resize(ctx, vol, want); err != nil {
			return ctrl.Result{}, err
		}
		s.set(v1alpha1.ConditionResizing, metav1.ConditionTrue, v1alpha1.ReasonResizing,
			fmt.Sprintf("Growing volume %s from %d to %d GiB", st.VolumeID, st.SizeGiB, want))
		s.ev.add(false, v1alpha1.ReasonResizing, "Resize", "Growing volume %s to %d GiB", st.VolumeID, want)
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	mod, found, err := s.r.Drives.Modification(ctx, st.VolumeID)
	if err != nil {
		return ctrl.Result{}, err
	}
	if found && mod.State == "modifying" {
		return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
	}
	if found && mod.State == "failed" {
		s.set(v1alpha1.ConditionResizing, metav1.ConditionFalse, v1alpha1.ReasonAWSError, "ModifyVolume failed for "+st.VolumeID)
		return ctrl.Result{}, nil
	}
	st.SizeGiB = want
	s.set(v1alpha1.ConditionResizing, metav1.ConditionFalse, v1alpha1.ReasonResized,
		fmt.Sprintf("Volume %s is %d GiB; the filesystem grows on the instance", st.VolumeID, want))
	return ctrl.Result{}, nil
}

// finalize runs once the drive is unbound and has no volume.
func (s *driveScope) finalize(ctx context.Context) (ctrl.Result, error) {
	if s.xd.Status.BoundTo != "" {
		return ctrl.Result{}, nil
	}
	if s.xd.Spec.DeletionPolicy == v1alpha1.DeletionPolicyDelete {
		owned, err := s.r.Drives.DriveSnapshots(ctx, s.key)
		if err != nil {
			return ctrl.Result{}, err
		}
		for _, sn := range owned {
			if sn.State == drives.SnapshotPending {
				return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
			}
			if err := s.r.Drives.DeleteSnapshot(ctx, sn); err != nil {
				return ctrl.Result{}, err
			}
		}
	}
	s.removeFinalizer = true
	return ctrl.Result{}, nil
}

// SetupWithManager registers the controller.
func (r *XDriveReconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.XDrive{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, deletionPredicate()))).
		Watches(&v1alpha1.Workstation{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			w := o.(*v1alpha1.Workstation)
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: w.Namespace, Name: w.Spec.DriveRef.Name}}}
		})).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.MaxConcurrent, 1)}).
		Named("xdrive")
	if r.InstanceEvents != nil {
		b = b.WatchesRawSource(source.Channel(r.InstanceEvents, &handler.TypedEnqueueRequestForObject[*v1alpha1.XDrive]{}))
	}
	return b.Complete(r)
}

func deletionPredicate() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return !e.ObjectNew.GetDeletionTimestamp().IsZero()
	}}
}
