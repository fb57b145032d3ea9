// Package sim is a deterministic simulation of xdrive: the real XDrive and
// Workstation reconcilers and garbage collector, over controller-runtime's fake
// client and an in-process fake EC2 with in-between states. A seeded scheduler
// interleaves reconciles, user actions, AWS events and manager crashes, and the
// invariants I1-I5 (docs/design.md) are checked after every step.
package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/aws/smithy-go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	clienttesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/controller/common"
	"github.com/xdrive-io/xdrive/internal/controller/gc"
	"github.com/xdrive-io/xdrive/internal/controller/workstation"
	"github.com/xdrive-io/xdrive/internal/controller/xdrive"
	"github.com/xdrive-io/xdrive/internal/drives"
	"github.com/xdrive-io/xdrive/internal/instances"
	"github.com/xdrive-io/xdrive/internal/securitygroup"
	testenv "github.com/xdrive-io/xdrive/test/envtest"
	"github.com/xdrive-io/xdrive/test/fakeec2"
)

// Cluster is the ownership tag value of the simulated installation.
const Cluster = "sim"

// Namespace holds every simulated object.
const Namespace = "lab"

// Timings of the simulated operator.
var Timings = workstation.Timings{
	FlushTimeout: 60 * time.Second, StopTimeout: 2 * time.Minute, IdleRequeue: 5 * time.Minute, AvoidFor: 30 * time.Minute,
	// A minute of spec.idleStop lasts 6 s, so that most seeds reach an idle stop.
	IdleMinute: 6 * time.Second,
}

// OperatorCIDR is where the simulated operator's SSH comes from.
const OperatorCIDR = "192.0.2.0/28"

// GCGrace is the garbage collector's grace period in the simulation.
const GCGrace = 10 * time.Minute

// World is one simulated installation.
type World struct {
	Rng   *rand.Rand
	Clock *clocktesting.FakeClock
	EC2   *fakeec2.Fake
	// Client is the API server; the reconcilers read through a lagging view of it.
	Client client.Client
	Agent  *Agent
	// KeepVolumeForMinutes is the warm period of the drives created; none if 0.
	KeepVolumeForMinutes int32
	// ReattachTolerance is the reattachPriceTolerancePercent of the Workstations created.
	ReattachTolerance *int32
	// Budget is the default class's monthly budget (budget.go); nil in most seeds.
	Budget *v1alpha1.ClassBudget
	// ConflictRate is the chance that a status write fails as if another writer came first.
	ConflictRate float64
	// StaleRate is the chance that a reconciler reads an object as it was a few steps ago.
	StaleRate float64
	// StaleOldest, when set, serves every read from the oldest version remembered.
	StaleOldest bool
	// lagReads are versions served, in order, to the next reads of an object
	// (by key) before its stored one: a watch that lags, then catches up
	// within one reconcile.
	lagReads map[string][]client.Object
	// CrashInCallRate is the chance that the manager dies around a mutating
	// EC2 call: after it took effect (before the status write that records
	// it), or while it was on its way (it may or may not have reached EC2).
	CrashInCallRate float64
	// LostAnswerRate is the chance that a mutating EC2 call takes effect but
	// its answer is lost, so the operator sees an error and retries.
	LostAnswerRate float64
	// LaunchLagRate is the chance that a new instance is missing from the
	// next 1 to 3 listings, as EC2's listings lag behind a launch.
	LaunchLagRate float64
	lagRng        *rand.Rand
	// Trace records every step, to replay a failing seed.
	Trace []string

	// operatorClient is what the reconcilers use: reads may lag, status writes may conflict.
	operatorClient client.Client
	// store reads and patches status without the fake client's JSON round trips.
	store *store
	ws    *workstation.Reconciler
	// timings are the operator's (Timings, unless a seed picks others).
	timings workstation.Timings
	xd      *xdrive.Reconciler
	gc      *gc.Collector
	cache   *instances.Cache
	// history keeps recent versions of each object, for stale reads.
	history map[string][]client.Object
	// deletedDrives are drives deleted with deletionPolicy Delete: their data may go.
	deletedDrives map[string]bool
	// deletedOutside are completed snapshots someone else deleted: the data
	// they held is lost by that hand, not the operator's.
	deletedOutside map[string]bool
	// foreign are resources the operator does not own.
	foreign []string
	// created are the names ever applied, by kind ("ws", "xd").
	created map[string][]string
	step    int
	// agentCalls are the operator's SSH calls in flight, ended by the scheduler.
	agentCalls []func()
	// dying: the manager died inside the running reconcile; nothing more it
	// does reaches EC2 or the API server, and it restarts once the reconcile returns.
	dying bool
	// panics are reconciles that panicked: each fails the seed.
	panics []string
	// leaseBroken are the drive leases taken from a live holder (I9).
	leaseBroken []string
	// reconciling is the reconcile running ("ws/NAME", "xd/NAME"), if any.
	reconciling string
	// illegalPhases are phase changes missing from internal/controller/phases: each fails the seed.
	illegalPhases []string
	// halted are the Workstations (by UID) an interruption stopped under
	// interruptionPolicy Stop, with the instance interrupted.
	halted map[string]halt
	// notices are the spot notices AWS has given, by instance: it reclaims
	// each instance two minutes after its notice.
	notices map[string]spotNotice
	// seen are the objects the running reconcile read, as it read them (by key).
	seen map[string]client.Object
	// handsOff are the Workstations whose spec the user leaves alone until a step, by name.
	handsOff map[string]int
	// deferred are user actions due at a later step.
	deferred []deferred
	// broken are invariants broken inside a reconcile (ownership, status
	// against EC2): each fails the seed at the next check.
	broken []string
	// forks are the seed's forks and rollbacks (fork.go); nil in most seeds.
	forks *forks
	// regions is the seed's second region (regions.go); nil in most seeds.
	regions *regions
}

