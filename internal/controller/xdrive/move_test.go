package xdrive

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/drives"
	"github.com/xdrive-io/xdrive/test/fakeec2"
)

const (
	east, west      = "us-east-1", "us-west-2"
	moveTestCluster = "move-test"
)

// moveWorld is a drive at rest in east, with a snapshot, whose lease asks for west.
type moveWorld struct {
	t          *testing.T
	east, west *fakeec2.Fake
	r          *Reconciler
	xd         *v1alpha1.XDrive
	snapshot   string
	now        time.Time
}

func newMoveWorld(t *testing.T) *moveWorld {
	w := &moveWorld{t: t, now: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return w.now }
	w.east = fakeec2.New(fakeec2.Options{Region: east, Cluster: moveTestCluster, Now: clock})
	w.west = fakeec2.New(fakeec2.Options{Region: west, Cluster: moveTestCluster, Now: clock})
	fakeec2.Link(w.east, w.west)
	e := drives.NewService(w.east, moveTestCluster, 0, nil)
	ws := drives.NewService(w.west, moveTestCluster, 0, nil)
	w.r = &Reconciler{Region: east, Volumes: e, Snapshots: e, Copies: e,
		Elsewhere: map[string]RegionServices{west: {Volumes: ws, Snapshots: ws, Copies: ws}}}
	w.xd = &v1alpha1.XDrive{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "home", UID: "uid-home"}}
	w.snapshot = w.east.SeedSnapshot(10, map[string]string{
		cloud.TagCluster: moveTestCluster, cloud.TagDrive: "ns/home", cloud.TagDriveUID: "uid-home",
		cloud.TagTakenAt: w.now.Add(-time.Hour).Format(time.RFC3339Nano),
	})
	w.xd.Status = v1alpha1.XDriveStatus{Phase: v1alpha1.XDrivePhaseArchived, RestoreSnapshotID: w.snapshot,
		LatestSnapshotID: w.snapshot, SnapshotCount: 1, Holder: &v1alpha1.DriveHolder{Name: "dev", UID: "uid-dev", Region: west}}
	return w
}

