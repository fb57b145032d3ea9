package drives_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/drives"
	"github.com/xdrive-io/xdrive/test/moto"
)

func TestMain(m *testing.M) { moto.Main(m) }

// TestCopySnapshotMoto copies a drive's snapshot from us-east-1 into
// us-west-2 over the wire: the request and its tags are what EC2 accepts,
// the lookup by tags finds the copy again, and only the target region has it.
func TestCopySnapshotMoto(t *testing.T) {
	ctx := context.Background()
	srv := moto.Shared(t)
	cfg := moto.Config(srv.URL, moto.NewAccount())
	east := ec2.NewFromConfig(cfg)
	west := ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.Region = "us-west-2" })
	eastSvc, westSvc := drives.NewService(east, "c", 0, nil), drives.NewService(west, "c", 0, nil)

	vol, err := east.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(20),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeVolume, Tags: cloud.Tags(map[string]string{cloud.TagCluster: "c"})}}})
	if err != nil {
		t.Fatal(err)
	}
	source, err := eastSvc.CreateSnapshot(ctx, drives.SnapshotRequest{VolumeID: aws.ToString(vol.VolumeId), Drive: "ns/d", DriveUID: "uid-1", DriveName: "d", Consistency: "Flushed"})
	if err != nil {
		t.Fatal(err)
	}
	if source, _, err = eastSvc.Snapshot(ctx, source.ID); err != nil || source.State != drives.SnapshotCompleted {
		t.Fatalf("source %+v, %v; moto completes snapshots at once", source, err)
	}

	req := drives.CopyRequest{Source: source, SourceRegion: "us-east-1", Drive: "ns/d", DriveUID: "uid-1", DriveName: "d"}
	cp, err := westSvc.CopySnapshot(ctx, req)
	if err != nil || cp.ID == "" || cp.ID == source.ID {
		t.Fatalf("CopySnapshot = %+v, %v", cp, err)
	}
	again, err := westSvc.CopySnapshot(ctx, req)
	if err != nil || again.ID != cp.ID {
		t.Errorf("retry = %+v, %v; want %s found by its tags", again, err, cp.ID)
	}
	list, err := westSvc.DriveSnapshots(ctx, "ns/d", "uid-1")
	if err != nil || len(list) != 1 || list[0].ID != cp.ID {
		t.Fatalf("us-west-2's snapshots of the drive = %+v, %v; want the copy alone", list, err)
	}
	got := list[0]
	if got.Tags[cloud.TagCopiedFrom] != source.ID || got.Tags[cloud.TagCopiedFromRegion] != "us-east-1" ||
		got.Tags[cloud.TagTakenAt] != source.Tags[cloud.TagTakenAt] || got.Tags[cloud.TagConsistency] != "Flushed" {
		t.Errorf("copy's tags %v", got.Tags)
	}
	if !got.StartTime.After(time.Time{}) || got.State == drives.SnapshotError {
		t.Errorf("copy described as %+v", got)
	}
	if _, found, err := eastSvc.FindCopy(ctx, "uid-1", source.ID); found || err != nil {
		t.Errorf("us-east-1 found the copy: %v, %v", found, err)
	}
}
