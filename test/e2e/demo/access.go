package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/plugin"
)

// demoAccessCIDR is the network the demo opens SSH to (TEST-NET-3: documentation only).
const demoAccessCIDR = "203.0.113.0/24"

// withAccess gives the Workstation spec.access, so the operator makes its own security group.
func withAccess(ws *v1alpha1.Workstation) {
	if ws.Spec.Access == nil {
		ws.Spec.Access = &v1alpha1.WorkstationAccess{AllowedCIDRs: []string{demoAccessCIDR}}
	}
}

// access: the endpoints and the security group the operator publishes, and
// `kubectl xdrive ssh` through the loopback setup with the pinned host key.
func (sc *scenario) access(ctx context.Context, _ *v1alpha1.XDrive, _ *v1alpha1.Workstation) error {
	sc.out.Step("a2", "reach the Workstation: status.endpoints, its security group, kubectl xdrive ssh")
	start := time.Now()
	var w *v1alpha1.Workstation
	if err := sc.waitFor(ctx, "the host key and endpoints in status", func() (bool, string, error) {
		var err error
		w, _, err = sc.get(ctx)
		if err != nil {
			return false, "", err
		}
		return w.Status.SSH != nil && len(w.Status.Endpoints) > 0 && w.Status.SecurityGroup != nil,
			fmt.Sprintf("ssh %v, endpoints %v", w.Status.SSH != nil, w.Status.Endpoints), nil
	}); err != nil {
		return err
	}
	for _, e := range w.Status.Endpoints {
		sc.out.Progress("endpoint %s: %s", e.Name, e.URL)
	}
	if err := sc.showGroup(ctx, w.Status.SecurityGroup.ID); err != nil {
		return err
	}
	loopback, err := sc.inst.Resolve(ctx, w.Status.PublicIP)
	if err != nil {
		return err
	}
	var out, errOut bytes.Buffer
	args := []string{"ssh", sc.ws, "--operator-key", "--", agent.StatusCommand}
	sc.out.Progress("$ %s=%s=%s kubectl xdrive %s", plugin.AddressMapEnv, w.Status.PublicIP, loopback, strings.Join(args, " "))
	err = plugin.Run(ctx, plugin.Options{Client: sc.c, Namespace: namespace, Stdout: &out, Stderr: &errOut,
		AddressMap: map[string]string{w.Status.PublicIP: loopback}}, args)
	if err != nil {
		return fmt.Errorf("kubectl xdrive ssh: %w: %s", err, errOut.String())
	}
	sc.out.Raw("    %s\n", strings.TrimSpace(out.String()))
	sc.out.Done("a2 in %s: ssh checked host key %s from status.ssh (no trust on first use) and ran %s on %s",
		since(start), fingerprint(w.Status.SSH.HostPublicKey), agent.StatusCommand, w.Status.InstanceID)
	return nil
}

// showGroup prints the group's ingress rules as EC2 (moto) holds them.
func (sc *scenario) showGroup(ctx context.Context, id string) error {
	out, err := sc.st.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}})
	if err != nil || len(out.SecurityGroups) == 0 {
		return fmt.Errorf("describing security group %s: %w", id, err)
	}
	var rules []string
	for _, p := range out.SecurityGroups[0].IpPermissions {
		for _, r := range p.IpRanges {
			rules = append(rules, fmt.Sprintf("%s/%d from %s", aws.ToString(p.IpProtocol), aws.ToInt32(p.FromPort), aws.ToString(r.CidrIp)))
		}
	}
	sc.out.Progress("security group %s (%s): %s", id, aws.ToString(out.SecurityGroups[0].GroupName), strings.Join(rules, ", "))
	return nil
}

func fingerprint(authorizedKey string) string {
	f := strings.Fields(authorizedKey)
	if len(f) < 2 || len(f[1]) < 12 {
		return authorizedKey
	}
	return f[0] + " " + f[1][len(f[1])-12:]
}

// leftGroups are the operator's security groups still in moto; they go with their Workstation.
func (sc *scenario) leftGroups(ctx context.Context) ([]string, error) {
	out, err := sc.st.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{
		Filters: []ec2types.Filter{cloud.TagFilter(cloud.TagCluster, sc.st.Cluster)},
	})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, g := range out.SecurityGroups {
		ids = append(ids, aws.ToString(g.GroupId))
	}
	return ids, nil
}
