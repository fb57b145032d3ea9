package faultproxy_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// restore runs an instance whose /dev/sdf is restored from snap at rate (0: EBS's default), and returns that volume.
func (e *env) restore(t *testing.T, snap string, rate int32) string {
	t.Helper()
	in := e.runInput(t, ec2types.InstanceTypeT3Micro, "")
	ebs := &ec2types.EbsBlockDevice{SnapshotId: aws.String(snap), VolumeSize: aws.Int32(10), DeleteOnTermination: aws.Bool(false)}
	if rate > 0 {
		ebs.VolumeInitializationRate = aws.Int32(rate)
	}
	in.BlockDeviceMappings = []ec2types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sdf"), Ebs: ebs}}
	out, err := e.ec2.RunInstances(ctx(t), in)
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	vols, err := e.ec2.DescribeVolumes(ctx(t), &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{aws.ToString(out.Instances[0].InstanceId)}},
		{Name: aws.String("attachment.device"), Values: []string{"/dev/sdf"}},
	}})
	if err != nil || len(vols.Volumes) != 1 {
		t.Fatalf("DescribeVolumes: %v, %d volumes", err, len(vols.Volumes))
	}
	return aws.ToString(vols.Volumes[0].VolumeId)
}

func (e *env) initialization(t *testing.T, vol string) *ec2types.InitializationStatusDetails {
	t.Helper()
	out, err := e.ec2.DescribeVolumeStatus(ctx(t), &ec2.DescribeVolumeStatusInput{VolumeIds: []string{vol}})
	if err != nil || len(out.VolumeStatuses) != 1 {
		t.Fatalf("DescribeVolumeStatus: %v, %d items", err, len(out.VolumeStatuses))
	}
	return out.VolumeStatuses[0].InitializationStatusDetails
}

// The proxy answers DescribeVolumeStatus, which moto lacks, with the
// initialization of restored volumes: the provisioned rate of their restore, else the default.
func TestVolumeInitialization(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.proxy.SetInitialization(50, 0) // frozen at the start
	blank, err := e.ec2.CreateVolume(ctx(t), &ec2.CreateVolumeInput{AvailabilityZone: aws.String(zone), Size: aws.Int32(10)})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := e.ec2.CreateSnapshot(ctx(t), &ec2.CreateSnapshotInput{VolumeId: blank.VolumeId})
	if err != nil {
		t.Fatal(err)
	}
	provisioned := e.restore(t, aws.ToString(snap.SnapshotId), 300)
	lazy := e.restore(t, aws.ToString(snap.SnapshotId), 0)

	if got := e.initialization(t, aws.ToString(blank.VolumeId)); got != nil {
		t.Errorf("blank volume reports an initialization: %+v", got)
	}
	p := e.initialization(t, provisioned)
	if p == nil || p.InitializationType != ec2types.InitializationTypeProvisionedRate || aws.ToInt64(p.Progress) != 0 ||
		aws.ToInt64(p.EstimatedTimeToCompleteInSeconds) != 10*1024/300 {
		t.Errorf("provisioned restore: %+v, want provisioned-rate, 0%%, %d s left", p, 10*1024/300)
	}
	d := e.initialization(t, lazy)
	if d == nil || d.InitializationType != ec2types.InitializationTypeDefault || aws.ToInt64(d.Progress) != 0 || d.EstimatedTimeToCompleteInSeconds != nil {
		t.Errorf("default restore: %+v, want default, 0%%, no estimate", d)
	}

	e.proxy.SetInitialization(50, 1e9) // any time at all loads every block
	for _, vol := range []string{provisioned, lazy} {
		if got := e.initialization(t, vol); aws.ToInt64(got.Progress) != 100 {
			t.Errorf("%s: progress %d, want 100", vol, aws.ToInt64(got.Progress))
		}
	}
}
