package workstation

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/controller/handoff"
	"github.com/xdrive-io/xdrive/internal/drives"
	"github.com/xdrive-io/xdrive/internal/instances"
)

// classParams are the launch parameters a class resolved to: the class's,
// or the Workstation's own where the class allows overrides.
type classParams struct {
	class            *v1alpha1.WorkstationClass
	subnetIDs        []string
	securityGroupIDs []string
	profile          string
	keyName          string
	maxSpotPrice     string
	maxOnDemandPrice string
	onDemandPrices   map[string]string
	image            *v1alpha1.ImageSource // the Workstation's own, if allowed
	tags             map[string]string
	// regions are where the Workstation may run, each with its network and
	// images; one, the operator's region with the fields above, when the class lists none.
	regions []regionParams
	// moveHorizonHours is how many hours a move of the drive must pay back.
	moveHorizonHours int32
}

// regionParams are a class's network and images in one region.
type regionParams struct {
	name             string
	subnetIDs        []string
	securityGroupIDs []string
	image            *v1alpha1.ImagePolicy
}

// defaultMoveHorizonHours is driveMoveHorizonHours' default.
const defaultMoveHorizonHours = 8

// region returns the class's parameters in a region.
func (p *classParams) region(name string) (regionParams, bool) {
	i := slices.IndexFunc(p.regions, func(r regionParams) bool { return r.name == name })
	if i < 0 {
		return regionParams{}, false
	}
	return p.regions[i], true
}

// refusal is why a class refuses a Workstation.
type refusal struct{ reason, message string }

// admit resolves the Workstation's class and sets ClassAllowed. A refused
// Workstation that would launch stays Pending, with nothing launched; a
// running instance is left alone (the class is checked before each launch).
func (s admissionStep) admit(ctx context.Context) (blocked bool, err error) {
	ref, err := s.resolveClass(ctx)
	if err != nil {
		return false, err
	}
	schedRef, err := s.schedule().decideSchedule(ctx)
	if err != nil {
		return false, err
	}
	ref = cmp.Or(ref, schedRef)
	s.reportClassAllowed(ref)
	if ref == nil {
		return false, nil
	}
	s.refused = ref
	launching := s.st.Phase == v1alpha1.WorkstationPhaseLaunching
	if !launching && (!s.wants() || (s.st.Phase != v1alpha1.WorkstationPhasePending && s.st.Phase != v1alpha1.WorkstationPhaseStopped)) {
		return false, nil
	}
	if launching {
		// RunInstances may have taken effect with its answer lost: confirmLaunch looks for its instance.
		s.event(true, ref.reason, "Launch", "Launch %d dropped: %s", s.st.Launch.Attempt, ref.message)
	}
	s.launch().dropUnconfirmedLaunch()
	s.setPhase(v1alpha1.WorkstationPhasePending)
	s.waitFor(ref.reason, "%s", ref.message)
	return true, nil
}

