package bench

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/controller/common"
	"github.com/xdrive-io/xdrive/test/harness"
)

// BenchmarkScaleFloor measures what BenchmarkScaleFake's fleet costs the API
// server with no operator at all: the benchmark itself makes the fewest
// writes any operator of these objects must make (create each Workstation
// and XDrive, put a finalizer on each, write each status once, create each
// Workstation's key Secret), 32 at a time. Its time is the floor under
// BenchmarkScaleFake's on this machine: the API server and etcd share its
// cores with everything else.
func BenchmarkScaleFloor(b *testing.B) { scaleFloor(b, floorMinimal) }

// BenchmarkScaleFloorFull is BenchmarkScaleFloor with each status write
// carrying the whole status a Ready Workstation and an attached drive end
// with (8 and 5 conditions), patched as the operator patches: what the
// size of the operator's objects costs the API server, apart from the
// number of its writes.
func BenchmarkScaleFloorFull(b *testing.B) { scaleFloor(b, floorFull) }

// BenchmarkScaleFloorRules makes, with no operator, the writes the
// operator's rules ask of each pair (docs/design.md, *Status writes*), the
// statuses whole: the 2 creates and 2 finalizers; the drive's first look at
// AWS, the lease with the launch, the volume attached; the Workstation's
// launch record before RunInstances, its instance (which the drive attaches
// to) and Ready; the key Secret and the 2 Events. The Workstations and drives are watched as the manager watches
// them. Its time and CPU are what no operator of these objects that keeps
// those rules can go under on this machine.
func BenchmarkScaleFloorRules(b *testing.B) { scaleFloor(b, floorRules) }

type floorKind int

const (
	floorMinimal floorKind = iota
	floorFull
	floorRules
)

func scaleFloor(b *testing.B, kind floorKind) {
	objects := count("XDRIVE_BENCH_OBJECTS", 1000)
	h := harness.New(b, harness.Config{Env: harness.Env(b)})
	if kind == floorRules {
		stop := watchBoth(b, h)
		defer stop()
	}
	writes := 7
	if kind == floorRules {
		writes = 13
	}
	serverCPU := serverCPUSeconds()
	began := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	errs := make(chan error, objects)
	for i := range objects / 2 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			write := minimalWrites
			if kind == floorRules {
				write = ruleWrites
			}
			if err := write(h, i, kind == floorFull); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	took := time.Since(began)
	used := serverCPUSeconds() - serverCPU
	b.ReportMetric(took.Seconds(), "floor-s")
	b.ReportMetric(used, "apiserver-etcd-cpu-s")
	b.Logf("%d objects' writes (%d per pair) took %s; the API server and etcd used %.1f s of CPU (load %.1f)",
		objects, writes, took, used, loadAverage())
}

// createPair creates pair i's drive and Workstation and puts the finalizer on each.
func createPair(ctx context.Context, h *harness.Harness, i int) (*v1alpha1.XDrive, *v1alpha1.Workstation, error) {
	drive := h.NewDrive(fmt.Sprintf("d-%04d", i), 10)
	ws := h.NewWorkstation(fmt.Sprintf("ws-%04d", i), drive.Name, []string{"t3.large"}, "us-east-1a", "us-east-1b", "us-east-1c")
	for _, o := range []client.Object{drive, ws} {
		if err := h.Client.Create(ctx, o); err != nil {
			return nil, nil, fmt.Errorf("create %s: %w", o.GetName(), err)
		}
		controllerutil.AddFinalizer(o, common.Finalizer)
		if err := h.Client.Update(ctx, o); err != nil {
			return nil, nil, fmt.Errorf("finalizer on %s: %w", o.GetName(), err)
		}
	}
	return drive, ws, nil
}