// spotNotice is a notice AWS gave an instance. One the operator could see
// only on the instance (IMDS) binds interruptionPolicy once it could know
// of it: an answer from the instance saying so, or the reclaim.
type spotNotice struct {
	instance fakeec2.InstanceView
	at       time.Time
	imdsOnly bool
}

// newInstanceLag is how many listings leave out a new instance (fakeec2.Options.NewInstanceLag).
func (w *World) newInstanceLag() int {
	if w.lagRng.Float64() >= w.LaunchLagRate {
		return 0
	}
	return 1 + w.lagRng.IntN(3)
}

// errDead is every call of a manager that has died.
var errDead = errors.New("the manager process died (simulated)")

// fault is the fault model of every mutating EC2 call (fakeec2.SetFault).
func (w *World) fault(action string, effected bool) error {
	if w.dying {
		return errDead
	}
	r := w.Rng.Float64()
	switch {
	case !effected && r < w.CrashInCallRate/2:
		w.dying = true
		w.logf("  CRASH: the manager dies while %s is on its way; it does not reach EC2", action)
		return errDead
	case effected && r < w.CrashInCallRate:
		w.dying = true
		w.logf("  CRASH: %s took effect; the manager dies before recording it", action)
		return errDead
	case effected && r < w.CrashInCallRate+w.LostAnswerRate:
		if codes := retriedAnswers[action]; len(codes) > 0 && w.Rng.IntN(2) == 0 {
			code := codes[w.Rng.IntN(len(codes))]
			w.logf("  %s took effect; its answer is lost and the SDK's retry answers %s", action, code)
			return &smithy.GenericAPIError{Code: code, Message: action + ": already done (simulated retry)", Fault: smithy.FaultClient}
		}
		w.logf("  %s took effect; its answer is lost", action)
		return &smithy.GenericAPIError{Code: "InternalError", Message: action + ": answer lost (simulated)", Fault: smithy.FaultServer}
	}
	return nil
}

// retriedAnswers are EC2's answers to a call retried after it took effect
// (the SDK retries a call whose answer timed out): what EC2 says of an
// action already done. RunInstances' retry carries the same client token and
// answers the same instance, TerminateInstances' the same state: no error.
var retriedAnswers = map[string][]string{
	"AttachVolume":                  {"VolumeInUse", "IncorrectState"},
	"CreateSecurityGroup":           {"InvalidGroup.Duplicate"},
	"AuthorizeSecurityGroupIngress": {"InvalidPermission.Duplicate"},
	"RevokeSecurityGroupIngress":    {"InvalidPermission.NotFound"},
	"DeleteSecurityGroup":           {"InvalidGroup.NotFound"},
	"DeleteVolume":                  {"InvalidVolume.NotFound"},
	"DeleteSnapshot":                {"InvalidSnapshot.NotFound"},
}