// step runs one move step; settled says the drive is where the lease asks, or stays.
func (w *moveWorld) step() (settled bool) {
	w.t.Helper()
	s := &scope{r: w.r, xd: w.xd, st: &w.xd.Status, key: "ns/home", now: w.now}
	_, settled, err := s.moveStep(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return settled
}

func (w *moveWorld) copiesIn(f *fakeec2.Fake) []fakeec2.SnapshotView {
	var out []fakeec2.SnapshotView
	for _, sn := range f.Snapshots() {
		if sn.SourceID != "" && !sn.Deleted {
			out = append(out, sn)
		}
	}
	return out
}

// TestMoveCopiesThenSwitches: the intent is recorded before the copy, a
// retry after a lost status write finds the copy by its tags, and the drive
// switches region only once the copy has completed, with the copy as its
// restore and the region it left listed.
func TestMoveCopiesThenSwitches(t *testing.T) {
	w := newMoveWorld(t)
	// copies stay pending until the fake settles
	if w.step() || w.xd.Status.Move == nil || len(w.copiesIn(w.west)) != 0 {
		t.Fatalf("first step: move %+v, copies %v; want the intent recorded and no copy yet", w.xd.Status.Move, w.copiesIn(w.west))
	}
	w.step()
	m := w.xd.Status.Move
	if m == nil || m.CopySnapshotID == "" || m.SourceSnapshotID != w.snapshot || m.SourceRegion != east {
		t.Fatalf("move %+v, want a copy of %s from %s recorded", m, w.snapshot, east)
	}
	copyID := m.CopySnapshotID
	m.CopySnapshotID = "" // the status write with the copy's ID was lost
	w.step()
	if got := w.copiesIn(w.west); len(got) != 1 || w.xd.Status.Move.CopySnapshotID != copyID {
		t.Fatalf("after a lost write: copies %v, recorded %s; want the one copy %s found again", got, w.xd.Status.Move.CopySnapshotID, copyID)
	}
	if w.step() || w.xd.Status.Region != "" {
		t.Fatalf("the drive switched to %q while its copy is pending", w.xd.Status.Region)
	}
	w.west.Settle()
	if !w.step() {
		t.Fatal("the drive did not settle once the copy completed")
	}
	st := w.xd.Status
	if st.Region != west || st.RestoreSnapshotID != copyID || st.LatestSnapshotID != copyID || st.Move != nil {
		t.Fatalf("after the copy: region %q, restore %s, latest %s, move %+v; want %s, the copy %s", st.Region, st.RestoreSnapshotID, st.LatestSnapshotID, st.Move, west, copyID)
	}
	if len(st.Elsewhere) != 1 || st.Elsewhere[0].Region != east || st.Elsewhere[0].LatestSnapshotID != w.snapshot {
		t.Fatalf("status.elsewhere %+v, want %s holding %s", st.Elsewhere, east, w.snapshot)
	}
	if st.SnapshotCount != 1 || len(st.Snapshots) != 1 || st.Snapshots[0].ID != copyID {
		t.Errorf("after the move: snapshotCount %d, snapshots %+v; want the copy listed", st.SnapshotCount, st.Snapshots)
	}
	if st.LatestSnapshotTime == nil || !st.LatestSnapshotTime.Time.Equal(w.now.Add(-time.Hour)) {
		t.Errorf("latestSnapshotTime %v, want the source's taken-at %v", st.LatestSnapshotTime, w.now.Add(-time.Hour))
	}
}

// TestMoveRetriesFailedAndDeletedCopies: a copy that fails is deleted and
// begun again; one deleted from outside is begun again; neither switches
// the drive.
func TestMoveRetriesFailedAndDeletedCopies(t *testing.T) {
	w := newMoveWorld(t)
	w.west.FailCopies(1)
	w.step()
	w.step()
	failed := w.xd.Status.Move.CopySnapshotID
	w.west.Settle()
	w.step()
	if m := w.xd.Status.Move; m == nil || m.CopySnapshotID != "" || m.Failure == "" || w.xd.Status.Region != "" {
		t.Fatalf("after a failed copy: move %+v, region %q; want the failure recorded, no switch", m, w.xd.Status.Region)
	}
	for _, sn := range w.copiesIn(w.west) {
		if sn.ID == failed {
			t.Fatalf("the failed copy %s was not deleted", failed)
		}
	}
	w.step()
	second := w.xd.Status.Move.CopySnapshotID
	if second == "" || second == failed {
		t.Fatalf("copy after the failure %q, want a new one", second)
	}
	if _, err := w.west.DeleteSnapshot(context.Background(), &ec2.DeleteSnapshotInput{SnapshotId: aws.String(second)}); err != nil {
		t.Fatal(err)
	}
	w.step()
	if m := w.xd.Status.Move; m.CopySnapshotID != "" || w.xd.Status.Region != "" {
		t.Fatalf("after the copy was deleted from outside: move %+v, region %q; want it begun again", m, w.xd.Status.Region)
	}
	w.step()
	w.west.Settle()
	if !w.step() || w.xd.Status.Region != west {
		t.Fatalf("the third copy did not complete the move: %+v", w.xd.Status)
	}
}

// TestMoveAbandonedOrRefused: a lease that asks for the drive's own region
// again ends the move and deletes its copy; a rollback in effect, or a
// region the operator does not serve, keeps the drive where it is; a blank
// drive moves without a copy.
func TestMoveAbandonedOrRefused(t *testing.T) {
	w := newMoveWorld(t)
	w.step()
	w.step()
	copyID := w.xd.Status.Move.CopySnapshotID
	w.xd.Status.Holder.Region = east
	if !w.step() || w.xd.Status.Move != nil || w.xd.Status.Region != "" {
		t.Fatalf("abandoned move: %+v", w.xd.Status)
	}
	for _, sn := range w.copiesIn(w.west) {
		if sn.ID == copyID {
			t.Fatalf("the abandoned copy %s was left", copyID)
		}
	}

	// A CopySnapshot took effect with its answer lost (no ID recorded), then the lease changed its mind:
	// the copy is found by its tags and deleted.
	w = newMoveWorld(t)
	w.step()
	w.step()
	lost := w.xd.Status.Move.CopySnapshotID
	w.xd.Status.Move.CopySnapshotID = ""
	w.xd.Status.Holder.Region = east
	if !w.step() || w.xd.Status.Move != nil {
		t.Fatalf("abandoned move with its copy's answer lost: %+v", w.xd.Status)
	}
	for _, sn := range w.copiesIn(w.west) {
		if sn.ID == lost {
			t.Fatalf("the copy %s, whose answer was lost, was left in %s", lost, west)
		}
	}

	// A newer snapshot became the restore while the copy ran: that copy would be stale.
	w = newMoveWorld(t)
	w.step()
	w.step()
	stale := w.xd.Status.Move.CopySnapshotID
	newer := w.east.SeedSnapshot(10, map[string]string{
		cloud.TagCluster: moveTestCluster, cloud.TagDrive: "ns/home", cloud.TagDriveUID: "uid-home",
		cloud.TagTakenAt: w.now.Format(time.RFC3339Nano),
	})
	w.xd.Status.RestoreSnapshotID, w.xd.Status.LatestSnapshotID = newer, newer
	w.west.Settle()
	for i := 0; i < 10 && !w.step(); i++ {
		w.west.Settle()
	}
	if st := w.xd.Status; st.Region != west || st.RestoreSnapshotID == stale || st.RestoreSnapshotID == "" {
		t.Fatalf("after the restore changed mid-copy: region %q, restore %s; want %s restored from a copy of %s, not the stale %s", st.Region, st.RestoreSnapshotID, west, newer, stale)
	}
	for _, sn := range w.copiesIn(w.west) {
		if sn.ID == w.xd.Status.RestoreSnapshotID && sn.SourceID != newer {
			t.Fatalf("restore %s is a copy of %s, want of %s", sn.ID, sn.SourceID, newer)
		}
		if sn.ID == stale {
			t.Fatalf("the stale copy %s was left", stale)
		}
	}

	w = newMoveWorld(t)
	w.xd.Status.Rollback = &v1alpha1.DriveRollback{SnapshotID: w.snapshot}
	if !w.step() || w.xd.Status.Move != nil || w.xd.Status.Region != "" {
		t.Fatalf("a rollback in effect: %+v, want no move", w.xd.Status)
	}

	w = newMoveWorld(t)
	w.xd.Status.Holder.Region = "eu-west-1"
	if !w.step() || w.xd.Status.Move != nil || w.xd.Status.Region != "" {
		t.Fatalf("a region not served: %+v, want no move", w.xd.Status)
	}

	w = newMoveWorld(t)
	w.xd.Status.RestoreSnapshotID, w.xd.Status.LatestSnapshotID, w.xd.Status.SnapshotCount = "", "", 0
	if !w.step() || w.xd.Status.Region != west || len(w.copiesIn(w.west)) != 0 {
		t.Fatalf("a blank drive: %+v, copies %v; want it in %s with no copy", w.xd.Status, w.copiesIn(w.west), west)
	}
}

// TestPruneElsewhereKeepsNewest: in a region the drive left, the retention
// prunes, but never the snapshot recorded as the newest there, whatever
// sorts after it (a copy with a later taken-at).
func TestPruneElsewhereKeepsNewest(t *testing.T) {
	w := newMoveWorld(t)
	w.xd.Spec.SnapshotRetention = 1
	tags := func(at time.Time) map[string]string {
		return map[string]string{cloud.TagCluster: moveTestCluster, cloud.TagDrive: "ns/home", cloud.TagDriveUID: "uid-home",
			cloud.TagTakenAt: at.Format(time.RFC3339Nano)}
	}
	older := w.west.SeedSnapshot(10, tags(w.now.Add(-3*time.Hour)))
	latest := w.west.SeedSnapshot(10, tags(w.now.Add(-2*time.Hour)))
	later := w.west.SeedSnapshot(10, tags(w.now.Add(-time.Hour)))
	w.xd.Status.Elsewhere = []v1alpha1.RegionSnapshots{{Region: west, LatestSnapshotID: latest}}
	s := &scope{r: w.r, xd: w.xd, st: &w.xd.Status, key: "ns/home", now: w.now}
	if err := s.pruneElsewhere(context.Background(), west, false); err != nil {
		t.Fatal(err)
	}
	live := map[string]bool{}
	for _, sn := range w.west.Snapshots() {
		live[sn.ID] = !sn.Deleted
	}
	if !live[latest] || live[older] {
		t.Fatalf("after pruning %s to 1: latest %s live %v, older %s live %v, later %s live %v; want the latest kept, the older pruned",
			west, latest, live[latest], older, live[older], later, live[later])
	}
}

// TestRestoreImportsNewerElsewhere: when the snapshots left in the drive's
// region are older than the newest one a region it left keeps (the newer
// ones here deleted from outside), the drive copies that one here and
// restores the copy, instead of going back in time; a recorded time that is
// a copy's own, not its source's, is mended from EC2; a region left whose
// newest is older, or gone, is not copied from.
func TestRestoreImportsNewerElsewhere(t *testing.T) {
	w := newMoveWorld(t)
	w.xd.Status.Holder.Region = "" // the lease asks for no move
	tags := func(at time.Time) map[string]string {
		return map[string]string{cloud.TagCluster: moveTestCluster, cloud.TagDrive: "ns/home", cloud.TagDriveUID: "uid-home",
			cloud.TagTakenAt: at.Format(time.RFC3339Nano)}
	}
	// east keeps w.snapshot, taken an hour ago; the newer one here was deleted from outside.
	newer := w.west.SeedSnapshot(10, tags(w.now.Add(-30*time.Minute)))
	copyTime := metav1.NewTime(w.now.Add(-10 * time.Minute)) // as recorded before: a copy's own start
	w.xd.Status.RestoreSnapshotID, w.xd.Status.LatestSnapshotID = "snap-deleted", "snap-deleted"
	w.xd.Status.Elsewhere = []v1alpha1.RegionSnapshots{{Region: west, LatestSnapshotID: newer, LatestSnapshotTime: &copyTime}}
	resolve := func() *scope {
		t.Helper()
		s := &scope{r: w.r, xd: w.xd, st: &w.xd.Status, key: "ns/home", now: w.now}
		if err := s.resolveRestore(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := resolve()
	m := w.xd.Status.Move
	if s.blocked == nil || m == nil || m.Region != east || m.SourceRegion != west || m.SourceSnapshotID != newer || w.xd.Status.RestoreSnapshotID != "" {
		t.Fatalf("restore %q, move %+v, blocked %v; want nothing restored until %s is copied from %s", w.xd.Status.RestoreSnapshotID, m, s.blocked, newer, west)
	}
	if at := w.xd.Status.Elsewhere[0].LatestSnapshotTime; at == nil || !at.Time.Equal(w.now.Add(-30*time.Minute)) {
		t.Errorf("elsewhere's time %v, want it mended to the source's %v", at, w.now.Add(-30*time.Minute))
	}
	for range 3 {
		w.step()
		w.east.Settle()
	}
	copied := w.xd.Status.RestoreSnapshotID
	if w.xd.Status.Move != nil || copied == "" || copied == w.snapshot || copied == newer {
		t.Fatalf("after the copy: move %+v, restore %q; want a copy of %s here", w.xd.Status.Move, copied, newer)
	}
	resolve()
	if w.xd.Status.Move != nil || w.xd.Status.RestoreSnapshotID != copied {
		t.Fatalf("resolved again: move %+v, restore %q; want the copy %s kept, nothing copied again", w.xd.Status.Move, w.xd.Status.RestoreSnapshotID, copied)
	}

	// A region left whose newest is older than what is here, or gone: nothing is copied.
	older := w.west.SeedSnapshot(10, tags(w.now.Add(-2*time.Hour)))
	w.xd.Status.Elsewhere = []v1alpha1.RegionSnapshots{{Region: west, LatestSnapshotID: older, LatestSnapshotTime: &copyTime}}
	resolve()
	if w.xd.Status.Move != nil || w.xd.Status.RestoreSnapshotID != copied {
		t.Fatalf("older elsewhere: move %+v, restore %q; want %s kept", w.xd.Status.Move, w.xd.Status.RestoreSnapshotID, copied)
	}
	if err := w.west.DeleteSnapshotOutside(newer); err != nil {
		t.Fatal(err)
	}
	later := metav1.NewTime(w.now)
	w.xd.Status.Elsewhere = []v1alpha1.RegionSnapshots{{Region: west, LatestSnapshotID: newer, LatestSnapshotTime: &later}}
	if err := w.east.DeleteSnapshotOutside(copied); err != nil {
		t.Fatal(err)
	}
	resolve()
	if w.xd.Status.Move != nil || w.xd.Status.RestoreSnapshotID != w.snapshot || w.xd.Status.Elsewhere[0].LatestSnapshotTime != nil {
		t.Fatalf("gone elsewhere too: move %+v, restore %q, elsewhere %+v; want the newest here, %s, and the time cleared",
			w.xd.Status.Move, w.xd.Status.RestoreSnapshotID, w.xd.Status.Elsewhere, w.snapshot)
	}
}

// TestRetentionChangePrunesElsewhere: a snapshotRetention lowered in spec
// while the drive is at rest holds in the regions it left too, their
// newest kept.
func TestRetentionChangePrunesElsewhere(t *testing.T) {
	w := newMoveWorld(t)
	w.xd.Status.Holder.Region = ""
	tags := func(at time.Time) map[string]string {
		return map[string]string{cloud.TagCluster: moveTestCluster, cloud.TagDrive: "ns/home", cloud.TagDriveUID: "uid-home",
			cloud.TagTakenAt: at.Format(time.RFC3339Nano)}
	}
	older := w.west.SeedSnapshot(10, tags(w.now.Add(-4*time.Hour)))
	latest := w.west.SeedSnapshot(10, tags(w.now.Add(-3*time.Hour)))
	at := metav1.NewTime(w.now.Add(-3 * time.Hour))
	w.xd.Status.Elsewhere = []v1alpha1.RegionSnapshots{{Region: west, LatestSnapshotID: latest, LatestSnapshotTime: &at, SnapshotCount: 2}}
	w.xd.Status.ObservedGeneration, w.xd.Generation, w.xd.Spec.SnapshotRetention = 1, 2, 1
	s := &scope{r: w.r, xd: w.xd, st: &w.xd.Status, key: "ns/home", gen: w.xd.Generation, now: w.now}
	if _, err := s.atRest(context.Background()); err != nil {
		t.Fatal(err)
	}
	live := map[string]bool{}
	for _, sn := range w.west.Snapshots() {
		live[sn.ID] = !sn.Deleted
	}
	if !live[latest] || live[older] || w.xd.Status.Elsewhere[0].SnapshotCount != 1 {
		t.Fatalf("retention 1 set in spec: %s's newest %s live %v, older %s live %v, count %d; want the older pruned",
			west, latest, live[latest], older, live[older], w.xd.Status.Elsewhere[0].SnapshotCount)
	}
}

// TestMoveSourceGoneFollowsCopy: a move whose CopySnapshot took effect but
// whose answer was lost, and whose source is then deleted from outside,
// follows the copy it made (found by its tags): it holds the source's writes.
func TestMoveSourceGoneFollowsCopy(t *testing.T) {
	w := newMoveWorld(t)
	w.step() // the intent
	w.step() // the copy
	copyID := w.xd.Status.Move.CopySnapshotID
	w.xd.Status.Move.CopySnapshotID = "" // the status write with the copy's ID was lost
	if err := w.east.DeleteSnapshotOutside(w.snapshot); err != nil {
		t.Fatal(err)
	}
	w.west.Settle()
	for range 3 {
		w.step()
	}
	st := w.xd.Status
	if st.Region != west || st.RestoreSnapshotID != copyID || st.Move != nil {
		t.Fatalf("source %s gone after its copy %s was made: region %q, restore %q, move %+v; want the drive in %s restoring the copy",
			w.snapshot, copyID, st.Region, st.RestoreSnapshotID, st.Move, west)
	}
}

// TestMoveSourceGoneDeletesFailedCopy: a copy whose answer was lost, then
// failed, is recorded only by its tags; when the source is gone from
// outside too, the move ends, and the failed copy does not stay behind (I18).
func TestMoveSourceGoneDeletesFailedCopy(t *testing.T) {
	w := newMoveWorld(t)
	w.step() // the intent
	w.west.FailCopies(1)
	w.step() // the copy, which fails
	failed := w.xd.Status.Move.CopySnapshotID
	w.xd.Status.Move.CopySnapshotID = "" // the status write with the copy's ID was lost
	w.west.Settle()
	if err := w.east.DeleteSnapshotOutside(w.snapshot); err != nil {
		t.Fatal(err)
	}
	w.step()
	if w.xd.Status.Move != nil {
		t.Fatalf("source %s gone and its only copy failed: move %+v; want it ended", w.snapshot, w.xd.Status.Move)
	}
	if left := w.copiesIn(w.west); len(left) != 0 {
		t.Fatalf("copies left in %s: %+v; want the failed copy %s deleted", west, left, failed)
	}
}

// moveWithGoneSource starts the move to west, makes its copy (pending), and
// deletes the source from outside: the copy alone holds the drive's newest
// writes; east keeps an older snapshot.
func moveWithGoneSource(t *testing.T) (w *moveWorld, copyID, older string) {
	t.Helper()
	w = newMoveWorld(t)
	older = w.east.SeedSnapshot(10, map[string]string{cloud.TagCluster: moveTestCluster, cloud.TagDrive: "ns/home",
		cloud.TagDriveUID: "uid-home", cloud.TagTakenAt: w.now.Add(-2 * time.Hour).Format(time.RFC3339Nano)})
	w.east.Settle()
	w.step() // the intent
	w.step() // the copy
	copyID = w.xd.Status.Move.CopySnapshotID
	if err := w.east.DeleteSnapshotOutside(w.snapshot); err != nil {
		t.Fatal(err)
	}
	return w, copyID, older
}

// TestGoneRestoreCarriedByMove: the restore is gone from outside while its
// copy to the region the lease asks for is under way. Resolving the restore
// again (a new generation, a launch that found it gone) keeps it and the
// move: the copy holds the newest writes, the older snapshot left here does
// not (I17, soak seed 990307636). The move ends in the copy.
func TestGoneRestoreCarriedByMove(t *testing.T) {
	w, copyID, older := moveWithGoneSource(t)
	s := &scope{r: w.r, xd: w.xd, st: &w.xd.Status, key: "ns/home", now: w.now}
	if err := s.resolveRestore(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := w.xd.Status; st.RestoreSnapshotID != w.snapshot || st.Move == nil || st.Move.CopySnapshotID != copyID {
		t.Fatalf("restore %q, move %+v; want the restore %s kept and the move with copy %s (not the older %s)",
			st.RestoreSnapshotID, st.Move, w.snapshot, copyID, older)
	}
	w.west.Settle()
	w.step()
	if st := w.xd.Status; st.Region != west || st.RestoreSnapshotID != copyID {
		t.Fatalf("region %q, restore %q; want the drive in %s restoring copy %s", st.Region, st.RestoreSnapshotID, west, copyID)
	}
}

// TestGoneRestoreMoveNotAbandoned: the lease stops asking for the move's
// region while its copy alone holds the writes of a restore gone from
// outside. The move is not abandoned (that would delete the copy): the
// drive goes where its writes are.
func TestGoneRestoreMoveNotAbandoned(t *testing.T) {
	w, copyID, _ := moveWithGoneSource(t)
	w.xd.Status.Holder = nil // the lease is given back: no region asked for
	w.step()
	if left := w.copiesIn(w.west); len(left) != 1 || left[0].ID != copyID {
		t.Fatalf("copies in %s: %+v; want %s kept", west, left, copyID)
	}
	w.west.Settle()
	w.step()
	if st := w.xd.Status; st.Region != west || st.RestoreSnapshotID != copyID || st.Move != nil {
		t.Fatalf("region %q, restore %q, move %+v; want the drive in %s restoring copy %s", st.Region, st.RestoreSnapshotID, st.Move, west, copyID)
	}
}

// TestRollbackRecordedBeforePrune: a rollback taken while another is in
// effect, with a lower retention, prunes nothing in the reconcile that takes
// it: that status write may be lost, and the rollback it records keeps the
// snapshots newer than its own, older target (I13). The next reconcile
// prunes.
func TestRollbackRecordedBeforePrune(t *testing.T) {
	w := newMoveWorld(t)
	w.xd.Status.Holder = nil
	tags := func(at time.Time) map[string]string {
		return map[string]string{cloud.TagCluster: moveTestCluster, cloud.TagDrive: "ns/home", cloud.TagDriveUID: "uid-home",
			cloud.TagTakenAt: at.Format(time.RFC3339Nano)}
	}
	w.now = w.now.Add(time.Hour)
	middle := w.east.SeedSnapshot(10, tags(w.now.Add(-30*time.Minute)))
	w.now = w.now.Add(time.Hour)
	newest := w.east.SeedSnapshot(10, tags(w.now.Add(-10*time.Minute)))
	w.east.Settle()
	var oldest drives.Snapshot
	for _, sn := range w.east.Snapshots() {
		if sn.ID == w.snapshot {
			oldest = drives.Snapshot{ID: sn.ID, StartTime: sn.StartTime}
		}
	}
	// A rollback to the oldest is in effect; the user asks for the newest, and a retention of 1.
	w.xd.Status.Rollback = &v1alpha1.DriveRollback{SnapshotID: oldest.ID, SnapshotTime: metav1.NewTime(oldest.StartTime), RequestTime: metav1.NewTime(w.now.Add(-time.Hour))}
	w.xd.Status.LastRollbackRequest = &w.xd.Status.Rollback.RequestTime
	w.xd.Status.ObservedGeneration, w.xd.Generation, w.xd.Spec.SnapshotRetention = 1, 2, 1
	w.xd.Status.SnapshotCount = 3
	w.xd.Annotations = map[string]string{v1alpha1.RollbackAnnotation: newest + "@" + w.now.UTC().Format(time.RFC3339)}
	live := func() map[string]bool {
		out := map[string]bool{}
		for _, sn := range w.east.Snapshots() {
			out[sn.ID] = !sn.Deleted
		}
		return out
	}
	s := &scope{r: w.r, xd: w.xd, st: &w.xd.Status, key: "ns/home", gen: w.xd.Generation, now: w.now}
	res, err := s.atRest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rb := w.xd.Status.Rollback; rb == nil || rb.SnapshotID != newest {
		t.Fatalf("rollback %+v, want the one to %s taken", rb, newest)
	}
	if l := live(); !l[middle] || !l[w.snapshot] || res.RequeueAfter == 0 {
		t.Fatalf("the reconcile that took the rollback: middle %s live %v, oldest live %v, requeue %v; want nothing pruned yet, and a requeue",
			middle, l[middle], l[w.snapshot], res.RequeueAfter)
	}
	w.xd.Status.ObservedGeneration = w.xd.Generation // the status written
	s = &scope{r: w.r, xd: w.xd, st: &w.xd.Status, key: "ns/home", gen: w.xd.Generation, now: w.now}
	if _, err := s.atRest(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l := live(); l[middle] || !l[newest] {
		t.Fatalf("the next reconcile: middle %s live %v, newest live %v; want the retention applied", middle, l[middle], l[newest])
	}
}
