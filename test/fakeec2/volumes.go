package fakeec2

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/internal/cloud"
)

// Volume states, as EC2 names them; deleted volumes are no longer listed.
const (
	VolumeAvailable = "available"
	VolumeInUse     = "in-use"
	VolumeDeleted   = "deleted"
)

// Volume modification states.
const (
	ModificationModifying  = "modifying"
	ModificationOptimizing = "optimizing"
	ModificationCompleted  = "completed"
)

// modificationsPerDay is how many modifications EC2 allows per volume in 24 hours.
const modificationsPerDay = 4

type volumeSpec struct {
	size                       int32
	volumeType, kmsKeyID       string
	iops, throughput, initRate *int32
	encrypted                  bool
	snap                       *snapshot // nil: blank
}

type volume struct {
	id, zone string
	volumeSpec
	createTime time.Time
	tags       map[string]string
	data       *Data
	// initialized is false while a volume restored from a snapshot loads its blocks.
	initialized bool

	attachedTo, device  string
	deleteOnTermination bool
	attachTime          time.Time
	deleted             bool
}

func (v *volume) state() string {
	switch {
	case v.deleted:
		return VolumeDeleted
	case v.attachedTo != "":
		return VolumeInUse
	}
	return VolumeAvailable
}

func (v *volume) snapshotID() string {
	if v.snap == nil {
		return ""
	}
	return v.snap.id
}

type modification struct {
	volumeID           string
	state              string
	original, target   volumeSpec
	startTime, endTime time.Time
}

func (f *Fake) createVolume(s volumeSpec, zone string, tags map[string]string) *volume {
	v := &volume{id: f.newID("vol"), zone: zone, volumeSpec: s, createTime: f.now(), tags: copyMap(tags), initialized: s.snap == nil}
	if s.snap != nil {
		v.data = s.snap.data
	}
	f.volumes.add(v.id, v)
	return v
}

var volumeKind = kind[volume]{
	id: func(v *volume) string { return v.id }, deleted: func(v *volume) bool { return v.deleted },
	notFound: codeVolumeNotFound, param: "VolumeId",
}

// liveVolumes returns the volumes not deleted, or those named by ids.
func (f *Fake) liveVolumes(ids []string) ([]*volume, error) { return f.volumes.live(volumeKind, ids) }

func (f *Fake) liveVolume(id string) (*volume, error) { return f.volumes.liveOne(volumeKind, id) }

var volumeSchema = schema[volume]{
	fields: map[string]func(*volume) []string{
		"volume-id":              func(v *volume) []string { return one(v.id) },
		"status":                 func(v *volume) []string { return one(v.state()) },
		"availability-zone":      func(v *volume) []string { return one(v.zone) },
		"snapshot-id":            func(v *volume) []string { return one(v.snapshotID()) },
		"volume-type":            func(v *volume) []string { return one(v.volumeType) },
		"size":                   func(v *volume) []string { return one(fmt.Sprint(v.size)) },
		"attachment.instance-id": func(v *volume) []string { return attachmentField(v, v.attachedTo) },
		"attachment.device":      func(v *volume) []string { return attachmentField(v, v.device) },
		"attachment.status":      func(v *volume) []string { return attachmentField(v, "attached") },
		"attachment.delete-on-termination": func(v *volume) []string {
			return attachmentField(v, fmt.Sprint(v.deleteOnTermination))
		},
	},
	tags: func(v *volume) map[string]string { return v.tags },
}

func attachmentField(v *volume, value string) []string {
	if v.attachedTo == "" {
		return nil
	}
	return one(value)
}

// DescribeVolumes lists the volumes that are not deleted.
func (f *Fake) DescribeVolumes(ctx context.Context, in *ec2.DescribeVolumesInput, _ ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error) {
	return call(ctx, f, "DescribeVolumes", func() (*ec2.DescribeVolumesOutput, error) {
		if err := checkMaxResults(in.MaxResults, in.VolumeIds, 5, 500); err != nil {
			return nil, err
		}
		list, err := f.liveVolumes(in.VolumeIds)
		if err != nil {
			return nil, err
		}
		if list, err = volumeSchema.filter(list, in.Filters); err != nil {
			return nil, err
		}
		out := &ec2.DescribeVolumesOutput{Volumes: []ec2types.Volume{}}
		for _, v := range list {
			out.Volumes = append(out.Volumes, describeVolume(v))
		}
		return out, nil
	})
}

