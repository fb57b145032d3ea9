package fakeec2

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/drives"
	"github.com/xdrive-io/xdrive/internal/instances"
	"github.com/xdrive-io/xdrive/internal/placement"
)

func TestClientToken(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, Options{})
	req := launchRequest("us-east-1a", "", 0)
	first, err := w.launcher.Launch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := w.launcher.Launch(ctx, req)
	if err != nil || again.ID != first.ID || again.DriveVolumeID != first.DriveVolumeID {
		t.Fatalf("repeated launch = %+v, %v; want %s again", again, err, first.ID)
	}
	if n, m := len(w.Instances()), len(w.Volumes()); n != 1 || m != 2 {
		t.Errorf("%d instances and %d volumes after a repeated launch, want 1 and 2", n, m)
	}
	req.Volume.SizeGiB = 30 // not part of the token
	_, err = w.launcher.Launch(ctx, req)
	if cloud.ErrorCode(err) != codeTokenMismatch || cloud.Classify(err) != cloud.KindIdempotencyMismatch {
		t.Errorf("same token, other request: %v", err)
	}
	req.Attempt = 1
	if next, err := w.launcher.Launch(ctx, req); err != nil || next.ID == first.ID {
		t.Errorf("new token: %+v, %v; want a new instance", next, err)
	}
}

func TestRunInstancesChecks(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, Options{})
	source := w.launchRunning(t, "us-east-1a", "", 0)
	pending, err := w.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(source.DriveVolumeID)})
	if err != nil {
		t.Fatal(err)
	}
	deleted := w.SeedSnapshot(20, nil)
	if err := w.DeleteSnapshotOutside(deleted); err != nil {
		t.Fatal(err)
	}
	w.SetCapacity("t3.large", "us-east-1b", true, false)

	for _, tc := range []struct {
		name string
		edit func(*instances.LaunchRequest)
		code string
	}{
		{"unknown snapshot", func(r *instances.LaunchRequest) { r.Volume.SnapshotID = "snap-00000000000000999" }, codeSnapshotNotFound},
		{"deleted snapshot", func(r *instances.LaunchRequest) { r.Volume.SnapshotID = deleted }, codeSnapshotNotFound},
		{"pending snapshot", func(r *instances.LaunchRequest) { r.Volume.SnapshotID = aws.ToString(pending.SnapshotId) }, codeIncorrectState},
		{"unknown zone", func(r *instances.LaunchRequest) { r.Offering.Zone = "us-east-1z" }, codeInvalidValue},
		{"unknown subnet", func(r *instances.LaunchRequest) { r.Offering.SubnetID = "subnet-00000000000000999" }, codeSubnetNotFound},
		{"unknown type", func(r *instances.LaunchRequest) { r.Offering.Type = "x9.huge" }, codeInvalidValue},
		{"unknown image", func(r *instances.LaunchRequest) { r.ImageID = "ami-00000000000000999" }, codeAMINotFound},
		{"no spot capacity", func(r *instances.LaunchRequest) { r.Offering.Zone = "us-east-1b" }, codeNoCapacity},
	} {
		req := launchRequest("us-east-1a", "", 1)
		tc.edit(&req)
		if _, err := w.launcher.Launch(ctx, req); cloud.ErrorCode(err) != tc.code {
			t.Errorf("%s: err = %v, want %s", tc.name, err, tc.code)
		}
	}
	if n := len(w.Instances()); n != 1 {
		t.Errorf("%d instances after failed launches, want 1", n)
	}
	onDemand := launchRequest("us-east-1b", "", 1)
	onDemand.Offering.Spot = false
	if inst, err := w.launcher.Launch(ctx, onDemand); err != nil || inst.Spot {
		t.Errorf("on-demand launch where spot has no capacity: %+v, %v", inst, err)
	}
}

