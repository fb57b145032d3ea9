package integration_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	testenv "github.com/xdrive-io/xdrive/test/envtest"
	"github.com/xdrive-io/xdrive/test/harness"
)

// newClass returns a class named after the test's namespace (classes are
// cluster-scoped, and tests share the API server), selecting namespaces by labels.
func newClass(h *harness.Harness, suffix string, selector map[string]string) *v1alpha1.WorkstationClass {
	c := &v1alpha1.WorkstationClass{
		ObjectMeta: metav1.ObjectMeta{Name: h.Namespace + "-" + suffix},
		Spec:       v1alpha1.WorkstationClassSpec{NamespaceSelector: &metav1.LabelSelector{MatchLabels: selector}},
	}
	h.T.Cleanup(func() { _ = h.Client.Delete(context.Background(), c) })
	return c
}

// updateClass changes a class, retried on conflicts.
func updateClass(t *testing.T, h *harness.Harness, name string, change func(*v1alpha1.WorkstationClass)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		c := &v1alpha1.WorkstationClass{}
		if err := h.Client.Get(context.Background(), types.NamespacedName{Name: name}, c); err != nil {
			return err
		}
		change(c)
		return h.Client.Update(context.Background(), c)
	})
	if err != nil {
		t.Fatalf("updating WorkstationClass %s: %v", name, err)
	}
}

// classAllowed waits for the ClassAllowed condition, at the current generation.
func classAllowed(h *harness.Harness, name string, status metav1.ConditionStatus, reason string, words ...string) func() (bool, string) {
	return func() (bool, string) {
		ws := h.Workstation(name)
		c := harness.Condition(ws.Status.Conditions, v1alpha1.ConditionClassAllowed)
		ok := c.Status == status && c.Reason == reason && c.ObservedGeneration == ws.Generation
		for _, w := range words {
			ok = ok && strings.Contains(c.Message, w)
		}
		return ok, fmt.Sprintf("ClassAllowed=%s/%s %q (generation %d of %d)", c.Status, c.Reason, c.Message, c.ObservedGeneration, ws.Generation)
	}
}

// refusedAndIdle checks that a refused Workstation is Pending, not Ready, and has no instance.
func refusedAndIdle(t *testing.T, h *harness.Harness, name, reason string) {
	t.Helper()
	ws := h.Workstation(name)
	if ws.Status.Phase != v1alpha1.WorkstationPhasePending {
		t.Errorf("refused workstation %s is %s, want Pending", name, ws.Status.Phase)
	}
	if c := harness.Condition(ws.Status.Conditions, v1alpha1.ConditionReady); c.Status != metav1.ConditionFalse || c.Reason != reason {
		t.Errorf("refused workstation %s: Ready=%s/%s, want False/%s", name, c.Status, c.Reason, reason)
	}
	if got := h.WorkstationInstances(name); len(got) != 0 {
		t.Errorf("refused workstation %s has instances %v", name, harness.InstanceIDs(got))
	}
}

