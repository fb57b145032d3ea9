package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/test/moto"
)

// otherRegion is the demo's second region: the operator serves it besides
// moto.Region, and the class allows both.
const otherRegion = "us-west-2"

// withRegions lets the class place Workstations in both regions.
func (sc *scenario) withRegions() {
	if len(sc.class.Spec.Regions) == 0 {
		sc.class.Spec.Regions = []v1alpha1.ClassRegion{{Name: moto.Region}, {Name: otherRegion}}
	}
	var names []string
	for _, r := range sc.class.Spec.Regions {
		names = append(names, r.Name)
	}
	sc.out.Note("WorkstationClass %s: regions %s; the operator serves %s besides %s (--regions=%s); spot prices are higher there, so the Workstation stays in %s until step move",
		sc.class.Name, strings.Join(names, ", "), otherRegion, moto.Region, otherRegion, moto.Region)
}

// moveRegion: stopped, narrowed to the other region and started, the drive
// follows: its newest snapshot is copied there and restored, with the
// user's notes.
func (sc *scenario) moveRegion(ctx context.Context, _ *v1alpha1.XDrive, _ *v1alpha1.Workstation) error {
	sc.out.Step("move", "move to "+otherRegion+" (spec.state: Stopped, then spec.regions: ["+otherRegion+"] and spec.state: Running)")
	sc.out.Note("(the operator caches spot prices for 5 minutes, so the demo steers with spec.regions, as step c does with availabilityZones; a cheaper region, by more than the copy costs, draws a stopped Workstation the same way)")
	start := time.Now()
	if err := sc.updateWS(ctx, func(w *v1alpha1.Workstation) { w.Spec.State = v1alpha1.WorkstationStateStopped }); err != nil {
		return err
	}
	var d0 *v1alpha1.XDrive
	err := sc.waitFor(ctx, "the drive Archived in "+moto.Region+" and the Workstation Stopped", func() (bool, string, error) {
		w, x, err := sc.get(ctx)
		if err != nil {
			return false, "", err
		}
		d0 = x
		_, wr := v1alpha1.ReadyReason(w.Status.Conditions)
		return sc.driveReason(x) == v1alpha1.ReasonArchived && x.Status.VolumeID == "" && x.Status.LatestSnapshotID != "" &&
				wr == v1alpha1.ReasonStopped && w.Status.InstanceID == "",
			fmt.Sprintf("drive %s (volume %q), workstation %s", sc.driveReason(x), x.Status.VolumeID, wr), nil
	})
	if err != nil {
		return err
	}
	before := d0.Status.LatestSnapshotID
	sc.out.Progress("stopped: the drive's newest snapshot is %s, in %s", before, orRegion(d0.Status.Region))

	if err := sc.updateWS(ctx, func(w *v1alpha1.Workstation) {
		w.Spec.Regions = []string{otherRegion}
		w.Spec.AvailabilityZones = nil // step c's zones are in us-east-1
		w.Spec.State = v1alpha1.WorkstationStateRunning
	}); err != nil {
		return err
	}
	sc.out.Progress("the drive copies snapshot %s to %s, then the Workstation launches there; the fault proxy shows the copy pending for its first describes, as EC2 would, and the drive looks again every 10 s",
		before, otherRegion)
	w, d, err := sc.waitReady(ctx, "")
	if err != nil {
		return err
	}
	if w.Status.Region != otherRegion || d.Status.Region != otherRegion || !strings.HasPrefix(w.Status.AvailabilityZone, otherRegion) {
		return fmt.Errorf("after the move: Workstation in region %q (zone %s), drive in %q; want %s", w.Status.Region, w.Status.AvailabilityZone, d.Status.Region, otherRegion)
	}
	west := sc.st.EC2In(otherRegion)
	inst, err := west.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{w.Status.InstanceID}})
	if err != nil {
		return fmt.Errorf("describing instance %s in %s: %w", w.Status.InstanceID, otherRegion, err)
	}
	if len(inst.Reservations) != 1 {
		return fmt.Errorf("instance %s is not in %s", w.Status.InstanceID, otherRegion)
	}
	vols, err := west.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{d.Status.VolumeID}})
	if err != nil {
		return fmt.Errorf("describing volume %s in %s: %w", d.Status.VolumeID, otherRegion, err)
	}
	if len(vols.Volumes) != 1 {
		return fmt.Errorf("volume %s is not in %s", d.Status.VolumeID, otherRegion)
	}
	copyID := aws.ToString(vols.Volumes[0].SnapshotId)
	snaps, err := west.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{copyID}})
	if err != nil {
		return fmt.Errorf("describing snapshot %s in %s: %w", copyID, otherRegion, err)
	}
	if len(snaps.Snapshots) != 1 {
		return fmt.Errorf("snapshot %s, the restore of volume %s, is not in %s", copyID, d.Status.VolumeID, otherRegion)
	}
	tags := cloud.TagMap(snaps.Snapshots[0].Tags)
	if tags[cloud.TagCopiedFrom] != before || tags[cloud.TagCopiedFromRegion] != moto.Region {
		return fmt.Errorf("volume %s in %s is restored from %s, copied from %q in %q; want a copy of %s from %s",
			d.Status.VolumeID, otherRegion, copyID, tags[cloud.TagCopiedFrom], tags[cloud.TagCopiedFromRegion], before, moto.Region)
	}
	sc.out.Progress("volume %s in %s was restored from %s, a copy (%s=%s, %s=%s) of the drive's newest snapshot",
		d.Status.VolumeID, aws.ToString(vols.Volumes[0].AvailabilityZone), copyID, cloud.TagCopiedFrom, before, cloud.TagCopiedFromRegion, moto.Region)
	for _, e := range []struct{ kind, name, reason string }{
		{"Workstation", sc.ws, v1alpha1.ReasonMoving}, {"XDrive", sc.drive, v1alpha1.ReasonMoving}, {"XDrive", sc.drive, v1alpha1.ReasonMoved},
	} {
		events, err := sc.st.Events(ctx, e.kind, e.name)
		if err != nil {
			return err
		}
		for _, ev := range events {
			if ev.Reason == e.reason {
				sc.out.Progress("Event of %s %s: %s: %s", e.kind, e.name, ev.Reason, ev.Note)
			}
		}
	}
	for _, left := range d.Status.Elsewhere {
		sc.out.Progress("status.elsewhere: %s keeps snapshot %s until the drive is deleted", left.Region, left.LatestSnapshotID)
	}
	if err := sc.checkNotes(ctx, w); err != nil {
		return err
	}
	if err := sc.writeNote(ctx, w); err != nil {
		return err
	}
	sc.out.Done("move in %s: %s is Ready on %s (%s in %s); drive %s moved from %s with snapshot %s, copied as %s",
		since(start), sc.ws, w.Status.InstanceID, w.Status.InstanceType, w.Status.AvailabilityZone, sc.drive, moto.Region, before, copyID)
	return nil
}

