package securitygroup

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/xdrive-io/xdrive/internal/cloud"
)

// fakeAPI holds one security group and records the calls that change it.
type fakeAPI struct {
	cloud.SecurityGroupsAPI
	group            ec2types.SecurityGroup
	createErr        error
	revoked, allowed []ec2types.IpPermission
	deleted          bool
}

func (f *fakeAPI) DescribeSecurityGroups(_ context.Context, _ *ec2.DescribeSecurityGroupsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	return &ec2.DescribeSecurityGroupsOutput{SecurityGroups: []ec2types.SecurityGroup{f.group}}, nil
}

func (f *fakeAPI) CreateSecurityGroup(_ context.Context, _ *ec2.CreateSecurityGroupInput, _ ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error) {
	return &ec2.CreateSecurityGroupOutput{GroupId: aws.String("sg-new")}, f.createErr
}

func (f *fakeAPI) RevokeSecurityGroupIngress(_ context.Context, in *ec2.RevokeSecurityGroupIngressInput, _ ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error) {
	f.revoked = append(f.revoked, in.IpPermissions...)
	return &ec2.RevokeSecurityGroupIngressOutput{}, nil
}

func (f *fakeAPI) AuthorizeSecurityGroupIngress(_ context.Context, in *ec2.AuthorizeSecurityGroupIngressInput, _ ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
	f.allowed = append(f.allowed, in.IpPermissions...)
	return &ec2.AuthorizeSecurityGroupIngressOutput{}, nil
}

func (f *fakeAPI) DeleteSecurityGroup(_ context.Context, _ *ec2.DeleteSecurityGroupInput, _ ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error) {
	f.deleted = true
	return &ec2.DeleteSecurityGroupOutput{}, nil
}

func perm(proto string, from, to int32) ec2types.IpPermission {
	return ec2types.IpPermission{IpProtocol: aws.String(proto), FromPort: aws.Int32(from), ToPort: aws.Int32(to)}
}

func group(cluster string, perms ...ec2types.IpPermission) ec2types.SecurityGroup {
	return ec2types.SecurityGroup{GroupId: aws.String("sg-1"), GroupName: aws.String("xdrive-ns-dev-12345678"), IpPermissions: perms,
		Tags: cloud.Tags(map[string]string{cloud.TagCluster: cluster, cloud.TagOwnerUID: "12345678-uid"})}
}

// Sync keeps the wanted single-port IPv4 rules, adds the missing one, and
// revokes everything else: another CIDR, a port range, IPv6, another group.
func TestSyncRevokesEverythingElse(t *testing.T) {
	ssh := perm("tcp", 22, 22)
	ssh.IpRanges = []ec2types.IpRange{{CidrIp: aws.String("203.0.113.0/24")}, {CidrIp: aws.String("0.0.0.0/0")}}
	ssh.Ipv6Ranges = []ec2types.Ipv6Range{{CidrIpv6: aws.String("::/0")}}
	span := perm("tcp", 1000, 2000)
	span.IpRanges = []ec2types.IpRange{{CidrIp: aws.String("203.0.113.0/24")}}
	peer := perm("-1", 0, 0)
	peer.UserIdGroupPairs = []ec2types.UserIdGroupPair{{GroupId: aws.String("sg-other")}}
	api := &fakeAPI{group: group("c1", ssh, span, peer)}
	s := &Service{API: api, Cluster: "c1"}
	want := []Rule{{"tcp", 22, "203.0.113.0/24"}, {"tcp", 8888, "203.0.113.0/24"}}
	added, revoked, err := s.Sync(context.Background(), "sg-1", want)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(added, want[1:]) || !slices.Equal(revoked, []Rule{{"tcp", 22, "0.0.0.0/0"}}) {
		t.Errorf("added %v, revoked %v", added, revoked)
	}
	var ipv6, spans, peers int
	for _, p := range api.revoked {
		ipv6 += len(p.Ipv6Ranges)
		peers += len(p.UserIdGroupPairs)
		if aws.ToInt32(p.FromPort) == 1000 {
			spans++
		}
	}
	if len(api.revoked) != 4 || ipv6 != 1 || spans != 1 || peers != 1 {
		t.Errorf("revoked %d permissions (IPv6 %d, ranges %d, groups %d); want the extra CIDR, the IPv6 range, the port range and the group", len(api.revoked), ipv6, spans, peers)
	}
	if len(api.allowed) != 1 || aws.ToInt32(api.allowed[0].FromPort) != 8888 {
		t.Errorf("authorized %+v, want tcp/8888", api.allowed)
	}
}

// A group without this cluster's tag is never changed or deleted.
func TestForeignGroupUntouched(t *testing.T) {
	api := &fakeAPI{group: group("other", perm("tcp", 22, 22))}
	s := &Service{API: api, Cluster: "c1"}
	if _, _, err := s.Sync(context.Background(), "sg-1", nil); !errors.Is(err, cloud.ErrNotOwned) {
		t.Errorf("Sync of a foreign group: %v, want ErrNotOwned", err)
	}
	if err := s.Delete(context.Background(), "sg-1"); !errors.Is(err, cloud.ErrNotOwned) {
		t.Errorf("Delete of a foreign group: %v, want ErrNotOwned", err)
	}
	if len(api.revoked)+len(api.allowed) > 0 || api.deleted {
		t.Errorf("foreign group changed: revoked %v, authorized %v, deleted %t", api.revoked, api.allowed, api.deleted)
	}
}

// A create repeated after a crash finds the group by name, if it is ours;
// one of that name without our tags is refused, not adopted.
func TestEnsureAfterDuplicate(t *testing.T) {
	dup := &smithy.GenericAPIError{Code: "InvalidGroup.Duplicate", Message: "exists"}
	o := Owner{Workstation: "ns/dev", UID: "12345678-uid", VPCID: "vpc-1"}
	empty := &fakeAPI{createErr: dup}
	// The first lookup by tags sees nothing (eventual consistency), the one by name sees the group.
	api := &sequenceAPI{fakeAPI: empty, answers: [][]ec2types.SecurityGroup{nil, {group("c1")}}}
	id, err := (&Service{API: api, Cluster: "c1"}).Ensure(context.Background(), o)
	if err != nil || id != "sg-1" {
		t.Errorf("Ensure after a duplicate: %q, %v; want sg-1", id, err)
	}
	api = &sequenceAPI{fakeAPI: &fakeAPI{createErr: dup}, answers: [][]ec2types.SecurityGroup{nil, {group("other")}}}
	if id, err := (&Service{API: api, Cluster: "c1"}).Ensure(context.Background(), o); !errors.Is(err, cloud.ErrNotOwned) {
		t.Errorf("Ensure with a foreign group of the same name: %q, %v; want ErrNotOwned", id, err)
	}
}

// sequenceAPI answers DescribeSecurityGroups from a list, one answer per call.
type sequenceAPI struct {
	*fakeAPI
	answers [][]ec2types.SecurityGroup
}

func (s *sequenceAPI) DescribeSecurityGroups(_ context.Context, _ *ec2.DescribeSecurityGroupsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	var out []ec2types.SecurityGroup
	if len(s.answers) > 0 {
		out, s.answers = s.answers[0], s.answers[1:]
	}
	return &ec2.DescribeSecurityGroupsOutput{SecurityGroups: out}, nil
}
