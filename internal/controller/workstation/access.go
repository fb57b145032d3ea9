package workstation

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/instances"
	"github.com/xdrive-io/xdrive/internal/securitygroup"
	"github.com/xdrive-io/xdrive/internal/sshx"
)

// SSHPort is the port the instances' sshd listens on.
const SSHPort = 22

// Access is how the Workstation controller opens instances to spec.access.
type Access struct {
	// Groups manages the Workstations' own security groups; nil refuses spec.access.
	Groups *securitygroup.Service
	// OperatorCIDRs may always reach SSH through a Workstation's group (--operator-cidr).
	OperatorCIDRs []string
	// Resync is how often a group's rules are compared with EC2's, to undo drift; defaultResync if 0.
	Resync time.Duration
}

const defaultResync = 10 * time.Minute

// errNoGroups: the operator was started without the security group service.
var errNoGroups = errors.New("spec.access needs the operator's security group service, which is not configured")

// launchGroups are the security groups of a launch: the class's (or the
// VPC's default group when it names none) and, with spec.access, the
// Workstation's own, created in the offering's VPC before RunInstances.
func (s accessStep) launchGroups(ctx context.Context, o instances.Offering) ([]string, error) {
	region := s.st.Launch.Region
	rp, _ := s.class.region(orDefault(region, s.r.Region))
	access := s.ws.Spec.Access
	if access == nil {
		return rp.securityGroupIDs, nil
	}
	svc := s.groups(region)
	if svc == nil {
		return nil, invalidSpecError{errNoGroups}
	}
	vpc, err := svc.VPCOf(ctx, o.SubnetID)
	if err != nil {
		return nil, fmt.Errorf("find the VPC of subnet %s for Workstation %s: %w", o.SubnetID, s.key, err)
	}
	if sg := s.st.SecurityGroup; sg != nil && (sg.VPCID != vpc || sg.Region != region) {
		// The last instance ran in another VPC and is terminated: the old group goes first.
		old := s.groups(sg.Region)
		if old == nil {
			return nil, invalidSpecError{errNoGroups}
		}
		if err := old.Delete(ctx, sg.ID); err != nil {
			return nil, fmt.Errorf("delete security group %s of Workstation %s in VPC %s: %w", sg.ID, s.key, sg.VPCID, err)
		}
		s.event(false, "SecurityGroupDeleted", "Access", "Deleted security group %s of VPC %s; this launch is in %s", sg.ID, sg.VPCID, vpc)
		s.st.SecurityGroup = nil
	}
	sg := s.st.SecurityGroup
	err = s.syncRules(ctx)
	if errors.Is(err, securitygroup.ErrGone) {
		s.event(true, "SecurityGroupGone", "Access", "Security group %s was deleted from outside; making another", sg.ID)
		s.st.SecurityGroup = nil
	}
	if s.st.SecurityGroup == nil {
		if sg, err = s.ensureGroup(ctx, vpc, region); err != nil {
			return nil, err
		}
		err = s.syncRules(ctx)
	}
	if err != nil {
		return nil, err
	}
	groups := rp.securityGroupIDs
	if len(groups) == 0 {
		def, err := svc.DefaultGroup(ctx, vpc)
		if err != nil {
			return nil, fmt.Errorf("find the default security group of VPC %s for Workstation %s: %w", vpc, s.key, err)
		}
		groups = []string{def}
	}
	return append(slices.Clone(groups), sg.ID), nil
}

// ensureGroup finds or makes the Workstation's group in the VPC and records it.
func (s accessStep) ensureGroup(ctx context.Context, vpc, region string) (*v1alpha1.ManagedSecurityGroup, error) {
	id, err := s.groups(region).Ensure(ctx, securitygroup.Owner{Workstation: s.key, UID: string(s.ws.UID), VPCID: vpc})
	if err != nil {
		return nil, fmt.Errorf("make the security group of Workstation %s in VPC %s: %w", s.key, vpc, err)
	}
	s.st.SecurityGroup = &v1alpha1.ManagedSecurityGroup{ID: id, VPCID: vpc, Region: region}
	s.event(false, "SecurityGroupReady", "Access", "Security group %s in %s holds this Workstation's access rules", id, vpc)
	return s.st.SecurityGroup, nil
}

// syncRules sets the group's rules to what spec.access asks (none once it is removed).
func (s accessStep) syncRules(ctx context.Context) error {
	sg := s.st.SecurityGroup
	if sg == nil {
		return nil
	}
	svc := s.groups(sg.Region)
	if svc == nil {
		return errNoGroups
	}
	added, revoked, err := svc.Sync(ctx, sg.ID, s.wantedRules())
	if err != nil {
		return fmt.Errorf("set the rules of security group %s of Workstation %s: %w", sg.ID, s.key, err)
	}
	if len(added)+len(revoked) > 0 {
		s.event(false, "SecurityGroupSynced", "Access", "Security group %s: opened %s; closed %s", sg.ID, ruleList(added), ruleList(revoked))
	}
	sg.SyncedGeneration, sg.SyncTime = s.gen, &metav1.Time{Time: s.now}
	return nil
}

