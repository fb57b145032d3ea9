package testenv

import (
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

const kindWSC = "WorkstationClass"

// Valid bases of the class cases.
const wsc = `namespaceSelector: {}`

var invalidClassCases = []invalidCase{
	{name: "namespaceSelector missing", kind: kindWSC, spec: `{subnetIDs: [subnet-0123456789abcdef0]}`, want: []string{"spec.namespaceSelector", "Required value"}},
	{name: "subnet ID is a sg", kind: kindWSC, spec: `{` + wsc + `, subnetIDs: [sg-0123456789abcdef0]}`, want: []string{"spec.subnetIDs[0]", "should match"}},
	{name: "sg IDs 6", kind: kindWSC, spec: `{` + wsc + `, securityGroupIDs: [sg-00000001, sg-00000002, sg-00000003, sg-00000004, sg-00000005, sg-00000006]}`, want: []string{"spec.securityGroupIDs", "must have at most 5 items"}},
	{name: "instanceType pattern with ?", kind: kindWSC, spec: `{` + wsc + `, instanceTypes: ["g5.?large"]}`, want: []string{"spec.instanceTypes[0]", "should match"}},
	{name: "instanceType upper case", kind: kindWSC, spec: `{` + wsc + `, instanceTypes: [G5.*]}`, want: []string{"spec.instanceTypes[0]", "should match"}},
	{name: "capacityType Reserved", kind: kindWSC, spec: `{` + wsc + `, capacityTypes: [Reserved]}`, want: []string{"spec.capacityTypes[0]", `Unsupported value: "Reserved"`}},
	{name: "spot price with OnDemand only", kind: kindWSC, spec: `{` + wsc + `, capacityTypes: [OnDemand], maxSpotPricePerHour: "0.5"}`, want: []string{"maxSpotPricePerHour: only meaningful when capacityTypes allows Spot"}},
	{name: "spot price not a number", kind: kindWSC, spec: `{` + wsc + `, maxSpotPricePerHour: "$1"}`, want: []string{"spec.maxSpotPricePerHour", "should match"}},
	{name: "on-demand price with Spot only", kind: kindWSC, spec: `{` + wsc + `, capacityTypes: [Spot], maxOnDemandPricePerHour: "0.5"}`, want: []string{"maxOnDemandPricePerHour: only meaningful when capacityTypes allows OnDemand"}},
	{name: "on-demand price not a number", kind: kindWSC, spec: `{` + wsc + `, maxOnDemandPricePerHour: "1,5"}`, want: []string{"spec.maxOnDemandPricePerHour", "should match"}},
	{name: "type price not a number", kind: kindWSC, spec: `{` + wsc + `, onDemandPrices: [{instanceType: g5.xlarge, pricePerHour: "$1"}]}`, want: []string{"spec.onDemandPrices[0].pricePerHour", "should match"}},
	{name: "type price twice", kind: kindWSC, spec: `{` + wsc + `, onDemandPrices: [{instanceType: g5.xlarge, pricePerHour: "1"}, {instanceType: g5.xlarge, pricePerHour: "2"}]}`, want: []string{"spec.onDemandPrices[1]", "Duplicate value"}},
	{name: "maxDriveSizeGiB 0", kind: kindWSC, spec: `{` + wsc + `, maxDriveSizeGiB: 0}`, want: []string{"spec.maxDriveSizeGiB", "greater than or equal to 1"}},
	{name: "image cpu both", kind: kindWSC, spec: `{` + wsc + `, image: {cpu: {id: ami-0123456789abcdef0, ssmParameter: /aws/service/x}}}`, want: []string{"spec.image.cpu", "image: set exactly one of id or ssmParameter"}},
	{name: "image gpu bad AMI", kind: kindWSC, spec: `{` + wsc + `, image: {gpu: {id: ami-1}}}`, want: []string{"spec.image.gpu.id", "should match"}},
	{name: "tag xdrive.io/", kind: kindWSC, spec: `{` + wsc + `, tags: {"xdrive.io/cluster": other}}`, want: []string{"spec.tags", "reserved"}},
	{name: "selector bad operator", kind: kindWSC, spec: `{namespaceSelector: {matchExpressions: [{key: team, operator: Near, values: [a]}]}}`, want: []string{"spec.namespaceSelector", "namespaceSelector: each matchExpression's operator"}},
	{name: "selector In without values", kind: kindWSC, spec: `{namespaceSelector: {matchExpressions: [{key: team, operator: In}]}}`, want: []string{"spec.namespaceSelector", "namespaceSelector: each matchExpression's operator"}},
	{name: "selector Exists with values", kind: kindWSC, spec: `{namespaceSelector: {matchExpressions: [{key: team, operator: Exists, values: [a]}]}}`, want: []string{"spec.namespaceSelector", "namespaceSelector: each matchExpression's operator"}},
	{name: "allowForkFrom without selector", kind: kindWSC, spec: `{` + wsc + `, allowForkFrom: {}}`, want: []string{"spec.allowForkFrom.namespaceSelector", "Required value"}},
	{name: "allowForkFrom bad operator", kind: kindWSC, spec: `{` + wsc + `, allowForkFrom: {namespaceSelector: {matchExpressions: [{key: team, operator: Near, values: [a]}]}}}`, want: []string{"spec.allowForkFrom.namespaceSelector", "namespaceSelector: each matchExpression's operator"}},
	{name: "allowForkFrom In without values", kind: kindWSC, spec: `{` + wsc + `, allowForkFrom: {namespaceSelector: {matchExpressions: [{key: team, operator: In}]}}}`, want: []string{"spec.allowForkFrom.namespaceSelector", "namespaceSelector: each matchExpression's operator"}},
	{name: "maxDriveIOPS 99", kind: kindWSC, spec: `{` + wsc + `, maxDriveIOPS: 99}`, want: []string{"spec.maxDriveIOPS", "greater than or equal to 100"}},
	{name: "maxKeepVolumeForMinutes negative", kind: kindWSC, spec: `{` + wsc + `, maxKeepVolumeForMinutes: -1}`, want: []string{"spec.maxKeepVolumeForMinutes", "greater than or equal to 0"}},
	{name: "maxInitializationRateMiBps 301", kind: kindWSC, spec: `{` + wsc + `, maxInitializationRateMiBps: 301}`, want: []string{"spec.maxInitializationRateMiBps", "less than or equal to 300"}},
	{name: "maxSnapshotRetention 0", kind: kindWSC, spec: `{` + wsc + `, maxSnapshotRetention: 0}`, want: []string{"spec.maxSnapshotRetention", "greater than or equal to 1"}},
	{name: "allowedVolumeTypes gp4", kind: kindWSC, spec: `{` + wsc + `, allowedVolumeTypes: [gp4]}`, want: []string{"spec.allowedVolumeTypes[0]", `Unsupported value: "gp4"`}},
	{name: "minCPULoad not a number", kind: kindWSC, spec: `{` + wsc + `, idleStop: {minCPULoad: "-1"}}`, want: []string{"spec.idleStop.minCPULoad", "should match"}},
	{name: "minGPUUtilizationPercent 101", kind: kindWSC, spec: `{` + wsc + `, idleStop: {minGPUUtilizationPercent: 101}}`, want: []string{"spec.idleStop.minGPUUtilizationPercent", "less than or equal to 100"}},
	{name: "sshUser with a space", kind: kindWSC, spec: `{` + wsc + `, sshUser: "ec2 user"}`, want: []string{"spec.sshUser", "should match"}},
	{name: "sshUser upper case", kind: kindWSC, spec: `{` + wsc + `, sshUser: Ubuntu}`, want: []string{"spec.sshUser", "should match"}},
	{name: "className not DNS-1123", kind: kindWS, spec: `{` + ws + `, className: My_Class}`, want: []string{"spec.className", "should match"}},
	{name: "className empty", kind: kindWS, spec: `{` + ws + `, className: ""}`, want: []string{"spec.className"}},
}

// TestWorkstationClassValidation: the API server rejects invalid classes and
// class names, and accepts a full class.
func TestWorkstationClassValidation(t *testing.T) {
	e := sharedEnv(t)
	ns := CreateNamespace(t, e.Client)
	for i, tc := range invalidClassCases {
		t.Run(tc.kind+"/"+tc.name, func(t *testing.T) {
			obj := newObject(t, tc.kind, ns, fmt.Sprintf("invalid-class-%d-%s", i, ns), tc.spec)
			err := e.Client.Create(testCtx(t), obj)
			if err == nil {
				_ = e.Client.Delete(testCtx(t), obj)
			}
			assertInvalid(t, err, tc.want)
		})
	}
	full := newObject(t, kindWSC, "", "full-"+ns, `{namespaceSelector: {matchLabels: {team: a}, matchExpressions: [{key: tier, operator: In, values: [dev]}, {key: frozen, operator: DoesNotExist}]},
		subnetIDs: [subnet-0123456789abcdef0], securityGroupIDs: [sg-0123456789abcdef0], sshUser: ubuntu,
		iamInstanceProfile: xdrive-workstation-team-a, keyName: team-a,
		image: {cpu: {ssmParameter: /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64}, gpu: {id: ami-0123456789abcdef0}},
		instanceTypes: [t3.large, "g5.*"], capacityTypes: [Spot, OnDemand], maxSpotPricePerHour: "1.25",
		maxOnDemandPricePerHour: "2.5", onDemandPrices: [{instanceType: g5.xlarge, pricePerHour: "0.9"}],
		maxDriveSizeGiB: 500, tags: {cost-center: research}, allowWorkstationOverrides: false, allowUntaggedSnapshots: false,
		allowedVolumeTypes: [gp3, gp2], maxDriveIOPS: 6000, maxDriveThroughputMiBps: 250, maxKeepVolumeForMinutes: 0,
		maxInitializationRateMiBps: 0, maxSnapshotRetention: 7, allowContainersReachInstanceMetadata: false,
		allowForkFrom: {namespaceSelector: {matchLabels: {golden: "true"}, matchExpressions: [{key: team, operator: Exists}]}},
		idleStop: {maxAfter: 4h, minCPULoad: "0.8", minGPUUtilizationPercent: 20, minNetworkBytesPerSecond: 8192, allowCheckCommand: false}}`)
	if err := e.Client.Create(testCtx(t), full); err != nil {
		t.Fatalf("a full class was rejected: %v", err)
	}
	t.Cleanup(func() { _ = e.Client.Delete(testCtx(t), full) })
}

// TestKubectlWorkstationClasses: `kubectl get workstationclasses` shows the
// allowed types, capacity and namespace selector, and which class is the default.
func TestKubectlWorkstationClasses(t *testing.T) {
	e := sharedEnv(t)
	ns := CreateNamespace(t, e.Client)
	k := e.Kubectl(t, ns)
	cls := &v1alpha1.WorkstationClass{
		// Not the default: tests of this API server share it, and a second default would be refused.
		ObjectMeta: metav1.ObjectMeta{Name: "columns-" + ns, Annotations: map[string]string{v1alpha1.DefaultClassAnnotation: "false"}},
		Spec: v1alpha1.WorkstationClassSpec{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}},
			InstanceTypes:     []string{"t3.*", "g5.xlarge"}, CapacityTypes: []v1alpha1.CapacityType{v1alpha1.CapacityTypeSpot},
			AllowWorkstationOverrides: ptr.To(false),
		},
	}
	if err := e.Client.Create(testCtx(t), cls); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Client.Delete(testCtx(t), cls) })
	if cls.Spec.SSHUser != v1alpha1.DefaultSSHUser {
		t.Errorf("sshUser defaults to %q, want %q", cls.Spec.SSHUser, v1alpha1.DefaultSSHUser)
	}
	for _, name := range []string{"workstationclass", "workstationclasses", "wsc"} {
		tables, out := k.Get(t, name, cls.Name)
		if len(tables) != 1 {
			t.Fatalf("kubectl get %s printed %d tables:\n%s", name, len(tables), out)
		}
		ExpectRow(t, tables[0], []string{"NAME", "DEFAULT", "TYPES", "CAPACITY", "NAMESPACES", "OVERRIDES", "AGE"},
			[]string{cls.Name, "false", `["t3.*","g5.xlarge"]`, `["Spot"]`, `{"matchLabels":{"team":"a"}}`, "false"})
	}
}
