package xdrive

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/controller/common"
	"github.com/xdrive-io/xdrive/internal/drives"
)

// archive is EBS for a released drive: its detached volume and its snapshots, newest first.
type archive struct {
	Volumes
	Snapshots
	volume    *drives.Volume
	snapshots []drives.Snapshot
}

func (a *archive) Volume(_ context.Context, id string) (drives.Volume, bool, error) {
	if a.volume == nil || a.volume.ID != id {
		return drives.Volume{}, false, nil
	}
	return *a.volume, true, nil
}

func (a *archive) DeleteVolume(context.Context, drives.Volume) error { a.volume = nil; return nil }

func (a *archive) Snapshot(_ context.Context, id string) (drives.Snapshot, bool, error) {
	i := slices.IndexFunc(a.snapshots, func(sn drives.Snapshot) bool { return sn.ID == id })
	if i < 0 {
		return drives.Snapshot{}, false, nil
	}
	return a.snapshots[i], true, nil
}

func (a *archive) DriveSnapshots(context.Context, string, string) ([]drives.Snapshot, error) {
	return slices.Clone(a.snapshots), nil
}

func (a *archive) DeleteSnapshot(_ context.Context, sn drives.Snapshot) error {
	a.snapshots = slices.DeleteFunc(a.snapshots, func(s drives.Snapshot) bool { return s.ID == sn.ID })
	return nil
}

func (a *archive) snapshotIDs() []string {
	var ids []string
	for _, sn := range a.snapshots {
		ids = append(ids, sn.ID)
	}
	return ids
}