func TestVolumeAndDescribeChecks(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, Options{})
	inst := w.launchRunning(t, "us-east-1a", "", 0)

	_, err := w.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(inst.DriveVolumeID)})
	if cloud.ErrorCode(err) != codeVolumeInUse {
		t.Errorf("deleting an attached volume: %v", err)
	}
	_, err = w.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String("vol-00000000000000999")})
	if cloud.ErrorCode(err) != codeVolumeNotFound {
		t.Errorf("snapshot of a missing volume: %v", err)
	}

	missing := map[string]error{}
	_, missing[codeInstanceNotFound] = w.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{inst.ID, "i-00000000000000999"}})
	_, missing[codeVolumeNotFound] = w.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{"vol-00000000000000999"}})
	_, missing[codeSnapshotNotFound] = w.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{"snap-00000000000000999"}})
	_, missing[codeModificationNotFound] = w.DescribeVolumesModifications(ctx, &ec2.DescribeVolumesModificationsInput{VolumeIds: []string{inst.DriveVolumeID}})
	for code, err := range missing {
		if cloud.ErrorCode(err) != code || cloud.Classify(err) != cloud.KindNotFound {
			t.Errorf("want %s classified NotFound, got %v (%s)", code, err, cloud.Classify(err))
		}
	}

	byFilter, err := w.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{cloud.Filter("instance-id", "i-00000000000000999")}})
	if err != nil || len(byFilter.Reservations) != 0 {
		t.Errorf("filter on an unknown ID: %+v, %v; want nothing", byFilter, err)
	}
	for _, bad := range []ec2types.Filter{cloud.Filter("no-such-filter", "x"), cloud.Filter("volume-id")} {
		_, errI := w.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{bad}})
		_, errV := w.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{bad}})
		_, errS := w.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{Filters: []ec2types.Filter{bad}})
		for _, err := range []error{errI, errV, errS} {
			if cloud.ErrorCode(err) != codeInvalidValue {
				t.Errorf("filter %s %v: %v, want %s", aws.ToString(bad.Name), bad.Values, err, codeInvalidValue)
			}
		}
	}
}

func TestFilters(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, Options{})
	a := w.launchRunning(t, "us-east-1a", "", 0)
	b, err := w.launcher.Launch(ctx, launchRequest("us-east-1b", "", 1)) // stays pending
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := w.SeedInstance("m5.large", "us-east-1b", map[string]string{"team": "ml"})
	if err != nil {
		t.Fatal(err)
	}
	loose, err := w.SeedVolume("us-east-1c", 5, map[string]string{"team": "data"})
	if err != nil {
		t.Fatal(err)
	}
	snapA := w.completedSnapshot(t, a.DriveVolumeID)
	snapB, err := w.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(b.DriveVolumeID)})
	if err != nil {
		t.Fatal(err)
	}

	instanceIDs := func(filters ...ec2types.Filter) []string {
		out, err := w.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: filters})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				ids = append(ids, aws.ToString(i.InstanceId))
			}
		}
		return ids
	}
	volumeIDs := func(filters ...ec2types.Filter) []string {
		out, err := w.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: filters})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, v := range out.Volumes {
			ids = append(ids, aws.ToString(v.VolumeId))
		}
		return ids
	}
	snapshotIDs := func(filters ...ec2types.Filter) []string {
		out, err := w.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: filters})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range out.Snapshots {
			ids = append(ids, aws.ToString(s.SnapshotId))
		}
		return ids
	}
	owned := cloud.TagFilter(cloud.TagCluster, cluster)
	for _, tc := range []struct {
		name      string
		got, want []string
	}{
		{"owned instances", instanceIDs(owned), []string{a.ID, b.ID}},
		{"owned and running", instanceIDs(owned, cloud.Filter("instance-state-name", StateRunning)), []string{a.ID}},
		{"zone b", instanceIDs(cloud.Filter("availability-zone", "us-east-1b")), []string{b.ID, foreign}},
		{"type", instanceIDs(cloud.Filter("instance-type", "m5.large")), []string{foreign}},
		{"ids OR", instanceIDs(cloud.Filter("instance-id", a.ID, foreign)), []string{a.ID, foreign}},
		{"spot", instanceIDs(cloud.Filter("instance-lifecycle", "spot")), []string{a.ID, b.ID}},
		{"tag-key", instanceIDs(cloud.Filter("tag-key", "team")), []string{foreign}},
		{"tag wildcard", instanceIDs(cloud.Filter("tag:"+cloud.TagWorkstation, "ns/*")), []string{a.ID, b.ID}},
		{"tag values OR", instanceIDs(cloud.Filter("tag:team", "ml", "data")), []string{foreign}},
		{"attached to a", volumeIDs(cloud.Filter("attachment.instance-id", a.ID), owned), slices.Sorted(slices.Values(w.instance(t, a.ID).VolumeIDs))},
		{"available", volumeIDs(cloud.Filter("status", VolumeAvailable)), []string{loose}},
		{"volume zone c", volumeIDs(cloud.Filter("availability-zone", "us-east-1c")), []string{loose}},
		{"drive device", volumeIDs(cloud.Filter("attachment.device", bootstrap.DriveDevice)), []string{a.DriveVolumeID, b.DriveVolumeID}},
		{"volume-id", volumeIDs(cloud.Filter("volume-id", loose)), []string{loose}},
		{"completed", snapshotIDs(cloud.Filter("status", SnapshotCompleted)), []string{snapA.ID}},
		{"of volume b", snapshotIDs(cloud.Filter("volume-id", b.DriveVolumeID)), []string{aws.ToString(snapB.SnapshotId)}},
		{"drive tag", snapshotIDs(cloud.TagFilter(cloud.TagDrive, "ns/drive")), []string{snapA.ID}},
		{"snapshot-id", snapshotIDs(cloud.Filter("snapshot-id", snapA.ID, "snap-00000000000000999")), []string{snapA.ID}},
	} {
		if !slices.Equal(tc.got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	other, err := w.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"amazon"}})
	if err != nil || len(other.Snapshots) != 0 {
		t.Errorf("snapshots owned by amazon: %d, %v", len(other.Snapshots), err)
	}
}