// resolveClass finds the class and checks the Workstation, its namespace and
// its drive against it. It sets s.class when the class exists.
func (s admissionStep) resolveClass(ctx context.Context) (*refusal, error) {
	cls, ref, err := s.findClass(ctx)
	if err != nil || ref != nil {
		s.st.Class = nil
		return ref, err
	}
	p := s.params(cls)
	s.class = p
	resolved := &v1alpha1.ResolvedClass{Name: cls.Name, SubnetIDs: p.subnetIDs, SecurityGroupIDs: p.securityGroupIDs, IAMInstanceProfile: p.profile,
		SSHUser: cls.Spec.SSHUser}
	if s.st.Class != nil && s.st.Class.Name == cls.Name {
		resolved.ImageID = s.st.Class.ImageID
	}
	s.st.Class = resolved
	xd, err := s.drive(ctx)
	if err != nil {
		return nil, err
	}
	if xd != nil {
		// Whether or not the class admits the Workstation now, its bounds hold for the drive's next release.
		if err := s.lease().recordBounds(ctx, xd); err != nil {
			return nil, err
		}
	}

	ns := &corev1.Namespace{}
	if err := s.r.Get(ctx, types.NamespacedName{Name: s.ws.Namespace}, ns); err != nil {
		return nil, fmt.Errorf("read namespace %s of Workstation %s: %w", s.ws.Namespace, s.key, err)
	}
	if cls.Spec.NamespaceSelector == nil {
		return &refusal{v1alpha1.ReasonNamespaceNotAllowed, fmt.Sprintf("WorkstationClass %s has no namespaceSelector: it selects no namespace", cls.Name)}, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(cls.Spec.NamespaceSelector)
	if err != nil {
		return &refusal{v1alpha1.ReasonNamespaceNotAllowed, fmt.Sprintf("WorkstationClass %s has an invalid namespaceSelector: %v", cls.Name, err)}, nil
	}
	if !sel.Matches(labels.Set(ns.Labels)) {
		return &refusal{v1alpha1.ReasonNamespaceNotAllowed, fmt.Sprintf(
			"WorkstationClass %s does not allow namespace %s (its namespaceSelector does not select it)", cls.Name, s.ws.Namespace)}, nil
	}
	problems := violations(s.ws.Spec, cls.Spec, s.r.Region)
	if xd != nil {
		problems = append(problems, driveViolations(xd, cls.Spec)...)
		ref, err := s.checkRestore(ctx, xd, cls)
		if err != nil || ref != nil {
			return ref, err
		}
	}
	if len(problems) > 0 {
		return &refusal{v1alpha1.ReasonClassViolation, fmt.Sprintf("WorkstationClass %s refuses this Workstation: %s", cls.Name, strings.Join(problems, "; "))}, nil
	}
	return nil, nil
}

// findClass returns the named class, else the default one.
func (s admissionStep) findClass(ctx context.Context) (*v1alpha1.WorkstationClass, *refusal, error) {
	if name := s.ws.Spec.ClassName; name != "" {
		cls := &v1alpha1.WorkstationClass{}
		err := s.r.Get(ctx, types.NamespacedName{Name: name}, cls)
		if apierrors.IsNotFound(err) {
			return nil, &refusal{v1alpha1.ReasonClassNotFound, fmt.Sprintf("WorkstationClass %s does not exist", name)}, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read WorkstationClass %s of Workstation %s: %w", name, s.key, err)
		}
		return cls, nil, nil
	}
	var list v1alpha1.WorkstationClassList
	if err := s.r.List(ctx, &list); err != nil {
		return nil, nil, fmt.Errorf("list the WorkstationClasses for Workstation %s: %w", s.key, err)
	}
	var defaults []string
	var found *v1alpha1.WorkstationClass
	for i := range list.Items {
		if IsDefaultClass(&list.Items[i]) {
			defaults = append(defaults, list.Items[i].Name)
			found = &list.Items[i]
		}
	}
	switch len(defaults) {
	case 0:
		return nil, &refusal{v1alpha1.ReasonNoDefaultClass, fmt.Sprintf(
			"spec.className is not set and no WorkstationClass is annotated %s: \"true\"; set spec.className, or ask an admin for a default class",
			v1alpha1.DefaultClassAnnotation)}, nil
	case 1:
		return found, nil, nil
	}
	slices.Sort(defaults)
	return nil, &refusal{v1alpha1.ReasonNoDefaultClass, fmt.Sprintf(
		"spec.className is not set and %d WorkstationClasses are marked default (%s); set spec.className, or ask an admin to keep one default",
		len(defaults), strings.Join(defaults, ", "))}, nil
}

// IsDefaultClass reports whether the class is annotated as the default.
func IsDefaultClass(c *v1alpha1.WorkstationClass) bool {
	return c.Annotations[v1alpha1.DefaultClassAnnotation] == "true"
}

// checkRestore looks at the snapshot the drive is about to be restored from,
// right before a launch: never another drive's, and untagged only if allowed.
func (s admissionStep) checkRestore(ctx context.Context, xd *v1alpha1.XDrive, cls *v1alpha1.WorkstationClass) (*refusal, error) {
	id := handoff.RestoreSnapshot(xd)
	// A free drive is checked too: the launch may take its lease and launch in the same reconcile.
	if holder := handoff.HolderUID(xd); id == "" || !s.wants() || holder != "" && holder != string(s.ws.UID) || !handoff.Archived(xd) {
		return nil, nil
	}
	svc, err := s.services(handoff.Region(xd, s.r.Region))
	if err != nil {
		return nil, err
	}
	sn, found, err := svc.Volumes.Snapshot(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("describe snapshot %s, the restore of XDrive %s, for Workstation %s: %w", id, xd.Name, s.key, err)
	}
	if !found {
		return nil, nil // a missing snapshot is the launch's to handle
	}
	srcNS, err := s.forkedFrom(ctx, xd, sn)
	if err != nil {
		return nil, err
	}
	if srcNS != "" && srcNS != xd.Namespace {
		ns := &corev1.Namespace{}
		if err := s.r.Get(ctx, types.NamespacedName{Name: srcNS}, ns); client.IgnoreNotFound(err) != nil {
			return nil, fmt.Errorf("read namespace %s, of the fork source of XDrive %s, for Workstation %s: %w", srcNS, xd.Name, s.key, err)
		}
		if ref := forkRefusal(cls, xd.Name, id, srcNS, ns.Labels); ref != nil {
			return ref, nil
		}
	}
	switch {
	case svc.Volumes.Foreign(sn, cloud.ObjectKey(xd.Namespace, xd.Name), string(xd.UID)) && srcNS == "":
		return &refusal{v1alpha1.ReasonForeignSnapshot, fmt.Sprintf(
			"XDrive %s would be restored from snapshot %s, which belongs to another drive; a drive restores only its own snapshots", xd.Name, id)}, nil
	case sn.Untagged() && !cls.Spec.UntaggedSnapshotsAllowed():
		return &refusal{v1alpha1.ReasonClassViolation, fmt.Sprintf(
			"WorkstationClass %s refuses this Workstation: XDrive %s would be restored from snapshot %s, which has no xdrive.io tags, and the class sets allowUntaggedSnapshots: false",
			cls.Name, xd.Name, id)}, nil
	}
	return nil, nil
}

// forkedFrom returns the namespace of the drive's fork source
// (spec.source.xdrive) if the snapshot is one of that drive's: a fork's
// first restore. Empty: the snapshot is not its fork source's.
func (s admissionStep) forkedFrom(ctx context.Context, xd *v1alpha1.XDrive, sn drives.Snapshot) (string, error) {
	if xd.Spec.Source == nil || xd.Spec.Source.XDrive == nil {
		return "", nil
	}
	fork := xd.Spec.Source.XDrive
	var src v1alpha1.XDrive
	if err := s.r.Get(ctx, client.ObjectKey{Namespace: fork.NamespaceOf(xd.Namespace), Name: fork.Name}, &src); err != nil {
		if apierrors.IsNotFound(err) {
			return "", nil
		}
		return "", fmt.Errorf("read XDrive %s/%s, the fork source of XDrive %s: %w", fork.NamespaceOf(xd.Namespace), fork.Name, xd.Name, err)
	}
	if s.r.Volumes.Foreign(sn, cloud.ObjectKey(src.Namespace, src.Name), string(src.UID)) {
		return "", nil
	}
	return src.Namespace, nil
}

// forkRefusal says why the class refuses to restore XDrive name from
// snapshot id of its fork source in another namespace, srcNS with labels
// srcLabels; nil if its allowForkFrom selects that namespace.
func forkRefusal(cls *v1alpha1.WorkstationClass, name, id, srcNS string, srcLabels map[string]string) *refusal {
	refused := func(why string) *refusal {
		return &refusal{v1alpha1.ReasonForkNotAllowed, fmt.Sprintf(
			"WorkstationClass %s refuses this Workstation: XDrive %s forks a drive of namespace %s and would be restored from its snapshot %s, and %s",
			cls.Name, name, srcNS, id, why)}
	}
	policy := cls.Spec.AllowForkFrom
	if policy == nil || policy.NamespaceSelector == nil {
		return refused("the class has no allowForkFrom: it allows no fork across namespaces")
	}
	sel, err := metav1.LabelSelectorAsSelector(policy.NamespaceSelector)
	if err != nil {
		return refused(fmt.Sprintf("the class's allowForkFrom.namespaceSelector is invalid: %v", err))
	}
	if !sel.Matches(labels.Set(srcLabels)) {
		return refused("the class's allowForkFrom.namespaceSelector does not select that namespace")
	}
	return nil
}

// violations lists what the spec asks that the class does not allow; region prices on-demand types.
func violations(spec v1alpha1.WorkstationSpec, c v1alpha1.WorkstationClassSpec, region string) []string {
	var out []string
	if !c.OverridesAllowed() {
		var set []string
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"subnetIDs", len(spec.SubnetIDs) > 0}, {"securityGroupIDs", len(spec.SecurityGroupIDs) > 0},
			{"iamInstanceProfile", spec.IAMInstanceProfile != ""}, {"keyName", spec.KeyName != ""}, {"image", spec.Image != nil},
		} {
			if f.set {
				set = append(set, f.name)
			}
		}
		if len(set) > 0 {
			out = append(out, fmt.Sprintf("it sets %s, which the class does not let Workstations override (allowWorkstationOverrides)", strings.Join(set, ", ")))
		}
	}
	if len(c.InstanceTypes) > 0 {
		var bad []string
		for _, t := range spec.InstanceTypes {
			if !TypeAllowed(c.InstanceTypes, t) {
				bad = append(bad, t)
			}
		}
		if len(bad) > 0 {
			out = append(out, fmt.Sprintf("instance types %s are not among the allowed %s", strings.Join(bad, ", "), strings.Join(c.InstanceTypes, ", ")))
		}
	}
	if len(c.CapacityTypes) > 0 {
		capacity := spec.CapacityType
		if capacity == "" {
			capacity = v1alpha1.CapacityTypeSpot
		}
		if !slices.Contains(c.CapacityTypes, capacity) {
			out = append(out, fmt.Sprintf("capacityType %s is not allowed", capacity))
		}
		if spec.OnDemandFallback != nil && *spec.OnDemandFallback && !slices.Contains(c.CapacityTypes, v1alpha1.CapacityTypeOnDemand) {
			out = append(out, "onDemandFallback needs capacity type OnDemand, which is not allowed")
		}
	}
	if c.MaxSpotPricePerHour != "" && spec.MaxSpotPrice != "" && instances.PriceAbove(spec.MaxSpotPrice, c.MaxSpotPricePerHour) {
		out = append(out, fmt.Sprintf("maxSpotPrice %s is above the class's maxSpotPricePerHour %s", spec.MaxSpotPrice, c.MaxSpotPricePerHour))
	}
	if spec.CapacityType == v1alpha1.CapacityTypeOnDemand && c.MaxOnDemandPricePerHour != "" {
		out = append(out, overOnDemandCap(spec.InstanceTypes, c, region)...)
	}
	if spec.ContainersReachInstanceMetadata != nil && *spec.ContainersReachInstanceMetadata && !c.ContainersReachInstanceMetadataAllowed() {
		out = append(out, "containersReachInstanceMetadata is true, and the class sets allowContainersReachInstanceMetadata: false")
	}
	out = append(out, idleViolations(spec, c)...)
	out = append(out, regionViolations(spec, c, region)...)
	return append(out, accessViolations(spec, c)...)
}