// minimalWrites makes pair i's fewest writes: 2 creates, 2 finalizers, 2
// status writes and a Secret; full writes the whole statuses (fullStatus).
func minimalWrites(h *harness.Harness, i int, full bool) error {
	ctx := context.Background()
	c := h.Client
	drive, ws, err := createPair(ctx, h, i)
	if err != nil {
		return err
	}
	if full {
		for _, o := range []client.Object{drive, ws} {
			before := o.DeepCopyObject().(client.Object)
			fullStatus(o, i, 1)
			if err := c.Status().Patch(ctx, o, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
				return fmt.Errorf("status of %s: %w", o.GetName(), err)
			}
		}
	} else {
		ready := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready", Message: "floor", LastTransitionTime: metav1.Now()}
		drive.Status.Phase = v1alpha1.XDrivePhaseAttached
		drive.Status.Conditions = []metav1.Condition{ready}
		ws.Status.Phase = v1alpha1.WorkstationPhaseRunning
		ws.Status.Conditions = []metav1.Condition{ready}
		for _, o := range []client.Object{drive, ws} {
			if err := c.Status().Update(ctx, o); err != nil {
				return fmt.Errorf("status of %s: %w", o.GetName(), err)
			}
		}
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: ws.Name + "-ssh", Namespace: ws.Namespace},
		Data: map[string][]byte{"key": make([]byte, 400)}}
	if err := c.Create(ctx, secret); err != nil {
		return fmt.Errorf("secret of %s: %w", ws.Name, err)
	}
	return nil
}

