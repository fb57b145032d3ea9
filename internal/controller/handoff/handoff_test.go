package handoff

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// Table tests of the questions each controller asks about the other's
// object: each row is an object and the answer meant.

func holder(change func(*v1alpha1.WorkstationStatus)) *v1alpha1.Workstation {
	w := &v1alpha1.Workstation{}
	change(&w.Status)
	return w
}

// TestVouches: the holder vouches for the instance of its drive's volume
// while it runs it, tears it down, or awaits the instance of a launch.
func TestVouches(t *testing.T) {
	cases := []struct {
		name string
		w    *v1alpha1.Workstation
		want bool
	}{
		{"no holder", nil, false},
		{"its instance", holder(func(s *v1alpha1.WorkstationStatus) { s.InstanceID = "i-1" }), true},
		{"another instance", holder(func(s *v1alpha1.WorkstationStatus) { s.InstanceID = "i-2" }), false},
		{"one it tears down", holder(func(s *v1alpha1.WorkstationStatus) {
			s.InstanceID, s.Teardown = "i-2", &v1alpha1.Teardown{InstanceID: "i-1"}
		}), true},
		{"a launch whose instance is not recorded yet", holder(func(s *v1alpha1.WorkstationStatus) { s.Launch = &v1alpha1.LaunchAttempt{} }), true},
		{"a launch with another instance recorded", holder(func(s *v1alpha1.WorkstationStatus) {
			s.Launch, s.InstanceID = &v1alpha1.LaunchAttempt{}, "i-2"
		}), false},
	}
	for _, c := range cases {
		if got := Vouches(c.w, "i-1"); got != c.want {
			t.Errorf("%s: Vouches(i-1) = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestSnapshotStarted: a flushed release holds the instance until the drive
// let go of it, started the release's snapshot, or waits for the detach.
func TestSnapshotStarted(t *testing.T) {
	drive := func(change func(*v1alpha1.XDriveStatus)) *v1alpha1.XDrive {
		xd := &v1alpha1.XDrive{Status: v1alpha1.XDriveStatus{Phase: v1alpha1.XDrivePhaseAttached, AttachedTo: "i-1"}}
		change(&xd.Status)
		return xd
	}
	release := &v1alpha1.DriveRelease{InstanceID: "i-1", Consistency: v1alpha1.ConsistencyFlushed}
	cases := []struct {
		name string
		xd   *v1alpha1.XDrive
		want bool
	}{
		{"still attached, nothing started", drive(func(*v1alpha1.XDriveStatus) {}), false},
		{"the release copied, no snapshot yet", drive(func(s *v1alpha1.XDriveStatus) { s.Release = release }), false},
		{"the release's snapshot started", drive(func(s *v1alpha1.XDriveStatus) {
			s.Release, s.PendingSnapshot, s.Phase = release, &v1alpha1.PendingSnapshot{ID: "snap-1"}, v1alpha1.XDrivePhaseSnapshotting
		}), true},
		{"a snapshot of an earlier release", drive(func(s *v1alpha1.XDriveStatus) {
			s.Release, s.PendingSnapshot = &v1alpha1.DriveRelease{InstanceID: "i-0"}, &v1alpha1.PendingSnapshot{ID: "snap-0"}
		}), false},
		{"waiting for the detach", drive(func(s *v1alpha1.XDriveStatus) { s.Phase = v1alpha1.XDrivePhaseDetaching }), true},
		{"attached to another instance", drive(func(s *v1alpha1.XDriveStatus) { s.AttachedTo = "i-2" }), true},
	}
	for _, c := range cases {
		if got := SnapshotStarted(c.xd, "i-1"); got != c.want {
			t.Errorf("%s: SnapshotStarted(i-1) = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestReusableVolume: a launch may reattach the drive's volume only once it
// is released, in a known zone, the drive not deleted, and not declined.
func TestReusableVolume(t *testing.T) {
	released := func(change func(*v1alpha1.XDrive)) *v1alpha1.XDrive {
		xd := &v1alpha1.XDrive{Status: v1alpha1.XDriveStatus{Phase: v1alpha1.XDrivePhaseKept, VolumeID: "vol-1",
			AvailabilityZone: "us-east-1a", Release: &v1alpha1.DriveRelease{InstanceID: "i-1"}}}
		change(xd)
		return xd
	}
	now := metav1.Now()
	cases := []struct {
		name     string
		xd       *v1alpha1.XDrive
		declined string
		want     string
	}{
		{"kept", released(func(*v1alpha1.XDrive) {}), "", "vol-1"},
		{"snapshotting", released(func(x *v1alpha1.XDrive) { x.Status.Phase = v1alpha1.XDrivePhaseSnapshotting }), "", "vol-1"},
		{"still attached", released(func(x *v1alpha1.XDrive) { x.Status.Phase = v1alpha1.XDrivePhaseAttached }), "", ""},
		{"no release recorded", released(func(x *v1alpha1.XDrive) { x.Status.Release = nil }), "", ""},
		{"zone unknown", released(func(x *v1alpha1.XDrive) { x.Status.AvailabilityZone = "" }), "", ""},
		{"the drive is deleted", released(func(x *v1alpha1.XDrive) { x.DeletionTimestamp = &now }), "", ""},
		{"declined", released(func(*v1alpha1.XDrive) {}), "vol-1", ""},
	}
	for _, c := range cases {
		got, zone := ReusableVolume(c.xd, c.declined)
		if got != c.want || (got != "" && zone != "us-east-1a") {
			t.Errorf("%s: ReusableVolume = %q in %q, want %q", c.name, got, zone, c.want)
		}
	}
}

// TestLeaseFree: the lease may go back only while no volume is written.
func TestLeaseFree(t *testing.T) {
	free := map[v1alpha1.XDrivePhase]bool{v1alpha1.XDrivePhaseArchived: true, v1alpha1.XDrivePhasePending: true,
		v1alpha1.XDrivePhaseDeleting: true, v1alpha1.XDrivePhaseKept: true}
	for _, p := range []v1alpha1.XDrivePhase{v1alpha1.XDrivePhasePending, v1alpha1.XDrivePhaseArchived, v1alpha1.XDrivePhaseRestoring,
		v1alpha1.XDrivePhaseAttached, v1alpha1.XDrivePhaseDetaching, v1alpha1.XDrivePhaseSnapshotting,
		v1alpha1.XDrivePhaseDeletingVolume, v1alpha1.XDrivePhaseKept, v1alpha1.XDrivePhaseDeleting} {
		if got := LeaseFree(&v1alpha1.XDrive{Status: v1alpha1.XDriveStatus{Phase: p}}); got != free[p] {
			t.Errorf("LeaseFree(%s) = %v, want %v", p, got, free[p])
		}
	}
}

// TestInRegion: a launch restores the drive in a region only while the
// drive is there, no move is under way, and the lease asks for no other
// region: the drive moves only while the lease asks, so a launch recorded
// after such a read cannot find the drive gone.
func TestInRegion(t *testing.T) {
	const home = "us-east-1"
	drive := func(change func(*v1alpha1.XDriveStatus)) *v1alpha1.XDrive {
		xd := &v1alpha1.XDrive{Status: v1alpha1.XDriveStatus{Holder: &v1alpha1.DriveHolder{Name: "dev", UID: "u"}}}
		change(&xd.Status)
		return xd
	}
	cases := []struct {
		name   string
		change func(*v1alpha1.XDriveStatus)
		region string
		want   bool
	}{
		{"the operator's region, unnamed", func(*v1alpha1.XDriveStatus) {}, home, true},
		{"a launch that names no region, in the operator's", func(*v1alpha1.XDriveStatus) {}, "", true},
		{"a launch that names no region, the drive elsewhere", func(st *v1alpha1.XDriveStatus) { st.Region = "us-west-2" }, "", false},
		{"another region, unnamed", func(*v1alpha1.XDriveStatus) {}, "us-west-2", false},
		{"the drive's named region", func(st *v1alpha1.XDriveStatus) { st.Region = "us-west-2" }, "us-west-2", true},
		{"the lease asks for another", func(st *v1alpha1.XDriveStatus) { st.Holder.Region = "us-west-2" }, home, false},
		{"the lease asks for it, the drive is not there yet", func(st *v1alpha1.XDriveStatus) { st.Holder.Region = "us-west-2" }, "us-west-2", false},
		{"a move under way", func(st *v1alpha1.XDriveStatus) {
			st.Move = &v1alpha1.DriveMove{Region: "us-west-2", SourceSnapshotID: "snap-1"}
		}, home, false},
		{"moved, and the lease asks for it", func(st *v1alpha1.XDriveStatus) { st.Region, st.Holder.Region = "us-west-2", "us-west-2" }, "us-west-2", true},
	}
	for _, c := range cases {
		if got := InRegion(drive(c.change), c.region, home); got != c.want {
			t.Errorf("%s: InRegion(%s) = %v, want %v", c.name, c.region, got, c.want)
		}
	}
}

// TestSnapshotOwners: a fork's volumes may be made from its source's
// snapshots (its first volume), so the source owns them too; the source's
// namespace is the fork's unless named.
func TestSnapshotOwners(t *testing.T) {
	drive := func(src *v1alpha1.DriveSource) *v1alpha1.XDrive {
		return &v1alpha1.XDrive{ObjectMeta: metav1.ObjectMeta{Namespace: "lab", Name: "fork"}, Spec: v1alpha1.XDriveSpec{Source: src}}
	}
	cases := []struct {
		name string
		xd   *v1alpha1.XDrive
		want []string
	}{
		{"no source", drive(nil), []string{"lab/fork"}},
		{"a snapshot source", drive(&v1alpha1.DriveSource{SnapshotID: "snap-1"}), []string{"lab/fork"}},
		{"a fork", drive(&v1alpha1.DriveSource{XDrive: &v1alpha1.ForkSource{Name: "home"}}), []string{"lab/fork", "lab/home"}},
		{"a fork of another namespace", drive(&v1alpha1.DriveSource{XDrive: &v1alpha1.ForkSource{Name: "home", Namespace: "team"}}),
			[]string{"lab/fork", "team/home"}},
	}
	for _, c := range cases {
		if got := SnapshotOwners(c.xd); !slices.Equal(got, c.want) {
			t.Errorf("%s: SnapshotOwners = %v, want %v", c.name, got, c.want)
		}
	}
}