func describeVolume(v *volume) ec2types.Volume {
	out := ec2types.Volume{
		VolumeId: aws.String(v.id), AvailabilityZone: aws.String(v.zone), State: ec2types.VolumeState(v.state()),
		Size: aws.Int32(v.size), VolumeType: ec2types.VolumeType(v.volumeType), Iops: v.iops, Throughput: v.throughput,
		Encrypted: aws.Bool(v.encrypted), SnapshotId: aws.String(v.snapshotID()), CreateTime: aws.Time(v.createTime),
		Tags: cloud.Tags(v.tags), VolumeInitializationRate: v.initRate, MultiAttachEnabled: aws.Bool(false),
	}
	if v.kmsKeyID != "" {
		out.KmsKeyId = aws.String(v.kmsKeyID)
	}
	if v.attachedTo != "" {
		out.Attachments = []ec2types.VolumeAttachment{{
			VolumeId: aws.String(v.id), InstanceId: aws.String(v.attachedTo), Device: aws.String(v.device),
			State: ec2types.VolumeAttachmentStateAttached, AttachTime: aws.Time(v.attachTime),
			DeleteOnTermination: aws.Bool(v.deleteOnTermination),
		}}
	}
	return out
}

// DeleteVolume deletes an available volume; an attached one fails with VolumeInUse.
func (f *Fake) DeleteVolume(ctx context.Context, in *ec2.DeleteVolumeInput, _ ...func(*ec2.Options)) (*ec2.DeleteVolumeOutput, error) {
	return call(ctx, f, "DeleteVolume", func() (*ec2.DeleteVolumeOutput, error) {
		v, err := f.liveVolume(aws.ToString(in.VolumeId))
		if err != nil {
			return nil, err
		}
		if v.attachedTo != "" {
			return nil, apiError(codeVolumeInUse, "Volume %s is currently attached to %s", v.id, v.attachedTo)
		}
		f.audit("DeleteVolume", v.id, v.tags)
		v.deleted = true
		return &ec2.DeleteVolumeOutput{}, nil
	})
}

// ModifyVolume changes the volume at once and starts a modification in state modifying.
func (f *Fake) ModifyVolume(ctx context.Context, in *ec2.ModifyVolumeInput, _ ...func(*ec2.Options)) (*ec2.ModifyVolumeOutput, error) {
	return call(ctx, f, "ModifyVolume", func() (*ec2.ModifyVolumeOutput, error) {
		v, err := f.liveVolume(aws.ToString(in.VolumeId))
		if err != nil {
			return nil, err
		}
		recent := 0
		for _, m := range f.modificationsOf(v.id) {
			if m.state != ModificationCompleted {
				return nil, apiError(codeModificationState, "Volume %s cannot be modified in modification state %s", v.id, strings.ToUpper(m.state))
			}
			if f.now().Sub(m.startTime) < 24*time.Hour {
				recent++
			}
		}
		if recent >= modificationsPerDay {
			return nil, apiError(codeModificationRate, "You've reached the maximum modification rate per volume limit.")
		}
		target := v.volumeSpec
		if in.Size != nil {
			if *in.Size < v.size {
				return nil, apiError(codeInvalidValue, "New size %d cannot be smaller than existing size %d", *in.Size, v.size)
			}
			target.size = *in.Size
		}
		if in.VolumeType != "" {
			target.volumeType = string(in.VolumeType)
		}
		if in.Iops != nil {
			target.iops = in.Iops
		}
		if in.Throughput != nil {
			target.throughput = in.Throughput
		}
		if sameShape(target, v.volumeSpec) {
			return nil, apiError(codeInvalidValue, "Volume %s already has the requested size, type, IOPS and throughput", v.id)
		}
		f.audit("ModifyVolume", v.id, v.tags)
		m := &modification{volumeID: v.id, state: ModificationModifying, original: v.volumeSpec, target: target, startTime: f.now()}
		f.modifications = append(f.modifications, m)
		v.volumeSpec = target
		return &ec2.ModifyVolumeOutput{VolumeModification: describeModification(m)}, nil
	})
}

