package sim

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/test/fakeec2"
)

// The nine orderings of issue #16, each a named scenario. Every step is
// followed by the safety checks; each scenario ends settled, with I3 checked.

type scenario struct {
	t *testing.T
	*World
}

func newScenario(t *testing.T) *scenario {
	w := New(uint64(len(t.Name())))
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("trace:\n" + strings.Join(w.Trace, "\n"))
		}
	})
	return &scenario{t: t, World: w}
}

// check fails the test on a broken invariant.
func (s *scenario) check() {
	s.t.Helper()
	if err := s.CheckSafety(); err != nil {
		s.t.Fatal(err)
	}
	s.remember()
}

// round lets EC2, the instances and the operator catch up once, without new events.
func (s *scenario) round() {
	s.t.Helper()
	s.step++
	s.EC2.Settle()
	s.check()
	s.Agent.Boot()
	s.Poll()
	for _, ws := range s.Workstations() {
		s.ReconcileWorkstation(ws.Name)
		s.check()
	}
	for _, xd := range s.Drives() {
		s.ReconcileDrive(xd.Name)
		s.check()
	}
}

func (s *scenario) rounds(n int) {
	s.t.Helper()
	for range n {
		s.round()
	}
}

// until runs rounds until cond holds.
func (s *scenario) until(what string, cond func() bool) {
	s.t.Helper()
	for range 40 {
		if cond() {
			return
		}
		s.round()
		s.Advance(5 * time.Second)
	}
	s.t.Fatalf("never: %s", what)
}

func (s *scenario) settle() {
	s.t.Helper()
	if err := s.Settle(); err != nil {
		s.t.Fatal(err)
	}
}

// running sets up drive home and Workstation dev, running with the drive mounted and written to.
func (s *scenario) running() string {
	s.t.Helper()
	s.CreateDrive("home", v1alpha1.DeletionPolicyRetain)
	s.CreateWorkstation("dev", "home", v1alpha1.CapacityTypeSpot, v1alpha1.InterruptionPolicyRelaunch)
	s.until("dev running with the drive attached", func() bool {
		xd, ws := s.Drive("home"), s.Workstation("dev")
		return ws.Status.Phase == v1alpha1.WorkstationPhaseRunning && xd.Status.Phase == v1alpha1.XDrivePhaseAttached &&
			s.Agent.Mounted(ws.Status.InstanceID)
	})
	id := s.Workstation("dev").Status.InstanceID
	s.mustWrite(id)
	return id
}

// mustWrite writes to the instance's drive; the instance must have it mounted.
func (s *scenario) mustWrite(id string) {
	s.t.Helper()
	vol := s.Agent.driveVolume(id)
	if vol == "" || !s.Agent.Mounted(id) {
		s.t.Fatalf("instance %s has no mounted drive to write to", id)
	}
	if _, err := s.EC2.Write(vol); err != nil {
		s.t.Fatal(err)
	}
	s.logf("instance %s: write to %s", id, vol)
}

// writeIfMounted is the user, or the shutdown, writing while it still can.
func (s *scenario) writeIfMounted(id string) bool {
	if !s.Agent.Mounted(id) {
		return false
	}
	_, err := s.EC2.Write(s.Agent.driveVolume(id))
	return err == nil
}

func (s *scenario) instanceState(id string) string {
	for _, i := range s.EC2.Instances() {
		if i.ID == id {
			return i.State
		}
	}
	return ""
}

func (s *scenario) snapshotsOf(volume string) []fakeec2.SnapshotView {
	var out []fakeec2.SnapshotView
	for _, sn := range s.EC2.Snapshots() {
		if sn.VolumeID == volume && !sn.Deleted {
			out = append(out, sn)
		}
	}
	return out
}

