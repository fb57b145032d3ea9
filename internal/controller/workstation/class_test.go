package workstation

import (
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/instances"
)

func TestTypeAllowed(t *testing.T) {
	allowed := []string{"t3.*", "g5.xlarge", "m7i*.large"}
	for typ, want := range map[string]bool{
		"t3.large": true, "t3.2xlarge": true, "g5.xlarge": true, "m7i.large": true, "m7i-flex.large": true,
		"t3a.large": false, "g5.2xlarge": false, "m7i.xlarge": false, "xt3.large": false,
	} {
		if got := TypeAllowed(allowed, typ); got != want {
			t.Errorf("TypeAllowed(%v, %s) = %t, want %t", allowed, typ, got, want)
		}
	}
}

func TestViolations(t *testing.T) {
	base := v1alpha1.WorkstationSpec{InstanceTypes: []string{"t3.large"}, CapacityType: v1alpha1.CapacityTypeSpot}
	class := v1alpha1.WorkstationClassSpec{
		InstanceTypes: []string{"t3.*"}, CapacityTypes: []v1alpha1.CapacityType{v1alpha1.CapacityTypeSpot},
		MaxSpotPricePerHour: "0.10",
	}
	for name, tc := range map[string]struct {
		change func(*v1alpha1.WorkstationSpec, *v1alpha1.WorkstationClassSpec)
		want   string // a word of the one violation; "" for none
	}{
		"inside": {func(*v1alpha1.WorkstationSpec, *v1alpha1.WorkstationClassSpec) {}, ""},
		"type": {func(w *v1alpha1.WorkstationSpec, _ *v1alpha1.WorkstationClassSpec) {
			w.InstanceTypes = append(w.InstanceTypes, "g5.xlarge")
		}, "g5.xlarge"},
		"capacity": {func(w *v1alpha1.WorkstationSpec, _ *v1alpha1.WorkstationClassSpec) {
			w.CapacityType = v1alpha1.CapacityTypeOnDemand
		}, "capacityType OnDemand"},
		"fallback":    {func(w *v1alpha1.WorkstationSpec, _ *v1alpha1.WorkstationClassSpec) { w.OnDemandFallback = ptr.To(true) }, "onDemandFallback"},
		"price":       {func(w *v1alpha1.WorkstationSpec, _ *v1alpha1.WorkstationClassSpec) { w.MaxSpotPrice = "0.11" }, "maxSpotPrice 0.11"},
		"price equal": {func(w *v1alpha1.WorkstationSpec, _ *v1alpha1.WorkstationClassSpec) { w.MaxSpotPrice = "0.1" }, ""},
		"override":    {func(w *v1alpha1.WorkstationSpec, _ *v1alpha1.WorkstationClassSpec) { w.KeyName = "mine" }, "keyName"},
		"override allowed": {func(w *v1alpha1.WorkstationSpec, c *v1alpha1.WorkstationClassSpec) {
			w.KeyName, c.AllowWorkstationOverrides = "mine", ptr.To(true)
		}, ""},
		"region beyond the class's": {func(w *v1alpha1.WorkstationSpec, c *v1alpha1.WorkstationClassSpec) {
			w.Regions, c.Regions = []string{"eu-west-1"}, []v1alpha1.ClassRegion{{Name: "us-east-1"}, {Name: "us-west-2"}}
		}, "eu-west-1"},
		"region of the class": {func(w *v1alpha1.WorkstationSpec, c *v1alpha1.WorkstationClassSpec) {
			w.Regions, c.Regions = []string{"us-west-2"}, []v1alpha1.ClassRegion{{Name: "us-east-1"}, {Name: "us-west-2"}}
		}, ""},
		"image override": {func(w *v1alpha1.WorkstationSpec, _ *v1alpha1.WorkstationClassSpec) {
			w.Image = &v1alpha1.ImageSource{ID: "ami-0123456789abcdef0"}
		}, "image"},
		"on-demand under the cap": {func(w *v1alpha1.WorkstationSpec, c *v1alpha1.WorkstationClassSpec) {
			w.CapacityType, c.CapacityTypes, c.MaxOnDemandPricePerHour = v1alpha1.CapacityTypeOnDemand, nil, "0.0832"
		}, ""},
		"on-demand over the cap": {func(w *v1alpha1.WorkstationSpec, c *v1alpha1.WorkstationClassSpec) {
			w.CapacityType, c.CapacityTypes, c.MaxOnDemandPricePerHour = v1alpha1.CapacityTypeOnDemand, nil, "0.08"
		}, "t3.large ($0.0832/h)"},
		"on-demand, the class's own price": {func(w *v1alpha1.WorkstationSpec, c *v1alpha1.WorkstationClassSpec) {
			w.CapacityType, c.CapacityTypes, c.MaxOnDemandPricePerHour = v1alpha1.CapacityTypeOnDemand, nil, "0.08"
			c.OnDemandPrices = []v1alpha1.InstanceTypePrice{{InstanceType: "t3.large", PricePerHour: "0.07"}}
		}, ""},
		"on-demand, unknown price": {func(w *v1alpha1.WorkstationSpec, c *v1alpha1.WorkstationClassSpec) {
			w.CapacityType, c.CapacityTypes, c.MaxOnDemandPricePerHour = v1alpha1.CapacityTypeOnDemand, nil, "9"
			w.InstanceTypes = []string{"t3.nano-unlisted"}
		}, "unknown"},
		"spot with a fallback is capped at placement": {func(w *v1alpha1.WorkstationSpec, c *v1alpha1.WorkstationClassSpec) {
			c.CapacityTypes, c.MaxOnDemandPricePerHour, w.OnDemandFallback = nil, "0.01", ptr.To(true)
		}, ""},
		"containers reach IMDS, forbidden": {func(w *v1alpha1.WorkstationSpec, c *v1alpha1.WorkstationClassSpec) {
			w.ContainersReachInstanceMetadata, c.AllowContainersReachInstanceMetadata = ptr.To(true), ptr.To(false)
		}, "containersReachInstanceMetadata"},
		"containers kept from IMDS, forbidden": {func(w *v1alpha1.WorkstationSpec, c *v1alpha1.WorkstationClassSpec) {
			w.ContainersReachInstanceMetadata, c.AllowContainersReachInstanceMetadata = ptr.To(false), ptr.To(false)
		}, ""},
		"containers reach IMDS, allowed": {func(w *v1alpha1.WorkstationSpec, _ *v1alpha1.WorkstationClassSpec) {
			w.ContainersReachInstanceMetadata = ptr.To(true)
		}, ""},
		"any type, any price": {func(w *v1alpha1.WorkstationSpec, c *v1alpha1.WorkstationClassSpec) {
			*c = v1alpha1.WorkstationClassSpec{}
			w.MaxSpotPrice = "9"
		}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			w, c := base, class
			w.InstanceTypes = slices.Clone(base.InstanceTypes)
			tc.change(&w, &c)
			got := violations(w, c, "us-east-1")
			switch {
			case tc.want == "" && len(got) > 0:
				t.Fatalf("violations = %q, want none", got)
			case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)):
				t.Fatalf("violations = %q, want one mentioning %q", got, tc.want)
			}
		})
	}
}