func sameShape(a, b volumeSpec) bool {
	return a.size == b.size && a.volumeType == b.volumeType &&
		aws.ToInt32(a.iops) == aws.ToInt32(b.iops) && aws.ToInt32(a.throughput) == aws.ToInt32(b.throughput)
}

func (f *Fake) modificationsOf(volumeID string) []*modification {
	var out []*modification
	for _, m := range f.modifications {
		if m.volumeID == volumeID {
			out = append(out, m)
		}
	}
	return out
}

func describeModification(m *modification) *ec2types.VolumeModification {
	progress := map[string]int64{ModificationModifying: 0, ModificationOptimizing: 50, ModificationCompleted: 100}[m.state]
	out := &ec2types.VolumeModification{
		VolumeId: aws.String(m.volumeID), ModificationState: ec2types.VolumeModificationState(m.state),
		Progress: aws.Int64(progress), StartTime: aws.Time(m.startTime),
		OriginalSize: aws.Int32(m.original.size), TargetSize: aws.Int32(m.target.size),
		OriginalVolumeType: ec2types.VolumeType(m.original.volumeType), TargetVolumeType: ec2types.VolumeType(m.target.volumeType),
		OriginalIops: m.original.iops, TargetIops: m.target.iops,
		OriginalThroughput: m.original.throughput, TargetThroughput: m.target.throughput,
	}
	if m.state == ModificationCompleted {
		out.EndTime = aws.Time(m.endTime)
	}
	return out
}

var modificationSchema = schema[modification]{fields: map[string]func(*modification) []string{
	"volume-id":          func(m *modification) []string { return one(m.volumeID) },
	"modification-state": func(m *modification) []string { return one(m.state) },
}}

// DescribeVolumesModifications lists modifications. Naming a volume that was
// never modified fails with InvalidVolumeModification.NotFound, as in EC2.
func (f *Fake) DescribeVolumesModifications(ctx context.Context, in *ec2.DescribeVolumesModificationsInput, _ ...func(*ec2.Options)) (*ec2.DescribeVolumesModificationsOutput, error) {
	return call(ctx, f, "DescribeVolumesModifications", func() (*ec2.DescribeVolumesModificationsOutput, error) {
		volumes, err := f.liveVolumes(in.VolumeIds)
		if err != nil {
			return nil, err
		}
		var list []*modification
		for _, v := range volumes {
			mods := f.modificationsOf(v.id)
			if len(mods) == 0 && len(in.VolumeIds) > 0 {
				return nil, apiError(codeModificationNotFound, "Modification for volume '%s' does not exist.", v.id)
			}
			list = append(list, mods...)
		}
		if list, err = modificationSchema.filter(list, in.Filters); err != nil {
			return nil, err
		}
		out := &ec2.DescribeVolumesModificationsOutput{VolumesModifications: []ec2types.VolumeModification{}}
		for _, m := range list {
			out.VolumesModifications = append(out.VolumesModifications, *describeModification(m))
		}
		return out, nil
	})
}

var volumeStatusSchema = schema[volume]{fields: map[string]func(*volume) []string{
	"volume-id":         volumeSchema.fields["volume-id"],
	"availability-zone": volumeSchema.fields["availability-zone"],
}}