// restrictRules is syncRules for a Workstation its class refuses: the group
// keeps the rules it has (the last the class allowed), less those the class
// does not allow now, and opens none that spec.access asks.
func (s accessStep) restrictRules(ctx context.Context) error {
	sg := s.st.SecurityGroup
	var bounds []string
	name := s.ws.Spec.ClassName
	if s.class != nil {
		bounds, name = s.class.class.Spec.AllowedAccessCIDRs, s.class.class.Name
	}
	svc := s.groups(sg.Region)
	if svc == nil {
		return errNoGroups
	}
	revoked, err := svc.Restrict(ctx, sg.ID, func(r securitygroup.Rule) bool {
		return len(bounds) == 0 || withinAny(r.CIDR, bounds) || r.Port == SSHPort && slices.ContainsFunc(s.r.Access.OperatorCIDRs, func(c string) bool {
			return canonicalCIDR(c) == r.CIDR
		})
	})
	if err != nil {
		return fmt.Errorf("restrict the rules of security group %s of Workstation %s to its class: %w", sg.ID, s.key, err)
	}
	if len(revoked) > 0 {
		s.event(true, "SecurityGroupRestricted", "Access", "Security group %s: closed %s, which WorkstationClass %s does not allow; spec.access is not applied while the class refuses this Workstation",
			sg.ID, ruleList(revoked), name)
	}
	sg.SyncedGeneration, sg.SyncTime = s.gen, &metav1.Time{Time: s.now}
	return nil
}

func ruleList(rs []securitygroup.Rule) string {
	if len(rs) == 0 {
		return "nothing"
	}
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return strings.Join(out, ", ")
}

// wantedRules are SSH from the operator, always: while an instance still
// carries the group, the next stop must be able to flush it; and, with
// spec.access, SSH and the exposed ports from the allowed CIDRs.
func (s accessStep) wantedRules() []securitygroup.Rule {
	var out []securitygroup.Rule
	add := func(r securitygroup.Rule) {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	for _, c := range s.r.Access.OperatorCIDRs {
		add(securitygroup.Rule{Protocol: "tcp", Port: SSHPort, CIDR: canonicalCIDR(c)})
	}
	access := s.ws.Spec.Access
	if access == nil {
		return out
	}
	for _, c := range access.AllowedCIDRs {
		cidr := canonicalCIDR(c)
		add(securitygroup.Rule{Protocol: "tcp", Port: SSHPort, CIDR: cidr})
		for _, p := range exposedPorts(s.ws) {
			add(securitygroup.Rule{Protocol: p.protocol, Port: p.hostPort, CIDR: cidr})
		}
	}
	return out
}

// canonicalCIDR clears the host bits (10.1.2.3/16 is 10.1.0.0/16), as EC2 stores it.
func canonicalCIDR(c string) string {
	p, err := netip.ParsePrefix(c)
	if err != nil {
		return c
	}
	return p.Masked().String()
}

type exposed struct {
	container, protocol string
	hostPort            int32
}

// exposedPorts are spec.access.ports as published on the instance.
func exposedPorts(ws *v1alpha1.Workstation) []exposed {
	if ws.Spec.Access == nil {
		return nil
	}
	var out []exposed
	for _, ap := range ws.Spec.Access.Ports {
		for _, c := range ws.Spec.Containers {
			if c.Name != ap.Container {
				continue
			}
			for _, p := range c.Ports {
				if p.ContainerPort == ap.ContainerPort {
					out = append(out, exposed{container: c.Name, protocol: orDefault(p.Protocol, "tcp"), hostPort: orPort(p.HostPort, p.ContainerPort)})
				}
			}
		}
	}
	return out
}

func orPort(p, d int32) int32 {
	if p == 0 {
		return d
	}
	return p
}

// apply runs after every step: it publishes how to reach the instance, keeps
// the group's rules in sync, and deletes the group once no instance can use
// it. The finalizer stays until the group is gone (Reconcile).
func (s accessStep) apply(ctx context.Context, result ctrl.Result, err error) (ctrl.Result, error) {
	s.publishAccess(ctx)
	sg := s.st.SecurityGroup
	if sg == nil || err != nil {
		return result, err
	}
	svc := s.groups(sg.Region)
	if svc == nil {
		return result, errNoGroups
	}
	noInstance := s.st.InstanceID == "" && s.st.Launch == nil
	if noInstance && (s.teardownDone || s.ws.Spec.Access == nil) {
		if err := svc.Delete(ctx, sg.ID); err != nil {
			if errors.Is(err, securitygroup.ErrInUse) {
				s.event(true, "SecurityGroupInUse", "Access", "Security group %s is still in use; deleting it again shortly", sg.ID)
				return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
			}
			return result, fmt.Errorf("delete security group %s of Workstation %s: %w", sg.ID, s.key, err)
		}
		s.event(false, "SecurityGroupDeleted", "Access", "Deleted security group %s", sg.ID)
		s.st.SecurityGroup = nil
		return result, nil
	}
	if s.st.Phase != v1alpha1.WorkstationPhaseRunning {
		return result, nil // no instance, or one going away: the next launch sets the rules
	}
	resync := s.r.Access.Resync
	if resync <= 0 {
		resync = defaultResync
	}
	due := s.now
	if sg.SyncTime != nil && sg.SyncedGeneration == s.gen {
		due = sg.SyncTime.Add(resync)
	}
	if s.now.Before(due) {
		return ctrl.Result{RequeueAfter: minPositive(result.RequeueAfter, due.Sub(s.now))}, nil
	}
	sync := s.syncRules
	if s.refused != nil {
		sync = s.restrictRules // outside its class: nothing refused is opened, on a spec change or a resync
	}
	if err := sync(ctx); errors.Is(err, securitygroup.ErrGone) {
		// In use it could not have been deleted: it is not this instance's; the next launch makes another.
		s.event(true, "SecurityGroupGone", "Access", "Security group %s was deleted from outside", sg.ID)
		s.st.SecurityGroup = nil
	} else if err != nil {
		return result, err
	}
	return ctrl.Result{RequeueAfter: minPositive(result.RequeueAfter, resync)}, nil
}

func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 {
		return b
	}
	return min(a, b)
}

