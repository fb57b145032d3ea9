package fakeec2

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/internal/cloud"
)

// twoRegions is a world in us-east-1 and a linked one in eu-west-1.
func twoRegions(t *testing.T) (east, west world) {
	t.Helper()
	east, west = newWorld(t, Options{}), newWorld(t, Options{Region: "eu-west-1"})
	Link(east.Fake, west.Fake)
	return east, west
}

func copyInput(region, id string, tags map[string]string) *ec2.CopySnapshotInput {
	return &ec2.CopySnapshotInput{
		SourceRegion: aws.String(region), SourceSnapshotId: aws.String(id), Description: aws.String("a copy"),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot, Tags: cloud.Tags(tags)}},
	}
}

func TestRegionDefaults(t *testing.T) {
	east, west := New(Options{}), New(Options{Region: "eu-west-1"})
	if east.Region() != "us-east-1" || east.opts.Zones[0] != "us-east-1a" {
		t.Errorf("default region %s, zones %v", east.Region(), east.opts.Zones)
	}
	if west.opts.Zones[2] != "eu-west-1c" || west.region() != "eu-west-1" {
		t.Errorf("eu-west-1's zones %v, region %s", west.opts.Zones, west.region())
	}
	if byZones := New(Options{Zones: []string{"ap-south-1b"}}); byZones.Region() != "ap-south-1" {
		t.Errorf("region of zone ap-south-1b = %s", byZones.Region())
	}
	if a, b := east.SeedSnapshot(1, nil), west.SeedSnapshot(1, nil); a == b {
		t.Errorf("both regions made %s first: linked regions must not share IDs", a)
	}
}

func TestCopySnapshot(t *testing.T) {
	ctx := context.Background()
	east, west := twoRegions(t)
	inst := east.launchRunning(t, "us-east-1a", "", 0)
	write := east.mustWrite(t, inst.DriveVolumeID)
	source := east.completedSnapshot(t, inst.DriveVolumeID)

	tags := map[string]string{cloud.TagCluster: cluster, "k": "v"}
	out, err := west.CopySnapshot(ctx, copyInput("us-east-1", source.ID, tags))
	if err != nil || cloud.TagMap(out.Tags)["k"] != "v" {
		t.Fatalf("CopySnapshot = %+v, %v", out, err)
	}
	id := aws.ToString(out.SnapshotId)
	view := west.snapshot(t, id)
	if view.State != SnapshotPending || view.VolumeID != CopiedVolumeID || view.SizeGiB != 20 || view.Tags["k"] != "v" ||
		view.SourceRegion != "us-east-1" || view.SourceID != source.ID {
		t.Errorf("copy = %+v, want pending, 20 GiB, tagged, from us-east-1/%s", view, source.ID)
	}
	if !view.Data.Has(write) {
		t.Error("the copy lost the source's write")
	}
	if ts := west.Transitions(); len(ts) != 1 || ts[0] != (Transition{KindSnapshotCompleted, id}) {
		t.Errorf("west's transitions %v, want the copy's completion", ts)
	}
	west.Settle()
	if got, found, err := west.drives.Snapshot(ctx, id); !found || err != nil || got.State != SnapshotCompleted || got.Progress != "100%" {
		t.Errorf("settled copy = %+v, %v, %v", got, found, err)
	}
	if len(east.Snapshots()) != 1 || len(west.Violations()) != 0 {
		t.Errorf("east has %d snapshots (want the source alone); violations %v", len(east.Snapshots()), west.Violations())
	}

	restored := west.launchRunning(t, "eu-west-1b", id, 0)
	if d := west.volume(t, restored.DriveVolumeID).Data; !d.Has(write) {
		t.Error("a volume restored from the copy lost the write")
	}
	if err := west.DeleteSnapshotOutside(id); err != nil || !west.snapshot(t, id).Deleted {
		t.Errorf("deleting the copy from outside: %v", err)
	}
}