// DescribeVolumeStatus reports every volume as ok; a volume restored from a
// snapshot reports its initialization until VolumeInitialized is applied.
func (f *Fake) DescribeVolumeStatus(ctx context.Context, in *ec2.DescribeVolumeStatusInput, _ ...func(*ec2.Options)) (*ec2.DescribeVolumeStatusOutput, error) {
	return call(ctx, f, "DescribeVolumeStatus", func() (*ec2.DescribeVolumeStatusOutput, error) {
		if err := checkMaxResults(in.MaxResults, in.VolumeIds, 5, 1000); err != nil {
			return nil, err
		}
		list, err := f.liveVolumes(in.VolumeIds)
		if err != nil {
			return nil, err
		}
		if list, err = volumeStatusSchema.filter(list, in.Filters); err != nil {
			return nil, err
		}
		out := &ec2.DescribeVolumeStatusOutput{VolumeStatuses: []ec2types.VolumeStatusItem{}}
		for _, v := range list {
			item := ec2types.VolumeStatusItem{
				VolumeId: aws.String(v.id), AvailabilityZone: aws.String(v.zone),
				VolumeStatus: &ec2types.VolumeStatusInfo{Status: ec2types.VolumeStatusInfoStatusOk, Details: []ec2types.VolumeStatusDetails{
					{Name: ec2types.VolumeStatusNameIoEnabled, Status: aws.String("passed")},
					{Name: ec2types.VolumeStatusNameIoPerformance, Status: aws.String("not-applicable")},
				}},
			}
			if v.snap != nil {
				item.InitializationStatusDetails = initialization(v)
			}
			out.VolumeStatuses = append(out.VolumeStatuses, item)
		}
		return out, nil
	})
}

func initialization(v *volume) *ec2types.InitializationStatusDetails {
	out := &ec2types.InitializationStatusDetails{InitializationType: ec2types.InitializationTypeDefault, Progress: aws.Int64(0)}
	if v.initialized {
		out.Progress = aws.Int64(100)
	}
	if v.initRate != nil {
		out.InitializationType = ec2types.InitializationTypeProvisionedRate
		remaining := int64(0)
		if !v.initialized {
			remaining = int64(v.size) * 1024 / int64(*v.initRate)
		}
		out.EstimatedTimeToCompleteInSeconds = aws.Int64(remaining)
	}
	return out
}

// maxTags is the most tags an EC2 resource can have.
const maxTags = 50

// CreateTags adds or overwrites tags on instances, volumes and snapshots.
func (f *Fake) CreateTags(ctx context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	return call(ctx, f, "CreateTags", func() (*ec2.CreateTagsOutput, error) {
		if len(in.Resources) == 0 || len(in.Tags) == 0 {
			return nil, apiError(codeMissingParameter, "The request must contain the parameters Resources and Tags")
		}
		for _, t := range in.Tags {
			if strings.HasPrefix(aws.ToString(t.Key), "aws:") {
				return nil, apiError(codeInvalidValue, "Tag keys starting with 'aws:' are reserved")
			}
		}
		var targets []map[string]string
		for _, id := range in.Resources {
			tags, err := f.tagsOf(id)
			if err != nil {
				return nil, err
			}
			merged := copyMap(tags)
			maps.Copy(merged, cloud.TagMap(in.Tags))
			if len(merged) > maxTags {
				return nil, apiError(codeTagLimit, "Resource %s would have more than %d tags", id, maxTags)
			}
			targets = append(targets, tags)
		}
		for n, tags := range targets {
			f.audit("CreateTags", in.Resources[n], tags)
			maps.Copy(tags, cloud.TagMap(in.Tags))
		}
		return &ec2.CreateTagsOutput{}, nil
	})
}

// tagsOf returns the (mutable) tags of a listed instance, volume or snapshot.
func (f *Fake) tagsOf(id string) (map[string]string, error) {
	prefix, _, _ := strings.Cut(id, "-")
	switch prefix {
	case "i":
		list, err := f.listedInstances([]string{id})
		if err != nil {
			return nil, err
		}
		return list[0].tags, nil
	case "vol":
		v, err := f.liveVolume(id)
		if err != nil {
			return nil, err
		}
		return v.tags, nil
	case "snap":
		s, err := f.liveSnapshot(id)
		if err != nil {
			return nil, err
		}
		return s.tags, nil
	}
	return nil, apiError(codeInvalidID, "The ID '%s' is not valid", id)
}
