package integration_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/operator"
	"github.com/xdrive-io/xdrive/test/faultproxy"
	"github.com/xdrive-io/xdrive/test/harness"
)

const operatorCIDR = "198.51.100.7/32"

// groupRules lists a group's ingress rules in moto as "proto/port from cidr", sorted.
func groupRules(t *testing.T, h *harness.Harness, id string) ([]string, map[string]string, bool) {
	t.Helper()
	out, err := h.EC2.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}})
	if cloud.IsNotFound(err) || err == nil && len(out.SecurityGroups) == 0 {
		return nil, nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	g := out.SecurityGroups[0]
	var rules []string
	for _, p := range g.IpPermissions {
		for _, r := range p.IpRanges {
			rules = append(rules, fmt.Sprintf("%s/%d-%d from %s", aws.ToString(p.IpProtocol), aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort), aws.ToString(r.CidrIp)))
		}
	}
	slices.Sort(rules)
	return rules, cloud.TagMap(g.Tags), true
}

func rulesEqual(t *testing.T, h *harness.Harness, id string, want []string) func() (bool, string) {
	want = slices.Sorted(slices.Values(want))
	return func() (bool, string) {
		got, _, _ := groupRules(t, h, id)
		return slices.Equal(got, want), fmt.Sprintf("rules %v, want %v", got, want)
	}
}

func ingress(proto string, port int32, cidr string) []ec2types.IpPermission {
	return []ec2types.IpPermission{{IpProtocol: aws.String(proto), FromPort: aws.Int32(port), ToPort: aws.Int32(port),
		IpRanges: []ec2types.IpRange{{CidrIp: aws.String(cidr)}}}}
}