func TestCopySnapshotChecks(t *testing.T) {
	ctx := context.Background()
	east, west := twoRegions(t)
	inst := east.launchRunning(t, "us-east-1a", "", 0)
	pending, err := east.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(inst.DriveVolumeID)})
	if err != nil {
		t.Fatal(err)
	}
	gone := east.SeedSnapshot(10, nil)
	if err := east.DeleteSnapshotOutside(gone); err != nil {
		t.Fatal(err)
	}
	completed := east.SeedSnapshot(10, nil)
	lone := New(Options{Region: "ap-south-1"})
	withKey := copyInput("us-east-1", completed, nil)
	withKey.KmsKeyId = aws.String("alias/k")

	for _, tc := range []struct {
		name string
		fake *Fake
		in   *ec2.CopySnapshotInput
		code string
	}{
		{"unknown source", west.Fake, copyInput("us-east-1", "snap-0000000000000dead", nil), codeSnapshotNotFound},
		{"deleted source", west.Fake, copyInput("us-east-1", gone, nil), codeSnapshotNotFound},
		{"source in another region", west.Fake, copyInput("eu-west-1", completed, nil), codeSnapshotNotFound},
		{"pending source", west.Fake, copyInput("us-east-1", aws.ToString(pending.SnapshotId), nil), codeIncorrectState},
		{"no source region", west.Fake, copyInput("", completed, nil), codeMissingParameter},
		{"unlinked region", lone, copyInput("us-east-1", completed, nil), codeInvalidValue},
		{"key without encryption", west.Fake, withKey, codeInvalidCombination},
		{"image's snapshot", west.Fake, copyInput("us-east-1", ImageSnapshotID, nil), codeSnapshotNotFound},
	} {
		if _, err := tc.fake.CopySnapshot(ctx, tc.in); cloud.ErrorCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	if n := len(west.Snapshots()); n != 0 {
		t.Errorf("refused copies left %d snapshots", n)
	}

	withKey.Encrypted = aws.Bool(true)
	out, err := west.CopySnapshot(ctx, withKey)
	if err != nil {
		t.Fatal(err)
	}
	d, err := west.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{aws.ToString(out.SnapshotId)}})
	if err != nil || !aws.ToBool(d.Snapshots[0].Encrypted) || aws.ToString(d.Snapshots[0].KmsKeyId) != "alias/k" {
		t.Errorf("encrypted copy described as %+v, %v", d, err)
	}
	if v := west.Violations(); len(v) != 1 {
		t.Errorf("an untagged copy gave violations %v, want one", v)
	}
}

func TestFailCopies(t *testing.T) {
	ctx := context.Background()
	east, west := twoRegions(t)
	source := east.SeedSnapshot(10, nil)
	west.FailCopies(1)
	var ids []string
	for range 2 {
		out, err := west.CopySnapshot(ctx, copyInput("us-east-1", source, nil))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, aws.ToString(out.SnapshotId))
	}
	want := []Transition{{KindSnapshotFailed, ids[0]}, {KindSnapshotCompleted, ids[1]}}
	if ts := west.Transitions(); len(ts) != 2 || ts[0] != want[0] || ts[1] != want[1] {
		t.Fatalf("transitions %v, want %v", ts, want)
	}
	west.Settle()
	if failed, completed := west.snapshot(t, ids[0]), west.snapshot(t, ids[1]); failed.State != SnapshotError || completed.State != SnapshotCompleted {
		t.Errorf("copies ended %s and %s, want error then completed", failed.State, completed.State)
	}
}

func TestCopySnapshotFaults(t *testing.T) {
	ctx := context.Background()
	east, west := twoRegions(t)
	source := east.SeedSnapshot(10, nil)
	lost := errors.New("answer lost")
	var asked []string
	west.SetFault(func(action string, effected bool) error {
		asked = append(asked, action)
		if effected {
			return lost
		}
		return nil
	})
	if _, err := west.CopySnapshot(ctx, copyInput("us-east-1", source, nil)); !errors.Is(err, lost) {
		t.Fatalf("CopySnapshot with a lost answer: %v", err)
	}
	if len(asked) != 2 || len(west.Snapshots()) != 1 {
		t.Errorf("fault asked %v, %d copies; want CopySnapshot twice and the copy made", asked, len(west.Snapshots()))
	}
	west.SetFault(nil)
	west.Hold(west.Snapshots()[0].ID)
	if ts := west.Transitions(); len(ts) != 0 {
		t.Errorf("a held copy moved on: %v", ts)
	}
}

// TestCopiesBothWays copies between two regions from both sides at once:
// under -race, and without deadlock.
func TestCopiesBothWays(t *testing.T) {
	ctx := context.Background()
	east, west := twoRegions(t)
	sources := map[*Fake]string{east.Fake: east.SeedSnapshot(1, nil), west.Fake: west.SeedSnapshot(1, nil)}
	var wg sync.WaitGroup
	for _, pair := range [][2]*Fake{{east.Fake, west.Fake}, {west.Fake, east.Fake}} {
		wg.Go(func() {
			for range 50 {
				if _, err := pair[1].CopySnapshot(ctx, copyInput(pair[0].Region(), sources[pair[0]], nil)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if a, b := len(east.Snapshots()), len(west.Snapshots()); a != 51 || b != 51 {
		t.Errorf("%d and %d snapshots, want 51 in each", a, b)
	}
}
