// Package xdrive reconciles XDrives: it is the only writer of a drive's volume
// after launch, and of its snapshots. docs/design.md draws its state machine.
package xdrive

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
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
	"github.com/xdrive-io/xdrive/internal/controller/common"
	"github.com/xdrive-io/xdrive/internal/controller/handoff"
	"github.com/xdrive-io/xdrive/internal/controller/phases"
	"github.com/xdrive-io/xdrive/internal/cost"
	"github.com/xdrive-io/xdrive/internal/drives"
	"github.com/xdrive-io/xdrive/internal/instances"
)

// Volumes is what the XDrive controller asks of EBS.
type Volumes interface {
	Volume(ctx context.Context, id string) (drives.Volume, bool, error)
	DriveVolumes(ctx context.Context, driveUID string) ([]drives.Volume, error)
	IsDriveVolume(ctx context.Context, v drives.Volume, device string, owners []string, known ...string) (bool, error)
	DeleteVolume(ctx context.Context, v drives.Volume) error
	Resize(ctx context.Context, v drives.Volume, sizeGiB int32) error
	Modification(ctx context.Context, volumeID string) (drives.Modification, bool, error)
	Attach(ctx context.Context, v drives.Volume, instanceID, device string) error
	Initialization(ctx context.Context, volumeID string) (drives.Initialization, bool, error)
}

// Snapshots is what the XDrive controller asks of EBS snapshots.
type Snapshots interface {
	Snapshot(ctx context.Context, id string) (drives.Snapshot, bool, error)
	DriveSnapshots(ctx context.Context, drive, uid string) ([]drives.Snapshot, error)
	NewestNamed(ctx context.Context, name, drive, uid string) (drives.Snapshot, bool, error)
	Foreign(sn drives.Snapshot, drive, uid string) bool
	CreateSnapshot(ctx context.Context, r drives.SnapshotRequest) (drives.Snapshot, error)
	DeleteSnapshot(ctx context.Context, s drives.Snapshot) error
}

// Instances tells the drive what became of the instance its volume was made for.
type Instances interface {
	Cached(id string) (instances.Instance, bool)
	Get(ctx context.Context, id string) (instances.Instance, bool, error)
}

// Copies copies a drive's snapshot into a region, the one of its service.
type Copies interface {
	CopySnapshot(ctx context.Context, r drives.CopyRequest) (drives.Snapshot, error)
	// FindCopy finds the drive's pending or completed copy of a snapshot by its tags.
	FindCopy(ctx context.Context, driveUID, sourceID string) (drives.Snapshot, bool, error)
	// DeleteFailedCopies deletes the drive's failed copies of a snapshot, found by their tags.
	DeleteFailedCopies(ctx context.Context, driveUID, sourceID string) error
}

// RegionServices are one region's EC2 services, as the drive uses them.
type RegionServices struct {
	Volumes   Volumes
	Snapshots Snapshots
	Copies    Copies
	Instances Instances
}

// Reconciler keeps a drive's volume and snapshots.
type Reconciler struct {
	client.Client
	// Region is the operator's region, a drive's until it moves; Volumes,
	// Snapshots, Copies and Instances are its services.
	Region    string
	Volumes   Volumes
	Snapshots Snapshots
	Copies    Copies
	Instances Instances
	// Elsewhere are the services of the other regions drives may move to.
	Elsewhere map[string]RegionServices
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	// InstanceEvents wakes drives when their instance changes state.
	InstanceEvents <-chan event.TypedGenericEvent[*v1alpha1.XDrive]
	MaxConcurrent  int
	// OnIllegalPhase, if set, hears of each phase change missing from
	// phases.XDrive, besides its Event and metric (the simulation fails the seed).
	OnIllegalPhase func(key, from, to string)

	writes   common.Writes
	ebsReads ebsReads
}