// driveViolations lists what the drive asks beyond the class: its size, and what it costs.
func driveViolations(xd *v1alpha1.XDrive, c v1alpha1.WorkstationClassSpec) []string {
	d := xd.Spec
	var out []string
	over := func(what string, got int32, field string, limit int32) {
		out = append(out, fmt.Sprintf("XDrive %s sets %s %d, more than the class's %s %d", xd.Name, what, got, field, limit))
	}
	if limit := c.MaxDriveSizeGiB; limit > 0 && d.SizeGiB > limit {
		out = append(out, fmt.Sprintf("XDrive %s is %d GiB, more than the class's maxDriveSizeGiB %d", xd.Name, d.SizeGiB, limit))
	}
	if vt := cmp.Or(d.VolumeType, v1alpha1.VolumeTypeGP3); len(c.AllowedVolumeTypes) > 0 && !slices.Contains(c.AllowedVolumeTypes, vt) {
		out = append(out, fmt.Sprintf("XDrive %s has volumeType %s, not among the class's allowedVolumeTypes %v", xd.Name, vt, c.AllowedVolumeTypes))
	}
	if limit := c.MaxDriveIOPS; limit > 0 && d.IOPS > limit {
		over("iops", d.IOPS, "maxDriveIOPS", limit)
	}
	if limit := c.MaxDriveThroughputMiBps; limit > 0 && d.ThroughputMiBps > limit {
		over("throughputMiBps", d.ThroughputMiBps, "maxDriveThroughputMiBps", limit)
	}
	if limit := c.MaxKeepVolumeForMinutes; limit != nil && d.KeepVolumeForMinutes > *limit {
		over("keepVolumeForMinutes", d.KeepVolumeForMinutes, "maxKeepVolumeForMinutes", *limit)
	}
	if limit := c.MaxInitializationRateMiBps; limit != nil && d.InitializationRateMiBps > *limit {
		over("initializationRateMiBps", d.InitializationRateMiBps, "maxInitializationRateMiBps", *limit)
	}
	if limit := c.MaxSnapshotRetention; limit > 0 && (d.SnapshotRetention == 0 || d.SnapshotRetention > limit) {
		if d.SnapshotRetention == 0 {
			out = append(out, fmt.Sprintf("XDrive %s keeps every snapshot (no snapshotRetention); the class's maxSnapshotRetention is %d", xd.Name, limit))
		} else {
			over("snapshotRetention", d.SnapshotRetention, "maxSnapshotRetention", limit)
		}
	}
	return out
}