// TestClassRefusesWorkstation: a Workstation outside its class's rules gets
// ClassAllowed=False and launches nothing, while one inside them launches
// with the class's settings; editing the class wakes the refused one.
func TestClassRefusesWorkstation(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	cls := newClass(h, "narrow", map[string]string{corev1.LabelMetadataName: h.Namespace})
	cls.Spec.InstanceTypes = []string{"t3.*"}
	cls.Spec.CapacityTypes = []v1alpha1.CapacityType{v1alpha1.CapacityTypeSpot}
	cls.Spec.MaxSpotPricePerHour = "0.05"
	cls.Spec.MaxDriveSizeGiB = 50
	cls.Spec.Tags = map[string]string{"cost-center": "research"}
	h.Create(cls)
	h.Start()

	ws := func(name, drive string, types []string, change func(*v1alpha1.Workstation)) *v1alpha1.Workstation {
		w := h.NewWorkstation(name, drive, types, "us-east-1a")
		w.Spec.ClassName = cls.Name
		if change != nil {
			change(w)
		}
		return w
	}
	h.Create(h.NewDrive("ok", 10), h.NewDrive("types", 10), h.NewDrive("override", 10), h.NewDrive("big", 100), h.NewDrive("price", 10))
	h.Create(
		ws("types", "types", []string{"t3.large", "m5.large"}, nil),
		ws("override", "override", []string{"t3.large"}, func(w *v1alpha1.Workstation) { w.Spec.SubnetIDs = []string{"subnet-0123456789abcdef0"} }),
		ws("big", "big", []string{"t3.large"}, nil),
		ws("price", "price", []string{"t3.large"}, func(w *v1alpha1.Workstation) { w.Spec.MaxSpotPrice = "0.5" }),
	)
	h.Eventually(converge, "types refused", classAllowed(h, "types", "False", v1alpha1.ReasonClassViolation, "m5.large", "t3.*"))
	h.Eventually(converge, "override refused", classAllowed(h, "override", "False", v1alpha1.ReasonClassViolation, "subnetIDs", "allowWorkstationOverrides"))
	h.Eventually(converge, "big drive refused", classAllowed(h, "big", "False", v1alpha1.ReasonClassViolation, "100 GiB", "maxDriveSizeGiB 50"))
	h.Eventually(converge, "price refused", classAllowed(h, "price", "False", v1alpha1.ReasonClassViolation, "maxSpotPrice 0.5"))

	// One inside the rules launches, after the refusals were reported.
	h.Create(ws("ok", "ok", []string{"t3.large"}, nil))
	h.Eventually(converge, "ok Ready", h.WorkstationReady("ok"))
	h.Eventually(converge, "ok allowed", classAllowed(h, "ok", "True", v1alpha1.ReasonClassAllowed))
	st := h.Workstation("ok").Status
	if st.Class == nil || st.Class.Name != cls.Name || !strings.HasPrefix(st.Class.ImageID, "ami-") {
		t.Fatalf("status.class = %+v, want class %s with the launch's AMI", st.Class, cls.Name)
	}
	inst, _ := h.Instance(st.InstanceID)
	if tags := tagMap(inst.Tags); tags["cost-center"] != "research" {
		t.Fatalf("instance %s tags %v, want the class's cost-center=research", st.InstanceID, tags)
	}
	for name, reason := range map[string]string{"types": v1alpha1.ReasonClassViolation, "override": v1alpha1.ReasonClassViolation,
		"big": v1alpha1.ReasonClassViolation, "price": v1alpha1.ReasonClassViolation} {
		refusedAndIdle(t, h, name, reason)
	}

	// The admin widens the class: the watch wakes the refused Workstation, which launches.
	patched := cls.DeepCopy()
	if err := h.Client.Get(context.Background(), types.NamespacedName{Name: cls.Name}, patched); err != nil {
		t.Fatal(err)
	}
	patched.Spec.InstanceTypes = append(patched.Spec.InstanceTypes, "m5.*")
	if err := h.Client.Update(context.Background(), patched); err != nil {
		t.Fatal(err)
	}
	h.Eventually(converge, "types Ready once the class allows m5.*", h.WorkstationReady("types"))
}