// TestAccessSecurityGroup: a Workstation with spec.access gets its own
// tagged group with exactly SSH and the exposed ports from the allowed CIDRs
// (and SSH from the operator), attached at launch; drift and spec changes
// are reconciled, and removing spec.access revokes every rule; the group is
// deleted after the instance is terminated,
// retried while EC2 says it is in use; a foreign group is never touched.
func TestAccessSecurityGroup(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t), Options: operator.Options{
		OperatorCIDRs: []string{operatorCIDR}, AccessResync: time.Second,
	}})
	ctx := context.Background()
	foreign, err := h.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: aws.String("not-xdrive-" + h.Namespace), Description: aws.String("someone else's"),
	})
	if err != nil {
		t.Fatal(err)
	}
	foreignID := aws.ToString(foreign.GroupId)
	if _, err := h.EC2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: foreign.GroupId, IpPermissions: ingress("tcp", 22, "0.0.0.0/0")}); err != nil {
		t.Fatal(err)
	}
	h.Start()

	ws := h.NewWorkstation("dev", "home", []string{"t3.large"}, "us-east-1a")
	ws.Spec.Containers = []v1alpha1.Container{
		{Name: "jupyter", Image: "jupyter/base-notebook", Ports: []v1alpha1.ContainerPort{{ContainerPort: 8888}, {ContainerPort: 9000}}},
		{Name: "api", Image: "nginx", Ports: []v1alpha1.ContainerPort{{ContainerPort: 80, HostPort: 8080}}},
	}
	ws.Spec.Access = &v1alpha1.WorkstationAccess{
		AllowedCIDRs: []string{"203.0.113.0/24", "10.1.2.3/16"},
		Ports:        []v1alpha1.AccessPort{{Container: "jupyter", ContainerPort: 8888}, {Container: "api", ContainerPort: 80}},
	}
	h.Create(h.NewDrive("home", 10), ws)
	h.Eventually(60*time.Second, "dev runs with its own group", func() (bool, string) {
		w := h.Workstation("dev")
		return w.Status.Phase == v1alpha1.WorkstationPhaseRunning && w.Status.SecurityGroup != nil && len(w.Status.Endpoints) == 3,
			fmt.Sprintf("phase %s, group %+v, endpoints %v", w.Status.Phase, w.Status.SecurityGroup, w.Status.Endpoints)
	})
	w := h.Workstation("dev")
	sg := w.Status.SecurityGroup.ID
	want := []string{
		"tcp/22-22 from 203.0.113.0/24", "tcp/22-22 from 10.1.0.0/16", "tcp/22-22 from " + operatorCIDR,
		"tcp/8888-8888 from 203.0.113.0/24", "tcp/8888-8888 from 10.1.0.0/16",
		"tcp/8080-8080 from 203.0.113.0/24", "tcp/8080-8080 from 10.1.0.0/16",
	}
	h.Eventually(10*time.Second, "the group's rules", rulesEqual(t, h, sg, want))
	_, tags, _ := groupRules(t, h, sg)
	if tags[cloud.TagCluster] != h.Cluster || tags[cloud.TagOwnerUID] != string(w.UID) || tags[cloud.TagWorkstation] != h.Key("dev") {
		t.Errorf("group %s tags %v: want the cluster, the Workstation and its UID", sg, tags)
	}
	inst, found := h.Instance(w.Status.InstanceID)
	if !found {
		t.Fatalf("instance %s not in moto", w.Status.InstanceID)
	}
	var attached []string
	for _, g := range inst.SecurityGroups {
		attached = append(attached, aws.ToString(g.GroupId))
	}
	if !slices.Contains(attached, sg) || len(attached) != 2 {
		t.Errorf("instance groups %v: want the VPC's default group and %s", attached, sg)
	}
	ip := w.Status.PublicIP
	wantEndpoints := []v1alpha1.Endpoint{
		{Name: "ssh", URL: "ssh://root@" + ip + ":22"}, {Name: "jupyter", URL: "http://" + ip + ":8888"}, {Name: "api", URL: "http://" + ip + ":8080"},
	}
	if !slices.Equal(w.Status.Endpoints, wantEndpoints) {
		t.Errorf("endpoints %v, want %v", w.Status.Endpoints, wantEndpoints)
	}
	h.Eventually(10*time.Second, "the pinned host key is published", func() (bool, string) {
		w := h.Workstation("dev")
		pinned := strings.TrimSpace(h.Agent.HostKey(ip))
		return w.Status.SSH != nil && pinned != "" && w.Status.SSH.HostPublicKey == pinned && w.Status.SSH.InstanceID == w.Status.InstanceID,
			fmt.Sprintf("status.ssh %+v, pinned by the operator %q", w.Status.SSH, pinned)
	})

	// Drift from outside: an extra rule, a missing one.
	if _, err := h.EC2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(sg), IpPermissions: ingress("tcp", 3306, "0.0.0.0/0")}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.EC2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(sg), IpPermissions: ingress("tcp", 22, "203.0.113.0/24")}); err != nil {
		t.Fatal(err)
	}
	h.Eventually(30*time.Second, "drift undone", rulesEqual(t, h, sg, want))

	// A spec change: one CIDR fewer, jupyter only.
	h.UpdateWorkstation("dev", func(w *v1alpha1.Workstation) {
		w.Spec.Access.AllowedCIDRs = []string{"203.0.113.0/24"}
		w.Spec.Access.Ports = w.Spec.Access.Ports[:1]
	})
	h.Eventually(30*time.Second, "rules follow the spec", rulesEqual(t, h, sg,
		[]string{"tcp/22-22 from 203.0.113.0/24", "tcp/22-22 from " + operatorCIDR, "tcp/8888-8888 from 203.0.113.0/24"}))

	// spec.access removed: every tenant rule is revoked at once; the group, and
	// the operator's SSH in it, stay while the instance runs, so the next stop can flush.
	h.UpdateWorkstation("dev", func(w *v1alpha1.Workstation) { w.Spec.Access = nil })
	h.Eventually(30*time.Second, "rules revoked", rulesEqual(t, h, sg, []string{"tcp/22-22 from " + operatorCIDR}))
	if w := h.Workstation("dev"); w.Status.SecurityGroup == nil || w.Status.SecurityGroup.ID != sg {
		t.Errorf("status.securityGroup %+v while the instance still runs, want %s", w.Status.SecurityGroup, sg)
	}

	// Delete: the group goes only after the instance is terminated, retried while in use.
	var mu sync.Mutex
	var order []string
	h.Proxy.OnCall(func(action string, form url.Values) {
		if action == "TerminateInstances" || action == "DeleteSecurityGroup" {
			mu.Lock()
			order = append(order, action)
			mu.Unlock()
		}
	})
	inUse := h.Proxy.Inject(faultproxy.Rule{Action: "DeleteSecurityGroup", Times: 2,
		Fault: faultproxy.APIError(http.StatusBadRequest, "DependencyViolation", "resource "+sg+" has a dependent object")})
	h.Delete(w)
	h.Eventually(90*time.Second, "dev and its group are gone", func() (bool, string) {
		_, _, exists := groupRules(t, h, sg)
		return !h.Exists(&v1alpha1.Workstation{}, "dev") && !exists, fmt.Sprintf("group exists: %t", exists)
	})
	if inUse.Fired() != 2 {
		t.Errorf("DependencyViolation fired %d times, want 2: the delete was not retried", inUse.Fired())
	}
	mu.Lock()
	if len(order) == 0 || order[0] != "TerminateInstances" || !slices.Contains(order, "DeleteSecurityGroup") {
		t.Errorf("calls %v: want TerminateInstances before DeleteSecurityGroup", order)
	}
	mu.Unlock()
	if rules, tags, exists := groupRules(t, h, foreignID); !exists || !slices.Equal(rules, []string{"tcp/22-22 from 0.0.0.0/0"}) || len(tags) != 0 {
		t.Errorf("foreign group %s changed: exists %t, rules %v, tags %v", foreignID, exists, rules, tags)
	}
	h.Proxy.OnCall(nil)
}