// overOnDemandCap lists the types whose on-demand price is above the class's
// cap, or unknown. A spot Workstation's on-demand fallback is capped at placement instead.
func overOnDemandCap(types []string, c v1alpha1.WorkstationClassSpec, region string) []string {
	var above, unknown []string
	for _, t := range types {
		p, ok := instances.OnDemandPrice(region, t, priceTable(c.OnDemandPrices))
		switch {
		case !ok:
			unknown = append(unknown, t)
		case instances.PriceAbove(p, c.MaxOnDemandPricePerHour):
			above = append(above, fmt.Sprintf("%s ($%s/h)", t, p))
		}
	}
	var out []string
	if len(above) > 0 {
		out = append(out, fmt.Sprintf("on demand, %s cost more than the class's maxOnDemandPricePerHour %s",
			strings.Join(above, ", "), c.MaxOnDemandPricePerHour))
	}
	if len(unknown) > 0 {
		out = append(out, fmt.Sprintf("the on-demand price of %s in %s is unknown, so the class's maxOnDemandPricePerHour cannot admit it; an admin can add it to the class's onDemandPrices",
			strings.Join(unknown, ", "), region))
	}
	return out
}

// priceTable maps the class's on-demand prices by instance type.
func priceTable(prices []v1alpha1.InstanceTypePrice) map[string]string {
	out := make(map[string]string, len(prices))
	for _, p := range prices {
		out[p.InstanceType] = p.PricePerHour
	}
	return out
}