// deadWrite refuses every write of a manager that has died.
func (w *World) deadWrite() error {
	if w.dying {
		return errDead
	}
	return nil
}

// afterCall restarts a manager that died inside the call just ended.
func (w *World) afterCall() {
	if w.dying {
		w.Crash()
	}
}

// guard runs one reconcile; a panic is recorded and fails the seed.
func (w *World) guard(what string, run func()) {
	defer func() {
		if p := recover(); p != nil {
			w.panics = append(w.panics, fmt.Sprintf("%s panicked: %v\n%s", what, p, debug.Stack()))
			w.logf("PANIC in %s: %v", what, p)
			w.dying = true
		}
		w.afterCall()
	}()
	run()
}

// New builds a world from a seed.
func New(seed uint64) *World {
	w := &World{
		Rng:            rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		lagRng:         rand.New(rand.NewPCG(seed^0x5851f42d4c957f2d, seed)), // its own stream: the seeds' events stay as they were
		Clock:          clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		history:        map[string][]client.Object{},
		deletedDrives:  map[string]bool{},
		deletedOutside: map[string]bool{},
		created:        map[string][]string{},
		halted:         map[string]halt{},
		notices:        map[string]spotNotice{},
		handsOff:       map[string]int{},
		timings:        Timings,
	}
	// Half the seeds launch an image whose root volume outlives its instance.
	w.EC2 = fakeec2.New(fakeec2.Options{Cluster: Cluster, Now: w.Clock.Now, KeepRootVolumes: seed%2 == 0, NewInstanceLag: w.newInstanceLag})
	w.EC2.SetFault(w.fault)
	w.seedRegions(seed)
	w.Agent = NewAgent(w)
	scheme := testenv.NewScheme()
	// A plain object tracker: the field-managed default costs a REST mapper per patch.
	tracker := clienttesting.NewObjectTracker(scheme, serializer.NewCodecFactory(scheme).UniversalDecoder())
	base := fake.NewClientBuilder().WithScheme(scheme).WithObjectTracker(tracker).
		WithStatusSubresource(&v1alpha1.Workstation{}, &v1alpha1.XDrive{}, &v1alpha1.WorkstationClass{}).
		WithIndex(&v1alpha1.Workstation{}, common.DriveRefIndex, common.WorkstationDrive).
		WithIndex(&v1alpha1.XDrive{}, common.HolderIndex, common.DriveHolder).Build()
	w.Client = base
	w.store = &store{tracker: tracker, scheme: scheme, gvrs: map[reflect.Type]schema.GroupVersionResource{}}
	w.operatorClient = interceptor.NewClient(base, interceptor.Funcs{
		Get: w.laggingGet, SubResourcePatch: w.conflictingStatusPatch,
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if err := w.deadWrite(); err != nil {
				return err
			}
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if err := w.deadWrite(); err != nil {
				return err
			}
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if err := w.deadWrite(); err != nil {
				return err
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			if err := w.deadWrite(); err != nil {
				return err
			}
			return c.Delete(ctx, obj, opts...)
		},
	})
	w.seedForeign()
	w.seedClass()
	w.boot()
	return w
}

// seedClass adds the namespace and a default WorkstationClass that allows it.
func (w *World) seedClass() {
	if err := w.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}); err != nil {
		panic(err)
	}
	w.seedDefaultClass()
}

func (w *World) seedDefaultClass() {
	cls := &v1alpha1.WorkstationClass{
		ObjectMeta: metav1.ObjectMeta{Name: "default", Annotations: map[string]string{v1alpha1.DefaultClassAnnotation: "true"}, Generation: 1},
		Spec: v1alpha1.WorkstationClassSpec{NamespaceSelector: &metav1.LabelSelector{}, Budget: w.Budget.DeepCopy(),
			Regions: w.classRegions()},
	}
	if err := w.Client.Create(context.Background(), cls); err != nil {
		panic(err)
	}
}

