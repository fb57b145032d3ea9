package fakeec2

import (
	"context"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/internal/cloud"
)

// Snapshot states, as EC2 names them.
const (
	SnapshotPending   = "pending"
	SnapshotCompleted = "completed"
	SnapshotError     = "error"
)

type snapshot struct {
	id, volumeID, description string
	state, message            string
	size                      int32
	encrypted                 bool
	kmsKeyID                  string
	startTime, completionTime time.Time
	tags                      map[string]string
	data                      *Data
	deleted                   bool
	// sourceRegion and sourceID name the snapshot a copy was made from.
	sourceRegion, sourceID string
	// fails: a copy that ends in error (FailCopies).
	fails bool
}

func (s *snapshot) progress() string {
	if s.state == SnapshotCompleted {
		return "100%"
	}
	return "0%"
}

func (f *Fake) newSnapshot(volumeID string, size int32, tags map[string]string, data *Data) *snapshot {
	s := &snapshot{id: f.newID("snap"), volumeID: volumeID, state: SnapshotPending, size: size, startTime: f.now(), tags: copyMap(tags), data: data}
	f.snapshots.add(s.id, s)
	return s
}

var snapshotKind = kind[snapshot]{
	id: func(s *snapshot) string { return s.id }, deleted: func(s *snapshot) bool { return s.deleted },
	notFound: codeSnapshotNotFound, param: "SnapshotId",
}

func (f *Fake) liveSnapshots(ids []string) ([]*snapshot, error) {
	return f.snapshots.live(snapshotKind, ids)
}

func (f *Fake) liveSnapshot(id string) (*snapshot, error) {
	return f.snapshots.liveOne(snapshotKind, id)
}

// CreateSnapshot captures the volume's data now and starts a pending snapshot.
func (f *Fake) CreateSnapshot(ctx context.Context, in *ec2.CreateSnapshotInput, _ ...func(*ec2.Options)) (*ec2.CreateSnapshotOutput, error) {
	return call(ctx, f, "CreateSnapshot", func() (*ec2.CreateSnapshotOutput, error) {
		v, err := f.liveVolume(aws.ToString(in.VolumeId))
		if err != nil {
			return nil, err
		}
		f.audit("CreateSnapshot", v.id, v.tags)
		s := f.newSnapshot(v.id, v.size, tagsFor(in.TagSpecifications, ec2types.ResourceTypeSnapshot), v.data)
		s.description, s.encrypted, s.kmsKeyID = aws.ToString(in.Description), v.encrypted, v.kmsKeyID
		d := f.describeSnapshot(s)
		return &ec2.CreateSnapshotOutput{
			SnapshotId: d.SnapshotId, VolumeId: d.VolumeId, State: d.State, Progress: d.Progress, StartTime: d.StartTime,
			VolumeSize: d.VolumeSize, Description: d.Description, Encrypted: d.Encrypted, KmsKeyId: d.KmsKeyId,
			OwnerId: d.OwnerId, Tags: d.Tags, StorageTier: d.StorageTier,
		}, nil
	})
}

func (f *Fake) describeSnapshot(s *snapshot) ec2types.Snapshot {
	out := ec2types.Snapshot{
		SnapshotId: aws.String(s.id), VolumeId: aws.String(s.volumeID), State: ec2types.SnapshotState(s.state),
		Progress: aws.String(s.progress()), StartTime: aws.Time(s.startTime), VolumeSize: aws.Int32(s.size),
		Description: aws.String(s.description), Encrypted: aws.Bool(s.encrypted), OwnerId: aws.String(f.opts.OwnerID),
		Tags: cloud.Tags(s.tags), StorageTier: ec2types.StorageTierStandard,
	}
	if s.kmsKeyID != "" {
		out.KmsKeyId = aws.String(s.kmsKeyID)
	}
	if s.message != "" {
		out.StateMessage = aws.String(s.message)
	}
	if s.state == SnapshotCompleted {
		out.CompletionTime = aws.Time(s.completionTime)
	}
	return out
}

var snapshotSchema = schema[snapshot]{
	fields: map[string]func(*snapshot) []string{
		"snapshot-id": func(s *snapshot) []string { return one(s.id) },
		"volume-id":   func(s *snapshot) []string { return one(s.volumeID) },
		"status":      func(s *snapshot) []string { return one(s.state) },
		"progress":    func(s *snapshot) []string { return one(s.progress()) },
		"description": func(s *snapshot) []string { return one(s.description) },
	},
	tags: func(s *snapshot) map[string]string { return s.tags },
}

// DescribeSnapshots lists the account's snapshots that are not deleted.
// OwnerIds may be "self" or the account ID; other owners have none.
func (f *Fake) DescribeSnapshots(ctx context.Context, in *ec2.DescribeSnapshotsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error) {
	return call(ctx, f, "DescribeSnapshots", func() (*ec2.DescribeSnapshotsOutput, error) {
		if err := checkMaxResults(in.MaxResults, in.SnapshotIds, 5, 1000); err != nil {
			return nil, err
		}
		list, err := f.liveSnapshots(in.SnapshotIds)
		if err != nil {
			return nil, err
		}
		if list, err = snapshotSchema.filter(list, in.Filters); err != nil {
			return nil, err
		}
		out := &ec2.DescribeSnapshotsOutput{Snapshots: []ec2types.Snapshot{}}
		if len(in.OwnerIds) > 0 && !slices.Contains(in.OwnerIds, "self") && !slices.Contains(in.OwnerIds, f.opts.OwnerID) {
			return out, nil
		}
		for _, s := range list {
			if s.id == ImageSnapshotID && !slices.Contains(in.SnapshotIds, s.id) {
				continue // Amazon's, not the account's: only named ones are listed
			}
			out.Snapshots = append(out.Snapshots, f.describeSnapshot(s))
		}
		return out, nil
	})
}

// DeleteSnapshot deletes a snapshot, pending ones included.
func (f *Fake) DeleteSnapshot(ctx context.Context, in *ec2.DeleteSnapshotInput, _ ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error) {
	return call(ctx, f, "DeleteSnapshot", func() (*ec2.DeleteSnapshotOutput, error) {
		s, err := f.liveSnapshot(aws.ToString(in.SnapshotId))
		if err != nil {
			return nil, err
		}
		f.audit("DeleteSnapshot", s.id, s.tags)
		s.deleted = true
		return &ec2.DeleteSnapshotOutput{}, nil
	})
}