// TestClassBoundsIdleDriveAndMetadata: a class bounds the idle stop's
// thresholds and checkCommand, what the drive costs, and the containers'
// reach of IMDS: a Workstation beyond any is refused, with a message naming
// the bound, and launches nothing; one within them launches.
func TestClassBoundsIdleDriveAndMetadata(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	cls := newClass(h, "bounded", map[string]string{corev1.LabelMetadataName: h.Namespace})
	cls.Spec.IdleStop = &v1alpha1.ClassIdleStop{MaxAfter: &metav1.Duration{Duration: 4 * time.Hour}, MinCPULoad: "0.8",
		AllowCheckCommand: ptr.To(false)}
	cls.Spec.AllowedVolumeTypes = []v1alpha1.VolumeType{v1alpha1.VolumeTypeGP3}
	cls.Spec.MaxDriveIOPS, cls.Spec.MaxKeepVolumeForMinutes, cls.Spec.MaxSnapshotRetention = 6000, ptr.To[int32](60), 5
	cls.Spec.AllowContainersReachInstanceMetadata = ptr.To(false)
	h.Create(cls)
	h.Start()
	drive := func(name string, change func(*v1alpha1.XDrive)) *v1alpha1.XDrive {
		d := h.NewDrive(name, 10)
		d.Spec.SnapshotRetention = 3
		if change != nil {
			change(d)
		}
		return d
	}
	ws := func(name string, change func(*v1alpha1.Workstation)) *v1alpha1.Workstation {
		w := h.NewWorkstation(name, name, []string{"t3.large"}, "us-east-1a")
		w.Spec.ClassName = cls.Name
		if change != nil {
			change(w)
		}
		return w
	}
	for _, c := range []struct {
		name  string
		drive func(*v1alpha1.XDrive)
		ws    func(*v1alpha1.Workstation)
		words []string
	}{
		{"cpu", nil, func(w *v1alpha1.Workstation) { w.Spec.IdleStop = &v1alpha1.IdleStop{CPULoad: "0"} }, []string{"cpuLoad 0", "minCPULoad 0.8"}},
		{"command", nil, func(w *v1alpha1.Workstation) { w.Spec.IdleStop = &v1alpha1.IdleStop{CheckCommand: "true"} }, []string{"checkCommand", "allowCheckCommand: false"}},
		{"imds", nil, func(w *v1alpha1.Workstation) { w.Spec.ContainersReachInstanceMetadata = ptr.To(true) }, []string{"containersReachInstanceMetadata", "allowContainersReachInstanceMetadata: false"}},
		{"io2", func(d *v1alpha1.XDrive) { d.Spec.VolumeType, d.Spec.IOPS = v1alpha1.VolumeTypeIO2, 100000 }, nil, []string{"volumeType io2", "maxDriveIOPS 6000"}},
		{"kept", func(d *v1alpha1.XDrive) { d.Spec.KeepVolumeForMinutes = 10080 }, nil, []string{"keepVolumeForMinutes 10080", "maxKeepVolumeForMinutes 60"}},
		{"snapshots", func(d *v1alpha1.XDrive) { d.Spec.SnapshotRetention = 0 }, nil, []string{"keeps every snapshot", "maxSnapshotRetention is 5"}},
	} {
		h.Create(drive(c.name, c.drive), ws(c.name, c.ws))
		h.Eventually(converge, c.name+" refused", classAllowed(h, c.name, "False", v1alpha1.ReasonClassViolation, c.words...))
	}
	h.Create(drive("ok", nil), ws("ok", func(w *v1alpha1.Workstation) { w.Spec.IdleStop = &v1alpha1.IdleStop{CPULoad: "1.5"} }))
	h.Eventually(converge, "ok Ready", h.WorkstationReady("ok"))
	for _, name := range []string{"cpu", "command", "imds", "io2", "kept", "snapshots"} {
		refusedAndIdle(t, h, name, v1alpha1.ReasonClassViolation)
	}
}

