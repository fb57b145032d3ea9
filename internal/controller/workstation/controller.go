// Package workstation reconciles Workstations: it is the only writer of their
// instances, and of their drive's lease. docs/design.md draws its state machine.
package workstation

import (
	"context"
	"sync"
	"time"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
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
	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/controller/common"
	"github.com/xdrive-io/xdrive/internal/drives"
	"github.com/xdrive-io/xdrive/internal/instances"
	"github.com/xdrive-io/xdrive/internal/metrics"
	"github.com/xdrive-io/xdrive/internal/placement"
	"github.com/xdrive-io/xdrive/internal/securitygroup"
)

// UserDataInput is what the bootstrap needs to render one instance's user-data.
type UserDataInput struct {
	Workstation *v1alpha1.Workstation
	Drive       *v1alpha1.XDrive
	GPU         bool
	Credentials Credentials
	// HostKey is this launch's SSH host private key (OpenSSH PEM).
	HostKey []byte
	// BlankDrive says the drive's volume is created blank, not restored.
	BlankDrive bool
	// Prewarm asks the instance to read every block of the restored volume once.
	Prewarm bool
}

// ImageDefaults are the SSM parameters used when a Workstation names no image,
// keyed by architecture (x86_64, arm64).
type ImageDefaults struct {
	CPU map[string]string
	GPU map[string]string
}

// Timings are the deadlines and intervals of the Workstation controller.
type Timings struct {
	// FlushTimeout bounds the wait for the instance to flush after an interruption notice.
	FlushTimeout time.Duration
	// StopTimeout bounds the teardown over SSH when the user stops a Workstation.
	StopTimeout time.Duration
	// IdleRequeue is how often a Ready Workstation is checked over SSH.
	IdleRequeue time.Duration
	// AvoidFor is how long an interrupted or full offering is skipped.
	AvoidFor time.Duration
	// IdleMinute is how long a minute of spec.idleStop lasts: a minute, but
	// shorter in tests and the demo; 0 means a minute.
	IdleMinute time.Duration
	// StatusTimeout bounds one status check over SSH; 0 means 10 s. Longer
	// only for instances far slower than EC2's (make demo-real's emulated VMs).
	StatusTimeout time.Duration
	// LaunchLookup is how long a dropped launch's instance is looked for
	// before the next launch; 0 means 3 minutes. EC2's listings show a new
	// instance within seconds, rarely minutes; the collector ends one that
	// shows up later.
	LaunchLookup time.Duration
}

// Instances is what the Workstation controller asks of EC2 about instances.
type Instances interface {
	Cached(id string) (instances.Instance, bool)
	Get(ctx context.Context, id string) (instances.Instance, bool, error)
	Owned(ctx context.Context, workstation, uid string) ([]instances.Instance, error)
	OfLaunch(ctx context.Context, workstation, uid string, attempt int32) (instances.Instance, bool, error)
	Remember(i instances.Instance)
}

// DriveVolumes finds a drive's volumes: a launch must not make a second one.
type DriveVolumes interface {
	DriveVolumes(ctx context.Context, driveUID string) ([]drives.Volume, error)
	IsDriveVolume(ctx context.Context, v drives.Volume, device string, owners []string, known ...string) (bool, error)
	// Snapshot and Foreign check a restore snapshot against the class (class.go).
	Snapshot(ctx context.Context, id string) (drives.Snapshot, bool, error)
	Foreign(sn drives.Snapshot, drive, uid string) bool
}

// Launcher starts and ends instances.
type Launcher interface {
	Launch(ctx context.Context, r instances.LaunchRequest) (instances.Instance, error)
	Terminate(ctx context.Context, i instances.Instance) error
}

// Catalog answers placement questions.
type Catalog interface {
	placement.Catalog
	Type(ctx context.Context, name string) (instances.TypeInfo, error)
	Image(ctx context.Context, ssmParameter string) (string, error)
	RootMapping(ctx context.Context, imageID string) (*ec2types.BlockDeviceMapping, error)
}