func TestInjectError(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, Options{})
	w.InjectError("RunInstances", codeNoCapacity, false, 1)
	_, err := w.launcher.Launch(ctx, launchRequest("us-east-1a", "", 0))
	if cloud.Classify(err) != cloud.KindNoCapacity || len(w.Instances()) != 0 {
		t.Fatalf("injected before effect: %v with %d instances", err, len(w.Instances()))
	}

	w.InjectError("RunInstances", "RequestLimitExceeded", true, 1)
	_, err = w.launcher.Launch(ctx, launchRequest("us-east-1a", "", 0))
	if cloud.Classify(err) != cloud.KindThrottled || len(w.Instances()) != 1 {
		t.Fatalf("injected after effect: %v with %d instances, want 1", err, len(w.Instances()))
	}
	inst, err := w.launcher.Launch(ctx, launchRequest("us-east-1a", "", 0))
	if err != nil || inst.ID != w.Instances()[0].ID {
		t.Fatalf("retry after a lost answer: %+v, %v; want the instance already made", inst, err)
	}
	if calls := w.Calls()["RunInstances"]; calls != 3 {
		t.Errorf("RunInstances calls = %d, want 3", calls)
	}

	w.InjectError("CreateSnapshot", "InternalError", true, 2)
	in := &ec2.CreateSnapshotInput{VolumeId: aws.String(inst.DriveVolumeID)}
	for range 2 {
		if _, err := w.CreateSnapshot(ctx, in); cloud.Classify(err) != cloud.KindServerError {
			t.Errorf("injected InternalError: %v", err)
		}
	}
	if out, err := w.CreateSnapshot(ctx, in); err != nil || out.SnapshotId == nil {
		t.Errorf("third CreateSnapshot: %v", err)
	}
	if n := len(w.Snapshots()); n != 3 {
		t.Errorf("%d snapshots, want 3: lost answers still took effect", n)
	}
	w.ResetCalls()
	if len(w.Calls()) != 0 {
		t.Errorf("calls after reset: %v", w.Calls())
	}
}

func TestHiddenInstance(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, Options{})
	inst := w.launchRunning(t, "us-east-1a", "", 0)
	w.HideInstance(inst.ID, 2)
	named, err := w.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{inst.ID}})
	if err != nil || len(named.Reservations) != 1 {
		t.Fatalf("named hidden instance: %+v, %v", named, err)
	}
	for n := range 3 {
		_, found, err := w.cache.Get(ctx, inst.ID)
		if err != nil || found != (n == 2) {
			t.Errorf("lookup %d: found=%v err=%v; want hidden twice, then found", n, found, err)
		}
	}
}

