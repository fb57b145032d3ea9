package fakeec2

import (
	"context"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/internal/cloud"
)

// VPCID is the one (default) VPC of the fake region; every subnet is in it.
const VPCID = "vpc-00000000000000001"

// DefaultGroupID is the VPC's default security group. It admits nothing
// from outside unless a test adds rules with SeedGroupRule.
const DefaultGroupID = "sg-00000000000000def"

const (
	codeGroupNotFound       = "InvalidGroup.NotFound"
	codeGroupDuplicate      = "InvalidGroup.Duplicate"
	codePermissionDuplicate = "InvalidPermission.Duplicate"
	codeDependency          = "DependencyViolation"
)

// GroupRule is one single-port IPv4 ingress rule.
type GroupRule struct {
	Protocol string
	Port     int32
	CIDR     string
}

type group struct {
	id, name, vpc string
	tags          map[string]string
	rules         []GroupRule
	deleted       bool
}

var groupKind = kind[group]{
	id: func(g *group) string { return g.id }, deleted: func(g *group) bool { return g.deleted },
	notFound: codeGroupNotFound, param: "GroupId",
}

var groupSchema = schema[group]{
	fields: map[string]func(*group) []string{
		"group-id":   func(g *group) []string { return one(g.id) },
		"group-name": func(g *group) []string { return one(g.name) },
		"vpc-id":     func(g *group) []string { return one(g.vpc) },
	},
	tags: func(g *group) map[string]string { return g.tags },
}

func (f *Fake) seedDefaultGroup() {
	f.groups.add(DefaultGroupID, &group{id: DefaultGroupID, name: "default", vpc: VPCID, tags: map[string]string{}})
}

// SeedGroupRule adds an ingress rule to a group, as someone at the console would.
func (f *Fake) SeedGroupRule(groupID string, r GroupRule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if g := f.groups.byID[groupID]; g != nil && !slices.Contains(g.rules, r) {
		g.rules = append(g.rules, r)
	}
}

// CreateSecurityGroup makes a group; a name taken in the VPC is InvalidGroup.Duplicate.
func (f *Fake) CreateSecurityGroup(ctx context.Context, in *ec2.CreateSecurityGroupInput, _ ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error) {
	return call(ctx, f, "CreateSecurityGroup", func() (*ec2.CreateSecurityGroupOutput, error) {
		name, vpc := aws.ToString(in.GroupName), aws.ToString(in.VpcId)
		if name == "" {
			return nil, apiError(codeMissingParameter, "The request must contain the parameter GroupName")
		}
		if vpc == "" {
			vpc = VPCID
		}
		if vpc != VPCID {
			return nil, apiError("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", vpc)
		}
		for _, g := range f.groups.order {
			if !g.deleted && g.vpc == vpc && g.name == name {
				return nil, apiError(codeGroupDuplicate, "The security group '%s' already exists for VPC '%s'", name, vpc)
			}
		}
		g := &group{id: f.newID("sg"), name: name, vpc: vpc, tags: tagsFor(in.TagSpecifications, ec2types.ResourceTypeSecurityGroup)}
		f.groups.add(g.id, g)
		return &ec2.CreateSecurityGroupOutput{GroupId: aws.String(g.id)}, nil
	})
}

// DescribeSecurityGroups lists groups by ID or filter; an unknown ID fails.
func (f *Fake) DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	return call(ctx, f, "DescribeSecurityGroups", func() (*ec2.DescribeSecurityGroupsOutput, error) {
		list, err := f.groups.live(groupKind, in.GroupIds)
		if err != nil {
			return nil, err
		}
		if list, err = groupSchema.filter(list, in.Filters); err != nil {
			return nil, err
		}
		out := &ec2.DescribeSecurityGroupsOutput{SecurityGroups: []ec2types.SecurityGroup{}}
		for _, g := range list {
			sg := ec2types.SecurityGroup{GroupId: aws.String(g.id), GroupName: aws.String(g.name), VpcId: aws.String(g.vpc),
				OwnerId: aws.String(f.opts.OwnerID), Tags: cloud.Tags(g.tags)}
			for _, r := range g.rules {
				sg.IpPermissions = append(sg.IpPermissions, ec2types.IpPermission{IpProtocol: aws.String(r.Protocol),
					FromPort: aws.Int32(r.Port), ToPort: aws.Int32(r.Port), IpRanges: []ec2types.IpRange{{CidrIp: aws.String(r.CIDR)}}})
			}
			out.SecurityGroups = append(out.SecurityGroups, sg)
		}
		return out, nil
	})
}

func groupRules(perms []ec2types.IpPermission) ([]GroupRule, error) {
	var out []GroupRule
	for _, p := range perms {
		from, to := aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort)
		if from != to || len(p.Ipv6Ranges)+len(p.UserIdGroupPairs)+len(p.PrefixListIds) > 0 {
			return nil, apiError(codeInvalidValue, "the fake takes single-port IPv4 rules only")
		}
		for _, r := range p.IpRanges {
			out = append(out, GroupRule{Protocol: aws.ToString(p.IpProtocol), Port: from, CIDR: aws.ToString(r.CidrIp)})
		}
	}
	return out, nil
}

