// Package securitygroup manages the one security group the operator owns per
// Workstation with spec.access: found by its tags before it is created, its
// ingress rules set to exactly the desired ones, deleted once nothing uses it.
// It never modifies a group without this cluster's ownership tag.
package securitygroup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/internal/cloud"
)

// Rule is one ingress permission: a protocol and port from one IPv4 network.
type Rule struct {
	Protocol string // tcp or udp
	Port     int32
	CIDR     string
}

func (r Rule) String() string { return fmt.Sprintf("%s/%d from %s", r.Protocol, r.Port, r.CIDR) }

// Owner is the Workstation a group belongs to, and the VPC it is made in.
type Owner struct {
	Workstation string // ns/name
	UID         string
	VPCID       string
}

// Name is the group's name: unique per Workstation and VPC, so a create
// repeated after a crash fails with InvalidGroup.Duplicate instead of making a second group.
func (o Owner) Name() string {
	ns, name, _ := strings.Cut(o.Workstation, "/")
	uid := o.UID
	if len(uid) > 8 {
		uid = uid[:8]
	}
	return fmt.Sprintf("xdrive-%s-%s-%s", ns, name, uid)
}

// Service is the only writer of the operator's security groups.
type Service struct {
	API     cloud.SecurityGroupsAPI
	Cluster string
}

// ErrInUse is returned by Delete while an instance still uses the group.
var ErrInUse = errors.New("security group is still in use")

// ErrGone is returned by Sync for a group that no longer exists (deleted from outside).
var ErrGone = errors.New("security group no longer exists")

// VPCOf returns the VPC of a subnet, or the default VPC for "".
func (s *Service) VPCOf(ctx context.Context, subnetID string) (string, error) {
	if subnetID != "" {
		out, err := s.API.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{subnetID}})
		if err != nil {
			return "", fmt.Errorf("describing subnet %s: %w", subnetID, err)
		}
		if len(out.Subnets) != 1 {
			return "", fmt.Errorf("describing subnet %s: EC2 returned %d subnets", subnetID, len(out.Subnets))
		}
		return aws.ToString(out.Subnets[0].VpcId), nil
	}
	out, err := s.API.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []ec2types.Filter{cloud.Filter("is-default", "true")}})
	if err != nil {
		return "", fmt.Errorf("describing the default VPC: %w", err)
	}
	if len(out.Vpcs) == 0 {
		return "", errors.New("no subnet chosen and the region has no default VPC")
	}
	return aws.ToString(out.Vpcs[0].VpcId), nil
}

// DefaultGroup returns the VPC's default security group, which an instance
// gets when it names no group: it is kept alongside the Workstation's own.
func (s *Service) DefaultGroup(ctx context.Context, vpcID string) (string, error) {
	out, err := s.API.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		cloud.Filter("vpc-id", vpcID), cloud.Filter("group-name", "default"),
	}})
	if err != nil {
		return "", fmt.Errorf("describing the default security group of %s: %w", vpcID, err)
	}
	if len(out.SecurityGroups) == 0 {
		return "", fmt.Errorf("VPC %s has no default security group", vpcID)
	}
	return aws.ToString(out.SecurityGroups[0].GroupId), nil
}

// Ensure returns the owner's group in its VPC, creating it if none is found by its tags.
func (s *Service) Ensure(ctx context.Context, o Owner) (string, error) {
	if id, err := s.find(ctx, o, cloud.TagFilter(cloud.TagOwnerUID, o.UID)); err != nil || id != "" {
		return id, err
	}
	tags := cloud.Tags(map[string]string{
		cloud.TagCluster: s.Cluster, cloud.TagWorkstation: o.Workstation, cloud.TagOwnerUID: o.UID, cloud.TagName: o.Name(),
	})
	out, err := s.API.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName:   aws.String(o.Name()),
		Description: aws.String("xdrive: access to Workstation " + o.Workstation),
		VpcId:       aws.String(o.VPCID),
		TagSpecifications: []ec2types.TagSpecification{{
			ResourceType: ec2types.ResourceTypeSecurityGroup, Tags: tags,
		}},
	})
	if cloud.Classify(err) == cloud.KindDuplicate {
		// Created by an earlier try whose answer was lost, and not listed by its tags yet.
		return s.find(ctx, o, cloud.Filter("group-name", o.Name()))
	}
	if err != nil {
		return "", fmt.Errorf("creating security group %s: %w", o.Name(), err)
	}
	return aws.ToString(out.GroupId), nil
}

func (s *Service) find(ctx context.Context, o Owner, by ec2types.Filter) (string, error) {
	out, err := s.API.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		cloud.Filter("vpc-id", o.VPCID), by,
	}})
	if err != nil {
		return "", fmt.Errorf("looking up security group %s: %w", o.Name(), err)
	}
	for _, g := range out.SecurityGroups {
		tags := cloud.TagMap(g.Tags)
		if tags[cloud.TagCluster] == s.Cluster && tags[cloud.TagOwnerUID] == o.UID {
			return aws.ToString(g.GroupId), nil
		}
	}
	if len(out.SecurityGroups) > 0 {
		return "", fmt.Errorf("security group %s exists in %s without this Workstation's tags: %w", o.Name(), o.VPCID, cloud.ErrNotOwned)
	}
	return "", nil
}

// Owned is one group this cluster owns, as the garbage collector sees it.
type Owned struct {
	ID, OwnerUID, Workstation string
}

