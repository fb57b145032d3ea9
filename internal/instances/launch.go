package instances

import (
	"context"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/internal/batch"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/cloud"
)

// DriveVolume is how the drive's volume is created with the instance.
type DriveVolume struct {
	SnapshotID      string // empty: a blank volume
	SizeGiB         int32
	VolumeType      string
	IOPS            *int32
	ThroughputMiBps *int32
	Encrypted       bool
	KMSKeyID        string
	// InitializationRateMiBps is the provisioned rate of a restore; nil for EBS's default.
	InitializationRateMiBps *int32
	// Reattach creates no volume: the drive's released volume is attached after launch.
	Reattach bool
}

// LaunchRequest is one RunInstances for a Workstation.
type LaunchRequest struct {
	Workstation    string // ns/name
	WorkstationUID string
	Drive          string // ns/name
	DriveUID       string
	DriveName      string
	Offering       Offering
	ImageID        string
	// RootMapping, if set, makes the image's root volume end with the instance.
	RootMapping      *ec2types.BlockDeviceMapping
	UserData         []byte
	Volume           DriveVolume
	SecurityGroupIDs []string
	KeyName          string
	InstanceProfile  string
	MaxSpotPrice     string
	UserTags         map[string]string
	// Attempt makes the client token differ between launches of one
	// Workstation; it is tagged on the instance (its host key derives from it).
	Attempt int32
	// ContainersReachMetadata raises the IMDS hop limit from 1 to 2, so
	// containers on a bridge network reach IMDS (and the instance role).
	ContainersReachMetadata bool
}

// MetadataHopLimit is the IMDS hop limit of the launch: 1 unless containers
// must reach the instance metadata.
func (r LaunchRequest) MetadataHopLimit() int32 {
	if r.ContainersReachMetadata {
		return 2
	}
	return 1
}

// ClientToken is the idempotency token of this launch: the same launch,
// retried after a crash, gets the same token and so the same instance.
func (r LaunchRequest) ClientToken() string {
	return cloud.ClientToken("run", r.WorkstationUID, fmt.Sprint(r.Attempt), r.Offering.Key())
}

// Launcher starts and ends the operator's instances. It is their only writer.
type Launcher struct {
	API     cloud.InstancesAPI
	Cluster string
	// TerminateWindow, if set, gathers the terminations asked for while one
	// is under way into one TerminateInstances call (batch.NewEager): a mass
	// interruption spends a few tokens of EC2's mutating bucket, not one per
	// instance, and a lone termination waits for nothing.
	TerminateWindow time.Duration

	once         sync.Once
	terminations *batch.Batcher[struct{}]
}

