package drives_test

import (
	"context"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/xdrive-io/xdrive/internal/drives"
	"github.com/xdrive-io/xdrive/test/fakeec2"
)

// TestSnapshotsNewestFirstWithinOneSecond: EC2 start times can tie at one
// second; the operator's own taken-at tag still orders them, so retention
// never keeps an older snapshot over a newer one.
func TestSnapshotsNewestFirstWithinOneSecond(t *testing.T) {
	ctx := context.Background()
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ec2 := fakeec2.New(fakeec2.Options{Cluster: "c", Now: func() time.Time { return epoch }}) // every StartTime ties
	clk := clocktesting.NewFakeClock(epoch)
	svc := drives.NewService(ec2, "c", 0, clk)
	vol, err := ec2.SeedVolume("us-east-1a", 10, map[string]string{"xdrive.io/cluster": "c"})
	if err != nil {
		t.Fatal(err)
	}
	var taken []string
	for range 3 {
		clk.Step(time.Millisecond)
		sn, err := svc.CreateSnapshot(ctx, drives.SnapshotRequest{VolumeID: vol, Drive: "ns/d", DriveName: "d", Consistency: "Crash", NotBefore: clk.Now()})
		if err != nil {
			t.Fatal(err)
		}
		taken = append(taken, sn.ID)
	}
	ec2.Settle()
	list, err := svc.DriveSnapshots(ctx, "ns/d", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].ID != taken[2] || list[1].ID != taken[1] || list[2].ID != taken[0] {
		t.Fatalf("DriveSnapshots order %v, want newest first %v", ids(list), []string{taken[2], taken[1], taken[0]})
	}
	if pruned := drives.Prunable(list, 2); len(pruned) != 1 || pruned[0].ID != taken[0] {
		t.Fatalf("Prunable keeps the wrong ones: pruned %v, want only the oldest %s", ids(pruned), taken[0])
	}
}

func ids(list []drives.Snapshot) []string {
	var out []string
	for _, s := range list {
		out = append(out, s.ID)
	}
	return out
}