// RegionServices are one region's EC2 services, as a Workstation uses them.
type RegionServices struct {
	Catalog   Catalog
	Launcher  Launcher
	Instances Instances
	Volumes   DriveVolumes
	// Groups manages the Workstations' own security groups there; nil refuses spec.access.
	Groups *securitygroup.Service
}

// Reconciler runs a Workstation's instance.
type Reconciler struct {
	client.Client
	// APIReader reads Workstations past the cache (is a lease holder still there?).
	APIReader client.Reader
	Catalog   Catalog
	// Region prices on-demand types for the classes' caps.
	Region    string
	Launcher  Launcher
	Instances Instances
	Volumes   DriveVolumes
	// Calls runs the agent's commands in the background.
	Calls    *agent.Calls
	Recorder events.EventRecorder
	UserData func(UserDataInput) ([]byte, error)
	Images   ImageDefaults
	Timings  Timings
	Clock    clock.PassiveClock
	// InstanceEvents wakes Workstations when their instance changes state.
	InstanceEvents <-chan event.TypedGenericEvent[*v1alpha1.Workstation]
	// AgentEvents wakes Workstations when a background status check ends;
	// UrgentEvents, ahead of routine work, when a release ends.
	AgentEvents, UrgentEvents <-chan event.TypedGenericEvent[*v1alpha1.Workstation]
	MaxConcurrent             int
	// OnIllegalPhase, if set, hears of each phase change missing from
	// phases.Workstation, besides its Event and metric (the simulation fails the seed).
	OnIllegalPhase func(key, from, to string)
	// Access opens instances to spec.access (access.go).
	Access Access
	// Elsewhere are the services of the regions besides Region that classes may list.
	Elsewhere map[string]RegionServices

	writes common.Writes
	leases leaseWrites
	// launches knows which launches this process could have run (launches.go).
	launches launchCalls
	credsMu  sync.Mutex
	creds    map[types.UID]Credentials
}

// in returns a region's services ("" is Region's); false for a region the operator does not serve.
func (r *Reconciler) in(region string) (RegionServices, bool) {
	if region == "" || region == r.Region {
		return RegionServices{Catalog: r.Catalog, Launcher: r.Launcher, Instances: r.Instances, Volumes: r.Volumes, Groups: r.Access.Groups}, true
	}
	svc, ok := r.Elsewhere[region]
	return svc, ok
}

// RBAC: only what test/install's TestRBACSufficient sees the manager use, as
// its ServiceAccount, through a whole lifecycle. Reads go through the cache
// (list;watch); get is for APIReader's read of a lease holder; update sets
// finalizers; patch records an interruption notice; workstations/finalizers
// lets the SSH Secret's owner reference block the Workstation's deletion.
// +kubebuilder:rbac:groups=xdrive.io,resources=workstations,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=xdrive.io,resources=workstations/status,verbs=patch
// +kubebuilder:rbac:groups=xdrive.io,resources=workstations/finalizers,verbs=update
// +kubebuilder:rbac:groups=xdrive.io,resources=xdrives,verbs=list;watch
// +kubebuilder:rbac:groups=xdrive.io,resources=xdrives/status,verbs=patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=list;watch;create
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// Classes and namespace labels are read through the cache (class.go).
// +kubebuilder:rbac:groups=xdrive.io,resources=workstationclasses,verbs=list;watch
// +kubebuilder:rbac:groups=xdrive.io,resources=workstationclasses/status,verbs=patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=list;watch