func TestViolations(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, Options{})
	inst := w.launchRunning(t, "us-east-1a", "", 0)
	snap := w.completedSnapshot(t, inst.DriveVolumeID)
	if err := w.launcher.Terminate(ctx, inst); err != nil {
		t.Fatal(err)
	}
	w.mustApply(t, KindInstanceTerminated, inst.ID)
	owned, _, err := w.drives.Volume(ctx, inst.DriveVolumeID)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.drives.DeleteVolume(ctx, owned); err != nil {
		t.Fatal(err)
	}
	if v := w.Violations(); len(v) != 0 {
		t.Fatalf("owned resources gave violations: %v", v)
	}

	foreignTags := map[string]string{cloud.TagCluster: "dev"}
	vm, _ := w.SeedInstance("t3.large", "us-east-1a", foreignTags)
	vol, _ := w.SeedVolume("us-east-1a", 10, nil)
	other, _ := w.SeedVolume("us-east-1a", 10, nil)
	foreignSnap := w.SeedSnapshot(10, foreignTags)
	calls := []error{
		second(w.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{vm}})),
		second(w.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(vol)})),
		second(w.ModifyVolume(ctx, &ec2.ModifyVolumeInput{VolumeId: aws.String(vol), Size: aws.Int32(20)})),
		second(w.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(other)})),
		second(w.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(foreignSnap)})),
		second(w.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{snap.ID, vol}, Tags: cloud.Tags(map[string]string{"k": "v"})})),
	}
	for n, err := range calls {
		if err != nil {
			t.Errorf("call %d on a foreign resource failed: %v", n, err)
		}
	}
	got := w.Violations()
	want := []string{"TerminateInstances " + vm, "CreateSnapshot " + vol, "ModifyVolume " + vol,
		"DeleteVolume " + other, "DeleteSnapshot " + foreignSnap, "CreateTags " + vol}
	if len(got) != len(want) {
		t.Fatalf("violations %v, want %d", got, len(want))
	}
	for n := range want {
		if !strings.HasPrefix(got[n], want[n]+":") {
			t.Errorf("violation %d = %q, want %q", n, got[n], want[n])
		}
	}
	if !w.volume(t, other).Deleted || w.instance(t, vm).State != StateShuttingDown || w.volume(t, vol).Tags["k"] != "v" {
		t.Error("calls on foreign resources did not take effect")
	}
}

func second[T any](_ T, err error) error { return err }

func TestModifyVolume(t *testing.T) {
	ctx := context.Background()
	now := defaultEpoch
	w := newWorld(t, Options{Now: func() time.Time { return now }})
	inst := w.launchRunning(t, "us-east-1a", "", 0)
	vol, _, err := w.drives.Volume(ctx, inst.DriveVolumeID)
	if err != nil {
		t.Fatal(err)
	}
	if _, found, err := w.drives.Modification(ctx, vol.ID); found || err != nil {
		t.Fatalf("modification of a volume never modified: found=%v err=%v", found, err)
	}
	if err := w.drives.Resize(ctx, vol, 10); cloud.ErrorCode(err) != codeInvalidValue {
		t.Errorf("shrinking: %v", err)
	}
	state := func() drives.Modification {
		m, found, err := w.drives.Modification(ctx, vol.ID)
		if err != nil || !found {
			t.Fatalf("modification: found=%v err=%v", found, err)
		}
		return m
	}
	size := int32(20)
	for n := range 4 {
		size += 10
		if err := w.drives.Resize(ctx, vol, size); err != nil {
			t.Fatalf("resize %d: %v", n, err)
		}
		if got, _, _ := w.drives.Volume(ctx, vol.ID); got.SizeGiB != size {
			t.Errorf("size right after ModifyVolume = %d, want %d", got.SizeGiB, size)
		}
		if m := state(); m.State != ModificationModifying || m.TargetSize != size {
			t.Errorf("modification = %+v, want modifying to %d", m, size)
		}
		if err := w.drives.Resize(ctx, vol, size+1); cloud.ErrorCode(err) != codeModificationState {
			t.Errorf("resize while modifying: %v", err)
		}
		w.mustApply(t, KindModificationOptimizing, vol.ID)
		if m := state(); m.State != ModificationOptimizing {
			t.Errorf("state = %s, want optimizing", m.State)
		}
		w.mustApply(t, KindModificationCompleted, vol.ID)
		if m := state(); m.State != ModificationCompleted {
			t.Errorf("state = %s, want completed", m.State)
		}
		now = now.Add(time.Hour)
	}
	if err := w.drives.Resize(ctx, vol, size+10); cloud.ErrorCode(err) != codeModificationRate {
		t.Errorf("fifth resize within a day: %v", err)
	}
	now = now.Add(21 * time.Hour)
	if err := w.drives.Resize(ctx, vol, size+10); err != nil {
		t.Errorf("resize a day after the first: %v", err)
	}
}

