package drives_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/drives"
	"github.com/xdrive-io/xdrive/test/fakeec2"
)

// regions is a drive's source snapshot in us-east-1 and a Service in eu-west-1.
type regions struct {
	east, west       *fakeec2.Fake
	eastSvc, westSvc *drives.Service
	clk              *clocktesting.FakeClock
	source           drives.Snapshot
	req              drives.CopyRequest
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newRegions(t *testing.T) *regions {
	t.Helper()
	r := &regions{clk: clocktesting.NewFakeClock(epoch)}
	r.east = fakeec2.New(fakeec2.Options{Cluster: "c", Now: r.clk.Now})
	r.west = fakeec2.New(fakeec2.Options{Cluster: "c", Region: "eu-west-1", Now: r.clk.Now})
	fakeec2.Link(r.east, r.west)
	r.eastSvc, r.westSvc = drives.NewService(r.east, "c", 0, r.clk), drives.NewService(r.west, "c", 0, r.clk)
	r.source = r.snapshot(t, r.east, r.eastSvc)
	r.req = drives.CopyRequest{Source: r.source, SourceRegion: "us-east-1", Drive: "ns/d", DriveUID: "uid-1", DriveName: "d"}
	return r
}

// snapshot takes a completed Flushed snapshot of a new volume of the drive ns/d in the region.
func (r *regions) snapshot(t *testing.T, f *fakeec2.Fake, svc *drives.Service) drives.Snapshot {
	t.Helper()
	vol, err := f.SeedVolume(f.Region()+"a", 20, map[string]string{cloud.TagCluster: "c"})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := svc.CreateSnapshot(context.Background(), drives.SnapshotRequest{
		VolumeID: vol, Drive: "ns/d", DriveUID: "uid-1", DriveName: "d", Consistency: "Flushed"})
	if err != nil {
		t.Fatal(err)
	}
	f.Settle()
	sn, _, err = svc.Snapshot(context.Background(), sn.ID)
	if err != nil || sn.State != drives.SnapshotCompleted {
		t.Fatalf("snapshot %+v, %v; want completed", sn, err)
	}
	return sn
}

func (r *regions) copy(t *testing.T, req drives.CopyRequest) drives.Snapshot {
	t.Helper()
	sn, err := r.westSvc.CopySnapshot(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return sn
}

// TestCopySnapshotTags: the copy carries the drive's ownership, the source's
// taken-at and consistency, and where it came from; the Service reads it as
// any snapshot of the drive, pending then completed.
func TestCopySnapshotTags(t *testing.T) {
	ctx := context.Background()
	r := newRegions(t)
	r.clk.Step(time.Hour)
	sn := r.copy(t, r.req)
	want := map[string]string{
		cloud.TagCluster: "c", cloud.TagDrive: "ns/d", cloud.TagDriveUID: "uid-1", cloud.TagName: "d",
		cloud.TagTakenAt: r.source.Tags[cloud.TagTakenAt], cloud.TagConsistency: "Flushed",
		cloud.TagCopiedFrom: r.source.ID, cloud.TagCopiedFromRegion: "us-east-1",
	}
	for k, v := range want {
		if sn.Tags[k] != v {
			t.Errorf("answered tag %s = %q, want %q", k, sn.Tags[k], v)
		}
	}
	view := r.west.Snapshots()[0]
	for k, v := range want {
		if view.Tags[k] != v {
			t.Errorf("copy's tag %s = %q, want %q", k, view.Tags[k], v)
		}
	}
	if len(view.Tags) != len(want) || view.SizeGiB != 20 || view.SourceID != r.source.ID || sn.State != drives.SnapshotPending || sn.SizeGiB != 20 {
		t.Errorf("copy %+v answered as %+v; want only the tags %v, 20 GiB, pending", view, sn, want)
	}
	got, found, err := r.westSvc.Snapshot(ctx, sn.ID)
	if !found || err != nil || got.State != drives.SnapshotPending || got.Progress != "0%" {
		t.Errorf("Snapshot(copy) = %+v, %v, %v; want pending 0%%", got, found, err)
	}
	r.west.Settle()
	list, err := r.westSvc.DriveSnapshots(ctx, "ns/d", "uid-1")
	if err != nil || len(list) != 1 || list[0].ID != sn.ID || list[0].State != drives.SnapshotCompleted || list[0].Progress != "100%" {
		t.Errorf("DriveSnapshots = %+v, %v; want the completed copy", list, err)
	}
	if d := r.west.Snapshots()[0].Description; !strings.Contains(d, r.source.ID) {
		t.Errorf("description %q does not name the source", d)
	}
}

// TestCopySnapshotRetries: a copy is looked up by its tags before copying,
// so a retry after a crash or a lost answer finds it again; a copy in error,
// or another drive's copy of the same snapshot, is no copy of this drive.
func TestCopySnapshotRetries(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		before func(*testing.T, *regions) // what the first attempt left
		copies int                        // CopySnapshot calls in all, with the retry
		found  int                        // which of the copies the retry returns
	}{
		"crash after the copy": {func(t *testing.T, r *regions) { r.copy(t, r.req) }, 1, 0},
		"completed copy": {func(t *testing.T, r *regions) {
			r.copy(t, r.req)
			r.west.Settle()
		}, 1, 0},
		"answer lost": {func(t *testing.T, r *regions) {
			r.west.InjectError("CopySnapshot", "InternalError", true, 1)
			if _, err := r.westSvc.CopySnapshot(ctx, r.req); cloud.Classify(err) != cloud.KindServerError {
				t.Fatalf("lost answer: %v", err)
			}
		}, 1, 0},
		"copy in error": {func(t *testing.T, r *regions) {
			r.west.FailCopies(1)
			failed := r.copy(t, r.req)
			r.west.Settle()
			if sn, found, err := r.westSvc.Snapshot(ctx, failed.ID); !found || err != nil || sn.State != drives.SnapshotError {
				t.Fatalf("failed copy read as %+v, %v, %v; want error", sn, found, err)
			}
		}, 2, 1},
		"another drive's failed copy": {func(t *testing.T, r *regions) {
			other := r.req
			other.DriveUID, other.Drive = "uid-2", "ns/e"
			r.west.FailCopies(1)
			r.copy(t, other)
			r.west.Settle()
		}, 2, 1},
		"another drive's copy": {func(t *testing.T, r *regions) {
			other := r.req
			other.DriveUID, other.Drive = "uid-2", "ns/e"
			r.copy(t, other)
		}, 2, 1},
		"copy of another snapshot": {func(t *testing.T, r *regions) {
			other := r.req
			other.Source = r.snapshot(t, r.east, r.eastSvc)
			r.copy(t, other)
		}, 2, 1},
	} {
		t.Run(name, func(t *testing.T) {
			r := newRegions(t)
			tc.before(t, r)
			sn, err := r.westSvc.CopySnapshot(ctx, r.req)
			all := r.west.Snapshots()
			if err != nil || len(all) != tc.copies || r.west.Calls()["CopySnapshot"] != tc.copies || sn.ID != all[tc.found].ID {
				t.Fatalf("retry = %+v, %v with %d copies after %d calls; want copy %d of %d", sn, err, len(all), r.west.Calls()["CopySnapshot"], tc.found, tc.copies)
			}
			got, found, err := r.westSvc.FindCopy(ctx, "uid-1", r.source.ID)
			if err != nil || !found || got.ID != sn.ID {
				t.Errorf("FindCopy = %+v, %v, %v; want %s", got, found, err, sn.ID)
			}
			// A failed copy of the drive's is deleted by the retry; nothing else of it, nor anyone else's.
			for _, c := range all {
				if failedOwn := c.State == drives.SnapshotError && c.Tags[cloud.TagDriveUID] == "uid-1"; c.Deleted != failedOwn {
					t.Errorf("copy %s (%s, drive %s) deleted=%v after the retry", c.ID, c.State, c.Tags[cloud.TagDriveUID], c.Deleted)
				}
			}
		})
	}
}

// TestFindCopy: nothing is found before a copy; a completed copy is
// preferred to a pending one; errors say what was looked for.
func TestFindCopy(t *testing.T) {
	ctx := context.Background()
	r := newRegions(t)
	if _, found, err := r.westSvc.FindCopy(ctx, "uid-1", r.source.ID); found || err != nil {
		t.Fatalf("FindCopy before any copy: found=%v, %v", found, err)
	}
	first := r.copy(t, r.req)
	r.west.Settle()
	r.west.InjectError("DescribeSnapshots", "InternalError", false, 1)
	if _, _, err := r.westSvc.FindCopy(ctx, "uid-1", r.source.ID); err == nil || !strings.Contains(err.Error(), r.source.ID) {
		t.Errorf("FindCopy's error %v does not name the source", err)
	}
	// a second, pending copy, as two racing operators would leave: the completed one counts
	if _, err := r.west.CopySnapshot(ctx, &ec2.CopySnapshotInput{
		SourceRegion: aws.String("us-east-1"), SourceSnapshotId: aws.String(r.source.ID),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot, Tags: cloud.Tags(first.Tags)}},
	}); err != nil {
		t.Fatal(err)
	}
	if got, found, err := r.westSvc.FindCopy(ctx, "uid-1", r.source.ID); err != nil || !found || got.ID != first.ID {
		t.Errorf("FindCopy = %+v, %v, %v; want the completed %s", got, found, err, first.ID)
	}
	r.west.InjectError("CopySnapshot", "InvalidSnapshot.NotFound", false, 1)
	other := r.req
	other.Source.ID = "snap-0000000000000dead"
	if _, err := r.westSvc.CopySnapshot(ctx, other); !cloud.IsNotFound(err) || !strings.Contains(err.Error(), "snap-0000000000000dead") || !strings.Contains(err.Error(), "us-east-1") {
		t.Errorf("copying a missing snapshot: %v; want NotFound naming it and its region", err)
	}
}

// TestCopiesSortByTakenAt: a copy sorts by when its source was taken, among
// the drive's snapshots of the target region, and retention prunes by it.
func TestCopiesSortByTakenAt(t *testing.T) {
	ctx := context.Background()
	r := newRegions(t) // source taken at epoch
	r.clk.Step(-time.Hour)
	older := r.snapshot(t, r.west, r.westSvc)
	r.clk.Step(2 * time.Hour)
	newer := r.snapshot(t, r.west, r.westSvc)
	r.clk.Step(time.Hour)
	cp := r.copy(t, r.req) // copied last, holds writes from between older and newer
	r.west.Settle()
	list, err := r.westSvc.DriveSnapshots(ctx, "ns/d", "uid-1")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{newer.ID, cp.ID, older.ID}; len(list) != 3 || list[0].ID != want[0] || list[1].ID != want[1] || list[2].ID != want[2] {
		t.Fatalf("DriveSnapshots order %v, want %v", ids(list), want)
	}
	if pruned := drives.Prunable(list, 2); len(pruned) != 1 || pruned[0].ID != older.ID {
		t.Errorf("Prunable(keep 2) = %v, want only %s", ids(pruned), older.ID)
	}
}