// halt is an interruption under interruptionPolicy Stop.
type halt struct {
	instanceID string
	at         time.Time
	generation int64
}

// boot starts the operator: every in-memory cache starts empty, as after a crash.
func (w *World) boot() {
	w.cache = instances.NewCache(instances.CacheOptions{API: w.EC2, Cluster: Cluster, Clock: w.Clock})
	svc := drives.NewService(w.EC2, Cluster, 0, w.Clock)
	launcher := &instances.Launcher{API: w.EC2, Cluster: Cluster}
	groups := &securitygroup.Service{API: w.EC2, Cluster: Cluster}
	w.xd = &xdrive.Reconciler{Client: w.operatorClient, Volumes: svc, Snapshots: svc, Instances: w.cache, Clock: w.Clock}
	w.ws = &workstation.Reconciler{
		Client: w.operatorClient, APIReader: w.Client, Catalog: instances.NewCatalog(w.EC2, w.EC2, time.Hour),
		Launcher: launcher, Instances: w.cache, Volumes: svc, Clock: w.Clock, Timings: w.timings,
		Calls:    &agent.Calls{Agent: w.Agent, Clock: w.Clock, Spawn: func(run func()) { w.agentCalls = append(w.agentCalls, run) }},
		UserData: func(workstation.UserDataInput) ([]byte, error) { return []byte("#!/bin/sh\n"), nil },
		Images:   workstation.ImageDefaults{CPU: map[string]string{"x86_64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"}},
		Access:   workstation.Access{Groups: groups, OperatorCIDRs: []string{OperatorCIDR}},
	}
	illegal := func(kind string) func(key, from, to string) {
		return func(key, from, to string) {
			w.illegalPhases = append(w.illegalPhases, fmt.Sprintf("%s %s: %q -> %q", kind, key, from, to))
		}
	}
	w.bootRegions(svc)
	w.xd.OnIllegalPhase, w.ws.OnIllegalPhase = illegal("XDrive"), illegal("Workstation")
	w.gc = &gc.Collector{Client: w.operatorClient, Instances: w.cache, Launcher: launcher, Volumes: svc, Snapshots: svc, Groups: groups,
		Clock: w.Clock, Grace: GCGrace}
}

// seedForeign adds resources of someone else, which the operator must never touch.
func (w *World) seedForeign() {
	id, _ := w.EC2.SeedInstance("t3.large", "us-east-1a", map[string]string{"Name": "someone-else"})
	vol, _ := w.EC2.SeedVolume("us-east-1a", 8, map[string]string{cloud.TagDrive: Namespace + "/home"})
	snap := w.EC2.SeedSnapshot(8, map[string]string{cloud.TagName: "home", cloud.TagDrive: Namespace + "/home"})
	w.foreign = []string{id, vol, snap}
}

func (w *World) logf(format string, args ...any) {
	w.Trace = append(w.Trace, fmt.Sprintf("%4d %s ", w.step, w.Clock.Now().Format("15:04:05"))+fmt.Sprintf(format, args...))
}

func key(obj client.Object) string {
	return fmt.Sprintf("%T/%s", obj, obj.GetName())
}

// laggingGet serves reconcilers an older version of an object now and then, as an informer cache would.
func (w *World) laggingGet(ctx context.Context, c client.WithWatch, k client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := w.store.storeGet(ctx, c, k, obj, opts...); err != nil {
		return err
	}
	defer func() {
		if w.seen != nil {
			w.seen[key(obj)] = obj.DeepCopyObject().(client.Object)
		}
	}()
	if q := w.lagReads[key(obj)]; len(q) > 0 {
		w.lagReads[key(obj)] = q[1:]
		return c.Scheme().Convert(q[0].DeepCopyObject(), obj, nil)
	}
	past := w.history[key(obj)]
	if len(past) > 0 && w.StaleOldest {
		return c.Scheme().Convert(past[0].DeepCopyObject(), obj, nil)
	}
	if len(past) > 0 && w.Rng.Float64() < w.StaleRate {
		old := past[w.Rng.IntN(len(past))]
		return c.Scheme().Convert(old.DeepCopyObject(), obj, nil)
	}
	return nil
}

