package integration_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/test/harness"
	"github.com/xdrive-io/xdrive/test/moto"
)

const otherRegion = "us-west-2"

// TestDriveFollowsCheaperRegion: a Workstation whose class allows two
// regions launches in the cheaper one, its drive copied there first; it
// comes back with the writes made there (the restore is the newest
// snapshot, taken there); each time the other region is cheaper again the
// drive moves back, and the restore is a copy of the newest snapshot, never
// an older snapshot or copy left in that region. Deleting the drive deletes
// its snapshots in both regions.
func TestDriveFollowsCheaperRegion(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t), Regions: []string{otherRegion}})
	west := h.EC2In(otherRegion)
	ctx := context.Background()
	price := func(region, p string) {
		zones := h.OfferedZones("t3.large")
		if region == otherRegion {
			var err error
			if zones, err = harness.OfferedZonesOf(ctx, west, "t3.large"); err != nil {
				t.Fatal(err)
			}
		}
		if len(zones) == 0 {
			t.Fatalf("moto offers t3.large in no zone of %s", region)
		}
		for _, z := range zones {
			h.Proxy.SetSpotPrice("t3.large", z, p)
		}
	}
	price(moto.Region, "0.0100")
	price(otherRegion, "0.0900")

	cls := &v1alpha1.WorkstationClass{ObjectMeta: metav1.ObjectMeta{Name: "regions-" + h.Namespace}, Spec: v1alpha1.WorkstationClassSpec{
		NamespaceSelector: &metav1.LabelSelector{},
		Regions:           []v1alpha1.ClassRegion{{Name: moto.Region}, {Name: otherRegion}},
	}}
	h.Create(cls)
	t.Cleanup(func() { _ = h.Client.Delete(context.Background(), cls) })
	h.Start()
	home := h.NewDrive("home", 10)
	home.Spec.DeletionPolicy = v1alpha1.DeletionPolicyDelete
	ws := h.NewWorkstation("dev", "home", []string{"t3.large"})
	ws.Spec.ClassName = cls.Name
	h.Create(home, ws)

	// cycle runs dev until Ready, checks where, and stops it; it returns the snapshot the stop took.
	cycle := func(wantRegion string) (restored, taken string) {
		t.Helper()
		h.SetState("dev", v1alpha1.WorkstationStateRunning)
		h.Eventually(converge, "dev Ready in "+wantRegion, h.WorkstationReady("dev"))
		st := h.Workstation("dev").Status
		xd := h.Drive("home").Status
		if got := orRegion(st.Region); got != wantRegion || orRegion(xd.Region) != wantRegion || !strings.HasPrefix(st.AvailabilityZone, wantRegion) {
			t.Fatalf("dev runs in region %s (zone %s), drive in %s; want %s", got, st.AvailabilityZone, orRegion(xd.Region), wantRegion)
		}
		vol := volumeIn(t, h, wantRegion, xd.VolumeID)
		restored = aws.ToString(vol.SnapshotId)
		h.SetState("dev", v1alpha1.WorkstationStateStopped)
		h.Eventually(converge, "home archived in "+wantRegion, func() (bool, string) {
			st := h.Drive("home").Status
			return st.Phase == v1alpha1.XDrivePhaseArchived && st.LatestSnapshotID != "" && st.LatestSnapshotID != restored &&
				h.Workstation("dev").Status.Phase == v1alpha1.WorkstationPhaseStopped, fmt.Sprintf("%+v", st)
		})
		return restored, h.Drive("home").Status.LatestSnapshotID
	}

	if restored, _ := cycle(moto.Region); restored != "" {
		t.Fatalf("the first volume is restored from %s, want blank", restored)
	}
	first := h.Drive("home").Status.LatestSnapshotID

	// us-west-2 is cheaper by far more than the move of 10 GiB costs over 8
	// hours. The catalog keeps spot prices 5 minutes: a fresh manager reads them.
	price(otherRegion, "0.0050")
	price(moto.Region, "0.0900")
	h.Restart()
	restored, second := cycle(otherRegion)
	if from := copiedFrom(t, west, restored); from != first {
		t.Fatalf("the volume in %s is restored from %s, copied from %q; want a copy of %s", otherRegion, restored, from, first)
	}
	if ok, detail := h.FindEvent("XDrive", "home", v1alpha1.ReasonMoved, otherRegion); !ok {
		t.Errorf("no Moved Event naming %s: %s", otherRegion, detail)
	}
	if ok, detail := h.FindEvent("Workstation", "dev", v1alpha1.ReasonMoving, otherRegion, "saves"); !ok {
		t.Errorf("no Moving Event saying why %s: %s", otherRegion, detail)
	}
	if e := h.Drive("home").Status.Elsewhere; len(e) != 1 || e[0].Region != moto.Region || e[0].LatestSnapshotID != first {
		t.Errorf("status.elsewhere %+v, want %s holding %s", e, moto.Region, first)
	}

	// Back in us-west-2, the restore is the snapshot taken there: its writes come back.
	restored, third := cycle(otherRegion)
	if restored != second {
		t.Fatalf("the relaunch in %s restored %s, want the newest snapshot %s, taken there", otherRegion, restored, second)
	}

	// us-east-1 is cheaper again: it still holds the first snapshot, which is stale.
	price(moto.Region, "0.0050")
	price(otherRegion, "0.0900")
	h.Restart()
	restored, fourth := cycle(moto.Region)
	if restored == first {
		t.Fatalf("the volume in %s is restored from %s, the stale snapshot left there", moto.Region, first)
	}
	if from := copiedFrom(t, h.EC2, restored); from != third {
		t.Fatalf("the volume in %s is restored from %s, copied from %q; want a copy of the newest, %s", moto.Region, restored, from, third)
	}

	// And to us-west-2 once more: it keeps the first copy and the snapshots taken there, all stale now.
	stale := []string{second, third}
	price(otherRegion, "0.0050")
	price(moto.Region, "0.0900")
	h.Restart()
	restored, _ = cycle(otherRegion)
	if slices.Contains(stale, restored) {
		t.Fatalf("the volume in %s is restored from %s, a stale snapshot left there", otherRegion, restored)
	}
	if from := copiedFrom(t, west, restored); from != fourth {
		t.Fatalf("the volume in %s is restored from %s, copied from %q; want a copy of the newest, %s", otherRegion, restored, from, fourth)
	}

	h.Delete(ws)
	h.Eventually(converge, "dev gone", func() (bool, string) { return !h.Exists(&v1alpha1.Workstation{}, "dev"), "dev exists" })
	h.Delete(h.Drive("home"))
	h.Eventually(converge, "home gone", func() (bool, string) { return !h.Exists(&v1alpha1.XDrive{}, "home"), "home exists" })
	for _, c := range []struct {
		region string
		api    *ec2.Client
	}{{moto.Region, h.EC2}, {otherRegion, west}} {
		out, err := c.api.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
			Filters: []ec2types.Filter{cloud.TagFilter(cloud.TagCluster, h.Cluster)}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Snapshots) > 0 {
			t.Errorf("%d snapshots left in %s after the drive's deletion: %s", len(out.Snapshots), c.region, aws.ToString(out.Snapshots[0].SnapshotId))
		}
	}
}

func orRegion(r string) string {
	if r == "" {
		return moto.Region
	}
	return r
}

func volumeIn(t *testing.T, h *harness.Harness, region, id string) ec2types.Volume {
	t.Helper()
	api := h.EC2
	if region != moto.Region {
		api = h.EC2In(region)
	}
	out, err := api.DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
	if err != nil || len(out.Volumes) != 1 {
		t.Fatalf("volume %s in %s: %v", id, region, err)
	}
	return out.Volumes[0]
}

// copiedFrom is the snapshot a copy was made from (its xdrive.io/copied-from tag).
func copiedFrom(t *testing.T, api *ec2.Client, id string) string {
	t.Helper()
	out, err := api.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
	if err != nil || len(out.Snapshots) != 1 {
		t.Fatalf("snapshot %s: %v", id, err)
	}
	return cloud.TagMap(out.Snapshots[0].Tags)[cloud.TagCopiedFrom]
}