// Ordering 1a: a spot notice whose flush over SSH fails. The instance keeps
// writing until it is terminated; the snapshot must hold every write.
func TestOrdering1UnflushedSpotNotice(t *testing.T) {
	s := newScenario(t)
	id := s.running()
	s.Agent.FailRate = 1
	s.EC2.Hold(id) // a slow shutdown: the instance writes while shutting down
	s.Notice("dev", v1alpha1.NoticeSpotInterruption, id, s.Clock.Now())
	for range 30 {
		s.writeIfMounted(id)
		s.round()
		s.Advance(5 * time.Second)
	}
	if st := s.instanceState(id); st != fakeec2.StateShuttingDown {
		t.Fatalf("instance %s is %s after the flush deadline, want shutting-down", id, st)
	}
	if snaps := s.snapshotsOf(s.Agent.driveVolume(id)); len(snaps) != 0 {
		t.Fatalf("snapshot %s taken while the instance could still write", snaps[0].ID)
	}
	s.EC2.Release(id)
	s.Agent.FailRate = 0
	s.settle()
}

// Ordering 1b: a Stop whose SSH teardown fails until the stop timeout; the
// shutdown's own writes (docker stop, unmount) land while shutting down.
func TestOrdering1UnflushedStop(t *testing.T) {
	s := newScenario(t)
	id := s.running()
	s.Agent.FailRate = 1
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	for range 60 {
		if s.instanceState(id) == fakeec2.StateShuttingDown {
			s.writeIfMounted(id) // the shutdown writes
		}
		s.step++
		s.check()
		s.Poll()
		s.ReconcileWorkstation("dev")
		s.check()
		s.ReconcileDrive("home")
		s.check()
		s.Advance(5 * time.Second)
		for _, tr := range s.EC2.Transitions() {
			if tr.Kind != fakeec2.KindInstanceTerminated || s.instanceState(id) != fakeec2.StateShuttingDown || s.writeIfMounted(id) {
				_ = s.EC2.Apply(tr)
			}
		}
	}
	s.Agent.FailRate = 0
	s.settle()
	if xd := s.Drive("home"); xd.Status.Phase != v1alpha1.XDrivePhaseArchived {
		t.Fatalf("drive is %s after the stop, want Archived", xd.Status.Phase)
	}
}

// Ordering 1c: the instance is terminated from the console; its writes up to
// the end survive in the detached volume and reach the snapshot.
func TestOrdering1ConsoleTerminate(t *testing.T) {
	s := newScenario(t)
	id := s.running()
	if err := s.EC2.TerminateOutside(id); err != nil {
		t.Fatal(err)
	}
	s.Poll()
	s.ReconcileDrive("home")
	s.check()
	s.mustWrite(id) // still shutting down, still writing
	s.settle()
	vol := ""
	for _, v := range s.EC2.Volumes() {
		if v.Attachment == nil && v.Tags[cloud.TagDrive] == Namespace+"/home" && v.Deleted {
			vol = v.ID
		}
	}
	snaps := s.snapshotsOf(vol)
	if vol == "" || len(snaps) != 1 || snaps[0].Tags[cloud.TagDetached] != "true" {
		t.Fatalf("the vanished instance's volume %q has snapshots %+v, want one taken while detached", vol, snaps)
	}
}

// Ordering 2: an instance missing from listings for a while, and older than
// five minutes, is not gone: nothing is snapshotted or deleted, and later
// writes survive.
func TestOrdering2MissingFromListing(t *testing.T) {
	for _, restart := range []bool{false, true} {
		testMissingFromListing(t, restart)
	}
}

func testMissingFromListing(t *testing.T, restart bool) {
	s := newScenario(t)
	id := s.running()
	s.Advance(10 * time.Minute)
	s.EC2.HideInstanceFor(id, 1000, 24*time.Hour)
	if restart {
		s.Crash() // the shared poll starts empty: the instance is known only by ID
	}
	s.rounds(10)
	if st, ph := s.instanceState(id), s.Workstation("dev").Status.Phase; st != fakeec2.StateRunning || ph != v1alpha1.WorkstationPhaseRunning {
		t.Fatalf("instance %s is %s and dev %s while only missing from listings; want both running", id, st, ph)
	}
	xd := s.Drive("home")
	if xd.Status.Phase != v1alpha1.XDrivePhaseAttached || len(s.snapshotsOf(xd.Status.VolumeID)) != 0 {
		t.Fatalf("drive went %s with snapshots %v while its instance was only missing from listings", xd.Status.Phase, s.snapshotsOf(xd.Status.VolumeID))
	}
	s.mustWrite(id)
	s.EC2.HideInstance(id, 0)
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	s.settle()
}

