package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/instances"
	"github.com/xdrive-io/xdrive/internal/metrics"
)

// invalidSpecError is a spec the instance side cannot run, though the API accepted it.
type invalidSpecError struct{ error }

func (e invalidSpecError) Unwrap() error { return e.error }

// releaseRecorded is the pause between recording a drive release and terminating.
const releaseRecorded = 100 * time.Millisecond

// UserDataInput is what the bootstrap needs to render one instance's user-data.
type UserDataInput struct {
	Workstation *v1alpha1.Workstation
	Drive       *v1alpha1.XDrive
	GPU         bool
	Credentials Credentials
}

// ImageDefaults are the SSM parameters used when a Workstation names no image,
// keyed by architecture (x86_64, arm64).
type ImageDefaults struct {
	CPU map[string]string
	GPU map[string]string
}

// WorkstationTimings are the deadlines and intervals of the Workstation controller.
type WorkstationTimings struct {
	// FlushTimeout bounds the wait for the instance to flush after an interruption notice.
	FlushTimeout time.Duration
	// StopTimeout bounds the teardown over SSH when the user stops a Workstation.
	StopTimeout time.Duration
	// IdleRequeue is how often a Ready Workstation is checked over SSH.
	IdleRequeue time.Duration
	// AvoidFor is how long an interrupted or full offering is skipped.
	AvoidFor time.Duration
}

// WorkstationReconciler runs a Workstation's instance. It is the only writer of its instances.
type WorkstationReconciler struct {
	client.Client
	// APIReader reads Secrets without caching every Secret of the cluster.
	APIReader client.Reader
	Catalog   *instances.Catalog
	Launcher  *instances.Launcher
	Instances *instances.Cache
	Agent     agent.Agent
	Recorder  events.EventRecorder
	UserData  func(UserDataInput) ([]byte, error)
	Images    ImageDefaults
	Timings   WorkstationTimings
	// InstanceEvents wakes Workstations when their instance changes state.
	InstanceEvents <-chan event.TypedGenericEvent[*v1alpha1.Workstation]
	MaxConcurrent  int

	credsMu sync.Mutex
	creds   map[types.UID]Credentials
}

// +kubebuilder:rbac:groups=xdrive.io,resources=workstations,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=xdrive.io,resources=workstations/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=xdrive.io,resources=workstations/finalizers,verbs=update
// +kubebuilder:rbac:groups=xdrive.io,resources=xdrives,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;create
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile launches, watches and tears down the Workstation's instance.
func (r *WorkstationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ws := &v1alpha1.Workstation{}
	if found, err := load(ctx, r.Client, req.NamespacedName, ws); !found {
		return ctrl.Result{}, err
	}
	before := ws.DeepCopy()
	s := &wsScope{r: r, ws: ws, key: cloud.ObjectKey(ws.Namespace, ws.Name), gen: ws.Generation,
		ev: pendingEvents{recorder: r.Recorder, obj: ws}}
	v1alpha1.InitConditions(&ws.Status.Conditions, s.gen, v1alpha1.WorkstationDependents)

	result, err := s.reconcile(ctx)
	if err != nil {
		s.set(v1alpha1.ConditionLaunched, metav1.ConditionUnknown, v1alpha1.ReasonAWSError,
			fmt.Sprintf("AWS call failed (%s), retrying: %v", cloud.Classify(err), err))
	}
	ws.Status.ObservedGeneration = s.gen
	v1alpha1.SetReady(&ws.Status.Conditions, s.gen, v1alpha1.ReasonReady, v1alpha1.WorkstationDependents)
	if s.removeFinalizer {
		r.forgetCredentials(ws.UID)
	}
	return finish(ctx, r.Client, before, ws, before.Status, ws.Status, &s.ev, s.removeFinalizer, result, err)
}

type wsScope struct {
	r               *WorkstationReconciler
	ws              *v1alpha1.Workstation
	key             string
	gen             int64
	ev              pendingEvents
	removeFinalizer bool
}

func (s *wsScope) set(condType string, status metav1.ConditionStatus, reason, msg string) {
	v1alpha1.SetCondition(&s.ws.Status.Conditions, s.gen, condType, status, reason, msg)
}

// setAll sets every dependent condition from the given one on.
func (s *wsScope) setFrom(first string, status metav1.ConditionStatus, reason, msg string) {
	i := slices.Index(v1alpha1.WorkstationDependents, first)
	for _, t := range v1alpha1.WorkstationDependents[i:] {
		s.set(t, status, reason, msg)
	}
}