func TestParams(t *testing.T) {
	cls := &v1alpha1.WorkstationClass{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: v1alpha1.WorkstationClassSpec{
		SubnetIDs: []string{"subnet-class"}, SecurityGroupIDs: []string{"sg-class"}, IAMInstanceProfile: "class-profile",
		MaxSpotPricePerHour: "0.5", Tags: map[string]string{"team": "class", "cost": "c"},
		Image: &v1alpha1.ImagePolicy{GPU: &v1alpha1.ImageSource{ID: "ami-0000000000000000a"}},
	}}
	ws := &v1alpha1.Workstation{Spec: v1alpha1.WorkstationSpec{
		SubnetIDs: []string{"subnet-mine"}, IAMInstanceProfile: "my-profile", Tags: map[string]string{"team": "mine", "owner": "me"},
	}}
	s := (&scope{ws: ws, r: &Reconciler{Region: "us-east-1"}}).admission()

	p := s.params(cls)
	if !slices.Equal(p.subnetIDs, []string{"subnet-class"}) || p.profile != "class-profile" || p.maxSpotPrice != "0.5" {
		t.Errorf("without overrides: subnets %v, profile %q, max price %q; want the class's", p.subnetIDs, p.profile, p.maxSpotPrice)
	}
	if p.tags["team"] != "class" || p.tags["owner"] != "me" || p.tags["cost"] != "c" {
		t.Errorf("tags = %v, want the Workstation's with the class's over them", p.tags)
	}
	if img := p.imageSource(instances.TypeInfo{GPUs: 1}, p.regions[0]); img == nil || img.ID != "ami-0000000000000000a" {
		t.Errorf("GPU image = %+v, want the class's", img)
	}
	if img := p.imageSource(instances.TypeInfo{}, p.regions[0]); img != nil {
		t.Errorf("CPU image = %+v, want the operator's default (nil)", img)
	}

	cls.Spec.AllowWorkstationOverrides = ptr.To(true)
	p = s.params(cls)
	if !slices.Equal(p.subnetIDs, []string{"subnet-mine"}) || p.profile != "my-profile" || !slices.Equal(p.securityGroupIDs, []string{"sg-class"}) {
		t.Errorf("with overrides: subnets %v, profile %q, groups %v; want the Workstation's where set", p.subnetIDs, p.profile, p.securityGroupIDs)
	}
}