// fullStatus sets the status a Ready Workstation, or an attached drive, of
// BenchmarkScaleFake ends with (as its traces show), for pair i, with the
// given observedGeneration.
func fullStatus(o client.Object, i int, observed int64) {
	now := metav1.Now()
	cond := func(t, reason, msg string) metav1.Condition {
		return metav1.Condition{Type: t, Status: metav1.ConditionTrue, Reason: reason, Message: msg, LastTransitionTime: now, ObservedGeneration: 1}
	}
	inst, vol := fmt.Sprintf("i-%017d", 2*i), fmt.Sprintf("vol-%017d", 2*i+1)
	switch o := o.(type) {
	case *v1alpha1.XDrive:
		attached := fmt.Sprintf("Volume %s in us-east-1a is attached to %s", vol, inst)
		o.Status = v1alpha1.XDriveStatus{Phase: v1alpha1.XDrivePhaseAttached, VolumeID: vol, AttachedTo: inst, AvailabilityZone: "us-east-1a",
			SizeGiB: 10, ObservedGeneration: observed, Region: "us-east-1",
			Holder:         &v1alpha1.DriveHolder{Name: "ws-" + o.Name[2:], UID: "3d2aa0a8-1a9c-4f65-b23b-1d6b03d6ad9d", Bounds: &v1alpha1.DriveBounds{ClassName: "xdrive-test-default"}, Launch: &v1alpha1.HolderLaunch{Attempt: 1, StartTime: now}},
			Initialization: &v1alpha1.VolumeInitialization{VolumeID: vol},
			Cost:           &v1alpha1.DriveCost{AsOf: now, VolumeUSDPerHour: "0.00109589"},
			Conditions: []metav1.Condition{cond(v1alpha1.ConditionReady, "Attached", attached), cond("VolumeReady", "Attached", attached),
				cond("SnapshotsHealthy", "SnapshotsCompleted", "No snapshot has failed"), cond("Bound", "Bound", "Held by Workstation ws-"+o.Name[2:]),
				cond("Hydrated", "Initialized", fmt.Sprintf("Volume %s has nothing to load from a snapshot", vol))}}
	case *v1alpha1.Workstation:
		launched := fmt.Sprintf("Launched %s (Spot/t3.large/us-east-1a) in us-east-1a from a blank drive: Spot/t3.large/us-east-1a at $0.025000/h, the cheapest of 3 spot offerings", inst)
		o.Status = v1alpha1.WorkstationStatus{Phase: v1alpha1.WorkstationPhaseRunning, ObservedGeneration: observed, InstanceID: inst, InstanceType: "t3.large",
			AvailabilityZone: "us-east-1a", CapacityType: "Spot", PrivateIP: "10.0.0.39", PublicIP: "198.18.0.39", LaunchTime: &now, Launches: 1,
			SpotPrice: "0.025000", PricePerHour: "0.025000",
			Class:     &v1alpha1.ResolvedClass{Name: "xdrive-test-default", SSHUser: "ec2-user", ImageID: "ami-00000000000000a01"},
			Endpoints: []v1alpha1.Endpoint{{Name: "ssh", URL: "ssh://root@198.18.0.39:22"}},
			SSH:       &v1alpha1.SSHAccess{User: "root", InstanceID: inst, HostPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC+eL6necduB/o/CmYs2Tuljlr2g+bDqG00oEqD3vpQ7"},
			Conditions: []metav1.Condition{cond(v1alpha1.ConditionReady, "Ready", launched), cond("Launched", "Launching", launched),
				cond("Running", "InstanceRunning", "Instance "+inst+" is running"), cond("DriveAttached", "Attached", "Volume "+vol+" is attached in us-east-1a"),
				cond("DriveMounted", "Mounted", "Volume "+vol+" is mounted at /v1"), cond("ContainersRunning", "NoContainers", "No containers are declared"),
				cond("ClassAllowed", "ClassAllowed", "WorkstationClass xdrive-test-default allows this Workstation"),
				cond("ContainersPreserved", "Preserved", "Containers and Docker's store are kept on the drive")}}
	}
}

// ruleWrites makes pair i's writes as BenchmarkScaleFloorRules lists them,
// in the operator's order.
func ruleWrites(h *harness.Harness, i int, _ bool) error {
	ctx := context.Background()
	c := h.Client
	drive, ws, err := createPair(ctx, h, i)
	if err != nil {
		return err
	}
	written := int64(0)
	patch := func(o client.Object) error {
		before := o.DeepCopyObject().(client.Object)
		// Each write changes the stored object, as the operator's do.
		written++
		fullStatus(o, i, written)
		if err := c.Status().Patch(ctx, o, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("status of %s: %w", o.GetName(), err)
		}
		return nil
	}
	event := func(o client.Object, kind, reason, note string) error {
		ev := &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", o.GetName(), time.Now().UnixNano()), Namespace: o.GetNamespace()},
			EventTime: metav1.NowMicro(), ReportingController: "xdrive.io/workstation", ReportingInstance: "floor",
			Action: reason, Reason: reason, Note: note, Type: corev1.EventTypeNormal,
			Regarding: corev1.ObjectReference{Kind: kind, APIVersion: v1alpha1.GroupVersion.String(),
				Name: o.GetName(), Namespace: o.GetNamespace(), UID: o.GetUID(), ResourceVersion: o.GetResourceVersion()}}
		if err := c.Create(ctx, ev); err != nil {
			return fmt.Errorf("event on %s: %w", o.GetName(), err)
		}
		return nil
	}
	// The drive's first look; the lease and launch record (the drive's and
	// the Workstation's); the key; the launch's Event; the instance;
	// attached; Ready.
	steps := []func() error{
		func() error { return patch(drive) }, func() error { return patch(drive) }, func() error { return patch(ws) },
		func() error {
			return c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: ws.Name + "-ssh", Namespace: ws.Namespace},
				Data: map[string][]byte{"key": make([]byte, 400)}})
		},
		func() error { return event(ws, "Workstation", "Launched", "Launched an instance") },
		func() error { return patch(ws) }, func() error { return patch(drive) }, func() error { return event(drive, "XDrive", "Attached", "Volume attached") },
		func() error { return patch(ws) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// watchBoth watches the fleet's Workstations and drives as the manager does,
// until stopped.
func watchBoth(b *testing.B, h *harness.Harness) func() {
	env := harness.Env(b)
	watched, err := cache.New(env.Config, cache.Options{Scheme: env.Scheme, DefaultNamespaces: map[string]cache.Config{h.Namespace: {}},
		DefaultTransform: cache.TransformStripManagedFields()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	for _, o := range []client.Object{&v1alpha1.Workstation{}, &v1alpha1.XDrive{}} {
		if _, err := watched.GetInformer(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
	go func() { _ = watched.Start(ctx) }()
	watched.WaitForCacheSync(ctx)
	return cancel
}
