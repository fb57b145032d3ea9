// Package instances launches, observes and terminates the operator's EC2 instances.
package instances

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/cloud"
)

// Instance states, as EC2 names them.
const (
	StatePending      = "pending"
	StateRunning      = "running"
	StateShuttingDown = "shutting-down"
	StateTerminated   = "terminated"
	StateStopping     = "stopping"
	StateStopped      = "stopped"
)

// Instance is what the operator needs to know of an EC2 instance.
type Instance struct {
	ID            string
	Type          string
	Zone          string
	State         string
	Spot          bool
	PrivateIP     string
	PublicIP      string
	LaunchTime    time.Time
	Tags          map[string]string
	DriveVolumeID string
	StateReason   string
}

// ReasonSpotTermination is the state reason of an instance EC2 reclaimed.
const ReasonSpotTermination = "Server.SpotInstanceTermination"

// Gone reports whether the instance is terminated or on its way there.
func (i Instance) Gone() bool { return i.State == StateShuttingDown || i.State == StateTerminated }

// Workstation returns the ns/name of the Workstation that owns the instance.
func (i Instance) Workstation() string { return i.Tags[cloud.TagWorkstation] }

func fromEC2(in ec2types.Instance) Instance {
	out := Instance{
		ID:         aws.ToString(in.InstanceId),
		Type:       string(in.InstanceType),
		PrivateIP:  aws.ToString(in.PrivateIpAddress),
		PublicIP:   aws.ToString(in.PublicIpAddress),
		LaunchTime: aws.ToTime(in.LaunchTime),
		Tags:       cloud.TagMap(in.Tags),
		Spot:       in.InstanceLifecycle == ec2types.InstanceLifecycleTypeSpot,
	}
	if in.Placement != nil {
		out.Zone = aws.ToString(in.Placement.AvailabilityZone)
	}
	if in.State != nil {
		out.State = string(in.State.Name)
	}
	if in.StateReason != nil {
		out.StateReason = aws.ToString(in.StateReason.Code)
	}
	for _, bdm := range in.BlockDeviceMappings {
		if aws.ToString(bdm.DeviceName) == bootstrap.DriveDevice && bdm.Ebs != nil {
			out.DriveVolumeID = aws.ToString(bdm.Ebs.VolumeId)
		}
	}
	return out
}