// AuthorizeSecurityGroupIngress adds rules; any rule already there fails the whole call.
func (f *Fake) AuthorizeSecurityGroupIngress(ctx context.Context, in *ec2.AuthorizeSecurityGroupIngressInput, _ ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
	return call(ctx, f, "AuthorizeSecurityGroupIngress", func() (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
		g, err := f.groups.liveOne(groupKind, aws.ToString(in.GroupId))
		if err != nil {
			return nil, err
		}
		add, err := groupRules(in.IpPermissions)
		if err != nil {
			return nil, err
		}
		for _, r := range add {
			if slices.Contains(g.rules, r) {
				return nil, apiError(codePermissionDuplicate, "the specified rule %+v already exists", r)
			}
		}
		f.audit("AuthorizeSecurityGroupIngress", g.id, g.tags)
		g.rules = append(g.rules, add...)
		return &ec2.AuthorizeSecurityGroupIngressOutput{Return: aws.Bool(true)}, nil
	})
}

// RevokeSecurityGroupIngress removes the rules that exist; others are ignored.
func (f *Fake) RevokeSecurityGroupIngress(ctx context.Context, in *ec2.RevokeSecurityGroupIngressInput, _ ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error) {
	return call(ctx, f, "RevokeSecurityGroupIngress", func() (*ec2.RevokeSecurityGroupIngressOutput, error) {
		g, err := f.groups.liveOne(groupKind, aws.ToString(in.GroupId))
		if err != nil {
			return nil, err
		}
		drop, err := groupRules(in.IpPermissions)
		if err != nil {
			return nil, err
		}
		f.audit("RevokeSecurityGroupIngress", g.id, g.tags)
		g.rules = slices.DeleteFunc(g.rules, func(r GroupRule) bool { return slices.Contains(drop, r) })
		return &ec2.RevokeSecurityGroupIngressOutput{Return: aws.Bool(true)}, nil
	})
}

// DeleteSecurityGroup deletes a group no live instance uses; else DependencyViolation.
func (f *Fake) DeleteSecurityGroup(ctx context.Context, in *ec2.DeleteSecurityGroupInput, _ ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error) {
	return call(ctx, f, "DeleteSecurityGroup", func() (*ec2.DeleteSecurityGroupOutput, error) {
		g, err := f.groups.liveOne(groupKind, aws.ToString(in.GroupId))
		if err != nil {
			return nil, err
		}
		if err := f.groupInUse(g); err != nil {
			return nil, err
		}
		f.audit("DeleteSecurityGroup", g.id, g.tags)
		g.deleted = true
		return &ec2.DeleteSecurityGroupOutput{}, nil
	})
}

// DescribeVpcs lists the one default VPC.
func (f *Fake) DescribeVpcs(ctx context.Context, in *ec2.DescribeVpcsInput, _ ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error) {
	return call(ctx, f, "DescribeVpcs", func() (*ec2.DescribeVpcsOutput, error) {
		return &ec2.DescribeVpcsOutput{Vpcs: []ec2types.Vpc{{VpcId: aws.String(VPCID), IsDefault: aws.Bool(true),
			CidrBlock: aws.String("172.31.0.0/16"), OwnerId: aws.String(f.opts.OwnerID)}}}, nil
	})
}

// GroupView is a security group as a test sees it.
type GroupView struct {
	ID, Name string
	Tags     map[string]string
	Rules    []GroupRule
	Deleted  bool
}

// Groups lists every security group, deleted ones included.
func (f *Fake) Groups() []GroupView {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]GroupView, 0, len(f.groups.order))
	for _, g := range f.groups.order {
		out = append(out, GroupView{ID: g.id, Name: g.name, Tags: copyMap(g.tags), Rules: slices.Clone(g.rules), Deleted: g.deleted})
	}
	return out
}

// DeleteGroupOutside deletes a group as someone at the console would (EC2's own checks apply).
func (f *Fake) DeleteGroupOutside(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.groups.byID[id]
	if g == nil || g.deleted {
		return apiError(codeGroupNotFound, "no group %s", id)
	}
	if err := f.groupInUse(g); err != nil {
		return err
	}
	g.deleted = true
	return nil
}

// groupInUse is EC2's DependencyViolation while an instance not terminated uses the group.
func (f *Fake) groupInUse(g *group) error {
	for _, i := range f.instances.order {
		if i.state != StateTerminated && slices.Contains(i.groups, g.id) {
			return apiError(codeDependency, "resource %s has a dependent object (%s)", g.id, i.id)
		}
	}
	return nil
}

// checkGroups is RunInstances' check of the groups it names.
func (f *Fake) checkGroups(ids []string) error {
	for _, id := range ids {
		if g := f.groups.byID[id]; g == nil || g.deleted {
			return apiError(codeGroupNotFound, "The security group '%s' does not exist", id)
		}
	}
	return nil
}

var _ cloud.SecurityGroupsAPI = (*Fake)(nil)