// Ordering 3: the status write after RunInstances is lost, then the user
// deletes the Workstation: the instance is found by its tags and ended.
func TestOrdering3LostStatusWriteThenDelete(t *testing.T) {
	for _, how := range []string{"conflict", "answer-lost"} {
		t.Run(how, func(t *testing.T) {
			s := newScenario(t)
			s.CreateDrive("home", v1alpha1.DeletionPolicyRetain)
			s.CreateWorkstation("dev", "home", v1alpha1.CapacityTypeOnDemand, v1alpha1.InterruptionPolicyRelaunch)
			s.until("a launch recorded", func() bool { return s.Workstation("dev").Status.Phase == v1alpha1.WorkstationPhaseLaunching })
			if how == "conflict" {
				s.ConflictRate = 1
			} else {
				s.EC2.InjectError("RunInstances", "InternalError", true, 1)
			}
			s.ReconcileWorkstation("dev")
			s.ConflictRate = 0
			s.check()
			if n := len(s.liveInstances()); n != 1 || s.Workstation("dev").Status.InstanceID != "" {
				t.Fatalf("after the lost write: %d live instances, status.instanceID %q; want 1 and none", n, s.Workstation("dev").Status.InstanceID)
			}
			s.Delete(s.Workstation("dev"))
			s.until("dev deleted", func() bool { return s.Workstation("dev") == nil })
			if n := len(s.liveInstances()); n != 0 {
				t.Fatalf("%d instances live after the Workstation was deleted", n)
			}
			s.settle()
		})
	}
}

// Ordering 4: stopped right after launch, before the drive adopted the
// launch's volume: the volume is found by its tags and archived.
func TestOrdering4StoppedRightAfterLaunch(t *testing.T) {
	s := newScenario(t)
	s.CreateDrive("home", v1alpha1.DeletionPolicyRetain)
	s.CreateWorkstation("dev", "home", v1alpha1.CapacityTypeSpot, v1alpha1.InterruptionPolicyRelaunch)
	id := s.stoppedBeforeAdopted()
	if st := s.instanceState(id); st != fakeec2.StateTerminated {
		t.Fatalf("instance is %s, want terminated", st)
	}
	s.settle()
	if xd := s.Drive("home"); xd.Status.LatestSnapshotID == "" || xd.Status.VolumeID != "" {
		t.Fatalf("drive status %+v: want the launch's volume snapshotted and gone", xd.Status)
	}
}

// stoppedBeforeAdopted launches dev (its drive not reconciled since),
// writes on the instance and stops it, the drive still not reconciled until
// the instance is gone: a volume its status never recorded. It returns the instance.
func (s *scenario) stoppedBeforeAdopted() string {
	s.t.Helper()
	s.until("a launch recorded", func() bool { return s.Workstation("dev").Status.Phase == v1alpha1.WorkstationPhaseLaunching })
	s.ReconcileWorkstation("dev") // RunInstances; the drive does not see it yet
	id := s.Workstation("dev").Status.InstanceID
	if id == "" || s.Drive("home").Status.VolumeID != "" {
		s.t.Fatalf("want a launch the drive has not adopted; instance %q, drive volume %q", id, s.Drive("home").Status.VolumeID)
	}
	s.EC2.Settle()
	s.Agent.Boot()
	s.mustWrite(id)
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	for range 20 {
		s.EC2.Settle()
		s.Poll()
		s.ReconcileWorkstation("dev")
		s.check()
		s.Advance(10 * time.Second)
	}
	return id
}