// conflictingStatusPatch loses a status write now and then, as a concurrent writer would make it.
func (w *World) conflictingStatusPatch(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	if err := w.deadWrite(); err != nil {
		return err
	}
	if w.Rng.Float64() < w.ConflictRate {
		w.logf("  status write of %s lost (conflict)", obj.GetName())
		return apierrors.NewConflict(schema.GroupResource{Group: "xdrive.io", Resource: "status"}, obj.GetName(), fmt.Errorf("simulated"))
	}
	var before *v1alpha1.XDrive
	if xd, ok := obj.(*v1alpha1.XDrive); ok {
		before = w.Drive(xd.Name)
	}
	if sub == "status" {
		if ok, err := w.store.patchStatus(obj, patch, opts); ok {
			if err == nil {
				w.leaseKept(before, obj)
				w.failureTrue(before, obj)
			}
			return err
		}
	}
	err := c.SubResource(sub).Patch(ctx, obj, patch, opts...)
	if err == nil {
		w.leaseKept(before, obj)
		w.failureTrue(before, obj)
	}
	return err
}

// leaseKept checks I9 at each write of a drive's status: its lease passes
// to another Workstation only once its holder is gone, and only the holder
// gives it back.
func (w *World) leaseKept(before *v1alpha1.XDrive, obj client.Object) {
	after, ok := obj.(*v1alpha1.XDrive)
	if !ok || before == nil || before.Status.Holder == nil {
		return
	}
	b, a := before.Status.Holder, after.Status.Holder
	if a != nil && a.UID == b.UID {
		return
	}
	if ws := w.Workstation(b.Name); ws == nil || string(ws.UID) != b.UID {
		return // the holder is gone: its lease is free
	}
	if a == nil && w.reconciling == "ws/"+b.Name {
		return // the holder gave it back
	}
	taker := "nobody"
	if a != nil {
		taker = a.Name
	}
	w.leaseBroken = append(w.leaseBroken, fmt.Sprintf("I9: the lease of XDrive %s passed from Workstation %s, which still exists, to %s (during %s)",
		after.Name, b.Name, taker, w.reconciling))
}

// remember records the current version of every object, for stale reads.
func (w *World) remember() {
	for _, obj := range w.objects() {
		k := key(obj)
		h := append(w.history[k], obj)
		if len(h) > 3 {
			h = h[len(h)-3:]
		}
		w.history[k] = h
	}
}

func (w *World) objects() []client.Object {
	var out []client.Object
	for _, ws := range w.Workstations() {
		out = append(out, &ws)
	}
	for _, xd := range w.Drives() {
		out = append(out, &xd)
	}
	return out
}

// Workstations lists the Workstations as they are.
func (w *World) Workstations() []v1alpha1.Workstation {
	var list v1alpha1.WorkstationList
	if err := w.store.list(&v1alpha1.Workstation{}, &list); err != nil {
		panic(err)
	}
	slices.SortFunc(list.Items, func(a, b v1alpha1.Workstation) int { return strings.Compare(a.Name, b.Name) })
	return list.Items
}

// Drives lists the XDrives as they are.
func (w *World) Drives() []v1alpha1.XDrive {
	var list v1alpha1.XDriveList
	if err := w.store.list(&v1alpha1.XDrive{}, &list); err != nil {
		panic(err)
	}
	slices.SortFunc(list.Items, func(a, b v1alpha1.XDrive) int { return strings.Compare(a.Name, b.Name) })
	return list.Items
}

// Workstation returns one Workstation as it is, or nil.
func (w *World) Workstation(name string) *v1alpha1.Workstation {
	ws := &v1alpha1.Workstation{}
	if _, err := w.store.get(types.NamespacedName{Namespace: Namespace, Name: name}, ws); err != nil {
		return nil
	}
	return ws
}

// Drive returns one XDrive as it is, or nil.
func (w *World) Drive(name string) *v1alpha1.XDrive {
	xd := &v1alpha1.XDrive{}
	if _, err := w.store.get(types.NamespacedName{Namespace: Namespace, Name: name}, xd); err != nil {
		return nil
	}
	return xd
}