// TestAccessClassBoundsCIDRs: a class's allowedAccessCIDRs refuses a
// Workstation that opens more, before any group or instance is made.
func TestAccessClassBoundsCIDRs(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	cls := newClass(h, "office", map[string]string{})
	cls.Spec.AllowedAccessCIDRs = []string{"203.0.113.0/24"}
	h.Create(cls)
	h.Start()
	ws := h.NewWorkstation("wide", "home", []string{"t3.large"}, "us-east-1a")
	ws.Spec.ClassName = cls.Name
	ws.Spec.Access = &v1alpha1.WorkstationAccess{AllowedCIDRs: []string{"203.0.113.128/25", "0.0.0.0/0"}}
	h.Create(h.NewDrive("home", 10), ws)
	h.Eventually(30*time.Second, "refused", classAllowed(h, "wide", "False", v1alpha1.ReasonClassViolation, "0.0.0.0/0", "allowedAccessCIDRs"))
	refusedAndIdle(t, h, "wide", v1alpha1.ReasonClassViolation)
	if w := h.Workstation("wide"); w.Status.SecurityGroup != nil {
		t.Errorf("a refused Workstation got security group %s", w.Status.SecurityGroup.ID)
	}
	h.UpdateWorkstation("wide", func(w *v1alpha1.Workstation) { w.Spec.Access.AllowedCIDRs = []string{"203.0.113.128/25"} })
	h.Eventually(30*time.Second, "allowed within the class's networks", classAllowed(h, "wide", "True", v1alpha1.ReasonClassAllowed))
}

// TestAccessClassBoundHoldsWhileRunning: a running Workstation whose
// spec.access goes outside its class keeps the rules the class allowed last
// and never gets the refused ones, not at the spec change and not at any
// resync; once the admin narrows the class, the rules it no longer allows
// are closed.
func TestAccessClassBoundHoldsWhileRunning(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t), Options: operator.Options{
		OperatorCIDRs: []string{operatorCIDR}, AccessResync: time.Second,
	}})
	cls := newClass(h, "office", map[string]string{})
	cls.Spec.AllowedAccessCIDRs = []string{"203.0.113.0/24", "198.18.0.0/15"}
	h.Create(cls)
	h.Start()
	ws := h.NewWorkstation("dev", "home", []string{"t3.large"}, "us-east-1a")
	ws.Spec.ClassName = cls.Name
	ws.Spec.Containers = []v1alpha1.Container{{Name: "jupyter", Image: "jupyter/base-notebook", Ports: []v1alpha1.ContainerPort{{ContainerPort: 8888}}}}
	ws.Spec.Access = &v1alpha1.WorkstationAccess{AllowedCIDRs: []string{"203.0.113.0/24", "198.18.0.0/16"},
		Ports: []v1alpha1.AccessPort{{Container: "jupyter", ContainerPort: 8888}}}
	h.Create(h.NewDrive("home", 10), ws)
	h.Eventually(60*time.Second, "dev runs with its group", func() (bool, string) {
		w := h.Workstation("dev")
		return w.Status.Phase == v1alpha1.WorkstationPhaseRunning && w.Status.SecurityGroup != nil,
			fmt.Sprintf("phase %s, group %+v", w.Status.Phase, w.Status.SecurityGroup)
	})
	sg := h.Workstation("dev").Status.SecurityGroup.ID
	allowed := []string{"tcp/22-22 from 203.0.113.0/24", "tcp/8888-8888 from 203.0.113.0/24",
		"tcp/22-22 from 198.18.0.0/16", "tcp/8888-8888 from 198.18.0.0/16", "tcp/22-22 from " + operatorCIDR}
	h.Eventually(10*time.Second, "the allowed rules", rulesEqual(t, h, sg, allowed))

	// The tenant opens to the world: refused, and nothing of it is opened, over several resyncs.
	h.UpdateWorkstation("dev", func(w *v1alpha1.Workstation) { w.Spec.Access.AllowedCIDRs = []string{"0.0.0.0/0"} })
	h.Eventually(30*time.Second, "refused", classAllowed(h, "dev", "False", v1alpha1.ReasonClassViolation, "0.0.0.0/0"))
	h.Consistently(5*time.Second, "the last allowed rules kept", rulesEqual(t, h, sg, allowed))

	// The admin narrows the class: the rules it no longer allows are closed; the operator's SSH stays.
	updateClass(t, h, cls.Name, func(c *v1alpha1.WorkstationClass) { c.Spec.AllowedAccessCIDRs = []string{"203.0.113.0/24"} })
	narrowed := []string{"tcp/22-22 from 203.0.113.0/24", "tcp/8888-8888 from 203.0.113.0/24", "tcp/22-22 from " + operatorCIDR}
	h.Eventually(30*time.Second, "rules outside the narrowed class closed", rulesEqual(t, h, sg, narrowed))
	h.Consistently(3*time.Second, "and not reopened", rulesEqual(t, h, sg, narrowed))

	// Back within the class: spec.access applies again.
	h.UpdateWorkstation("dev", func(w *v1alpha1.Workstation) { w.Spec.Access.AllowedCIDRs = []string{"203.0.113.64/26"} })
	h.Eventually(30*time.Second, "allowed again", classAllowed(h, "dev", "True", v1alpha1.ReasonClassAllowed))
	h.Eventually(30*time.Second, "rules follow the spec again", rulesEqual(t, h, sg,
		[]string{"tcp/22-22 from 203.0.113.64/26", "tcp/8888-8888 from 203.0.113.64/26", "tcp/22-22 from " + operatorCIDR}))
}