// leftInOtherRegion lists what the cluster still has in the other region:
// instances not terminated, volumes, snapshots and security groups.
func (sc *scenario) leftInOtherRegion(ctx context.Context) ([]string, error) {
	west := sc.st.EC2In(otherRegion)
	cluster := []ec2types.Filter{cloud.TagFilter(cloud.TagCluster, sc.st.Cluster)}
	var left []string
	insts, err := west.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: cluster})
	if err != nil {
		return nil, fmt.Errorf("describing instances in %s: %w", otherRegion, err)
	}
	for _, r := range insts.Reservations {
		for _, in := range r.Instances {
			if in.State == nil || in.State.Name != ec2types.InstanceStateNameTerminated {
				left = append(left, "instance "+aws.ToString(in.InstanceId))
			}
		}
	}
	vols, err := west.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: cluster})
	if err != nil {
		return nil, fmt.Errorf("describing volumes in %s: %w", otherRegion, err)
	}
	for _, v := range vols.Volumes {
		left = append(left, "volume "+aws.ToString(v.VolumeId))
	}
	snaps, err := west.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: cluster})
	if err != nil {
		return nil, fmt.Errorf("describing snapshots in %s: %w", otherRegion, err)
	}
	for _, s := range snaps.Snapshots {
		left = append(left, "snapshot "+aws.ToString(s.SnapshotId))
	}
	groups, err := west.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: cluster})
	if err != nil {
		return nil, fmt.Errorf("describing security groups in %s: %w", otherRegion, err)
	}
	for _, g := range groups.SecurityGroups {
		left = append(left, "security group "+aws.ToString(g.GroupId))
	}
	return left, nil
}

// otherRegions names the regions besides moto.Region the demo uses: none with VMs.
func (sc *scenario) otherRegions() string {
	if sc.vm {
		return "no other region"
	}
	return otherRegion
}

func orRegion(r string) string {
	if r == "" {
		return moto.Region
	}
	return r
}