// OwnedGroups lists every group tagged with this cluster, in every VPC.
func (s *Service) OwnedGroups(ctx context.Context) ([]Owned, error) {
	out, err := s.API.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		cloud.TagFilter(cloud.TagCluster, s.Cluster),
	}})
	if err != nil {
		return nil, fmt.Errorf("listing the security groups of cluster %s: %w", s.Cluster, err)
	}
	list := make([]Owned, 0, len(out.SecurityGroups))
	for _, g := range out.SecurityGroups {
		tags := cloud.TagMap(g.Tags)
		list = append(list, Owned{ID: aws.ToString(g.GroupId), OwnerUID: tags[cloud.TagOwnerUID], Workstation: tags[cloud.TagWorkstation]})
	}
	return list, nil
}

// Sync sets the group's ingress rules to exactly want: it adds the missing
// ones and revokes every other. It reports what it changed.
func (s *Service) Sync(ctx context.Context, groupID string, want []Rule) (added, revoked []Rule, err error) {
	return s.change(ctx, groupID, func([]Rule) []Rule { return want })
}

// Restrict keeps the group's rules that keep accepts and revokes the rest
// (and everything else, as Sync does); it opens nothing.
func (s *Service) Restrict(ctx context.Context, groupID string, keep func(Rule) bool) (revoked []Rule, err error) {
	_, revoked, err = s.change(ctx, groupID, func(have []Rule) []Rule {
		return slices.DeleteFunc(slices.Clone(have), func(r Rule) bool { return !keep(r) })
	})
	return revoked, err
}

// change sets the group's rules to what wantOf makes of those it has.
func (s *Service) change(ctx context.Context, groupID string, wantOf func(have []Rule) []Rule) (added, revoked []Rule, err error) {
	g, found, err := s.describe(ctx, groupID)
	if err != nil {
		return nil, nil, err
	}
	if !found {
		return nil, nil, fmt.Errorf("%s: %w", groupID, ErrGone)
	}
	if err := cloud.RequireOwned(cloud.TagMap(g.Tags), s.Cluster, "changing the rules of security group", groupID); err != nil {
		return nil, nil, err
	}
	have, others := rules(g.IpPermissions)
	want := wantOf(have)
	for _, r := range want {
		if !slices.Contains(have, r) {
			added = append(added, r)
		}
	}
	for _, r := range have {
		if !slices.Contains(want, r) {
			revoked = append(revoked, r)
		}
	}
	if len(revoked) > 0 || len(others) > 0 {
		perms := append(permissions(revoked), others...)
		if _, err := s.API.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(groupID), IpPermissions: perms}); err != nil &&
			cloud.Classify(err) != cloud.KindNotFound {
			return nil, nil, fmt.Errorf("revoking %d rules of security group %s: %w", len(perms), groupID, err)
		}
	}
	if len(added) > 0 {
		if _, err := s.API.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(groupID), IpPermissions: permissions(added)}); err != nil &&
			cloud.Classify(err) != cloud.KindDuplicate {
			return nil, nil, fmt.Errorf("authorizing %d rules of security group %s: %w", len(added), groupID, err)
		}
	}
	return added, revoked, nil
}

// Delete deletes the group; ErrInUse while an instance still uses it. A group already gone is not an error.
func (s *Service) Delete(ctx context.Context, groupID string) error {
	g, found, err := s.describe(ctx, groupID)
	if err != nil || !found {
		return err
	}
	if err := cloud.RequireOwned(cloud.TagMap(g.Tags), s.Cluster, "deleting security group", groupID); err != nil {
		return err
	}
	_, err = s.API.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(groupID)})
	switch cloud.Classify(err) {
	case cloud.KindNotFound:
		return nil
	case cloud.KindInUse:
		return fmt.Errorf("deleting security group %s: %w: %w", groupID, ErrInUse, err)
	}
	if err != nil {
		return fmt.Errorf("deleting security group %s: %w", groupID, err)
	}
	return nil
}

func (s *Service) describe(ctx context.Context, groupID string) (ec2types.SecurityGroup, bool, error) {
	out, err := s.API.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{groupID}})
	if cloud.IsNotFound(err) {
		return ec2types.SecurityGroup{}, false, nil
	}
	if err != nil {
		return ec2types.SecurityGroup{}, false, fmt.Errorf("describing security group %s: %w", groupID, err)
	}
	if len(out.SecurityGroups) == 0 {
		return ec2types.SecurityGroup{}, false, nil
	}
	return out.SecurityGroups[0], true, nil
}

// rules splits EC2's permissions into single-port IPv4 rules and everything
// else (port ranges, IPv6, other groups, prefix lists), which Sync revokes.
func rules(perms []ec2types.IpPermission) (have []Rule, others []ec2types.IpPermission) {
	for _, p := range perms {
		proto := aws.ToString(p.IpProtocol)
		from, to := aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort)
		rest := p
		rest.IpRanges = nil
		if from == to && (proto == "tcp" || proto == "udp") {
			for _, r := range p.IpRanges {
				have = append(have, Rule{Protocol: proto, Port: from, CIDR: aws.ToString(r.CidrIp)})
			}
		} else {
			rest.IpRanges = p.IpRanges
		}
		if len(rest.IpRanges)+len(rest.Ipv6Ranges)+len(rest.UserIdGroupPairs)+len(rest.PrefixListIds) > 0 {
			others = append(others, rest)
		}
	}
	return have, others
}

func permissions(rs []Rule) []ec2types.IpPermission {
	out := make([]ec2types.IpPermission, 0, len(rs))
	for _, r := range rs {
		out = append(out, ec2types.IpPermission{
			IpProtocol: aws.String(r.Protocol), FromPort: aws.Int32(r.Port), ToPort: aws.Int32(r.Port),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String(r.CIDR), Description: aws.String("xdrive " + r.String())}},
		})
	}
	return out
}