// ReconcileWorkstation runs the Workstation reconciler once.
func (w *World) ReconcileWorkstation(name string) {
	w.guard("reconcile ws/"+name, func() {
		w.reconciling = "ws/" + name
		defer func() { w.reconciling = "" }()
		_, err := w.ws.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: Namespace, Name: name}})
		w.logf("reconcile ws/%s -> %s %v", name, w.phaseOfWS(name), errText(err))
	})
}

// ReconcileDrive runs the XDrive reconciler once.
func (w *World) ReconcileDrive(name string) {
	w.guard("reconcile xd/"+name, func() {
		w.reconciling = "xd/" + name
		w.seen = map[string]client.Object{}
		live := w.liveVolumes()
		rollbackAtRest := w.rollbackAtRest(name)
		defer func() { w.reconciling, w.seen = "", nil }()
		_, err := w.xd.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: Namespace, Name: name}})
		w.logf("reconcile xd/%s -> %s %v", name, w.phaseOfXD(name), errText(err))
		w.noDeleteUnderLaunch(name, live)
		rollbackAtRest()
	})
}

func errText(err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return ""
}

func (w *World) phaseOfWS(name string) string {
	if ws := w.Workstation(name); ws != nil {
		return fmt.Sprintf("%s %s", ws.Status.Phase, ws.Status.InstanceID)
	}
	return "gone"
}

func (w *World) phaseOfXD(name string) string {
	if xd := w.Drive(name); xd != nil {
		if w.regions != nil {
			return fmt.Sprintf("%s %s holder=%s %s", xd.Status.Phase, xd.Status.VolumeID, xd.Status.HolderName(), regionText(xd))
		}
		return fmt.Sprintf("%s %s holder=%s", xd.Status.Phase, xd.Status.VolumeID, xd.Status.HolderName())
	}
	return "gone"
}

// Poll runs the shared instance poll once.
func (w *World) Poll() {
	w.guard("poll", func() {
		err := w.cache.Poll(context.Background())
		w.logf("poll instances %v", errText(err))
		if w.regions != nil {
			err := w.regions.cache.Poll(context.Background())
			w.logf("poll instances in %s %v", WestRegion, errText(err))
		}
	})
}

// Collect runs the garbage collector once.
func (w *World) Collect() {
	w.guard("gc", func() {
		drives, named := map[string]string{}, map[string]string{}
		for _, xd := range w.Drives() {
			drives[string(xd.UID)] = xd.Name
		}
		for _, ws := range w.Workstations() {
			named[ws.Status.InstanceID] = ws.Name
			if td := ws.Status.Teardown; td != nil {
				named[td.InstanceID] = ws.Name
			}
		}
		delete(named, "")
		live, snaps := w.liveVolumes(), map[string]bool{}
		for _, sn := range w.allSnapshots() {
			snaps[sn.ID] = true
		}
		running := map[string]bool{}
		for _, i := range w.liveInstances() {
			running[i.ID] = true
		}
		rep, err := w.gc.Collect(context.Background())
		w.logf("gc %+v %v", rep, errText(err))
		if w.regions != nil {
			rep, err := w.regions.gc.Collect(context.Background())
			w.logf("gc %s %+v %v", WestRegion, rep, errText(err))
		}
		w.collectorOwnsOnlyOrphans(drives, live, snaps)
		for _, i := range w.allInstances() {
			if name, ok := named[i.ID]; ok && running[i.ID] && i.State != fakeec2.StatePending && i.State != fakeec2.StateRunning {
				w.broken = append(w.broken, fmt.Sprintf("ownership: the collector ended instance %s, which Workstation %s names (its instances are its own)", i.ID, name))
			}
		}
	})
}

// Crash restarts the operator: every in-memory cache is lost.
func (w *World) Crash() {
	w.dying = false
	w.logf("CRASH: the manager restarts")
	// An SSH command in flight may or may not have reached the instance.
	for _, run := range w.agentCalls {
		if w.Rng.IntN(2) == 0 {
			run()
		}
	}
	w.agentCalls = nil
	// A new process's informers start from a consistent list: nothing it
	// reads is older than what was stored when it started.
	w.history = map[string][]client.Object{}
	w.boot()
}