// Reconcile moves the Workstation one step along its lifecycle.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ws := &v1alpha1.Workstation{}
	found, fresh, err := common.Load(ctx, r.Client, &r.writes, req.NamespacedName, ws)
	if !found {
		return ctrl.Result{}, err
	}
	if fresh {
		if fresh, err = r.leases.caughtUp(ctx, r.Client, ws); err != nil {
			return ctrl.Result{}, err
		}
	}
	if !fresh {
		return ctrl.Result{RequeueAfter: common.CacheCatchUp}, nil
	}
	before := ws.DeepCopy()
	s := &scope{r: r, ws: ws, st: &ws.Status, key: cloud.ObjectKey(ws.Namespace, ws.Name), gen: ws.Generation,
		now: r.clock().Now(), ev: common.Events{Recorder: r.Recorder, Object: ws, Log: logr.FromContextOrDiscard(ctx)}}
	v1alpha1.InitConditions(&ws.Status.Conditions, s.gen, v1alpha1.WorkstationDependents)
	if ws.Status.Phase == "" {
		s.setPhase(v1alpha1.WorkstationPhasePending)
	}

	result, err := s.reconcile(ctx)
	result = s.schedule().record(result)
	result, err = s.access().apply(ctx, result, err)
	s.observeCost()
	if s.wait != nil && err == nil {
		s.ev.Waiting(s.wait.reason, s.wait.message, result.RequeueAfter)
	}
	s.report(err)
	// The finalizer comes off once the teardown has let the deleted
	// Workstation go and its security group, if any, is deleted.
	removeFinalizer := s.teardownDone && s.st.SecurityGroup == nil
	if removeFinalizer {
		// The month's spend stays in the namespace's budget after the Workstation is gone.
		if rerr := s.budget().retire(ctx); rerr != nil {
			removeFinalizer = false
			result, err = ctrl.Result{}, rerr
			if apierrors.IsConflict(rerr) {
				result, err = ctrl.Result{RequeueAfter: common.Jitter(common.CacheCatchUp)}, nil
			}
		}
	}
	if removeFinalizer {
		r.forgetCredentials(ws.UID)
		r.leases.forget(ws.UID)
		metrics.HourlyCost.DeleteLabelValues(ws.Namespace, ws.Name)
	}
	after := ws.Status
	reportAlone := reportOnly(before.Status, ws.Status) || firstReportOnly(before.Status, ws.Status)
	result, held := s.hold.Held(s.now, reportAlone, &s.ev, removeFinalizer, result, err)
	if held {
		after = before.Status
	}
	return common.Finish(ctx, r.Client, &r.writes, before, ws, before.Status, after, &s.ev, removeFinalizer, result, err)
}

func (r *Reconciler) clock() clock.PassiveClock {
	if r.Clock == nil {
		return clock.RealClock{}
	}
	return r.Clock
}

// SetupWithManager registers the controller.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Workstation{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, common.DeletionPredicate()))).
		Watches(&v1alpha1.Workstation{}, common.UrgentOnChange(noticeArrived, self)).
		Watches(&v1alpha1.XDrive{}, handler.EnqueueRequestsFromMapFunc(r.workstationsOfDrive), builder.WithPredicates(common.StatusChanged())).
		Watches(&v1alpha1.WorkstationClass{}, handler.EnqueueRequestsFromMapFunc(r.workstationsOfClass),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.workstationsOfNamespace), builder.WithPredicates(predicate.LabelChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.MaxConcurrent, 1), RateLimiter: common.RateLimiter()}).
		Named("workstation")
	if r.InstanceEvents != nil {
		b = b.WatchesRawSource(source.Channel(r.InstanceEvents, &handler.TypedEnqueueRequestForObject[*v1alpha1.Workstation]{}))
	}
	if r.AgentEvents != nil {
		b = b.WatchesRawSource(source.Channel(r.AgentEvents, &handler.TypedEnqueueRequestForObject[*v1alpha1.Workstation]{}))
	}
	if r.UrgentEvents != nil {
		b = b.WatchesRawSource(source.Channel(r.UrgentEvents, common.UrgentGeneric[*v1alpha1.Workstation]()))
	}
	return b.Complete(r)
}

// noticeArrived reports whether an update recorded an interruption notice.
func noticeArrived(old, new client.Object) bool {
	for _, kind := range noticeKinds {
		if key := NoticeAnnotation(kind); old.GetAnnotations()[key] != new.GetAnnotations()[key] {
			return true
		}
	}
	return false
}

func self(o client.Object) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(o)}}
}

func (r *Reconciler) workstationsOfDrive(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1alpha1.WorkstationList
	if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{common.DriveRefIndex: o.GetName()}); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, w := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: w.Namespace, Name: w.Name}})
	}
	return out
}
