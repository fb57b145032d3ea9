package xdrive

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/controller/handoff"
)

// Table tests of the drive's decisions, beside the code: each row is a
// status (and a holder), and what the drive may do with it. A row says what
// is meant; a simulation seed only finds what breaks.

var allDrivePhases = []v1alpha1.XDrivePhase{
	v1alpha1.XDrivePhasePending, v1alpha1.XDrivePhaseArchived, v1alpha1.XDrivePhaseRestoring,
	v1alpha1.XDrivePhaseAttached, v1alpha1.XDrivePhaseDetaching, v1alpha1.XDrivePhaseSnapshotting,
	v1alpha1.XDrivePhaseDeletingVolume, v1alpha1.XDrivePhaseKept, v1alpha1.XDrivePhaseDeleting,
}

// TestMayDeleteVolume: invariant I1, row by row. The volume goes only in
// DeletingVolume, after the completed snapshot of that very volume, taken
// after its last possible write.
func TestMayDeleteVolume(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) metav1.Time { return metav1.NewTime(t0.Add(d)) }
	atPtr := func(d time.Duration) *metav1.Time { m := at(d); return &m }
	// A flushed release at t0, then the snapshot of vol-1, recorded as the latest.
	released := func() *v1alpha1.XDriveStatus {
		return &v1alpha1.XDriveStatus{
			Phase: v1alpha1.XDrivePhaseDeletingVolume, VolumeID: "vol-1", LatestSnapshotID: "snap-1",
			Release: &v1alpha1.DriveRelease{InstanceID: "i-1", Consistency: v1alpha1.ConsistencyFlushed, Time: at(0)},
			PendingSnapshot: &v1alpha1.PendingSnapshot{ID: "snap-1", VolumeID: "vol-1", StartTime: at(time.Second),
				Consistency: v1alpha1.ConsistencyFlushed},
		}
	}
	cases := []struct {
		name   string
		change func(*v1alpha1.XDriveStatus)
		want   bool
	}{
		{"flushed release, then its snapshot", func(*v1alpha1.XDriveStatus) {}, true},
		{"snapshot started at the release's second", func(st *v1alpha1.XDriveStatus) { st.PendingSnapshot.StartTime = at(0) }, true},
		{"snapshot started before the flushed release", func(st *v1alpha1.XDriveStatus) { st.PendingSnapshot.StartTime = at(-time.Second) }, false},
		{"crash snapshot after a crash release (taken once the volume was seen detached)", func(st *v1alpha1.XDriveStatus) {
			st.Release.Consistency, st.PendingSnapshot.Consistency = v1alpha1.ConsistencyCrash, v1alpha1.ConsistencyCrash
		}, true},
		{"crash snapshot after a flushed release", func(st *v1alpha1.XDriveStatus) { st.PendingSnapshot.Consistency = v1alpha1.ConsistencyCrash }, false},
		{"flushed snapshot after a crash release", func(st *v1alpha1.XDriveStatus) { st.Release.Consistency = v1alpha1.ConsistencyCrash }, false},
		{"no snapshot", func(st *v1alpha1.XDriveStatus) { st.PendingSnapshot = nil }, false},
		{"no release", func(st *v1alpha1.XDriveStatus) { st.Release = nil }, false},
		{"snapshot of another volume", func(st *v1alpha1.XDriveStatus) { st.PendingSnapshot.VolumeID = "vol-0" }, false},
		{"snapshot not recorded as completed", func(st *v1alpha1.XDriveStatus) { st.LatestSnapshotID = "snap-0" }, false},
		{"reattached after the snapshot started", func(st *v1alpha1.XDriveStatus) { st.ReattachedAt = atPtr(2 * time.Second) }, false},
		{"reattached before the release", func(st *v1alpha1.XDriveStatus) { st.ReattachedAt = atPtr(-time.Minute) }, true},
	}
	for _, c := range cases {
		st := released()
		c.change(st)
		if got := MayDeleteVolume(st); got != c.want {
			t.Errorf("%s: MayDeleteVolume = %v, want %v", c.name, got, c.want)
		}
	}
	for _, p := range allDrivePhases {
		st := released()
		st.Phase = p
		if got, want := MayDeleteVolume(st), p == v1alpha1.XDrivePhaseDeletingVolume; got != want {
			t.Errorf("phase %s: MayDeleteVolume = %v, want %v", p, got, want)
		}
	}
}

// TestReattachable: the holder's next instance may get the volume back only
// once it is released: while its snapshot is taken, after, or kept warm.
func TestReattachable(t *testing.T) {
	want := map[v1alpha1.XDrivePhase]bool{
		v1alpha1.XDrivePhaseSnapshotting: true, v1alpha1.XDrivePhaseDeletingVolume: true, v1alpha1.XDrivePhaseKept: true,
	}
	for _, p := range allDrivePhases {
		if got := handoff.Reattachable(p); got != want[p] {
			t.Errorf("handoff.Reattachable(%s) = %v, want %v", p, got, want[p])
		}
	}
}

// TestReattachRequest: which instance of the holder waits for the drive's
// released volume.
func TestReattachRequest(t *testing.T) {
	waiting := func() *v1alpha1.Workstation {
		ws := &v1alpha1.Workstation{}
		ws.Status.InstanceID, ws.Status.ReattachVolumeID = "i-2", "vol-1"
		return ws
	}
	cases := []struct {
		name      string
		holder    *v1alpha1.Workstation
		st        v1alpha1.XDriveStatus
		inst, vol string
	}{
		{name: "the holder's new instance asks for the volume", holder: waiting(),
			st: v1alpha1.XDriveStatus{AttachedTo: "i-1"}, inst: "i-2", vol: "vol-1"},
		{name: "no holder", st: v1alpha1.XDriveStatus{AttachedTo: "i-1"}},
		{name: "the holder asks for no volume", holder: func() *v1alpha1.Workstation {
			ws := waiting()
			ws.Status.ReattachVolumeID = ""
			return ws
		}(), st: v1alpha1.XDriveStatus{AttachedTo: "i-1"}},
		{name: "the holder has no instance", holder: func() *v1alpha1.Workstation {
			ws := waiting()
			ws.Status.InstanceID = ""
			return ws
		}()},
		{name: "already attached to that instance", holder: waiting(), st: v1alpha1.XDriveStatus{AttachedTo: "i-2"}},
		{name: "the reattach to that instance failed", holder: waiting(),
			st: v1alpha1.XDriveStatus{FailedReattach: &v1alpha1.FailedReattach{InstanceID: "i-2", VolumeID: "vol-1"}}},
		{name: "a reattach to an earlier instance failed", holder: waiting(),
			st:   v1alpha1.XDriveStatus{FailedReattach: &v1alpha1.FailedReattach{InstanceID: "i-0", VolumeID: "vol-1"}},
			inst: "i-2", vol: "vol-1"},
	}
	for _, c := range cases {
		s := &scope{st: &c.st, holder: c.holder}
		inst, vol := s.reattachRequest()
		if inst != c.inst || vol != c.vol {
			t.Errorf("%s: reattachRequest = (%q, %q), want (%q, %q)", c.name, inst, vol, c.inst, c.vol)
		}
	}
}