// RBAC: reads go through the cache (list;watch), update sets finalizers,
// status is patched (test/install's TestRBACSufficient proves it enough).
// +kubebuilder:rbac:groups=xdrive.io,resources=xdrives,verbs=list;watch;update
// +kubebuilder:rbac:groups=xdrive.io,resources=xdrives/status,verbs=patch
// +kubebuilder:rbac:groups=xdrive.io,resources=workstations,verbs=list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile moves the drive one step along its lifecycle.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	xd := &v1alpha1.XDrive{}
	found, fresh, err := common.Load(ctx, r.Client, &r.writes, req.NamespacedName, xd)
	if !found {
		return ctrl.Result{}, err
	}
	if !fresh {
		return ctrl.Result{RequeueAfter: common.CacheCatchUp}, nil
	}
	before := xd.DeepCopy()
	s := &scope{r: r, xd: xd, st: &xd.Status, key: cloud.ObjectKey(xd.Namespace, xd.Name), gen: xd.Generation,
		now: r.clock().Now(), ev: common.Events{Recorder: r.Recorder, Object: xd, Log: logr.FromContextOrDiscard(ctx)}}
	v1alpha1.InitConditions(&xd.Status.Conditions, s.gen, v1alpha1.XDriveDependents)
	if xd.Status.Phase == "" {
		s.setPhase(v1alpha1.XDrivePhasePending)
	}

	result, err := s.reconcile(ctx)
	if !s.moved && err == nil && result.RequeueAfter > 0 {
		s.ev.Waiting(string(xd.Status.Phase), "", result.RequeueAfter)
	}
	s.report(err)
	cost.ObserveDrive(xd, s.now)
	state := string(xd.Status.Phase)
	if s.removeFinalizer {
		state = ""
	}
	common.DriveStates.Set(s.key, state)
	after := xd.Status
	result, held := s.hold.Held(s.now, reportOnly(before.Status, xd.Status), &s.ev, s.removeFinalizer, result, err)
	if held {
		after = before.Status
	}
	return common.Finish(ctx, r.Client, &r.writes, before, xd, before.Status, after, &s.ev, s.removeFinalizer, result, err)
}

// in returns a region's services; false for a region the operator does not serve.
func (r *Reconciler) in(region string) (RegionServices, bool) {
	if region == "" || region == r.Region {
		return RegionServices{Volumes: r.Volumes, Snapshots: r.Snapshots, Copies: r.Copies, Instances: r.Instances}, true
	}
	svc, ok := r.Elsewhere[region]
	return svc, ok
}

func (r *Reconciler) clock() clock.PassiveClock {
	if r.Clock == nil {
		return clock.RealClock{}
	}
	return r.Clock
}

type scope struct {
	r   *Reconciler
	xd  *v1alpha1.XDrive
	st  *v1alpha1.XDriveStatus
	key string
	gen int64
	now time.Time
	// holder is the Workstation holding the lease, if it still exists.
	holder *v1alpha1.Workstation
	// blocked says why a drive at rest cannot be restored.
	blocked         *blocker
	ev              common.Events
	removeFinalizer bool
	// moved says the phase changed in this reconcile.
	moved bool
	// hold lets a report-only status write wait for the news that follows.
	hold common.Hold
}

// reportOnly reports whether two statuses differ in their conditions alone,
// which each reconcile computes again: such a change may wait (s.hold).
func reportOnly(before, after v1alpha1.XDriveStatus) bool {
	before.Conditions, after.Conditions = nil, nil
	return common.StoredAlike(before, after)
}

func (s *scope) reconcile(ctx context.Context) (ctrl.Result, error) {
	if err := s.readHolder(ctx); err != nil {
		return ctrl.Result{}, err
	}
	if s.st.Region == "" {
		s.st.Region = s.r.Region // named, for people and the plugin
	}
	if _, ok := s.r.in(s.region()); !ok {
		return ctrl.Result{}, fmt.Errorf("drive %s is in region %s, which this operator does not serve (add it to --regions)", s.key, s.region())
	}
	var res ctrl.Result
	var err error
	id, vol := s.reattachRequest()
	switch {
	case id != "" && vol == s.st.VolumeID && handoff.Reattachable(s.st.Phase):
		res, err = s.reattach(ctx, id)
	case id != "" && vol != s.st.VolumeID && !handoff.Reattachable(s.st.Phase):
		s.failReattach(id, vol, "the volume was archived before it could be attached")
		fallthrough
	default:
		res, err = s.step(ctx)
	}
	if err != nil || s.st.TrailingSnapshot == nil {
		return res, err
	}
	return s.trail(ctx, res)
}

