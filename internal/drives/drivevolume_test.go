package drives

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/internal/cloud"
)

// snapshotsByID answers DescribeSnapshots by ID from a fixed set; nothing else is called.
type snapshotsByID struct {
	cloud.VolumesAPI
	tags map[string]map[string]string
}

func (f snapshotsByID) DescribeSnapshots(_ context.Context, in *ec2.DescribeSnapshotsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error) {
	out := &ec2.DescribeSnapshotsOutput{}
	for _, flt := range in.Filters {
		for id, tags := range f.tags {
			if aws.ToString(flt.Name) == "snapshot-id" && slices.Contains(flt.Values, id) {
				out.Snapshots = append(out.Snapshots, ec2types.Snapshot{SnapshotId: aws.String(id), State: ec2types.SnapshotStateCompleted, Tags: cloud.Tags(tags)})
			}
		}
	}
	return out, nil
}

// TestIsDriveVolume: which of the volumes tagged with a drive's UID are the
// drive's. A fork's first volume is made from its source's snapshot, which
// is tagged for the source: the fork knows it by its source as a second
// owner, even once its status no longer names that snapshot (seeds
// 910002508, 920004727). A root volume's image snapshot is no drive's.
func TestIsDriveVolume(t *testing.T) {
	const device, fork, source = "/dev/sdf", "lab/fork", "lab/home"
	s := NewService(snapshotsByID{tags: map[string]map[string]string{
		"snap-fork":   {cloud.TagCluster: "c", cloud.TagDrive: fork},
		"snap-source": {cloud.TagCluster: "c", cloud.TagDrive: source},
		"snap-other":  {cloud.TagCluster: "c", cloud.TagDrive: "lab/other"},
		"snap-image":  {},
	}}, "c", 0, nil)
	for _, tc := range []struct {
		name   string
		v      Volume
		owners []string
		known  []string
		want   bool
	}{
		{"attached at the drive's device", Volume{AttachedTo: "i-1", Device: device, SnapshotID: "snap-image"}, []string{fork}, nil, true},
		{"attached elsewhere: the root", Volume{AttachedTo: "i-1", Device: "/dev/xvda", SnapshotID: "snap-fork"}, []string{fork}, nil, false},
		{"blank", Volume{}, []string{fork}, nil, true},
		{"from a known snapshot", Volume{SnapshotID: "snap-gone"}, []string{fork}, []string{"snap-gone"}, true},
		{"from a snapshot of the drive", Volume{SnapshotID: "snap-fork"}, []string{fork}, nil, true},
		{"fork's first volume, its source an owner", Volume{SnapshotID: "snap-source"}, []string{fork, source}, nil, true},
		{"source's snapshot, not a fork", Volume{SnapshotID: "snap-source"}, []string{fork}, nil, false},
		{"another drive's snapshot", Volume{SnapshotID: "snap-other"}, []string{fork, source}, nil, false},
		{"an image's snapshot: a kept root volume", Volume{SnapshotID: "snap-image"}, []string{fork, source}, []string{""}, false},
		{"from a snapshot EC2 no longer knows", Volume{SnapshotID: "snap-gone"}, []string{fork, source}, []string{""}, false},
		{"from the snapshot its launch named, gone", Volume{SnapshotID: "snap-gone", Tags: map[string]string{cloud.TagDriveSnapshot: "snap-gone"}},
			[]string{fork, source}, []string{""}, true},
		{"the root beside it, its image's snapshot", Volume{SnapshotID: "snap-image", Tags: map[string]string{cloud.TagDriveSnapshot: "snap-gone"}},
			[]string{fork, source}, []string{""}, false},
		{"the root, its image's snapshot gone", Volume{SnapshotID: "snap-image-gone", Tags: map[string]string{cloud.TagDriveSnapshot: "snap-gone"}},
			[]string{fork, source}, []string{""}, false},
	} {
		got, err := s.IsDriveVolume(context.Background(), tc.v, device, tc.owners, tc.known...)
		if err != nil || got != tc.want {
			t.Errorf("%s: IsDriveVolume = %t, %v; want %t", tc.name, got, err, tc.want)
		}
	}
}