// TestDriveViolations: the class bounds what the drive costs: its size,
// volume type, IOPS, throughput, kept volume, initialization rate and snapshots.
func TestDriveViolations(t *testing.T) {
	class := v1alpha1.WorkstationClassSpec{
		MaxDriveSizeGiB: 100, AllowedVolumeTypes: []v1alpha1.VolumeType{v1alpha1.VolumeTypeGP3}, MaxDriveIOPS: 6000,
		MaxDriveThroughputMiBps: 250, MaxKeepVolumeForMinutes: ptr.To[int32](60), MaxInitializationRateMiBps: ptr.To[int32](0),
		MaxSnapshotRetention: 5,
	}
	base := v1alpha1.XDriveSpec{SizeGiB: 100, VolumeType: v1alpha1.VolumeTypeGP3, IOPS: 6000, ThroughputMiBps: 250,
		KeepVolumeForMinutes: 60, SnapshotRetention: 5}
	for name, tc := range map[string]struct {
		change func(*v1alpha1.XDriveSpec, *v1alpha1.WorkstationClassSpec)
		want   string // a word of the one violation; "" for none
	}{
		"at every bound": {func(*v1alpha1.XDriveSpec, *v1alpha1.WorkstationClassSpec) {}, ""},
		"size":           {func(d *v1alpha1.XDriveSpec, _ *v1alpha1.WorkstationClassSpec) { d.SizeGiB = 101 }, "maxDriveSizeGiB 100"},
		"volume type": {func(d *v1alpha1.XDriveSpec, _ *v1alpha1.WorkstationClassSpec) {
			d.VolumeType, d.ThroughputMiBps = v1alpha1.VolumeTypeIO2, 0
		}, "volumeType io2"},
		"volume type default": {func(d *v1alpha1.XDriveSpec, _ *v1alpha1.WorkstationClassSpec) { d.VolumeType = "" }, ""},
		"iops":                {func(d *v1alpha1.XDriveSpec, _ *v1alpha1.WorkstationClassSpec) { d.IOPS = 100000 }, "maxDriveIOPS 6000"},
		"throughput":          {func(d *v1alpha1.XDriveSpec, _ *v1alpha1.WorkstationClassSpec) { d.ThroughputMiBps = 251 }, "maxDriveThroughputMiBps 250"},
		"kept a week":         {func(d *v1alpha1.XDriveSpec, _ *v1alpha1.WorkstationClassSpec) { d.KeepVolumeForMinutes = 10080 }, "maxKeepVolumeForMinutes 60"},
		"keeping forbidden": {func(d *v1alpha1.XDriveSpec, c *v1alpha1.WorkstationClassSpec) {
			c.MaxKeepVolumeForMinutes = ptr.To[int32](0)
		}, "maxKeepVolumeForMinutes 0"},
		"initialization rate": {func(d *v1alpha1.XDriveSpec, _ *v1alpha1.WorkstationClassSpec) { d.InitializationRateMiBps = 100 }, "maxInitializationRateMiBps 0"},
		"every snapshot kept": {func(d *v1alpha1.XDriveSpec, _ *v1alpha1.WorkstationClassSpec) { d.SnapshotRetention = 0 }, "keeps every snapshot"},
		"more snapshots":      {func(d *v1alpha1.XDriveSpec, _ *v1alpha1.WorkstationClassSpec) { d.SnapshotRetention = 6 }, "maxSnapshotRetention 5"},
		"no bounds": {func(d *v1alpha1.XDriveSpec, c *v1alpha1.WorkstationClassSpec) {
			*c = v1alpha1.WorkstationClassSpec{}
			d.VolumeType, d.IOPS, d.KeepVolumeForMinutes, d.SnapshotRetention, d.InitializationRateMiBps = v1alpha1.VolumeTypeIO2, 256000, 10080, 0, 300
		}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			d, c := base, class
			tc.change(&d, &c)
			got := driveViolations(&v1alpha1.XDrive{ObjectMeta: metav1.ObjectMeta{Name: "home"}, Spec: d}, c)
			switch {
			case tc.want == "" && len(got) > 0:
				t.Fatalf("driveViolations = %q, want none", got)
			case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)):
				t.Fatalf("driveViolations = %q, want one mentioning %q", got, tc.want)
			}
		})
	}
}