// Ordering 5: Running, Stopped, Running again before the instance went: no
// deadlock; the old instance ends and a new one runs. Then a driveRef change
// while stopped, and a start.
func TestOrdering5StopStartNoDeadlock(t *testing.T) {
	s := newScenario(t)
	first := s.running()
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	s.until("release recorded", func() bool { return s.Workstation("dev").Status.DriveRelease != nil })
	s.SetState("dev", v1alpha1.WorkstationStateRunning)
	s.until("a new instance running", func() bool {
		ws := s.Workstation("dev")
		return ws.Status.Phase == v1alpha1.WorkstationPhaseRunning && ws.Status.InstanceID != first && s.instanceState(first) == fakeec2.StateTerminated
	})
	s.CreateDrive("data", v1alpha1.DeletionPolicyRetain)
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	s.until("stopped", func() bool { return s.Workstation("dev").Status.Phase == v1alpha1.WorkstationPhaseStopped })
	s.UpdateWorkstation("dev", "switch drive to data", func(ws *v1alpha1.Workstation) { ws.Spec.DriveRef.Name = "data" })
	s.SetState("dev", v1alpha1.WorkstationStateRunning)
	s.settle()
	if ws := s.Workstation("dev"); ws.Status.Phase != v1alpha1.WorkstationPhaseRunning || s.Drive("data").Status.HolderName() != "dev" {
		t.Fatalf("after switching drives: dev is %s, data held by %q", ws.Status.Phase, s.Drive("data").Status.HolderName())
	}
}

// Ordering 6: a spot notice and an ignored rebalance recommendation in the
// same second, in either order: the spot notice is acted on.
func TestOrdering6SpotNoticeNotDropped(t *testing.T) {
	for _, rebalanceLast := range []bool{true, false} {
		s := newScenario(t)
		id := s.running()
		at := s.Clock.Now().Truncate(time.Second)
		if rebalanceLast {
			s.Notice("dev", v1alpha1.NoticeSpotInterruption, id, at)
			s.Notice("dev", v1alpha1.NoticeRebalance, id, at)
		} else {
			s.Notice("dev", v1alpha1.NoticeRebalance, id, at)
			s.ReconcileWorkstation("dev")
			s.Notice("dev", v1alpha1.NoticeSpotInterruption, id, at)
		}
		s.until("the interrupted instance terminated", func() bool { return s.instanceState(id) == fakeec2.StateTerminated })
		if ws := s.Workstation("dev"); ws.Status.Interruptions != 1 {
			t.Fatalf("interruptions = %d, want 1", ws.Status.Interruptions)
		}
		s.settle()
	}
}

// Ordering 7: the restore snapshot is deleted from outside; the drive falls
// back to the one before. A pending snapshot that disappears is taken again.
func TestOrdering7SnapshotDeletedOutside(t *testing.T) {
	s := newScenario(t)
	s.running()
	for range 2 { // two archived generations
		s.SetState("dev", v1alpha1.WorkstationStateStopped)
		s.until("archived", func() bool {
			return s.Drive("home").Status.Phase == v1alpha1.XDrivePhaseArchived && s.Drive("home").Status.Holder == nil
		})
		s.SetState("dev", v1alpha1.WorkstationStateRunning)
		s.until("running", func() bool { return s.Workstation("dev").Status.Phase == v1alpha1.WorkstationPhaseRunning })
		s.round()
		s.mustWrite(s.Workstation("dev").Status.InstanceID)
	}
	// A pending snapshot vanishes.
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	s.until("snapshotting", func() bool { return s.Drive("home").Status.PendingSnapshotID() != "" })
	gone := s.Drive("home").Status.PendingSnapshotID()
	if err := s.EC2.DeleteSnapshotOutside(gone); err != nil {
		t.Fatal(err)
	}
	s.Advance(5 * time.Minute)
	s.until("archived again", func() bool { return s.Drive("home").Status.Phase == v1alpha1.XDrivePhaseArchived })
	latest := s.Drive("home").Status.LatestSnapshotID
	if latest == gone || latest == "" {
		t.Fatalf("latest snapshot %q after %s vanished while pending", latest, gone)
	}
	// The restore snapshot is deleted before the next start.
	if err := s.EC2.DeleteSnapshotOutside(latest); err != nil {
		t.Fatal(err)
	}
	s.deletedOutside[latest] = true
	s.SetState("dev", v1alpha1.WorkstationStateRunning)
	s.settle()
	ws := s.Workstation("dev")
	if ws.Status.Phase != v1alpha1.WorkstationPhaseRunning {
		t.Fatalf("dev is %s after its restore snapshot was deleted, want Running from an older snapshot", ws.Status.Phase)
	}
	if r := s.Drive("home").Status.RestoreSnapshotID; r == latest {
		t.Fatalf("still restoring from deleted %s", latest)
	}
}