// RunAgentCall ends one of the agent calls in flight, chosen at random.
func (w *World) RunAgentCall() {
	if len(w.agentCalls) == 0 {
		return
	}
	i := w.Rng.IntN(len(w.agentCalls))
	run := w.agentCalls[i]
	w.agentCalls = append(w.agentCalls[:i], w.agentCalls[i+1:]...)
	w.logf("agent call ends")
	run()
}

// runAgentCalls ends every agent call in flight.
func (w *World) runAgentCalls() {
	for len(w.agentCalls) > 0 {
		w.RunAgentCall()
	}
}

// Advance moves the clock.
func (w *World) Advance(d time.Duration) {
	w.Clock.Step(d)
	w.logf("clock +%s", d)
	w.reclaim()
}

// spotNotice gives an instance AWS's two minutes' notice; a spot instance is
// reclaimed at their end.
func (w *World) spotNotice(i fakeec2.InstanceView, imdsOnly bool) {
	if _, given := w.notices[i.ID]; !given && i.Spot {
		w.notices[i.ID] = spotNotice{instance: i, at: w.Clock.Now(), imdsOnly: imdsOnly}
	}
	if !imdsOnly {
		w.interrupted(i)
	}
}

// noticeSeen is the operator hearing from an instance that its watcher acted on a notice.
func (w *World) noticeSeen(id string) {
	if n, ok := w.notices[id]; ok && n.imdsOnly {
		w.interrupted(n.instance)
		n.imdsOnly = false
		w.notices[id] = n
	}
}

// reclaim ends each instance whose notice is two minutes old, as AWS does.
func (w *World) reclaim() {
	for id, n := range w.notices {
		if w.Clock.Since(n.at) < 2*time.Minute {
			continue
		}
		delete(w.notices, id)
		if w.fakeOf(id).TerminateOutside(id) == nil {
			w.logf("aws: spot instance %s reclaimed, two minutes after its notice", id)
			w.interrupted(n.instance)
		}
	}
}

// CreateDrive applies an XDrive.
func (w *World) CreateDrive(name string, policy v1alpha1.DeletionPolicy) {
	xd := &v1alpha1.XDrive{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name, UID: w.uid()},
		Spec: v1alpha1.XDriveSpec{SizeGiB: 10, VolumeType: v1alpha1.VolumeTypeGP3, Filesystem: v1alpha1.FilesystemExt4,
			DeletionPolicy: policy, SnapshotRetention: 2},
	}
	xd.Spec.KeepVolumeForMinutes = w.KeepVolumeForMinutes
	w.create(xd)
}

// CreateWorkstation applies a Workstation.
func (w *World) CreateWorkstation(name, drive string, capacity v1alpha1.CapacityType, policy v1alpha1.InterruptionPolicy) {
	ws := &v1alpha1.Workstation{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name, UID: w.uid()},
		Spec: v1alpha1.WorkstationSpec{
			DriveRef: v1alpha1.DriveReference{Name: drive}, InstanceTypes: []string{"t3.large", "m5.large"},
			CapacityType: capacity, State: v1alpha1.WorkstationStateRunning, MountPath: "/v1",
			InterruptionPolicy: policy, RebalancePolicy: v1alpha1.RebalancePolicyIgnore,
		},
	}
	ws.Spec.ReattachPriceTolerancePercent = w.ReattachTolerance
	w.collectOwnedGarbage()
	w.create(ws)
}

// collectOwnedGarbage deletes the Secrets whose owners are all gone, as
// Kubernetes' garbage collector would (the fake client has none).
func (w *World) collectOwnedGarbage() {
	ctx := context.Background()
	live := map[types.UID]bool{}
	for _, ws := range w.Workstations() {
		live[ws.UID] = true
	}
	var secrets corev1.SecretList
	if err := w.Client.List(ctx, &secrets, client.InNamespace(Namespace)); err != nil {
		panic(err)
	}
	for i := range secrets.Items {
		sec := &secrets.Items[i]
		owned := len(sec.OwnerReferences) > 0
		for _, o := range sec.OwnerReferences {
			owned = owned && !live[o.UID]
		}
		if owned {
			if err := w.Client.Delete(ctx, sec); err != nil && !apierrors.IsNotFound(err) {
				panic(err)
			}
		}
	}
}