// TestAccessGroupDeletedFromOutside: a stopped Workstation keeps its group;
// if someone deletes it meanwhile, the next launch makes another.
func TestAccessGroupDeletedFromOutside(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.Start()
	ws := h.NewWorkstation("dev", "home", []string{"t3.large"}, "us-east-1a")
	ws.Spec.Access = &v1alpha1.WorkstationAccess{AllowedCIDRs: []string{"203.0.113.0/24"}}
	h.Create(h.NewDrive("home", 10), ws)
	running := func() (bool, string) {
		w := h.Workstation("dev")
		return w.Status.Phase == v1alpha1.WorkstationPhaseRunning && w.Status.SecurityGroup != nil,
			fmt.Sprintf("phase %s, group %+v", w.Status.Phase, w.Status.SecurityGroup)
	}
	h.Eventually(60*time.Second, "dev runs", running)
	first := h.Workstation("dev").Status.SecurityGroup.ID
	h.SetState("dev", v1alpha1.WorkstationStateStopped)
	h.Eventually(60*time.Second, "dev stops", func() (bool, string) {
		w := h.Workstation("dev")
		return w.Status.Phase == v1alpha1.WorkstationPhaseStopped, string(w.Status.Phase)
	})
	if w := h.Workstation("dev"); w.Status.SecurityGroup == nil || w.Status.SecurityGroup.ID != first || len(w.Status.Endpoints) != 0 || w.Status.SSH != nil {
		t.Errorf("stopped: group %+v (want %s kept), endpoints %v, ssh %+v (want none)", w.Status.SecurityGroup, first, w.Status.Endpoints, w.Status.SSH)
	}
	if _, err := h.EC2.DeleteSecurityGroup(context.Background(), &ec2.DeleteSecurityGroupInput{GroupId: aws.String(first)}); err != nil {
		t.Fatal(err)
	}
	h.SetState("dev", v1alpha1.WorkstationStateRunning)
	h.Eventually(60*time.Second, "dev runs again", running)
	second := h.Workstation("dev").Status.SecurityGroup.ID
	if second == first {
		t.Fatalf("the deleted group %s is still recorded", first)
	}
	h.Eventually(10*time.Second, "the new group's rules", rulesEqual(t, h, second, []string{"tcp/22-22 from 203.0.113.0/24"}))
	inst, _ := h.Instance(h.Workstation("dev").Status.InstanceID)
	if !slices.ContainsFunc(inst.SecurityGroups, func(g ec2types.GroupIdentifier) bool { return aws.ToString(g.GroupId) == second }) {
		t.Errorf("the new instance lacks group %s", second)
	}
}