// TestClassNamespaceNotSelected: a namespace the class's selector does not
// select cannot use it, until the namespace is labelled.
func TestClassNamespaceNotSelected(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	cls := newClass(h, "team-a", map[string]string{"xdrive.io/team": "a"})
	h.Create(cls)
	h.Start()
	w := h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a")
	w.Spec.ClassName = cls.Name
	h.Create(h.NewDrive("data", 10), w)
	h.Eventually(converge, "namespace refused", classAllowed(h, "box", "False", v1alpha1.ReasonNamespaceNotAllowed, h.Namespace))
	refusedAndIdle(t, h, "box", v1alpha1.ReasonNamespaceNotAllowed)
	h.Eventually(converge, "a warning Event", func() (bool, string) {
		return h.FindEvent("Workstation", "box", v1alpha1.ReasonNamespaceNotAllowed, cls.Name, h.Namespace)
	})

	ns := &corev1.Namespace{}
	if err := h.Client.Get(context.Background(), types.NamespacedName{Name: h.Namespace}, ns); err != nil {
		t.Fatal(err)
	}
	ns.Labels["xdrive.io/team"] = "a"
	if err := h.Client.Update(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	h.Eventually(converge, "Ready once the namespace is selected", h.WorkstationReady("box"))
}

// TestClassNotFound: a Workstation naming a class that does not exist is refused.
func TestClassNotFound(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.Start()
	w := h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a")
	w.Spec.ClassName = h.Namespace + "-missing"
	h.Create(h.NewDrive("data", 10), w)
	h.Eventually(converge, "class not found", classAllowed(h, "box", "False", v1alpha1.ReasonClassNotFound, w.Spec.ClassName))
	refusedAndIdle(t, h, "box", v1alpha1.ReasonClassNotFound)

	// A selector that cannot be evaluated is refused at admission (test/envtest TestWorkstationClassValidation).
	bad := newClass(h, "bad-selector", nil)
	bad.Spec.NamespaceSelector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Near", Values: []string{"a"}}}
	if err := h.Client.Create(context.Background(), bad); !apierrors.IsInvalid(err) {
		t.Fatalf("a class with selector operator Near: %v, want Invalid", err)
	}
}

// TestDefaultClass: a manifest without className gets the default class, or,
// on an API server without one, a condition saying so; creating one then
// lets it launch. It runs its own API server: the default class is cluster-wide.
func TestDefaultClass(t *testing.T) {
	testenv.RequireAssets(t)
	env := testenv.StartEnv(t)
	h := harness.New(t, harness.Config{Env: env, NoDefaultClass: true})
	h.Start()
	h.Create(h.NewDrive("data", 10), h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a"))
	h.Eventually(converge, "no default class", classAllowed(h, "box", "False", v1alpha1.ReasonNoDefaultClass, v1alpha1.DefaultClassAnnotation))
	refusedAndIdle(t, h, "box", v1alpha1.ReasonNoDefaultClass)

	if err := harness.EnsureDefaultClass(context.Background(), h.Client); err != nil {
		t.Fatal(err)
	}
	h.Eventually(converge, "Ready with the default class", h.WorkstationReady("box"))
	if c := h.Workstation("box").Status.Class; c == nil || c.Name != harness.DefaultClass {
		t.Fatalf("status.class = %+v, want the default class %s", c, harness.DefaultClass)
	}

	// A second default is ambiguous: the next launch is refused, and says why.
	second := &v1alpha1.WorkstationClass{
		ObjectMeta: metav1.ObjectMeta{Name: "second", Annotations: map[string]string{v1alpha1.DefaultClassAnnotation: "true"}},
		Spec:       v1alpha1.WorkstationClassSpec{NamespaceSelector: &metav1.LabelSelector{}, AllowWorkstationOverrides: ptr.To(true)},
	}
	h.Create(second)
	h.SetState("box", v1alpha1.WorkstationStateStopped)
	h.Eventually(converge, "stopped", h.WorkstationPhase("box", v1alpha1.WorkstationPhaseStopped))
	h.SetState("box", v1alpha1.WorkstationStateRunning)
	h.Eventually(converge, "two defaults refused", classAllowed(h, "box", "False", v1alpha1.ReasonNoDefaultClass, "second", harness.DefaultClass))
	if live := h.LiveWorkstationInstances("box"); len(live) != 0 {
		t.Fatalf("launched %v with two default classes", harness.InstanceIDs(live))
	}
}

func tagMap(tags []ec2types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// TestClassCapsOnDemandPrice: under the class's maxOnDemandPricePerHour, an
// on-demand Workstation of a dearer type is refused, and one of a cheaper
// type launches on demand with its price in status.
func TestClassCapsOnDemandPrice(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	cls := newClass(h, "capped", map[string]string{corev1.LabelMetadataName: h.Namespace})
	cls.Spec.MaxOnDemandPricePerHour = "0.10"
	cls.Spec.OnDemandPrices = []v1alpha1.InstanceTypePrice{{InstanceType: "m5.large", PricePerHour: "0.20"}} // over the list price 0.096
	h.Create(cls)
	h.Start()
	onDemand := func(name string, types ...string) *v1alpha1.Workstation {
		w := h.NewWorkstation(name, name, types, "us-east-1a")
		w.Spec.ClassName, w.Spec.CapacityType = cls.Name, v1alpha1.CapacityTypeOnDemand
		return w
	}
	h.Create(h.NewDrive("dear", 10), h.NewDrive("own-price", 10), h.NewDrive("cheap", 10))
	h.Create(onDemand("dear", "t3.large", "g5.xlarge"), onDemand("own-price", "m5.large"), onDemand("cheap", "t3.large"))
	h.Eventually(converge, "dear refused", classAllowed(h, "dear", "False", v1alpha1.ReasonClassViolation, "g5.xlarge ($1.006/h)", "maxOnDemandPricePerHour 0.10"))
	h.Eventually(converge, "own price refused", classAllowed(h, "own-price", "False", v1alpha1.ReasonClassViolation, "m5.large ($0.20/h)"))
	h.Eventually(converge, "cheap Ready", h.WorkstationReady("cheap"))
	refusedAndIdle(t, h, "dear", v1alpha1.ReasonClassViolation)
	refusedAndIdle(t, h, "own-price", v1alpha1.ReasonClassViolation)
	st := h.Workstation("cheap").Status
	if st.CapacityType != v1alpha1.CapacityTypeOnDemand || st.PricePerHour != "0.0832" || st.SpotPrice != "" {
		t.Fatalf("cheap: capacity %s, pricePerHour %q, spotPrice %q; want OnDemand at t3.large's list price 0.0832 and no spot price",
			st.CapacityType, st.PricePerHour, st.SpotPrice)
	}
	inst, _ := h.Instance(st.InstanceID)
	if inst.InstanceLifecycle != "" {
		t.Fatalf("instance %s lifecycle %q, want on demand", st.InstanceID, inst.InstanceLifecycle)
	}
}

// updateDrive changes an XDrive's spec, retried on conflicts.
func updateDrive(t *testing.T, h *harness.Harness, name string, change func(*v1alpha1.XDrive)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		xd := &v1alpha1.XDrive{}
		if err := h.Client.Get(context.Background(), types.NamespacedName{Namespace: h.Namespace, Name: name}, xd); err != nil {
			return err
		}
		change(xd)
		return h.Client.Update(context.Background(), xd)
	})
	if err != nil {
		t.Fatalf("updating XDrive %s: %v", name, err)
	}
}

// leaseBounds waits for the drive's lease to record these bounds.
func leaseBounds(h *harness.Harness, drive string, want v1alpha1.DriveBounds) func() (bool, string) {
	return func() (bool, string) {
		holder := h.Drive(drive).Status.Holder
		if holder == nil || holder.Bounds == nil {
			return false, fmt.Sprintf("holder %+v records no bounds", holder)
		}
		b := *holder.Bounds
		ok := b.ClassName == want.ClassName && b.MaxSnapshotRetention == want.MaxSnapshotRetention &&
			ptr.Equal(b.MaxKeepVolumeForMinutes, want.MaxKeepVolumeForMinutes)
		return ok, fmt.Sprintf("bounds %s keep %v retention %d", b.ClassName, ptr.Deref(b.MaxKeepVolumeForMinutes, -1), b.MaxSnapshotRetention)
	}
}

// TestClassBoundsHoldAtRelease: keepVolumeForMinutes and snapshotRetention
// edited beyond the class's bounds while the drive is attached do not
// outlast the next release. The lease records the class's bounds, follows
// the class when it narrows, and keeps them once the class is deleted; the
// stop then keeps the volume no longer than the class allows, and prunes
// the snapshots to its maximum.
func TestClassBoundsHoldAtRelease(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	cls := newClass(h, "bounds", map[string]string{corev1.LabelMetadataName: h.Namespace})
	cls.Spec.MaxKeepVolumeForMinutes, cls.Spec.MaxSnapshotRetention = ptr.To[int32](60), 5
	h.Create(cls)
	h.Start()
	xd := h.NewDrive("data", 10)
	xd.Spec.SnapshotRetention = 1
	w := h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a")
	w.Spec.ClassName = cls.Name
	h.Create(xd, w)
	h.Eventually(converge, "workstation Ready", h.WorkstationReady("box"))
	h.Eventually(converge, "the lease records the class's bounds",
		leaseBounds(h, "data", v1alpha1.DriveBounds{ClassName: cls.Name, MaxKeepVolumeForMinutes: ptr.To[int32](60), MaxSnapshotRetention: 5}))

	// A first stop and start, within the bounds: the drive has a snapshot.
	h.SetState("box", v1alpha1.WorkstationStateStopped)
	h.Eventually(converge, "workstation Stopped", h.WorkstationPhase("box", v1alpha1.WorkstationPhaseStopped))
	h.Eventually(converge, "drive Archived", h.DrivePhase("data", v1alpha1.XDrivePhaseArchived))
	first := h.Drive("data").Status.LatestSnapshotID
	h.SetState("box", v1alpha1.WorkstationStateRunning)
	h.Eventually(converge, "workstation Ready again", h.WorkstationReady("box"))

	// The admin narrows the class while the drive is attached: the lease follows.
	updateClass(t, h, cls.Name, func(c *v1alpha1.WorkstationClass) {
		c.Spec.MaxKeepVolumeForMinutes, c.Spec.MaxSnapshotRetention = ptr.To[int32](1), 1
	})
	narrow := v1alpha1.DriveBounds{ClassName: cls.Name, MaxKeepVolumeForMinutes: ptr.To[int32](1), MaxSnapshotRetention: 1}
	h.Eventually(converge, "the lease records the narrowed bounds", leaseBounds(h, "data", narrow))

	// The user asks for more than the class allows while the drive is attached:
	// the running instance is left alone, and the class refuses the spec.
	updateDrive(t, h, "data", func(d *v1alpha1.XDrive) { d.Spec.KeepVolumeForMinutes, d.Spec.SnapshotRetention = 600, 5 })
	h.Eventually(converge, "the class refuses the drive's spec",
		classAllowed(h, "box", "False", v1alpha1.ReasonClassViolation, "keepVolumeForMinutes 600", "snapshotRetention 5"))
	// A deleted class does not widen the lease's bounds.
	h.Delete(cls)
	h.Eventually(converge, "class gone", classAllowed(h, "box", "False", v1alpha1.ReasonClassNotFound, cls.Name))
	if ok, msg := leaseBounds(h, "data", narrow)(); !ok {
		t.Fatalf("after the class was deleted the lease has %s, want the last bounds", msg)
	}

	h.SetState("box", v1alpha1.WorkstationStateStopped)
	h.Eventually(converge, "drive Kept", h.DrivePhase("data", v1alpha1.XDrivePhaseKept))
	st := h.Drive("data").Status
	if st.KeptUntil == nil || time.Until(st.KeptUntil.Time) > time.Minute {
		t.Fatalf("volume %s kept until %v, want at most the class's one minute from the release", st.VolumeID, st.KeptUntil)
	}
	h.Eventually(converge, "snapshots pruned to the class's maximum", func() (bool, string) {
		got := harness.SnapshotIDs(h.DriveSnapshots("data"))
		latest := h.Drive("data").Status.LatestSnapshotID
		return len(got) == 1 && got[0] == latest && latest != first, fmt.Sprintf("snapshots %v, latest %s, first %s", got, latest, first)
	})
	for _, words := range [][]string{{"keepVolumeForMinutes 600", "maxKeepVolumeForMinutes 1"}, {"snapshotRetention 5", "maxSnapshotRetention 1", first}} {
		if ok, msg := h.FindEvent("XDrive", "data", v1alpha1.ReasonCappedByClass, words...); !ok {
			t.Fatalf("no CappedByClass Event saying %v: %s", words, msg)
		}
	}
}