// sshUser is the user the operator's key logs in as.
const sshUser = sshx.DefaultUser

// publishAccess writes status.ssh (the pinned host key of the current
// instance) and status.endpoints; both go with the instance.
func (s accessStep) publishAccess(ctx context.Context) {
	st := s.st
	if st.InstanceID == "" || st.Phase != v1alpha1.WorkstationPhaseRunning {
		st.SSH, st.Endpoints = nil, nil
		return
	}
	if st.SSH == nil || st.SSH.InstanceID != st.InstanceID {
		st.SSH = nil
		// From the cache only: publishing never costs an EC2 call; the shared poll fills it.
		if inst, found := s.cachedInstance(st.InstanceID); found {
			if creds, err := s.r.credentials(ctx, s.ws); err == nil {
				if key := creds.target(inst).HostKey; key != "" {
					st.SSH = &v1alpha1.SSHAccess{InstanceID: inst.ID, User: sshUser, HostPublicKey: strings.TrimSpace(key)}
				}
			}
		}
	}
	st.Endpoints = endpoints(s.ws)
}

// endpoints are ssh:// and the exposed ports at the instance's public address (else its private one).
func endpoints(ws *v1alpha1.Workstation) []v1alpha1.Endpoint {
	addr := orDefault(ws.Status.PublicIP, ws.Status.PrivateIP)
	if addr == "" {
		return nil
	}
	out := []v1alpha1.Endpoint{{Name: "ssh", URL: fmt.Sprintf("ssh://%s@%s:%d", sshUser, addr, SSHPort)}}
	for _, p := range exposedPorts(ws) {
		scheme := "http"
		if p.protocol == "udp" {
			scheme = "udp"
		}
		out = append(out, v1alpha1.Endpoint{Name: p.container, URL: fmt.Sprintf("%s://%s:%d", scheme, addr, p.hostPort)})
	}
	return out
}

// accessViolations lists the allowed CIDRs outside the class's allowedAccessCIDRs.
func accessViolations(spec v1alpha1.WorkstationSpec, c v1alpha1.WorkstationClassSpec) []string {
	if spec.Access == nil || len(c.AllowedAccessCIDRs) == 0 {
		return nil
	}
	var bad []string
	for _, want := range spec.Access.AllowedCIDRs {
		if !withinAny(want, c.AllowedAccessCIDRs) {
			bad = append(bad, want)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("access.allowedCIDRs %s are not within the class's allowedAccessCIDRs %s",
		strings.Join(bad, ", "), strings.Join(c.AllowedAccessCIDRs, ", "))}
}

// withinAny reports whether the network c lies inside one of the allowed networks.
func withinAny(c string, allowed []string) bool {
	p, err := netip.ParsePrefix(c)
	if err != nil {
		return false
	}
	for _, a := range allowed {
		q, err := netip.ParsePrefix(a)
		if err == nil && q.Bits() <= p.Bits() && q.Masked().Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// groups is the security group service of a region ("" is the operator's); nil if it has none.
func (s accessStep) groups(region string) *securitygroup.Service {
	svc, ok := s.r.in(region)
	if !ok {
		return nil
	}
	return svc.Groups
}
