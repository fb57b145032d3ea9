package sim

import (
	"testing"
	"time"

	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/controller/handoff"
)

// A reattach launch whose RunInstances took effect with its answer lost,
// its instance not listed yet; then the drive's snapshot of the crash
// release fails, so the drive goes Detaching and back to Snapshotting. The
// Workstation's next reconcile reads the drive through a watch that lags
// one version and catches up within the reconcile: launching sees it
// Detaching and drops the launch (kept as unconfirmed: its RunInstances was
// called), and pending, in the same reconcile, sees the volume reusable
// again. pending must look for the dropped launch's instance before it
// launches again (I2: one live instance per Workstation; soak seeds
// 700006934 and 700008542 once showed it, across a restart).
func TestNoLaunchBesideUnconfirmed(t *testing.T) {
	s := newScenario(t)
	s.ReattachTolerance = ptr.To[int32](1000)
	old := s.running()
	vol := s.Drive("home").Status.VolumeID
	if err := s.EC2.TerminateOutside(old); err != nil { // a crash release
		t.Fatal(err)
	}
	s.until("a reattach launch recorded while the release's snapshot is pending", func() bool {
		s.holdSnapshots()
		st := s.Workstation("dev").Status
		return st.Phase == v1alpha1.WorkstationPhaseLaunching && st.ReattachVolumeID == vol
	})
	attempt := s.Workstation("dev").Status.Launch.Attempt
	s.EC2.InjectError("RunInstances", "InternalError", true, 1)
	s.ReconcileWorkstation("dev")
	s.check()
	live := s.liveInstances()
	if len(live) != 1 {
		t.Fatalf("live instances after the lost answer: %v", live)
	}
	id := live[0].ID
	s.EC2.HideInstanceFor(id, 1000, time.Minute) // not listed yet, as EC2's listings lag

	pending := s.Drive("home").Status.PendingSnapshotID()
	if err := s.EC2.FailSnapshot(pending); err != nil {
		t.Fatal(err)
	}
	s.ReconcileDrive("home")
	s.check()
	detaching := s.Drive("home")
	s.ReconcileDrive("home")
	s.check()
	if r, _ := handoff.ReusableVolume(detaching, ""); r != "" || detaching.Status.Phase != v1alpha1.XDrivePhaseDetaching {
		t.Fatalf("after the failed snapshot the drive is %s (reusable %q), want Detaching", detaching.Status.Phase, r)
	}
	if r, _ := handoff.ReusableVolume(s.Drive("home"), ""); r != vol {
		t.Fatalf("the drive is %s again, its volume %s not reusable", s.Drive("home").Status.Phase, vol)
	}

	// The class's check and launching read the drive Detaching; pending's read sees it as stored.
	s.lagReads = map[string][]client.Object{key(detaching): {detaching, detaching}}
	s.ReconcileWorkstation("dev")
	s.lagReads = nil
	st := s.Workstation("dev").Status
	if st.UnconfirmedLaunch == nil || st.UnconfirmedLaunch.Attempt != attempt {
		t.Fatalf("the launch was not dropped as unconfirmed (launch %+v, unconfirmed %+v): the scenario no longer reaches the guard",
			st.Launch, st.UnconfirmedLaunch)
	}
	s.check()
	s.ReconcileWorkstation("dev") // a launch recorded beside the unconfirmed one would run now
	s.check()
	s.until("the dropped launch's instance adopted", func() bool { return s.Workstation("dev").Status.InstanceID == id })
	s.settle()
}