// Launch runs one instance with the drive volume mapped at bootstrap.DriveDevice.
func (l *Launcher) Launch(ctx context.Context, r LaunchRequest) (Instance, error) {
	tags := map[string]string{}
	for k, v := range r.UserTags {
		tags[k] = v
	}
	tags[cloud.TagCluster] = l.Cluster
	tags[cloud.TagWorkstation] = r.Workstation
	tags[cloud.TagOwnerUID] = r.WorkstationUID
	tags[cloud.TagDrive] = r.Drive
	instanceTagMap := withName(tags, r.Workstation)
	instanceTagMap[cloud.TagLaunchAttempt] = fmt.Sprint(r.Attempt)
	instanceTags := cloud.Tags(instanceTagMap)
	volumeTagMap := withName(tags, r.DriveName)
	volumeTagMap[cloud.TagDriveUID] = r.DriveUID
	if r.Volume.SnapshotID != "" && !r.Volume.Reattach {
		volumeTagMap[cloud.TagDriveSnapshot] = r.Volume.SnapshotID
	}
	volumeTags := cloud.Tags(volumeTagMap)

	ebs := &ec2types.EbsBlockDevice{
		DeleteOnTermination: aws.Bool(false),
		VolumeSize:          aws.Int32(r.Volume.SizeGiB),
		VolumeType:          ec2types.VolumeType(r.Volume.VolumeType),
		Iops:                r.Volume.IOPS,
		Throughput:          r.Volume.ThroughputMiBps,
		Encrypted:           aws.Bool(r.Volume.Encrypted),
	}
	if r.Volume.SnapshotID != "" {
		ebs.SnapshotId = aws.String(r.Volume.SnapshotID)
		ebs.VolumeInitializationRate = r.Volume.InitializationRateMiBps
	}
	if r.Volume.KMSKeyID != "" {
		ebs.KmsKeyId = aws.String(r.Volume.KMSKeyID)
	}
	in := &ec2.RunInstancesInput{
		ClientToken:  aws.String(r.ClientToken()),
		ImageId:      aws.String(r.ImageID),
		InstanceType: ec2types.InstanceType(r.Offering.Type),
		MinCount:     aws.Int32(1),
		MaxCount:     aws.Int32(1),
		UserData:     aws.String(base64.StdEncoding.EncodeToString(r.UserData)),
		MetadataOptions: &ec2types.InstanceMetadataOptionsRequest{
			HttpTokens:              ec2types.HttpTokensStateRequired,
			HttpEndpoint:            ec2types.InstanceMetadataEndpointStateEnabled,
			HttpPutResponseHopLimit: aws.Int32(r.MetadataHopLimit()),
		},
		TagSpecifications: []ec2types.TagSpecification{
			{ResourceType: ec2types.ResourceTypeInstance, Tags: instanceTags},
			{ResourceType: ec2types.ResourceTypeVolume, Tags: volumeTags},
		},
		InstanceInitiatedShutdownBehavior: ec2types.ShutdownBehaviorTerminate,
	}
	if r.RootMapping != nil {
		in.BlockDeviceMappings = append(in.BlockDeviceMappings, *r.RootMapping)
	}
	if !r.Volume.Reattach {
		in.BlockDeviceMappings = append(in.BlockDeviceMappings, ec2types.BlockDeviceMapping{DeviceName: aws.String(bootstrap.DriveDevice), Ebs: ebs})
	}
	if r.Offering.SubnetID != "" {
		in.NetworkInterfaces = []ec2types.InstanceNetworkInterfaceSpecification{{
			DeviceIndex: aws.Int32(0), SubnetId: aws.String(r.Offering.SubnetID),
			Groups: r.SecurityGroupIDs, AssociatePublicIpAddress: aws.Bool(true),
		}}
	} else {
		in.Placement = &ec2types.Placement{AvailabilityZone: aws.String(r.Offering.Zone)}
		in.SecurityGroupIds = r.SecurityGroupIDs
	}
	if r.KeyName != "" {
		in.KeyName = aws.String(r.KeyName)
	}
	if r.InstanceProfile != "" {
		in.IamInstanceProfile = instanceProfile(r.InstanceProfile)
	}
	if r.Offering.Spot {
		spot := &ec2types.SpotMarketOptions{
			SpotInstanceType:             ec2types.SpotInstanceTypeOneTime,
			InstanceInterruptionBehavior: ec2types.InstanceInterruptionBehaviorTerminate,
		}
		if r.MaxSpotPrice != "" {
			spot.MaxPrice = aws.String(r.MaxSpotPrice)
		}
		in.InstanceMarketOptions = &ec2types.InstanceMarketOptionsRequest{
			MarketType: ec2types.MarketTypeSpot, SpotOptions: spot,
		}
	}
	out, err := l.API.RunInstances(ctx, in)
	if err != nil {
		return Instance{}, fmt.Errorf("running instance %s in %s: %w", r.Offering.Type, r.Offering.Zone, err)
	}
	if len(out.Instances) != 1 {
		return Instance{}, fmt.Errorf("running instance: EC2 returned %d instances", len(out.Instances))
	}
	inst := fromEC2(out.Instances[0])
	if inst.Tags[cloud.TagCluster] == "" {
		// RunInstances answers do not always echo tags.
		inst.Tags = cloud.TagMap(instanceTags)
	}
	return inst, nil
}

func withName(tags map[string]string, name string) map[string]string {
	out := make(map[string]string, len(tags)+1)
	for k, v := range tags {
		out[k] = v
	}
	out[cloud.TagName] = name
	return out
}

func instanceProfile(nameOrARN string) *ec2types.IamInstanceProfileSpecification {
	if len(nameOrARN) > 4 && nameOrARN[:4] == "arn:" {
		return &ec2types.IamInstanceProfileSpecification{Arn: aws.String(nameOrARN)}
	}
	return &ec2types.IamInstanceProfileSpecification{Name: aws.String(nameOrARN)}
}

// Terminate ends an instance the cluster owns. The caller passes the instance
// as last described, so ownership is checked without another call.
func (l *Launcher) Terminate(ctx context.Context, i Instance) error {
	if err := cloud.RequireOwned(i.Tags, l.Cluster, "terminating", i.ID); err != nil {
		return err
	}
	l.once.Do(func() { l.terminations = batch.NewEager(l.TerminateWindow, 1000, l.terminate) })
	if _, _, err := l.terminations.Get(ctx, i.ID); err != nil {
		return fmt.Errorf("terminating instance %s: %w", i.ID, err)
	}
	return nil
}

// terminate ends the instances in one call. EC2 refuses the whole call for
// one unknown ID, so then each is ended alone; an unknown one is gone already.
func (l *Launcher) terminate(ctx context.Context, ids []string) (map[string]struct{}, error) {
	_, err := l.API.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
	switch {
	case err == nil:
		return nil, nil
	case !cloud.IsNotFound(err):
		return nil, err
	case len(ids) == 1:
		return nil, nil // gone already
	}
	for _, id := range ids {
		if _, err := l.API.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil && !cloud.IsNotFound(err) {
			return nil, err
		}
	}
	return nil, nil
}