func (w *World) create(obj client.Object) {
	obj.SetCreationTimestamp(metav1.NewTime(w.Clock.Now()))
	obj.SetGeneration(1)
	if err := w.Client.Create(context.Background(), obj); err != nil {
		panic(err)
	}
	kind := "ws"
	if _, ok := obj.(*v1alpha1.XDrive); ok {
		kind = "xd"
	}
	if !slices.Contains(w.created[kind], obj.GetName()) {
		w.created[kind] = append(w.created[kind], obj.GetName())
	}
	w.logf("user: apply %T %s", obj, obj.GetName())
}

func (w *World) uid() types.UID {
	return types.UID(fmt.Sprintf("uid-%08x", w.Rng.Uint32()))
}

// UpdateWorkstation edits a Workstation's spec as a user would.
func (w *World) UpdateWorkstation(name string, what string, change func(*v1alpha1.Workstation)) bool {
	ws := w.Workstation(name)
	if ws == nil || !ws.DeletionTimestamp.IsZero() || w.step < w.handsOff[name] {
		return false
	}
	change(ws)
	ws.Generation++
	if err := w.Client.Update(context.Background(), ws); err != nil {
		panic(err)
	}
	w.logf("user: %s ws/%s", what, name)
	return true
}

// Resume sets the resume annotation to now, as `kubectl xdrive start` would; the spec is unchanged.
func (w *World) Resume(name string) {
	ws := w.Workstation(name)
	if ws == nil || !ws.DeletionTimestamp.IsZero() {
		return
	}
	if ws.Annotations == nil {
		ws.Annotations = map[string]string{}
	}
	ws.Annotations[v1alpha1.ResumeAnnotation] = w.Clock.Now().UTC().Format(time.RFC3339)
	if err := w.Client.Update(context.Background(), ws); err != nil {
		panic(err)
	}
	w.logf("user: resume ws/%s", name)
}

// SetState stops or starts a Workstation.
func (w *World) SetState(name string, state v1alpha1.WorkstationState) bool {
	return w.UpdateWorkstation(name, "set state "+string(state), func(ws *v1alpha1.Workstation) { ws.Spec.State = state })
}

// Delete deletes an object as a user would; finalizers hold it until the operator lets go.
func (w *World) Delete(obj client.Object) {
	if xd, ok := obj.(*v1alpha1.XDrive); ok && xd.Spec.DeletionPolicy == v1alpha1.DeletionPolicyDelete {
		w.deletedDrives[string(xd.UID)] = true
	}
	if err := w.Client.Delete(context.Background(), obj); err != nil && !apierrors.IsNotFound(err) {
		panic(err)
	}
	w.logf("user: delete %T %s", obj, obj.GetName())
}

// Notice records an interruption notice as the SQS handler would.
func (w *World) Notice(name string, kind v1alpha1.NoticeKind, instanceID string, at time.Time) {
	w.notice(name, kind, instanceID, "", at)
}

// noticeOf records a notice of an instance, by its tags, as the SQS handler would.
func (w *World) noticeOf(i fakeec2.InstanceView, kind v1alpha1.NoticeKind, at time.Time) {
	w.notice(workstationName(i), kind, i.ID, i.Tags[cloud.TagOwnerUID], at)
}

func (w *World) notice(name string, kind v1alpha1.NoticeKind, instanceID, ownerUID string, at time.Time) {
	ws := w.Workstation(name)
	if ws == nil {
		return
	}
	if !workstation.RecordNotice(ws, kind, instanceID, ownerUID, at) {
		w.logf("aws: %s notice for %s (ws/%s) not recorded by the handler", kind, instanceID, name)
		return
	}
	if ws.Annotations == nil {
		ws.Annotations = map[string]string{}
	}
	ws.Annotations[workstation.NoticeAnnotation(kind)] = workstation.FormatNotice(instanceID, at)
	if err := w.Client.Update(context.Background(), ws); err != nil {
		panic(err)
	}
	w.logf("aws: %s notice for %s (ws/%s)", kind, instanceID, name)
}