func TestOfferings(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, Options{})
	w.SetSpotPrice("g4dn.xlarge", "us-east-1c", "0.001000")
	w.SetOffered("t3.large", "us-east-1a", false)
	catalog := instances.NewCatalog(w.Fake, w.Fake, time.Hour)
	m, err := catalog.Market(ctx, []string{"t3.large", "g4dn.xlarge"}, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := placement.Candidates(placement.Request{Types: []string{"t3.large", "g4dn.xlarge"}}, m, true)
	var keys []string
	for _, o := range got {
		keys = append(keys, o.Key()+"@"+o.Price)
	}
	want := []string{
		"Spot/g4dn.xlarge/us-east-1c@0.001000", "Spot/t3.large/us-east-1b@0.026000", "Spot/t3.large/us-east-1c@0.027000",
		"Spot/g4dn.xlarge/us-east-1a@0.220000", "Spot/g4dn.xlarge/us-east-1b@0.221000",
	}
	if !slices.Equal(keys, want) {
		t.Errorf("candidates %v, want %v", keys, want)
	}
	zoneB := w.opts.Subnets["us-east-1b"]
	inB, err := placement.Place(ctx, catalog, placement.Request{Types: []string{"m5.large"}, SubnetIDs: []string{zoneB}})
	if err != nil || !inB.Found() || inB.Offering.Zone != "us-east-1b" || inB.Offering.SubnetID != zoneB {
		t.Fatalf("placed in subnet %s: %+v, %v", zoneB, inB, err)
	}
	req := launchRequest("", "", 0)
	req.Offering = inB.Offering
	if inst, err := w.launcher.Launch(ctx, req); err != nil || inst.Zone != "us-east-1b" {
		t.Errorf("launch into subnet %s: %+v, %v", zoneB, inst, err)
	}
	if _, err := w.launcher.Launch(ctx, launchRequest("us-east-1a", "", 1)); cloud.ErrorCode(err) != codeUnsupported {
		t.Errorf("launch of an unoffered type: %v", err)
	}

	gpu, err := catalog.Type(ctx, "g5.xlarge")
	if err != nil || gpu != (instances.TypeInfo{Arch: "x86_64", GPUs: 1}) {
		t.Errorf("g5.xlarge = %+v, %v", gpu, err)
	}
	if _, err := catalog.Type(ctx, "x9.huge"); cloud.ErrorCode(err) != codeInvalidInstanceType {
		t.Errorf("unknown type: %v", err)
	}
	ami, err := catalog.Image(ctx, "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64")
	if err != nil || ami != "ami-00000000000000a02" {
		t.Errorf("arm64 image = %q, %v", ami, err)
	}
	if _, err := catalog.Image(ctx, "/no/such/parameter"); cloud.Classify(err) != cloud.KindNotFound {
		t.Errorf("missing parameter: %v", err)
	}
}

func TestTransitions(t *testing.T) {
	scenario := func() []string {
		w := newWorld(t, Options{})
		ctx := context.Background()
		a := w.launchRunning(t, "us-east-1a", "", 0)
		snap := w.completedSnapshot(t, a.DriveVolumeID)
		b, err := w.launcher.Launch(ctx, launchRequest("us-east-1b", snap.ID, 1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(a.DriveVolumeID)}); err != nil {
			t.Fatal(err)
		}
		if err := w.launcher.Terminate(ctx, a); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tr := range w.Transitions() {
			out = append(out, tr.String())
		}
		w.Hold(b.ID)
		w.Settle()
		if left := w.Transitions(); len(left) != 0 {
			t.Errorf("after Settle: %v", left)
		}
		if s := w.instance(t, b.ID).State; s != StatePending {
			t.Errorf("held instance is %s, want pending", s)
		}
		w.Release(b.ID)
		if left := w.Transitions(); len(left) != 1 || left[0] != (Transition{KindInstanceRunning, b.ID}) {
			t.Errorf("after Release: %v", left)
		}
		return out
	}
	first := scenario()
	want := []string{
		"instance-terminated i-00000000000000002",
		"instance-running i-00000000000000007",
		"snapshot-completed snap-0000000000000000a",
		"volume-initialized vol-00000000000000009",
	}
	if !slices.Equal(first, want) {
		t.Errorf("transitions %v, want %v", first, want)
	}
	if again := scenario(); !slices.Equal(again, first) {
		t.Errorf("a second run gave %v, the first %v", again, first)
	}
	w := newWorld(t, Options{})
	if err := w.Apply(Transition{KindInstanceRunning, "i-00000000000000001"}); err == nil {
		t.Error("applying a transition that is not pending was accepted")
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for n := range 8 {
		wg.Go(func() {
			req := launchRequest(fmt.Sprintf("us-east-1%c", 'a'+n%3), "", int32(n))
			inst, err := w.launcher.Launch(ctx, req)
			if err != nil {
				errs <- err
				return
			}
			if _, err := w.Write(inst.DriveVolumeID); err != nil {
				errs <- err
			}
			if _, _, err := w.cache.Get(ctx, inst.ID); err != nil {
				errs <- err
			}
			w.Settle()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	running := 0
	for _, i := range w.Instances() {
		if i.State == StateRunning {
			running++
		}
	}
	if running != 8 || len(w.AllWrites()) != 8 {
		t.Errorf("%d running instances and %d writes, want 8 and 8", running, len(w.AllWrites()))
	}
}