// TestReleaseWithinLeaseBounds: at a release the drive keeps its volume and
// its snapshots within the bounds its holder's class recorded in the lease,
// whatever its spec asks by then (edited while attached), and says so in a
// CappedByClass Event; a lease without bounds leaves the spec as it is. The
// retention holds once the lease is given back while the volume is kept.
func TestReleaseWithinLeaseBounds(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for name, c := range map[string]struct {
		keep, retention int32
		bounds          *v1alpha1.DriveBounds
		keptFor         time.Duration // 0: deleted, not kept
		left            []string
		capped          []string // words of the CappedByClass Events
	}{
		"no bounds (a lease from before them)": {keep: 600, retention: 5, keptFor: 600 * time.Minute,
			left: []string{"snap-3", "snap-2", "snap-1"}},
		"within the bounds": {keep: 30, retention: 2, keptFor: 30 * time.Minute, left: []string{"snap-3", "snap-2"},
			bounds: &v1alpha1.DriveBounds{ClassName: "std", MaxKeepVolumeForMinutes: ptr.To[int32](60), MaxSnapshotRetention: 5}},
		"beyond the bounds": {keep: 600, retention: 5, keptFor: time.Minute, left: []string{"snap-3"},
			bounds: &v1alpha1.DriveBounds{ClassName: "std", MaxKeepVolumeForMinutes: ptr.To[int32](1), MaxSnapshotRetention: 1},
			capped: []string{"keepVolumeForMinutes 600", "maxKeepVolumeForMinutes 1", "snapshotRetention 5", "maxSnapshotRetention 1"}},
		"every snapshot asked, none kept allowed": {keep: 600, left: []string{"snap-3", "snap-2"},
			bounds: &v1alpha1.DriveBounds{ClassName: "std", MaxKeepVolumeForMinutes: ptr.To[int32](0), MaxSnapshotRetention: 2},
			capped: []string{"keepVolumeForMinutes 600", "maxKeepVolumeForMinutes 0", "every snapshot", "maxSnapshotRetention 2"}},
	} {
		t.Run(name, func(t *testing.T) {
			ebs := &archive{volume: &drives.Volume{ID: "vol-1", State: drives.VolumeAvailable}}
			for i, id := range []string{"snap-3", "snap-2", "snap-1"} {
				ebs.snapshots = append(ebs.snapshots, drives.Snapshot{ID: id, State: drives.SnapshotCompleted, StartTime: now.Add(-time.Duration(i+1) * time.Hour)})
			}
			xd := &v1alpha1.XDrive{
				ObjectMeta: metav1.ObjectMeta{Namespace: "lab", Name: "home", UID: "drive-uid"},
				Spec:       v1alpha1.XDriveSpec{SizeGiB: 10, KeepVolumeForMinutes: c.keep, SnapshotRetention: c.retention},
				Status: v1alpha1.XDriveStatus{
					Phase: v1alpha1.XDrivePhaseDeletingVolume, VolumeID: "vol-1", SnapshotCount: 3,
					LatestSnapshotID: "snap-3", RestoreSnapshotID: "snap-3",
					Holder:  &v1alpha1.DriveHolder{Name: "dev", UID: "ws-uid", Bounds: c.bounds},
					Release: &v1alpha1.DriveRelease{InstanceID: "i-1", Consistency: v1alpha1.ConsistencyFlushed, Time: metav1.NewTime(now.Add(-5 * time.Minute))},
					PendingSnapshot: &v1alpha1.PendingSnapshot{ID: "snap-3", VolumeID: "vol-1", Consistency: v1alpha1.ConsistencyFlushed,
						StartTime: metav1.NewTime(now.Add(-4 * time.Minute)), CompletionTime: &metav1.Time{Time: now.Add(-10 * time.Second)}},
				},
			}
			rec := events.NewFakeRecorder(20)
			step := func(at time.Time, run func(*scope, context.Context) (ctrl.Result, error)) {
				t.Helper()
				s := &scope{r: &Reconciler{Volumes: ebs, Snapshots: ebs}, xd: xd, st: &xd.Status, key: "lab/home", now: at,
					ev: common.Events{Recorder: rec, Object: xd}}
				if _, err := run(s, context.Background()); err != nil {
					t.Fatal(err)
				}
				s.ev.Flush()
			}
			step(now, (*scope).deletingVolume)

			st := xd.Status
			if c.keptFor == 0 {
				if st.Phase != v1alpha1.XDrivePhaseArchived || ebs.volume != nil {
					t.Fatalf("phase %s, volume left %v; want Archived, the volume deleted", st.Phase, ebs.volume)
				}
			} else if st.Phase != v1alpha1.XDrivePhaseKept || st.KeptUntil == nil || !st.KeptUntil.Time.Equal(now.Add(c.keptFor)) || ebs.volume == nil {
				t.Fatalf("phase %s, keptUntil %v, volume left %v; want Kept until %v", st.Phase, st.KeptUntil, ebs.volume != nil, now.Add(c.keptFor))
			}
			if got := ebs.snapshotIDs(); !slices.Equal(got, c.left) || st.SnapshotCount != int32(len(c.left)) {
				t.Fatalf("snapshots left %v (snapshotCount %d), want %v", got, st.SnapshotCount, c.left)
			}

			if c.keptFor > 0 {
				// The lease is given back while Kept; the warm period ends: the retention still holds.
				xd.Status.Holder = nil
				step(now.Add(c.keptFor), (*scope).kept)
				if xd.Status.Phase != v1alpha1.XDrivePhaseArchived || ebs.volume != nil || !slices.Equal(ebs.snapshotIDs(), c.left) {
					t.Fatalf("after the warm period: phase %s, volume left %t, snapshots %v; want Archived, no volume, %v",
						xd.Status.Phase, ebs.volume != nil, ebs.snapshotIDs(), c.left)
				}
			}

			var notes []string
			for len(rec.Events) > 0 {
				if e := <-rec.Events; strings.Contains(e, v1alpha1.ReasonCappedByClass) {
					notes = append(notes, e)
				}
			}
			all := strings.Join(notes, "\n")
			for _, w := range c.capped {
				if !strings.Contains(all, w) {
					t.Errorf("CappedByClass Events %q do not say %q", all, w)
				}
			}
			if len(c.capped) == 0 && len(notes) > 0 {
				t.Errorf("CappedByClass Events %q, want none", all)
			}
		})
	}
}