// TestForkRefusal: a fork from another namespace is restored only when the
// class's allowForkFrom selects that namespace by its labels.
func TestForkRefusal(t *testing.T) {
	golden := map[string]string{"team": "platform", "golden": "true"}
	for name, tc := range map[string]struct {
		policy *v1alpha1.ForkPolicy
		labels map[string]string
		want   string // a word of the refusal; "" for allowed
	}{
		"no allowForkFrom": {nil, golden, "no allowForkFrom"},
		"no selector":      {&v1alpha1.ForkPolicy{}, golden, "no allowForkFrom"},
		"selects all":      {&v1alpha1.ForkPolicy{NamespaceSelector: &metav1.LabelSelector{}}, golden, ""},
		"matches":          {&v1alpha1.ForkPolicy{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"golden": "true"}}}, golden, ""},
		"does not match": {&v1alpha1.ForkPolicy{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"golden": "true"}}},
			map[string]string{"team": "platform"}, "does not select"},
		"expression": {&v1alpha1.ForkPolicy{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "team", Operator: metav1.LabelSelectorOpIn, Values: []string{"platform"}}}}}, golden, ""},
		"invalid": {&v1alpha1.ForkPolicy{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "team", Operator: "Near"}}}}, golden, "invalid"},
	} {
		cls := &v1alpha1.WorkstationClass{ObjectMeta: metav1.ObjectMeta{Name: "dev"}, Spec: v1alpha1.WorkstationClassSpec{AllowForkFrom: tc.policy}}
		ref := forkRefusal(cls, "mine", "snap-0123456789abcdef0", "gold-ns", tc.labels)
		switch {
		case tc.want == "" && ref != nil:
			t.Errorf("%s: refused %q, want allowed", name, ref.message)
		case tc.want != "" && ref == nil:
			t.Errorf("%s: allowed, want refused with %q", name, tc.want)
		case ref != nil && (ref.reason != v1alpha1.ReasonForkNotAllowed || !strings.Contains(ref.message, tc.want) ||
			!strings.Contains(ref.message, "gold-ns") || !strings.Contains(ref.message, "snap-0123456789abcdef0")):
			t.Errorf("%s: refused %s %q, want %s naming %q, the namespace and the snapshot", name, ref.reason, ref.message, v1alpha1.ReasonForkNotAllowed, tc.want)
		}
	}
}