// step takes the drive one step along its lifecycle from its phase.
func (s *scope) step(ctx context.Context) (ctrl.Result, error) {
	switch s.st.Phase {
	case v1alpha1.XDrivePhasePending, v1alpha1.XDrivePhaseArchived, v1alpha1.XDrivePhaseDeleting:
		return s.atRest(ctx) // takes a rollback once it has found no volume
	}
	if err := s.takeRollback(ctx); err != nil {
		return ctrl.Result{}, err
	}
	switch s.st.Phase {
	case v1alpha1.XDrivePhaseRestoring, v1alpha1.XDrivePhaseAttached:
		return s.live(ctx)
	case v1alpha1.XDrivePhaseDetaching:
		inst, known, err := s.instance(ctx)
		if err != nil {
			return ctrl.Result{}, err
		}
		return s.detaching(ctx, inst, known)
	case v1alpha1.XDrivePhaseSnapshotting:
		return s.snapshotting(ctx)
	case v1alpha1.XDrivePhaseDeletingVolume:
		return s.deletingVolume(ctx)
	case v1alpha1.XDrivePhaseKept:
		return s.kept(ctx)
	}
	return ctrl.Result{}, nil
}

// region is the drive's region.
func (s *scope) region() string {
	if s.st.Region != "" {
		return s.st.Region
	}
	return s.r.Region
}

// svc are the services of the drive's region (reconcile refuses a region not served).
func (s *scope) svc() RegionServices {
	svc, _ := s.r.in(s.region())
	return svc
}

// readHolder reads the lease holder; a Workstation of that name with another UID is not it.
func (s *scope) readHolder(ctx context.Context) error {
	h := s.st.Holder
	if h == nil {
		return nil
	}
	ws := &v1alpha1.Workstation{}
	err := s.r.Get(ctx, types.NamespacedName{Namespace: s.xd.Namespace, Name: h.Name}, ws)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("read Workstation %s, the lease holder of drive %s: %w", h.Name, s.key, err)
	case string(ws.UID) == h.UID:
		s.holder = ws
	}
	return nil
}

// setPhase is the one way the drive's phase changes: a change missing from
// phases.XDrive is reported as a bug.
func (s *scope) setPhase(p v1alpha1.XDrivePhase) {
	if common.ChangePhase(&s.ev, s.r.OnIllegalPhase, phases.XDrive, s.key, s.st.Phase, p) {
		s.st.Phase, s.moved = p, true
	}
}

// SetupWithManager registers the controller.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.XDrive{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, common.DeletionPredicate(),
			predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool { // the lease asks for a move
				old, oldOK := e.ObjectOld.(*v1alpha1.XDrive)
				new, newOK := e.ObjectNew.(*v1alpha1.XDrive)
				return oldOK && newOK && handoff.LeaseChanged(old, new)
			}}))).
		Watches(&v1alpha1.Workstation{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return handoff.DriveOf(o)
		}), builder.WithPredicates(predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
			return handoff.HolderChanged(e.ObjectOld, e.ObjectNew)
		}})).
		Watches(&v1alpha1.Workstation{}, common.UrgentOnChange(handoff.ReleaseChanged, handoff.DriveOf)).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.MaxConcurrent, 1), RateLimiter: common.RateLimiter()}).
		Named("xdrive")
	if r.InstanceEvents != nil {
		b = b.WatchesRawSource(source.Channel(r.InstanceEvents, &handler.TypedEnqueueRequestForObject[*v1alpha1.XDrive]{}))
	}
	return b.Complete(r)
}