// Ordering 8: two Workstations on one drive, started together, with stale
// reads: one holds the lease; never two instances on the drive.
func TestOrdering8TwoWorkstationsOneDrive(t *testing.T) {
	s := newScenario(t)
	s.CreateDrive("home", v1alpha1.DeletionPolicyRetain)
	s.ReconcileDrive("home")
	s.CreateWorkstation("dev", "home", v1alpha1.CapacityTypeSpot, v1alpha1.InterruptionPolicyRelaunch)
	s.CreateWorkstation("twin", "home", v1alpha1.CapacityTypeSpot, v1alpha1.InterruptionPolicyRelaunch)
	driveKey := key(s.Drive("home"))
	s.history = map[string][]client.Object{}
	s.remember() // the drive without a holder, as a lagging cache keeps it
	s.ReconcileWorkstation("dev")
	s.ReconcileWorkstation("dev") // dev takes the lease
	heldByDev := s.Drive("home")
	s.StaleOldest = true
	s.ReconcileWorkstation("twin") // twin still sees no holder, and tries to take it
	s.history[driveKey] = []client.Object{heldByDev}
	s.ReconcileWorkstation("dev") // dev, reading its lease, records a launch
	s.StaleOldest = false
	s.ReconcileWorkstation("twin") // twin reads the drive as it is
	s.StaleOldest = true
	s.ReconcileWorkstation("dev")
	s.StaleOldest = false
	s.ReconcileWorkstation("twin")
	s.check()
	s.StaleRate = 0.5
	for range 30 {
		s.round()
		s.Advance(5 * time.Second)
		launched := 0
		for _, i := range s.EC2.Instances() {
			if i.Tags[cloud.TagCluster] == Cluster {
				launched++
			}
		}
		if launched > 1 {
			t.Fatalf("%d instances launched for one drive", launched)
		}
	}
	s.StaleRate = 0
	holder := s.Drive("home").Status.HolderName()
	other := map[string]string{"dev": "twin", "twin": "dev"}[holder]
	s.SetState(holder, v1alpha1.WorkstationStateStopped)
	s.settle()
	if s.Drive("home").Status.HolderName() != other || s.Workstation(other).Status.Phase != v1alpha1.WorkstationPhaseRunning {
		t.Fatalf("after %s stopped, the lease is %q and %s is %s", holder, s.Drive("home").Status.HolderName(), other, s.Workstation(other).Status.Phase)
	}
}

// Ordering 9: a Workstation of the same name as an earlier one, whose
// instance outlived it, never adopts that instance; the collector ends it.
func TestOrdering9PredecessorNotAdopted(t *testing.T) {
	s := newScenario(t)
	old := s.running()
	ws := s.Workstation("dev")
	ws.Finalizers = nil // the predecessor went without its finalizer, leaving its instance
	if err := s.Client.Update(context.Background(), ws); err != nil {
		t.Fatal(err)
	}
	s.Delete(ws)
	// Kubernetes' garbage collector deletes the SSH Secret the predecessor
	// controlled (the fake client has none); the successor never uses it.
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ws.Namespace, Name: v1alpha1.SSHSecretName("dev")}}
	if err := s.Client.Delete(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	s.CreateWorkstation("dev", "home", v1alpha1.CapacityTypeSpot, v1alpha1.InterruptionPolicyRelaunch)
	s.rounds(5)
	if id := s.Workstation("dev").Status.InstanceID; id == old {
		t.Fatalf("the new Workstation adopted its predecessor's instance %s", old)
	}
	s.Advance(GCGrace)
	s.settle()
	if st := s.instanceState(old); st != fakeec2.StateTerminated {
		t.Fatalf("the predecessor's instance is %s, want terminated by the collector", st)
	}
	if ws := s.Workstation("dev"); ws.Status.Phase != v1alpha1.WorkstationPhaseRunning || ws.Status.InstanceID == old {
		t.Fatalf("the new Workstation is %s on %s", ws.Status.Phase, ws.Status.InstanceID)
	}
}

