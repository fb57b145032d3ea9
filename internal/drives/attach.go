package drives

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/xdrive-io/xdrive/internal/cloud"
)

// Attach attaches a detached volume the cluster owns to an instance. AttachVolume
// takes no client token: the caller describes the volume first.
func (s *Service) Attach(ctx context.Context, v Volume, instanceID, device string) error {
	if err := cloud.RequireOwned(v.Tags, s.cluster, "attaching volume", v.ID); err != nil {
		return err
	}
	_, err := s.api.AttachVolume(ctx, &ec2.AttachVolumeInput{
		VolumeId: aws.String(v.ID), InstanceId: aws.String(instanceID), Device: aws.String(device),
	})
	if err != nil {
		return fmt.Errorf("attaching volume %s to %s: %w", v.ID, instanceID, err)
	}
	return nil
}

// Initialization is how far a restored volume has loaded its blocks.
type Initialization struct {
	// Percent is 0-100.
	Percent int32
	// Type is default, provisioned-rate or volume-copy.
	Type string
	// Left is EBS's estimate of the time to go, if Estimated (provisioned rate only).
	Left      time.Duration
	Estimated bool
}

// Initialization reports a volume's initialization; false when EBS reports
// none (a blank volume, or an API that does not model it).
func (s *Service) Initialization(ctx context.Context, volumeID string) (Initialization, bool, error) {
	out, err := s.api.DescribeVolumeStatus(ctx, &ec2.DescribeVolumeStatusInput{VolumeIds: []string{volumeID}})
	if err != nil {
		return Initialization{}, false, fmt.Errorf("describing the status of volume %s: %w", volumeID, err)
	}
	for _, item := range out.VolumeStatuses {
		d := item.InitializationStatusDetails
		if aws.ToString(item.VolumeId) != volumeID || d == nil || d.Progress == nil {
			continue
		}
		in := Initialization{Percent: int32(min(max(aws.ToInt64(d.Progress), 0), 100)), Type: string(d.InitializationType)}
		if d.EstimatedTimeToCompleteInSeconds != nil {
			in.Left, in.Estimated = time.Duration(aws.ToInt64(d.EstimatedTimeToCompleteInSeconds))*time.Second, true
		}
		return in, true, nil
	}
	return Initialization{}, false, nil
}