// TypeAllowed reports whether an instance type matches one of the class's names or patterns.
func TypeAllowed(allowed []string, t string) bool {
	for _, a := range allowed {
		if ok, err := path.Match(a, t); err == nil && ok {
			return true
		}
	}
	return false
}

// params merges the class and, where it allows, the Workstation's own fields.
func (s admissionStep) params(cls *v1alpha1.WorkstationClass) *classParams {
	spec, c := s.ws.Spec, cls.Spec
	p := &classParams{class: cls, subnetIDs: c.SubnetIDs, securityGroupIDs: c.SecurityGroupIDs,
		profile: c.IAMInstanceProfile, keyName: c.KeyName, maxSpotPrice: orDefault(spec.MaxSpotPrice, c.MaxSpotPricePerHour),
		maxOnDemandPrice: c.MaxOnDemandPricePerHour, onDemandPrices: priceTable(c.OnDemandPrices)}
	if c.OverridesAllowed() {
		p.subnetIDs = orList(spec.SubnetIDs, p.subnetIDs)
		p.securityGroupIDs = orList(spec.SecurityGroupIDs, p.securityGroupIDs)
		p.profile = orDefault(spec.IAMInstanceProfile, p.profile)
		p.keyName = orDefault(spec.KeyName, p.keyName)
		p.image = spec.Image
	}
	p.moveHorizonHours = cmp.Or(c.DriveMoveHorizonHours, defaultMoveHorizonHours)
	if len(c.Regions) == 0 {
		p.regions = []regionParams{{name: s.r.Region, subnetIDs: p.subnetIDs, securityGroupIDs: p.securityGroupIDs, image: c.Image}}
	}
	for _, r := range c.Regions {
		if len(spec.Regions) > 0 && !slices.Contains(spec.Regions, r.Name) {
			continue
		}
		rp := regionParams{name: r.Name, subnetIDs: r.SubnetIDs, securityGroupIDs: r.SecurityGroupIDs, image: cmp.Or(r.Image, c.Image)}
		if c.OverridesAllowed() && len(spec.Regions) == 1 {
			rp.subnetIDs = orList(spec.SubnetIDs, rp.subnetIDs)
			rp.securityGroupIDs = orList(spec.SecurityGroupIDs, rp.securityGroupIDs)
		}
		p.regions = append(p.regions, rp)
	}
	if len(spec.Tags)+len(c.Tags) > 0 {
		p.tags = maps.Clone(spec.Tags)
		if p.tags == nil {
			p.tags = map[string]string{}
		}
		maps.Copy(p.tags, c.Tags)
	}
	return p
}

