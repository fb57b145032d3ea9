package drives

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/internal/cloud"
)

// CopyRequest describes a copy of a drive's snapshot from another region
// into the Service's region.
type CopyRequest struct {
	// Source is the snapshot to copy, as read in SourceRegion.
	Source       Snapshot
	SourceRegion string
	Drive        string // ns/name
	DriveUID     string
	DriveName    string
	// Encrypted encrypts the copy of an unencrypted snapshot; a copy of an
	// encrypted one is encrypted anyway.
	Encrypted bool
	// KMSKeyID is the key of the copy, in the Service's region; empty: EBS's
	// default key. It needs Encrypted.
	KMSKeyID string
}

// CopySnapshot copies the drive's snapshot from r.SourceRegion into this
// Service's region, unless a pending or completed copy of it made for the
// drive exists: CopySnapshot takes no client token, so the tags are the
// record that makes a retry after a crash safe. A failed copy of it made for
// the drive is deleted first: a copy whose answer was lost, then failed, is
// recorded nowhere else. The copy carries the source's taken-at, so it sorts
// by the writes it holds, not by when it was copied.
func (s *Service) CopySnapshot(ctx context.Context, r CopyRequest) (Snapshot, error) {
	copies, err := s.copiesOf(ctx, r.DriveUID, r.Source.ID, SnapshotPending, SnapshotCompleted, SnapshotError)
	if err != nil {
		return Snapshot{}, err
	}
	if existing, found := usableCopy(copies); found {
		return existing, nil
	}
	if err := s.deleteFailed(ctx, copies); err != nil {
		return Snapshot{}, err
	}
	takenAt := r.Source.takenAt().UTC()
	tagMap := map[string]string{
		cloud.TagCluster:          s.cluster,
		cloud.TagDrive:            r.Drive,
		cloud.TagName:             r.DriveName,
		cloud.TagTakenAt:          takenAt.Format(time.RFC3339Nano),
		cloud.TagCopiedFrom:       r.Source.ID,
		cloud.TagCopiedFromRegion: r.SourceRegion,
	}
	if r.DriveUID != "" {
		tagMap[cloud.TagDriveUID] = r.DriveUID
	}
	if c := r.Source.Tags[cloud.TagConsistency]; c != "" {
		tagMap[cloud.TagConsistency] = c
	}
	tags := cloud.Tags(tagMap)
	in := &ec2.CopySnapshotInput{
		SourceRegion:      aws.String(r.SourceRegion),
		SourceSnapshotId:  aws.String(r.Source.ID),
		Description:       aws.String(fmt.Sprintf("xdrive %s: copy of %s from %s, taken at %s", r.Drive, r.Source.ID, r.SourceRegion, takenAt.Format(time.RFC3339))),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot, Tags: tags}},
	}
	if r.Encrypted {
		in.Encrypted = aws.Bool(true)
	}
	if r.KMSKeyID != "" {
		in.KmsKeyId = aws.String(r.KMSKeyID)
	}
	out, err := s.api.CopySnapshot(ctx, in)
	if err != nil {
		return Snapshot{}, fmt.Errorf("copying snapshot %s from %s for drive %s: %w", r.Source.ID, r.SourceRegion, r.Drive, err)
	}
	// CopySnapshot answers with the ID alone; StartTime is this side's clock.
	return Snapshot{
		ID: aws.ToString(out.SnapshotId), State: SnapshotPending, Progress: "0%",
		StartTime: s.clock.Now().UTC(), SizeGiB: r.Source.SizeGiB, Tags: cloud.TagMap(tags),
	}, nil
}

// FindCopy returns the drive's pending or completed copy of the snapshot
// sourceID in this Service's region, a completed one first; a copy in error
// does not count.
func (s *Service) FindCopy(ctx context.Context, driveUID, sourceID string) (Snapshot, bool, error) {
	copies, err := s.copiesOf(ctx, driveUID, sourceID, SnapshotPending, SnapshotCompleted)
	if err != nil {
		return Snapshot{}, false, err
	}
	sn, found := usableCopy(copies)
	return sn, found, nil
}

// DeleteFailedCopies deletes the drive's copies of the snapshot sourceID in
// this Service's region that failed (state error): they hold nothing, and a
// copy whose CopySnapshot answer was lost is recorded only by its tags.
func (s *Service) DeleteFailedCopies(ctx context.Context, driveUID, sourceID string) error {
	copies, err := s.copiesOf(ctx, driveUID, sourceID, SnapshotError)
	if err != nil {
		return err
	}
	return s.deleteFailed(ctx, copies)
}

// copiesOf lists the drive's copies of the snapshot sourceID in this
// Service's region, in the given states: by the cluster's and the source's
// tags, and the drive's UID.
func (s *Service) copiesOf(ctx context.Context, driveUID, sourceID string, states ...string) ([]Snapshot, error) {
	list, err := s.describeSnapshots(ctx, &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters: []ec2types.Filter{
			cloud.TagFilter(cloud.TagCluster, s.cluster),
			cloud.TagFilter(cloud.TagCopiedFrom, sourceID),
			cloud.Filter("status", states...),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("finding the copies of %s for drive %s: %w", sourceID, driveUID, err)
	}
	return slices.DeleteFunc(list, func(sn Snapshot) bool { return sn.Tags[cloud.TagDriveUID] != driveUID }), nil
}

// usableCopy is the completed copy among copies, else a pending one.
func usableCopy(copies []Snapshot) (Snapshot, bool) {
	var pending *Snapshot
	for i, sn := range copies {
		switch {
		case sn.State == SnapshotCompleted:
			return sn, true
		case sn.State == SnapshotPending && pending == nil:
			pending = &copies[i]
		}
	}
	if pending == nil {
		return Snapshot{}, false
	}
	return *pending, true
}

// deleteFailed deletes the copies in error among copies.
func (s *Service) deleteFailed(ctx context.Context, copies []Snapshot) error {
	for _, sn := range copies {
		if sn.State != SnapshotError {
			continue
		}
		if err := s.DeleteSnapshot(ctx, sn); err != nil {
			return fmt.Errorf("deleting the failed copy %s of %s: %w", sn.ID, sn.Tags[cloud.TagCopiedFrom], err)
		}
	}
	return nil
}

// TakenAt is when the write the snapshot holds was taken (a copy keeps its source's).
func (s Snapshot) TakenAt() time.Time { return s.takenAt() }