func (s *wsScope) event(warning bool, reason, action, format string, args ...any) {
	s.ev.add(warning, reason, action, format, args...)
}

func (s *wsScope) reconcile(ctx context.Context) (ctrl.Result, error) {
	s.expireAvoided()
	s.clearStaleStopInterruption()
	inst, found, err := s.currentInstance(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	s.takeNotice(inst, found)

	if found && !inst.Gone() {
		if !wantsDrive(s.ws) || s.interruptedNow() {
			return s.teardown(ctx, inst)
		}
		return s.observe(ctx, inst)
	}
	if found {
		s.instanceGone(inst)
	}
	if !wantsDrive(s.ws) {
		return s.stopped()
	}
	return s.launch(ctx)
}

// currentInstance finds the instance by status, or by its tags after a lost status write.
func (s *wsScope) currentInstance(ctx context.Context) (instances.Instance, bool, error) {
	st := &s.ws.Status
	if st.InstanceID != "" {
		// The shared poll follows every instance, fast while any is in transition.
		if inst, ok := s.r.Instances.Cached(st.InstanceID); ok {
			return inst, true, nil
		}
		inst, found, err := s.r.Instances.Get(ctx, st.InstanceID)
		if err != nil || found {
			return inst, found, err
		}
		// EC2 can take a moment to list a new instance.
		if st.LaunchTime != nil && time.Since(st.LaunchTime.Time) < 5*time.Minute {
			return instances.Instance{ID: st.InstanceID, State: instances.StatePending, Tags: map[string]string{cloud.TagCluster: s.r.Launcher.Cluster}}, true, nil
		}
		return instances.Instance{ID: st.InstanceID, State: instances.StateTerminated}, true, nil
	}
	// Instances are looked up by their tags right before a launch.
	return instances.Instance{}, false, nil
}

// adoptByTags finds an instance whose launch was not recorded, e.g. after a
// crash between RunInstances and the status write.
func (s *wsScope) adoptByTags(ctx context.Context) (instances.Instance, bool, error) {
	owned, err := s.r.Instances.Owned(ctx, s.key)
	if err != nil || len(owned) == 0 {
		return instances.Instance{}, false, err
	}
	inst := owned[0]
	s.recordInstance(inst)
	s.ws.Status.Launches++
	s.ws.Status.DriveRelease = nil
	s.event(false, "Adopted", "Launch", "Found instance %s by its tags", inst.ID)
	return inst, true, nil
}

func (s *wsScope) recordInstance(inst instances.Instance) {
	st := &s.ws.Status
	st.InstanceID, st.InstanceType, st.AvailabilityZone = inst.ID, inst.Type, inst.Zone
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

// notice is a parsed InterruptionAnnotation.
type notice struct {
	kind, instanceID string
	at               time.Time
}

func parseNotice(v string) (notice, bool) {
	parts := strings.SplitN(v, "/", 3)
	if len(parts) != 3 {
		return notice{}, false
	}
	at, err := time.Parse(time.RFC3339, parts[2])
	if err != nil {
		return notice{}, false
	}
	return notice{kind: parts[0], instanceID: parts[1], at: at}, true
}

// takeNotice turns a new interruption notice for the current instance into status.
func (s *wsScope) takeNotice(inst instances.Instance, found bool) {
	st := &s.ws.Status
	n, ok := parseNotice(s.ws.Annotations[InterruptionAnnotation])
	if !ok || !found || n.instanceID != inst.ID || n.instanceID == "" {
		return
	}
	if st.LastInterruptionTime != nil && !n.at.After(st.LastInterruptionTime.Time) {
		return
	}
	if n.kind == NoticeRebalance && s.ws.Spec.RebalancePolicy != v1alpha1.RebalancePolicyMove {
		s.event(false, v1alpha1.ReasonRebalancing, "Ignore", "Rebalance recommendation for %s ignored (rebalancePolicy=Ignore)", inst.ID)
		t := metav1.NewTime(n.at)
		st.LastInterruptionTime = &t
		return
	}
	s.interrupt(inst, n.kind, n.at)
}

func (s *wsScope) interrupt(inst instances.Instance, kind string, at time.Time) {
	st := &s.ws.Status
	t := metav1.NewTime(at)
	st.LastInterruptionTime = &t
	st.Interruptions++
	reason := v1alpha1.ReasonSpotInterrupted
	if kind == NoticeRebalance {
		reason = v1alpha1.ReasonRebalancing
	}
	s.set(v1alpha1.ConditionInterrupted, metav1.ConditionTrue, reason,
		fmt.Sprintf("%s notice for instance %s at %s; the drive is being snapshotted", kind, inst.ID, at.UTC().Format(time.RFC3339)))
	s.avoid(offeringOf(st, inst), reason)
	metrics.Interruptions.WithLabelValues(kind).Inc()
	s.event(true, reason, "Interrupt", "%s notice for instance %s (%s in %s)", kind, inst.ID, inst.Type, inst.Zone)
}

func offeringOf(st *v1alpha1.WorkstationStatus, inst instances.Instance) instances.Offering {
	return instances.Offering{Type: inst.Type, Zone: inst.Zone, Spot: inst.Spot || st.CapacityType == v1alpha1.CapacityTypeSpot}
}

// interruptedNow reports whether the current instance has an interruption notice.
func (s *wsScope) interruptedNow() bool {
	c := meta.FindStatusCondition(s.ws.Status.Conditions, v1alpha1.ConditionInterrupted)
	return c != nil && c.Status == metav1.ConditionTrue && strings.Contains(c.Message, s.ws.Status.InstanceID)
}

// clearStaleStopInterruption lets a user restart a Workstation that stopped
// after an interruption (interruptionPolicy=Stop) by editing its spec.
func (s *wsScope) clearStaleStopInterruption() {
	c := meta.FindStatusCondition(s.ws.Status.Conditions, v1alpha1.ConditionInterrupted)
	if c != nil && c.Status == metav1.ConditionTrue && s.ws.Status.InstanceID == "" && c.ObservedGeneration < s.gen {
		s.set(v1alpha1.ConditionInterrupted, metav1.ConditionFalse, "Cleared", "The spec changed after the interruption")
	}
}

func (s *wsScope) avoid(o instances.Offering, reason string) {
	if o.Type == "" {
		return
	}
	st := &s.ws.Status
	until := metav1.NewTime(time.Now().Add(s.r.Timings.AvoidFor))
	st.AvoidOfferings = slices.DeleteFunc(st.AvoidOfferings, func(a v1alpha1.AvoidedOffering) bool { return a.Offering == o.Key() })
	st.AvoidOfferings = append(st.AvoidOfferings, v1alpha1.AvoidedOffering{Offering: o.Key(), Until: until, Reason: reason})
	if len(st.AvoidOfferings) > 64 {
		st.AvoidOfferings = st.AvoidOfferings[len(st.AvoidOfferings)-64:]
	}
}

func (s *wsScope) expireAvoided() {
	now := time.Now()
	s.ws.Status.AvoidOfferings = slices.DeleteFunc(s.ws.Status.AvoidOfferings, func(a v1alpha1.AvoidedOffering) bool {
		return a.Until.Time.Before(now)
	})
}

func (s *wsScope) avoided(o instances.Offering) bool {
	return slices.ContainsFunc(s.ws.Status.AvoidOfferings, func(a v1alpha1.AvoidedOffering) bool { return a.Offering == o.Key() })
}

// instanceGone closes the books on a terminated instance.
func (s *wsScope) instanceGone(inst instances.Instance) {
	st := &s.ws.Status
	if st.DriveRelease == nil || st.DriveRelease.InstanceID != inst.ID {
		// It vanished without a teardown: the drive holds what was on disk.
		st.DriveRelease = &v1alpha1.DriveRelease{InstanceID: inst.ID, Flushed: false, Time: metav1.Now()}
		if wantsDrive(s.ws) && (inst.Spot || st.CapacityType == v1alpha1.CapacityTypeSpot) && !s.interruptedNow() {
			s.interrupt(inst, NoticeTerminated, time.Now())
		}
		s.event(true, v1alpha1.ReasonInstanceGone, "Observe", "Instance %s is %s without a teardown; its volume is snapshotted as it is", inst.ID, inst.State)
	}
	st.InstanceID, st.PrivateIP, st.PublicIP, st.SpotPrice = "", "", "", ""
	st.LaunchTime = nil
}

// drive reads the referenced XDrive.
func (s *wsScope) drive(ctx context.Context) (*v1alpha1.XDrive, error) {
	xd := &v1alpha1.XDrive{}
	return xd, s.r.Get(ctx, types.NamespacedName{Namespace: s.ws.Namespace, Name: s.ws.Spec.DriveRef.Name}, xd)
}

func (s *wsScope) stopped() (ctrl.Result, error) {
	msg := "The Workstation is stopped; its drive is archived as snapshots"
	reason := v1alpha1.ReasonStopped
	if s.interruptedNow() || meta.IsStatusConditionTrue(s.ws.Status.Conditions, v1alpha1.ConditionInterrupted) {
		msg = "Stopped after a spot interruption (interruptionPolicy=Stop); edit the spec to start again"
	}
	s.setFrom(v1alpha1.ConditionLaunched, metav1.ConditionFalse, reason, msg)
	st := &s.ws.Status
	st.InstanceType, st.AvailabilityZone, st.CapacityType = "", "", ""
	metrics.HourlyCost.DeleteLabelValues(s.ws.Namespace, s.ws.Name)
	if !s.ws.DeletionTimestamp.IsZero() {
		s.removeFinalizer = true
	}
	return ctrl.Result{}, nil
}

// launch starts an instance once the drive is bound here and at rest.
func (s *wsScope) launch(ctx context.Context) (ctrl.Result, error) {
	st := &s.ws.Status
	xd, err := s.drive(ctx)
	if err != nil {
		if apierrors.IsNotFound(err) {
			s.setFrom(v1alpha1.ConditionLaunched, metav1.ConditionFalse, v1alpha1.ReasonDriveNotFound,
				fmt.Sprintf("XDrive %s does not exist in namespace %s", s.ws.Spec.DriveRef.Name, s.ws.Namespace))
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if wait, reason, msg := driveNotReady(xd, s.ws.Name); wait {
		s.setFrom(v1alpha1.ConditionLaunched, metav1.ConditionFalse, reason, msg)
		return ctrl.Result{}, nil
	}
	if _, adopted, err := s.adoptByTags(ctx); err != nil || adopted {
		return ctrl.Result{RequeueAfter: 2 * time.Second}, err
	}
	creds, err := s.r.credentials(ctx, s.ws)
	if err != nil {
		return ctrl.Result{}, err
	}
	candidates, err := s.candidates(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(candidates) == 0 {
		msg := "No offering of the listed instance types is available under the price limit; retrying"
		if n := len(st.AvoidOfferings); n > 0 {
			msg = fmt.Sprintf("No usable offering: %d are avoided after interruptions or capacity errors, until %s at the latest; retrying",
				n, st.AvoidOfferings[n-1].Until.UTC().Format(time.RFC3339))
		}
		s.setFrom(v1alpha1.ConditionLaunched, metav1.ConditionFalse, v1alpha1.ReasonNoCapacity, msg)
		return ctrl.Result{RequeueAfter: Backoff(int(st.Launches), 30*time.Second, 5*time.Minute)}, nil
	}
	const triesPerReconcile = 3
	var tried []string
	for _, o := range candidates[:min(len(candidates), triesPerReconcile)] {
		inst, err := s.launchOffering(ctx, xd, creds, o)
		if cloud.Classify(err) == cloud.KindNoCapacity {
			s.avoid(o, cloud.ErrorCode(err))
			tried = append(tried, o.Key()+" ("+cloud.ErrorCode(err)+")")
			s.event(true, v1alpha1.ReasonNoCapacity, "Launch", "No capacity for %s: %s", o.Key(), cloud.ErrorCode(err))
			continue
		}
		var invalid invalidSpecError
		if errors.As(err, &invalid) {
			// Retrying cannot help until the spec changes, which requeues by itself.
			s.setFrom(v1alpha1.ConditionLaunched, metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, invalid.Error())
			s.event(true, v1alpha1.ReasonInvalidSpec, "Launch", "%v", invalid)
			return ctrl.Result{}, nil
		}
		if err != nil {
			return ctrl.Result{}, err
		}
		s.r.Instances.Remember(inst)
		s.recordInstance(inst)
		st.Launches++
		st.SpotPrice = o.Price
		st.DriveRelease = nil
		if meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionInterrupted) {
			s.set(v1alpha1.ConditionInterrupted, metav1.ConditionFalse, "Relaunched", "Relaunched as "+inst.ID)
		}
		msg := fmt.Sprintf("Launched %s (%s) in %s from %s", inst.ID, o.Key(), o.Zone, restoreText(xd))
		if o.Spot {
			msg += fmt.Sprintf(" at $%s/h, the cheapest of %d offerings", o.Price, len(candidates))
		}
		if len(tried) > 0 {
			msg += "; skipped " + strings.Join(tried, ", ")
		}
		s.set(v1alpha1.ConditionLaunched, metav1.ConditionTrue, v1alpha1.ReasonLaunching, msg)
		s.setFrom(v1alpha1.ConditionRunning, metav1.ConditionFalse, v1alpha1.ReasonInstancePending, "Instance "+inst.ID+" is starting")
		s.event(false, v1alpha1.ReasonLaunching, "Launch", "%s", msg)
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
	}
	s.setFrom(v1alpha1.ConditionLaunched, metav1.ConditionFalse, v1alpha1.ReasonNoCapacity,
		"No capacity: "+strings.Join(tried, ", ")+"; trying the next offerings")
	return ctrl.Result{RequeueAfter: time.Second}, nil
}

func restoreText(xd *v1alpha1.XDrive) string {
	if xd.Status.RestoreSnapshotID == "" {
		return "a blank drive"
	}
	return "snapshot " + xd.Status.RestoreSnapshotID
}

// driveNotReady says why the drive cannot go on a new instance yet.
func driveNotReady(xd *v1alpha1.XDrive, ws string) (bool, string, string) {
	st := xd.Status
	switch {
	case st.BoundTo != ws && st.BoundTo != "":
		return true, v1alpha1.ReasonDriveInUse, fmt.Sprintf("XDrive %s is in use by Workstation %s", xd.Name, st.BoundTo)
	case st.BoundTo == "":
		return true, v1alpha1.ReasonWaitingForDrive, fmt.Sprintf("Waiting for XDrive %s to be bound", xd.Name)
	case st.VolumeID != "" || st.PendingSnapshotID != "":
		return true, v1alpha1.ReasonWaitingForDrive, fmt.Sprintf("Waiting for XDrive %s to be archived (volume %s)", xd.Name, st.VolumeID)
	}
	c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionVolumeReady)
	if c == nil || c.Reason != v1alpha1.ReasonArchived || c.ObservedGeneration != xd.Generation || c.Status != metav1.ConditionTrue {
		return true, v1alpha1.ReasonWaitingForDrive, fmt.Sprintf("Waiting for XDrive %s to resolve its restore source", xd.Name)
	}
	return false, "", ""
}

func (s *wsScope) candidates(ctx context.Context) ([]instances.Offering, error) {
	spec := s.ws.Spec
	req := instances.PlacementRequest{
		Types: spec.InstanceTypes, Zones: spec.AvailabilityZones, SubnetIDs: spec.SubnetIDs,
		Spot: spec.CapacityType != v1alpha1.CapacityTypeOnDemand, MaxPrice: spec.MaxSpotPrice, Avoid: s.avoided,
	}
	list, err := s.r.Catalog.Candidates(ctx, req)
	if err != nil || len(list) > 0 || !req.Spot || spec.OnDemandFallback == nil || !*spec.OnDemandFallback {
		return list, err
	}
	req.Spot, req.MaxPrice = false, ""
	return s.r.Catalog.Candidates(ctx, req)
}

func (s *wsScope) launchOffering(ctx context.Context, xd *v1alpha1.XDrive, creds Credentials, o instances.Offering) (instances.Instance, error) {
	info, err := s.r.Catalog.Type(ctx, o.Type)
	if err != nil {
		return instances.Instance{}, err
	}
	image, err := s.image(ctx, info)
	if err != nil {
		return instances.Instance{}, err
	}
	userData, err := s.r.UserData(UserDataInput{Workstation: s.ws, Drive: xd, GPU: info.GPUs > 0, Credentials: creds})
	if err != nil {
		return instances.Instance{}, invalidSpecError{fmt.Errorf("rendering the instance bootstrap: %w", err)}
	}
	spec := xd.Spec
	return s.r.Launcher.Launch(ctx, instances.LaunchRequest{
		Workstation: s.key, WorkstationUID: string(s.ws.UID),
		Drive: cloud.ObjectKey(xd.Namespace, xd.Name), DriveName: xd.Name,
		Offering: o, ImageID: image, UserData: userData,
		Volume: instances.DriveVolume{
			SnapshotID: xd.Status.RestoreSnapshotID, SizeGiB: spec.SizeGiB, VolumeType: string(spec.VolumeType),
			IOPS: spec.IOPS, ThroughputMiBps: spec.ThroughputMiBps, Encrypted: spec.IsEncrypted(), KMSKeyID: spec.KMSKeyID,
		},
		SecurityGroupIDs: s.ws.Spec.SecurityGroupIDs, KeyName: s.ws.Spec.KeyName,
		InstanceProfile: s.ws.Spec.IAMInstanceProfile, MaxSpotPrice: s.ws.Spec.MaxSpotPrice,
		UserTags: s.ws.Spec.Tags, Attempt: s.ws.Status.Launches + 1,
	})
}

func (s *wsScope) image(ctx context.Context, info instances.TypeInfo) (string, error) {
	img := s.ws.Spec.Image
	switch {
	case img != nil && img.ID != "":
		return img.ID, nil
	case img != nil && img.SSMParameter != "":
		return s.r.Catalog.Image(ctx, img.SSMParameter)
	}
	params := s.r.Images.CPU
	if info.GPUs > 0 {
		params = s.r.Images.GPU
	}
	p, ok := params[info.Arch]
	if !ok {
		return "", fmt.Errorf("no default image for %s (gpu=%t); set spec.image", info.Arch, info.GPUs > 0)
	}
	return s.r.Catalog.Image(ctx, p)
}

// observe follows a running instance: state, drive, mount and containers.
func (s *wsScope) observe(ctx context.Context, inst instances.Instance) (ctrl.Result, error) {
	if inst.Type != "" {
		price := s.ws.Status.SpotPrice
		s.recordInstance(inst)
		s.ws.Status.SpotPrice = price
	}
	s.set(v1alpha1.ConditionLaunched, metav1.ConditionTrue, v1alpha1.ReasonLaunching,
		keepMessage(s.ws.Status.Conditions, v1alpha1.ConditionLaunched, "Instance "+inst.ID+" launched"))
	if inst.State != instances.StateRunning {
		s.setFrom(v1alpha1.ConditionRunning, metav1.ConditionFalse, v1alpha1.ReasonInstancePending, "Instance "+inst.ID+" is "+inst.State)
		return ctrl.Result{RequeueAfter: 3 * time.Second}, nil
	}
	s.set(v1alpha1.ConditionRunning, metav1.ConditionTrue, v1alpha1.ReasonInstanceRunning, "Instance "+inst.ID+" is running")
	if price, err := strconv.ParseFloat(s.ws.Status.SpotPrice, 64); err == nil {
		metrics.HourlyCost.WithLabelValues(s.ws.Namespace, s.ws.Name).Set(price)
	}
	xd, err := s.drive(ctx)
	if err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if xd.Status.AttachedTo != inst.ID || !meta.IsStatusConditionTrue(xd.Status.Conditions, v1alpha1.ConditionVolumeReady) {
		s.setFrom(v1alpha1.ConditionDriveAttached, metav1.ConditionFalse, v1alpha1.ReasonWaitingForDrive,
			fmt.Sprintf("Waiting for XDrive %s to attach to %s", xd.Name, inst.ID))
		return ctrl.Result{}, nil
	}
	s.set(v1alpha1.ConditionDriveAttached, metav1.ConditionTrue, v1alpha1.ReasonAttached,
		fmt.Sprintf("Volume %s is attached in %s", xd.Status.VolumeID, inst.Zone))
	return s.checkInstanceSide(ctx, inst, xd)
}

func keepMessage(conds []metav1.Condition, t, fallback string) string {
	if c := meta.FindStatusCondition(conds, t); c != nil && c.Status == metav1.ConditionTrue && c.Message != "" {
		return c.Message
	}
	return fallback
}

func (s *wsScope) checkInstanceSide(ctx context.Context, inst instances.Instance, xd *v1alpha1.XDrive) (ctrl.Result, error) {
	creds, err := s.r.credentials(ctx, s.ws)
	if err != nil {
		return ctrl.Result{}, err
	}
	checkCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	status, err := s.r.Agent.Status(checkCtx, creds.target(inst))
	if err != nil {
		s.setFrom(v1alpha1.ConditionDriveMounted, metav1.ConditionUnknown, v1alpha1.ReasonSSHUnreachable,
			fmt.Sprintf("Cannot reach %s over SSH yet: %v", inst.ID, err))
		return ctrl.Result{RequeueAfter: Backoff(1, 5*time.Second, time.Minute)}, nil
	}
	if status.Released {
		// The instance's own watcher flushed the drive on a notice the operator has not seen.
		s.interrupt(inst, NoticeInstance, time.Now())
		s.ws.Status.DriveRelease = &v1alpha1.DriveRelease{InstanceID: inst.ID, Flushed: true, Time: metav1.Now()}
		return ctrl.Result{RequeueAfter: time.Millisecond}, nil
	}
	switch {
	case status.VolumeID != "" && status.VolumeID != xd.Status.VolumeID:
		s.setFrom(v1alpha1.ConditionDriveMounted, metav1.ConditionFalse, v1alpha1.ReasonVolumeMismatch,
			fmt.Sprintf("The instance mounted %s, but the drive is %s", status.VolumeID, xd.Status.VolumeID))
		return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
	case !status.Mounted:
		s.setFrom(v1alpha1.ConditionDriveMounted, metav1.ConditionFalse, v1alpha1.ReasonNotMounted,
			fmt.Sprintf("The drive is not mounted at %s yet (bootstrap phase %q)", s.ws.Spec.MountPath, status.Phase))
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	s.set(v1alpha1.ConditionDriveMounted, metav1.ConditionTrue, v1alpha1.ReasonMounted,
		fmt.Sprintf("Volume %s is mounted at %s", xd.Status.VolumeID, s.ws.Spec.MountPath))
	if status.Phase != bootstrap.PhaseReady {
		s.set(v1alpha1.ConditionContainersRunning, metav1.ConditionFalse, v1alpha1.ReasonContainersStarting,
			fmt.Sprintf("The bootstrap is in phase %q", status.Phase))
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
	}
	var down []string
	for _, c := range s.ws.Spec.Containers {
		if state := status.Containers[c.Name]; state != "running" {
			down = append(down, fmt.Sprintf("%s (%s)", c.Name, orDefault(state, "absent")))
		}
	}
	switch {
	case len(down) > 0:
		s.set(v1alpha1.ConditionContainersRunning, metav1.ConditionFalse, v1alpha1.ReasonContainersDown, "Not running: "+strings.Join(down, ", "))
		return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
	case len(s.ws.Spec.Containers) == 0:
		s.set(v1alpha1.ConditionContainersRunning, metav1.ConditionTrue, v1alpha1.ReasonNoContainers, "No containers are declared")
	default:
		s.set(v1alpha1.ConditionContainersRunning, metav1.ConditionTrue, v1alpha1.ReasonContainersUp,
			fmt.Sprintf("%d containers are running", len(s.ws.Spec.Containers)))
	}
	return ctrl.Result{RequeueAfter: Backoff(0, s.r.Timings.IdleRequeue, s.r.Timings.IdleRequeue)}, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// teardown flushes the drive over SSH, records the release, then terminates.
func (s *wsScope) teardown(ctx context.Context, inst instances.Instance) (ctrl.Result, error) {
	st := &s.ws.Status
	if st.DriveRelease != nil && st.DriveRelease.InstanceID == inst.ID {
		if !s.snapshotStarted(ctx, inst) {
			// The drive's snapshot goes first; the XDrive's update wakes us.
			s.set(v1alpha1.ConditionRunning, metav1.ConditionFalse, v1alpha1.ReasonStopping, "Drive released; waiting for its snapshot to start")
			return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
		}
		return s.terminate(ctx, inst)
	}
	interrupted := s.interruptedNow()
	started := s.teardownStart(interrupted)
	deadline := s.r.Timings.StopTimeout
	if interrupted {
		deadline = s.r.Timings.FlushTimeout
	}
	remaining := time.Until(started.Add(deadline))
	if inst.State == instances.StateRunning && remaining > 0 {
		creds, err := s.r.credentials(ctx, s.ws)
		if err != nil {
			return ctrl.Result{}, err
		}
		callCtx, cancel := context.WithTimeout(ctx, min(remaining, 2*time.Minute))
		err = s.r.Agent.Release(callCtx, creds.target(inst))
		cancel()
		if err == nil {
			st.DriveRelease = &v1alpha1.DriveRelease{InstanceID: inst.ID, Flushed: true, Time: metav1.Now()}
			s.set(v1alpha1.ConditionDriveMounted, metav1.ConditionFalse, v1alpha1.ReasonStopping, "Containers committed; drive flushed and unmounted")
			s.set(v1alpha1.ConditionContainersRunning, metav1.ConditionFalse, v1alpha1.ReasonStopping, "Containers committed and stopped")
			s.event(false, v1alpha1.ReasonStopping, "Teardown", "Committed containers and flushed the drive on %s", inst.ID)
			// Record the release before terminating: it is what starts the snapshot.
			return ctrl.Result{RequeueAfter: releaseRecorded}, nil
		}
		if time.Until(started.Add(deadline)) > 0 {
			s.set(v1alpha1.ConditionDriveMounted, metav1.ConditionUnknown, v1alpha1.ReasonSSHUnreachable,
				fmt.Sprintf("Teardown over SSH failed, retrying until %s: %v", started.Add(deadline).UTC().Format(time.RFC3339), err))
			return ctrl.Result{RequeueAfter: Backoff(1, time.Second, 10*time.Second)}, nil
		}
	}
	msg := fmt.Sprintf("The instance could not be flushed within %s; the snapshot is crash-consistent", deadline)
	s.set(v1alpha1.ConditionDriveMounted, metav1.ConditionFalse, v1alpha1.ReasonCrashConsistent, msg)
	s.event(true, v1alpha1.ReasonCrashConsistent, "Teardown", "%s (%s)", msg, inst.ID)
	if interrupted {
		// The two-minute notice leaves no time to wait: snapshot at once.
		st.DriveRelease = &v1alpha1.DriveRelease{InstanceID: inst.ID, Flushed: false, Time: metav1.Now()}
		return ctrl.Result{RequeueAfter: releaseRecorded}, nil
	}
	// A stopped instance is terminated first, so nothing writes after the snapshot.
	return s.terminate(ctx, inst)
}

// snapshotStarted reports whether the drive no longer waits on this instance for its snapshot.
func (s *wsScope) snapshotStarted(ctx context.Context, inst instances.Instance) bool {
	xd, err := s.drive(ctx)
	if err != nil {
		return true
	}
	c := meta.FindStatusCondition(xd.Status.Conditions, v1alpha1.ConditionVolumeReady)
	return xd.Status.AttachedTo != inst.ID || xd.Status.PendingSnapshotID != "" ||
		c != nil && c.Reason == v1alpha1.ReasonDeletingVolume
}

// teardownStart returns when the teardown began, kept in the Running condition.
func (s *wsScope) teardownStart(interrupted bool) time.Time {
	c := meta.FindStatusCondition(s.ws.Status.Conditions, v1alpha1.ConditionRunning)
	if c != nil && c.Reason == v1alpha1.ReasonStopping {
		return c.LastTransitionTime.Time
	}
	msg := "Stopping: committing containers and flushing the drive"
	if interrupted {
		msg = "Interrupted: committing containers and flushing the drive before the snapshot"
	}
	s.set(v1alpha1.ConditionRunning, metav1.ConditionFalse, v1alpha1.ReasonStopping, msg)
	return time.Now()
}

func (s *wsScope) terminate(ctx context.Context, inst instances.Instance) (ctrl.Result, error) {
	if inst.State != instances.StateShuttingDown {
		if err := s.r.Launcher.Terminate(ctx, inst); err != nil {
			return ctrl.Result{}, err
		}
		inst.State = instances.StateShuttingDown
		s.r.Instances.Remember(inst)
		s.event(false, v1alpha1.ReasonStopping, "Terminate", "Terminating instance %s", inst.ID)
	}
	s.set(v1alpha1.ConditionRunning, metav1.ConditionFalse, v1alpha1.ReasonStopping, "Instance "+inst.ID+" is terminating")
	return ctrl.Result{RequeueAfter: 3 * time.Second}, nil
}

// SetupWithManager registers the controller.
func (r *WorkstationReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.creds = map[types.UID]Credentials{}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Workstation{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, deletionPredicate()))).
		Watches(&v1alpha1.XDrive{}, handler.EnqueueRequestsFromMapFunc(r.workstationsOfDrive), builder.WithPredicates(statusChanged())).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.MaxConcurrent, 1)}).
		Named("workstation")
	if r.InstanceEvents != nil {
		b = b.WatchesRawSource(source.Channel(r.InstanceEvents, &handler.TypedEnqueueRequestForObject[*v1alpha1.Workstation]{}))
	}
	return b.Complete(r)
}

func (r *WorkstationReconciler) workstationsOfDrive(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1alpha1.WorkstationList
	if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{driveRefIndex: o.GetName()}); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, w := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: w.Namespace, Name: w.Name}})
	}
	return out
}

func statusChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetResourceVersion() != e.ObjectNew.GetResourceVersion()
	}}
}
