package fakeec2

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

const (
	codeZoneMismatch           = "InvalidVolume.ZoneMismatch"
	codeIncorrectInstanceState = "IncorrectInstanceState"
)

// AttachVolume attaches an available volume to a running instance in its zone,
// at once (EC2's "attaching" is skipped, as moto does).
func (f *Fake) AttachVolume(ctx context.Context, in *ec2.AttachVolumeInput, _ ...func(*ec2.Options)) (*ec2.AttachVolumeOutput, error) {
	return call(ctx, f, "AttachVolume", func() (*ec2.AttachVolumeOutput, error) {
		v, err := f.liveVolume(aws.ToString(in.VolumeId))
		if err != nil {
			return nil, err
		}
		i := f.instances.byID[aws.ToString(in.InstanceId)]
		device := aws.ToString(in.Device)
		switch {
		case i == nil:
			return nil, apiError(codeInstanceNotFound, "The instance ID '%s' does not exist", aws.ToString(in.InstanceId))
		case device == "":
			return nil, apiError(codeMissingParameter, "The request must contain the parameter device")
		case v.attachedTo != "":
			return nil, apiError(codeVolumeInUse, "%s is already attached to an instance", v.id)
		case i.state != StateRunning:
			return nil, apiError(codeIncorrectInstanceState, "Instance '%s' is not 'running'.", i.id)
		case i.zone != v.zone:
			return nil, apiError(codeZoneMismatch, "The volume '%s' is not in the same availability zone as instance '%s'", v.id, i.id)
		}
		for _, o := range f.attachedTo(i.id) {
			if o.device == device {
				return nil, apiError(codeInvalidValue, "Attachment point %s is already in use", device)
			}
		}
		f.audit("AttachVolume", v.id, v.tags)
		v.attachedTo, v.device, v.deleteOnTermination, v.attachTime = i.id, device, false, f.now()
		return &ec2.AttachVolumeOutput{VolumeId: aws.String(v.id), InstanceId: aws.String(i.id), Device: aws.String(device),
			State: ec2types.VolumeAttachmentStateAttached, AttachTime: aws.Time(v.attachTime)}, nil
	})
}