// The garbage collector: an owned volume of a drive that no longer exists is
// snapshotted while detached, and deleted only once that snapshot completed;
// an unreferenced instance is terminated after the grace period; what is
// referenced, young, or not owned is left alone.
func TestCollectorArchivesOrphans(t *testing.T) {
	s := newScenario(t)
	owned := map[string]string{cloud.TagCluster: Cluster, cloud.TagDrive: Namespace + "/gone", cloud.TagDriveUID: "uid-gone", cloud.TagName: "gone"}
	orphan, err := s.EC2.SeedVolume("us-east-1a", 10, owned)
	if err != nil {
		t.Fatal(err)
	}
	stray, err := s.EC2.SeedInstance("t3.large", "us-east-1a", map[string]string{cloud.TagCluster: Cluster, cloud.TagWorkstation: Namespace + "/gone", cloud.TagOwnerUID: "uid-gone-ws"})
	if err != nil {
		t.Fatal(err)
	}
	live := s.running()
	s.Collect()
	if st := s.instanceState(stray); st != fakeec2.StateRunning || len(s.snapshotsOf(orphan)) != 0 {
		t.Fatalf("within the grace period the collector acted: stray %s, snapshots of the orphan %v", st, s.snapshotsOf(orphan))
	}
	s.Advance(GCGrace + time.Minute)
	s.Collect()
	s.check()
	snaps := s.snapshotsOf(orphan)
	if len(snaps) != 1 || snaps[0].Tags[cloud.TagDetached] != "true" || snaps[0].State != fakeec2.SnapshotPending {
		t.Fatalf("orphan snapshots %+v, want one pending, taken while detached", snaps)
	}
	s.Collect() // the snapshot is still pending: the volume stays
	if vols := s.EC2.Volumes(); !slices.ContainsFunc(vols, func(v fakeec2.VolumeView) bool { return v.ID == orphan && !v.Deleted }) {
		t.Fatal("the orphan volume was deleted before its snapshot completed")
	}
	s.EC2.Settle()
	s.Collect()
	s.check()
	if !slices.ContainsFunc(s.EC2.Volumes(), func(v fakeec2.VolumeView) bool { return v.ID == orphan && v.Deleted }) {
		t.Fatal("the orphan volume was not deleted after its snapshot completed")
	}
	if st := s.instanceState(stray); st == fakeec2.StateRunning {
		t.Fatalf("the unreferenced instance %s is still running", stray)
	}
	if st := s.instanceState(live); st != fakeec2.StateRunning {
		t.Fatalf("the referenced instance %s is %s", live, st)
	}
	if st := s.instanceState(s.foreign[0]); st != fakeec2.StateRunning {
		t.Fatalf("a foreign instance was touched: %s", st)
	}
}

// A Workstation that waits for capacity holds its drive's lease meanwhile:
// the lease it takes in memory is written when its reconcile ends without a
// launch (flushLease), and stays.
func TestWaitingWorkstationHoldsLease(t *testing.T) {
	s := newScenario(t)
	for _, typ := range []string{"t3.large", "m5.large"} {
		for _, zone := range s.EC2.Zones() {
			s.EC2.SetOffered(typ, zone, false)
		}
	}
	s.CreateDrive("home", v1alpha1.DeletionPolicyRetain)
	s.CreateWorkstation("dev", "home", v1alpha1.CapacityTypeSpot, v1alpha1.InterruptionPolicyRelaunch)
	s.until("home held by dev, which waits for capacity", func() bool {
		return s.Drive("home").Status.HolderName() == "dev" &&
			meta.FindStatusCondition(s.Workstation("dev").Status.Conditions, v1alpha1.ConditionReady).Reason == v1alpha1.ReasonNoCapacity
	})
	s.rounds(5)
	if h := s.Drive("home").Status.Holder; h == nil || h.Name != "dev" || h.Launch != nil || s.Workstation("dev").Status.Launches != 0 {
		t.Fatalf("want home's lease held by dev, without a launch, while nothing is offered; holder %+v, launches %d", h, s.Workstation("dev").Status.Launches)
	}
}