func orList(a, b []string) []string {
	if len(a) > 0 {
		return a
	}
	return b
}

// imageSource is the image the class (in the region) or the Workstation
// names for a type; nil means the operator's default.
func (p *classParams) imageSource(info instances.TypeInfo, region regionParams) *v1alpha1.ImageSource {
	if p.image != nil {
		return p.image
	}
	if img := region.image; img != nil {
		if info.GPUs > 0 {
			return img.GPU
		}
		return img.CPU
	}
	return nil
}

// recordImage reports the AMI of a launch in status.class.
func (s admissionStep) recordImage(id string) {
	if s.st.Class != nil {
		s.st.Class.ImageID = id
	}
}

// workstationsOfClass wakes the Workstations that name the class, and those
// that name none (the default may have changed).
func (r *Reconciler) workstationsOfClass(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1alpha1.WorkstationList
	if err := r.List(ctx, &list); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, w := range list.Items {
		if w.Spec.ClassName == o.GetName() || w.Spec.ClassName == "" {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: w.Namespace, Name: w.Name}})
		}
	}
	return out
}

// workstationsOfNamespace wakes a namespace's Workstations when its labels
// change, and those whose drive forks a drive of it (a class's allowForkFrom
// selects the source's namespace by them).
func (r *Reconciler) workstationsOfNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1alpha1.WorkstationList
	if err := r.List(ctx, &list, client.InNamespace(o.GetName())); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, w := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: w.Namespace, Name: w.Name}})
	}
	var forks v1alpha1.XDriveList
	if err := r.List(ctx, &forks); err != nil {
		return out
	}
	for i := range forks.Items {
		xd := &forks.Items[i]
		if src := xd.Spec.Source; src != nil && src.XDrive != nil && xd.Namespace != o.GetName() && src.XDrive.Namespace == o.GetName() {
			out = append(out, r.workstationsOfDrive(ctx, xd)...)
		}
	}
	return out
}

// reportClassAllowed sets ClassAllowed, its one writer: a new refusal is also an Event.
func (s admissionStep) reportClassAllowed(ref *refusal) {
	status, reason, msg := metav1.ConditionFalse, "", ""
	if ref == nil {
		status, reason, msg = metav1.ConditionTrue, v1alpha1.ReasonClassAllowed, fmt.Sprintf("WorkstationClass %s allows this Workstation", s.class.class.Name)
	} else {
		reason, msg = ref.reason, ref.message
		was := meta.FindStatusCondition(s.st.Conditions, v1alpha1.ConditionClassAllowed)
		if was == nil || was.Status != metav1.ConditionFalse || was.Message != ref.message {
			s.event(true, ref.reason, "Admit", "%s", ref.message)
		}
	}
	s.set(v1alpha1.ConditionClassAllowed, status, reason, msg)
}

// regionViolations lists the Workstation's regions the class does not
// allow (the operator's alone when it lists none), and network overrides
// that could be meant for more than one region.
func regionViolations(spec v1alpha1.WorkstationSpec, c v1alpha1.WorkstationClassSpec, home string) []string {
	allowed := []string{home}
	if len(c.Regions) > 0 {
		allowed = nil
		for _, r := range c.Regions {
			allowed = append(allowed, r.Name)
		}
	}
	var out []string
	var bad []string
	for _, r := range spec.Regions {
		if !slices.Contains(allowed, r) {
			bad = append(bad, r)
		}
	}
	if len(bad) > 0 {
		out = append(out, fmt.Sprintf("regions %s are not among the class's %s", strings.Join(bad, ", "), strings.Join(allowed, ", ")))
	}
	if len(c.Regions) > 0 && len(spec.Regions) != 1 && (len(spec.SubnetIDs) > 0 || len(spec.SecurityGroupIDs) > 0) {
		out = append(out, "subnetIDs and securityGroupIDs belong to one region: with a class that lists regions, set spec.regions to that one region")
	}
	return out
}