// TestRegionParams: a class without regions runs in the operator's region
// with its own network; one with regions, in those the Workstation keeps,
// each with its network and image (the class's image where it names none);
// the Workstation's own subnets apply only when it keeps one region.
func TestRegionParams(t *testing.T) {
	gpu := &v1alpha1.ImagePolicy{GPU: &v1alpha1.ImageSource{ID: "ami-0000000000000000a"}}
	west := &v1alpha1.ImagePolicy{GPU: &v1alpha1.ImageSource{ID: "ami-0000000000000000b"}}
	cls := &v1alpha1.WorkstationClass{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: v1alpha1.WorkstationClassSpec{
		SubnetIDs: []string{"subnet-class"}, Image: gpu, AllowWorkstationOverrides: ptr.To(true),
	}}
	params := func(spec v1alpha1.WorkstationSpec) *classParams {
		return (&scope{ws: &v1alpha1.Workstation{Spec: spec}, r: &Reconciler{Region: "us-east-1"}}).admission().params(cls)
	}
	p := params(v1alpha1.WorkstationSpec{})
	if len(p.regions) != 1 || p.regions[0].name != "us-east-1" || !slices.Equal(p.regions[0].subnetIDs, []string{"subnet-class"}) ||
		p.moveHorizonHours != defaultMoveHorizonHours {
		t.Fatalf("without regions: %+v, horizon %d", p.regions, p.moveHorizonHours)
	}
	cls.Spec.Regions = []v1alpha1.ClassRegion{
		{Name: "us-east-1", SubnetIDs: []string{"subnet-east"}},
		{Name: "us-west-2", SubnetIDs: []string{"subnet-west"}, SecurityGroupIDs: []string{"sg-west"}, Image: west},
	}
	cls.Spec.DriveMoveHorizonHours = 24
	p = params(v1alpha1.WorkstationSpec{})
	w, ok := p.region("us-west-2")
	if len(p.regions) != 2 || !ok || !slices.Equal(w.subnetIDs, []string{"subnet-west"}) || p.moveHorizonHours != 24 {
		t.Fatalf("with regions: %+v, horizon %d", p.regions, p.moveHorizonHours)
	}
	if img := p.imageSource(instances.TypeInfo{GPUs: 1}, w); img == nil || img.ID != "ami-0000000000000000b" {
		t.Errorf("us-west-2's GPU image = %+v, want its own", img)
	}
	e, _ := p.region("us-east-1")
	if img := p.imageSource(instances.TypeInfo{GPUs: 1}, e); img == nil || img.ID != "ami-0000000000000000a" {
		t.Errorf("us-east-1's GPU image = %+v, want the class's", img)
	}
	p = params(v1alpha1.WorkstationSpec{Regions: []string{"us-west-2"}, SubnetIDs: []string{"subnet-mine"}})
	if len(p.regions) != 1 || p.regions[0].name != "us-west-2" || !slices.Equal(p.regions[0].subnetIDs, []string{"subnet-mine"}) {
		t.Fatalf("narrowed to us-west-2 with its own subnet: %+v", p.regions)
	}

	for _, c := range []struct {
		name string
		spec v1alpha1.WorkstationSpec
		want string
	}{
		{"a region the class lacks", v1alpha1.WorkstationSpec{Regions: []string{"eu-west-1"}}, "eu-west-1 are not among the class's us-east-1, us-west-2"},
		{"subnets with two regions", v1alpha1.WorkstationSpec{SubnetIDs: []string{"subnet-mine"}}, "belong to one region"},
	} {
		if got := strings.Join(regionViolations(c.spec, cls.Spec, "us-east-1"), "; "); !strings.Contains(got, c.want) {
			t.Errorf("%s: violations %q, want %q", c.name, got, c.want)
		}
	}
	if got := regionViolations(v1alpha1.WorkstationSpec{Regions: []string{"us-west-2"}, SubnetIDs: []string{"subnet-mine"}}, cls.Spec, "us-east-1"); len(got) > 0 {
		t.Errorf("one region with its own subnets: violations %v, want none", got)
	}
	cls.Spec.Regions = nil
	if got := strings.Join(regionViolations(v1alpha1.WorkstationSpec{Regions: []string{"us-west-2"}}, cls.Spec, "us-east-1"), "; "); !strings.Contains(got, "not among the class's us-east-1") {
		t.Errorf("a region beyond the operator's without class regions: %q", got)
	}
}

// TestDriveReadyForRegion: a recorded launch runs only while the drive is in
// its region, with no move under way and the lease asking for that region.
func TestDriveReadyForRegion(t *testing.T) {
	archived := func(region, lease string) *v1alpha1.XDrive {
		return &v1alpha1.XDrive{Status: v1alpha1.XDriveStatus{Phase: v1alpha1.XDrivePhaseArchived, Region: region,
			Holder: &v1alpha1.DriveHolder{Name: "dev", UID: "u", Region: lease}}}
	}
	for _, c := range []struct {
		name   string
		launch string
		xd     *v1alpha1.XDrive
		want   bool
	}{
		{"in the launch's region", "us-west-2", archived("us-west-2", "us-west-2"), true},
		{"the operator's region, unnamed", "", archived("", ""), true},
		{"the drive elsewhere", "us-west-2", archived("us-east-1", ""), false},
		{"the lease asks elsewhere", "us-east-1", archived("us-east-1", "us-west-2"), false},
	} {
		s := &scope{r: &Reconciler{Region: "us-east-1"}, ws: &v1alpha1.Workstation{},
			st: &v1alpha1.WorkstationStatus{Launch: &v1alpha1.LaunchAttempt{Attempt: 1, Region: c.launch}}}
		if got := s.launch().driveReadyFor(c.xd); got != c.want {
			t.Errorf("%s: driveReadyFor = %v, want %v", c.name, got, c.want)
		}
	}
}
