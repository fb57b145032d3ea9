package sim

import (
	"context"
	"slices"
	"testing"
	"time"

	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/test/fakeec2"
)

// The defects of issue #24, each a scenario named after the guard that
// prevents it. Each fails with its guard's mutant (test/sim/mutants) applied.

// attachedUnrecorded names a drive volume attached to an instance that the
// drive's status does not name: a reattach that no record holds.
func (s *scenario) attachedUnrecorded() string {
	xd := s.Drive("home")
	for _, v := range s.EC2.Volumes() {
		if !v.Deleted && v.ID == xd.Status.VolumeID && v.Attachment != nil && v.Attachment.InstanceID != xd.Status.AttachedTo {
			return v.Attachment.InstanceID
		}
	}
	return ""
}

// #24.1: the drive writes a reattach down before AttachVolume, so the volume
// is never on an instance that no record names; a stop right after the
// reattach flushes and snapshots the new instance's writes.
func TestReattachRecordedBeforeAttach(t *testing.T) {
	s := newScenario(t)
	s.ReattachTolerance = ptr.To[int32](1000)
	id := s.running()
	vol := s.Drive("home").Status.VolumeID
	s.Notice("dev", v1alpha1.NoticeSpotInterruption, id, s.Clock.Now())
	s.until("dev relaunched on the same volume", func() bool {
		if other := s.attachedUnrecorded(); other != "" {
			t.Fatalf("volume %s is attached to %s, which the drive's status does not name", vol, other)
		}
		ws := s.Workstation("dev")
		return ws.Status.InstanceID != "" && ws.Status.InstanceID != id && s.Agent.Mounted(ws.Status.InstanceID)
	})
	s.mustWrite(s.Workstation("dev").Status.InstanceID)
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	s.settle()
}

// #24.2: an AttachVolume that took effect but whose answer was VolumeInUse
// is a reattach that worked: the Workstation keeps its instance.
func TestReattachVolumeInUseAfterEffect(t *testing.T) { attachAnsweredAfterEffect(t, "VolumeInUse") }

// The same with IncorrectState, EC2's other answer for a volume no longer
// available: the record of a failure would name an attach that worked.
func TestReattachIncorrectStateAfterEffect(t *testing.T) {
	attachAnsweredAfterEffect(t, "IncorrectState")
}

func attachAnsweredAfterEffect(t *testing.T, code string) {
	s := newScenario(t)
	s.ReattachTolerance = ptr.To[int32](1000)
	id := s.running()
	vol := s.Drive("home").Status.VolumeID
	s.EC2.InjectError("AttachVolume", code, true, 1)
	s.Notice("dev", v1alpha1.NoticeSpotInterruption, id, s.Clock.Now())
	s.until("dev relaunched on the same volume", func() bool { return s.runningOn(id, vol) })
	if f := s.Drive("home").Status.FailedReattach; f != nil {
		t.Fatalf("the reattach was recorded as failed: %+v", f)
	}
	s.mustWrite(s.Workstation("dev").Status.InstanceID)
	s.settle()
}

// #24.3: a Workstation's security group whose record was lost goes with the
// Workstation: the collector sweeps the groups of deleted Workstations.
func TestSecurityGroupOfDeletedWorkstationCollected(t *testing.T) {
	s := newScenario(t)
	s.CreateDrive("home", v1alpha1.DeletionPolicyRetain)
	s.CreateWorkstation("dev", "home", v1alpha1.CapacityTypeOnDemand, v1alpha1.InterruptionPolicyRelaunch)
	s.setAccess("dev", true)
	s.until("a launch recorded", func() bool { return s.Workstation("dev").Status.Phase == v1alpha1.WorkstationPhaseLaunching })
	s.ConflictRate = 1 // the group's record is lost with the launch's
	s.ReconcileWorkstation("dev")
	s.ConflictRate = 0
	s.check()
	if s.Workstation("dev").Status.SecurityGroup != nil || len(s.ownedGroups()) != 1 {
		t.Fatalf("want one group that no status records; status %+v, groups %v", s.Workstation("dev").Status.SecurityGroup, s.ownedGroups())
	}
	s.setAccess("dev", false)
	s.Delete(s.Workstation("dev"))
	s.settle()
	if g := s.ownedGroups(); len(g) != 0 {
		t.Fatalf("groups %v outlived their Workstation", g)
	}
}

func (s *scenario) ownedGroups() []string {
	var out []string
	for _, g := range s.EC2.Groups() {
		if !g.Deleted && g.Tags[cloud.TagCluster] == Cluster {
			out = append(out, g.ID)
		}
	}
	return out
}

// #24.4: a class deleted while its Workstation runs: the relaunch after an
// interruption waits for a class instead of panicking, and goes once one exists.
func TestNoLaunchWithoutClass(t *testing.T) {
	s := newScenario(t)
	s.ReattachTolerance = ptr.To[int32](1000) // the relaunch does not wait for the drive's archive
	id := s.running()
	cls := &v1alpha1.WorkstationClass{}
	if err := s.Client.Get(context.Background(), client.ObjectKey{Name: "default"}, cls); err != nil {
		t.Fatal(err)
	}
	if err := s.Client.Delete(context.Background(), cls); err != nil {
		t.Fatal(err)
	}
	s.Notice("dev", v1alpha1.NoticeSpotInterruption, id, s.Clock.Now())
	s.until("dev waits for a class", func() bool {
		s.runAgentCalls() // a flushed release: the drive's volume is reusable when the instance is gone
		ws := s.Workstation("dev")
		return ws.Status.Phase == v1alpha1.WorkstationPhasePending && s.instanceState(id) == fakeec2.StateTerminated
	})
	s.rounds(3)
	if n := len(s.liveInstances()); n != 0 {
		t.Fatalf("%d instances launched without a class", n)
	}
	s.restoreClass()
	s.settle()
}

// runningStopPolicy runs a spot Workstation under interruptionPolicy Stop
// until its drive is mounted, and names its instance.
func runningStopPolicy(t *testing.T) (*scenario, string) {
	s := newScenario(t)
	s.CreateDrive("home", v1alpha1.DeletionPolicyRetain)
	s.CreateWorkstation("dev", "home", v1alpha1.CapacityTypeSpot, v1alpha1.InterruptionPolicyStop)
	s.until("dev running", func() bool {
		ws := s.Workstation("dev")
		return ws.Status.Phase == v1alpha1.WorkstationPhaseRunning && s.Agent.Mounted(ws.Status.InstanceID)
	})
	return s, s.Workstation("dev").Status.InstanceID
}

// noRelaunchAfter fails unless dev's interrupted instance is its last.
func (s *scenario) noRelaunchAfter(id string) {
	s.t.Helper()
	for _, i := range s.EC2.Instances() {
		if i.ID != id && i.Tags[cloud.TagWorkstation] == Namespace+"/dev" {
			s.t.Fatalf("relaunched as %s after the interruption, under interruptionPolicy Stop", i.ID)
		}
	}
}

// #24.5: under interruptionPolicy Stop, the instance's own watcher releasing
// the drive (its IMDS notice) halts the Workstation, and so does the queue's
// notice arriving later, whichever comes first.
func TestInterruptionPolicyStopAfterWatcherRelease(t *testing.T) {
	s, id := runningStopPolicy(t)
	s.Agent.SelfRelease(id)
	for range 40 { // the next status check sees the release
		if s.Workstation("dev").Status.Phase == v1alpha1.WorkstationPhaseStopped {
			break
		}
		s.round()
		s.runAgentCalls()
		s.Advance(time.Minute)
	}
	if ph := s.Workstation("dev").Status.Phase; ph != v1alpha1.WorkstationPhaseStopped {
		t.Fatalf("dev is %s after its watcher released the drive, want Stopped", ph)
	}
	s.Notice("dev", v1alpha1.NoticeSpotInterruption, id, s.Clock.Now())
	s.settle()
	s.noRelaunchAfter(id)
}

// #24.6: removing spec.access from a running Workstation closes the
// tenant's rules but keeps the operator's SSH, so the next stop still flushes.
func TestAccessRemovalKeepsOperatorSSH(t *testing.T) {
	s := newScenario(t)
	s.CreateDrive("home", v1alpha1.DeletionPolicyRetain)
	s.CreateWorkstation("dev", "home", v1alpha1.CapacityTypeOnDemand, v1alpha1.InterruptionPolicyRelaunch)
	s.setAccess("dev", true)
	s.until("dev running", func() bool { return s.Workstation("dev").Status.Phase == v1alpha1.WorkstationPhaseRunning })
	s.setAccess("dev", false)
	s.rounds(3) // check() holds I7 after each step
	sg := s.Workstation("dev").Status.SecurityGroup
	if sg == nil {
		t.Fatal("the group went while its instance still carries it")
	}
	for _, g := range s.EC2.Groups() {
		if g.ID == sg.ID && len(g.Rules) != 1 {
			t.Fatalf("group %s has rules %v; want only the operator's SSH", g.ID, g.Rules)
		}
	}
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	s.until("dev stopped", func() bool {
		s.runAgentCalls()
		return s.Workstation("dev").Status.Phase == v1alpha1.WorkstationPhaseStopped
	})
	if rel := s.Workstation("dev").Status.DriveRelease; rel == nil || rel.Consistency != v1alpha1.ConsistencyFlushed {
		t.Fatalf("the stop after removing access was not flushed: %+v", rel)
	}
	s.settle()
}

// #24.8: a kept volume that a recorded launch asks to reattach is not
// deleted while that launch has not recorded its instance, even past the
// warm period.
func TestKeptVolumeWaitsForPendingLaunch(t *testing.T) {
	s := newScenario(t)
	s.KeepVolumeForMinutes = 10
	s.ReattachTolerance = ptr.To[int32](1000)
	id := s.running()
	vol := s.Drive("home").Status.VolumeID
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	s.until("the volume kept", func() bool { return s.Drive("home").Status.Phase == v1alpha1.XDrivePhaseKept })
	s.SetState("dev", v1alpha1.WorkstationStateRunning)
	for range 10 {
		if st := s.Workstation("dev").Status; st.Launch != nil && st.InstanceID == "" {
			break
		}
		s.ReconcileWorkstation("dev")
	}
	if st := s.Workstation("dev").Status; st.Launch == nil || st.InstanceID != "" || st.ReattachVolumeID != vol {
		t.Fatalf("want a recorded launch that reattaches %s and has no instance yet; status %+v", vol, st)
	}
	s.Advance(11 * time.Minute) // the warm period is over before the instance is recorded
	for range 3 {
		s.ReconcileDrive("home")
		s.check()
	}
	for _, v := range s.EC2.Volumes() {
		if v.ID == vol && v.Deleted {
			t.Fatalf("volume %s deleted while a recorded launch asked for it", vol)
		}
	}
	s.until("dev relaunched on the same volume", func() bool { return s.runningOn(id, vol) })
	s.settle()
}

// lostLaunchRefused plays a launch whose RunInstances takes effect with its
// answer lost, its instance hidden from listings (for calls and at most d),
// then the class's refusal of the launch; it returns the instance and the
// class's drive size limit before the refusal.
func (s *scenario) lostLaunchRefused(capacity v1alpha1.CapacityType, policy v1alpha1.InterruptionPolicy, calls int, d time.Duration) (string, *v1alpha1.WorkstationClass, int32) {
	s.t.Helper()
	s.CreateDrive("home", v1alpha1.DeletionPolicyRetain)
	s.CreateWorkstation("dev", "home", capacity, policy)
	s.until("a launch recorded", func() bool { return s.Workstation("dev").Status.Phase == v1alpha1.WorkstationPhaseLaunching })
	s.EC2.InjectError("RunInstances", "InternalError", true, 1)
	s.ReconcileWorkstation("dev")
	live := s.liveInstances()
	if len(live) != 1 {
		s.t.Fatalf("live instances after the lost answer: %v", live)
	}
	s.EC2.HideInstanceFor(live[0].ID, calls, d)
	cls := &v1alpha1.WorkstationClass{}
	if err := s.Client.Get(context.Background(), client.ObjectKey{Name: "default"}, cls); err != nil {
		s.t.Fatal(err)
	}
	limit := cls.Spec.MaxDriveSizeGiB
	cls.Spec.MaxDriveSizeGiB = 5
	if err := s.Client.Update(context.Background(), cls); err != nil {
		s.t.Fatal(err)
	}
	s.ReconcileWorkstation("dev") // refused: the launch is dropped, unconfirmed; its instance is not listed
	return live[0].ID, cls, limit
}

// #24.9: the class refuses a launch whose RunInstances took effect with its
// answer lost, and EC2's listings do not show the new instance yet: the
// launch is dropped but kept as unconfirmed, nothing else launches, and the
// instance is found and kept once listed, not left to the collector.
func TestClassRefusalAdoptsLaunchedInstance(t *testing.T) {
	s := newScenario(t)
	id, _, _ := s.lostLaunchRefused(v1alpha1.CapacityTypeOnDemand, v1alpha1.InterruptionPolicyRelaunch, 2, 2*time.Minute)
	if st := s.Workstation("dev").Status; st.Launch != nil || st.UnconfirmedLaunch == nil || st.InstanceID != "" {
		t.Fatalf("after the refusal: launch %+v, unconfirmed %+v, instance %q; want the launch dropped as unconfirmed", st.Launch, st.UnconfirmedLaunch, st.InstanceID)
	}
	s.check()
	s.until("the refused launch's instance adopted", func() bool { return s.Workstation("dev").Status.InstanceID == id })
	if st := s.Workstation("dev").Status; st.UnconfirmedLaunch != nil {
		t.Errorf("the unconfirmed launch %+v is kept after its instance was found", st.UnconfirmedLaunch)
	}
	s.settle()
}

// A launch dropped while its instance was not listed, whose instance then
// got a spot notice and was reclaimed before it was ever seen live: the
// instance is found among the ended ones, and under interruptionPolicy Stop
// the Workstation halts instead of launching again (I6; soak seed 600008195).
func TestUnconfirmedLaunchReclaimedHalts(t *testing.T) {
	s := newScenario(t)
	id, cls, limit := s.lostLaunchRefused(v1alpha1.CapacityTypeSpot, v1alpha1.InterruptionPolicyStop, 1000, time.Hour)
	s.Notice("dev", v1alpha1.NoticeSpotInterruption, id, s.Clock.Now())
	if err := s.EC2.TerminateOutside(id); err != nil { // reclaimed, never listed
		t.Fatal(err)
	}
	s.rounds(3)
	s.EC2.HideInstanceFor(id, 0, 0)
	cls.Spec.MaxDriveSizeGiB = limit
	if err := s.Client.Update(context.Background(), cls); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		s.round()
		s.Advance(30 * time.Second)
	}
	s.noRelaunchAfter(id)
	if ws := s.Workstation("dev"); ws.Status.HaltedGeneration != ws.Generation || ws.Status.Phase != v1alpha1.WorkstationPhaseStopped {
		t.Fatalf("dev is %s, halted at generation %d of %d; want Stopped and halted", ws.Status.Phase, ws.Status.HaltedGeneration, ws.Generation)
	}
	s.settle()
}

// #24.10: a Workstation that wants a drive being deleted gives its lease
// back, so the deletion ends.
func TestWorkstationLetsDeletedDriveGo(t *testing.T) {
	s := newScenario(t)
	s.running()
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	s.until("dev stopped", func() bool { return s.Workstation("dev").Status.Phase == v1alpha1.WorkstationPhaseStopped })
	s.Delete(s.Drive("home"))
	s.SetState("dev", v1alpha1.WorkstationStateRunning)
	s.until("the drive deleted", func() bool { return s.Drive("home") == nil })
	s.settle()
}

// A Workstation stopped while it still held its drive, whose driveRef then
// changed, gives the earlier drive's lease back.
func TestLeaseOfEarlierDriveGivenBack(t *testing.T) {
	s := newScenario(t)
	s.running()
	s.CreateDrive("data", v1alpha1.DeletionPolicyRetain)
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	s.ReconcileWorkstation("dev") // the teardown starts; the lease is still held
	s.UpdateWorkstation("dev", "switch drive to data", func(ws *v1alpha1.Workstation) { ws.Spec.DriveRef.Name = "data" })
	s.until("home's lease given back", func() bool { return s.Drive("home").Status.Holder == nil })
	s.settle()
}

// A Workstation stopping, whose driveRef then changes to a drive it cannot
// launch on yet (not there), and which is started again, goes on to
// Pending, not Stopped: it gives the earlier drive's lease back there too,
// once that drive is at rest (seeds 300007260 and 300012562 found it).
func TestPendingGivesBackEarlierDrive(t *testing.T) {
	s := newScenario(t)
	s.running()
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	s.ReconcileWorkstation("dev") // the teardown starts; the lease is still held
	s.UpdateWorkstation("dev", "switch drive to data", func(ws *v1alpha1.Workstation) { ws.Spec.DriveRef.Name = "data" })
	s.SetState("dev", v1alpha1.WorkstationStateRunning)
	s.until("dev pending on data, and home's lease given back", func() bool {
		return s.Workstation("dev").Status.Phase == v1alpha1.WorkstationPhasePending && s.Drive("home").Status.Holder == nil
	})
}

// A user stops a Workstation, re-points its driveRef and starts it again
// before the operator saw the stop: the instance still runs on the earlier
// drive, and is stopped the normal way (flush, snapshot) so that the next
// launch takes the drive named (seed 574346004 found it).
func TestDriveChangedWhileStopped(t *testing.T) {
	s := newScenario(t)
	first := s.running()
	s.CreateDrive("data", v1alpha1.DeletionPolicyRetain)
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	s.UpdateWorkstation("dev", "switch drive to data", func(ws *v1alpha1.Workstation) { ws.Spec.DriveRef.Name = "data" })
	s.SetState("dev", v1alpha1.WorkstationStateRunning)
	s.until("dev running on data, home archived and given back", func() bool {
		ws, home := s.Workstation("dev"), s.Drive("home")
		return ws.Status.Phase == v1alpha1.WorkstationPhaseRunning && ws.Status.InstanceID != first &&
			s.Drive("data").Status.HolderName() == "dev" && home.Status.Holder == nil && home.Status.Phase == v1alpha1.XDrivePhaseArchived
	})
	s.settle()
}

// #24.7: a launch tags every volume it makes with the drive's tags, the root
// volume too; it maps an image's kept root volume with DeleteOnTermination,
// so no root volume outlives its instance.
func TestRootVolumeEndsWithItsInstance(t *testing.T) {
	s := newScenario(t)
	s.EC2.SetKeepRootVolumes(true)
	s.CreateDrive("home", v1alpha1.DeletionPolicyRetain)
	s.CreateWorkstation("dev", "home", v1alpha1.CapacityTypeOnDemand, v1alpha1.InterruptionPolicyRelaunch)
	s.until("running", func() bool { return s.Workstation("dev").Status.Phase == v1alpha1.WorkstationPhaseRunning })
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	s.settle()
	for _, v := range s.EC2.Volumes() {
		if v.Root && !v.Deleted && v.Tags[cloud.TagCluster] == Cluster {
			t.Fatalf("root volume %s (tags %v) outlived its instance", v.ID, v.Tags)
		}
	}
}

// The soak's I6 failures: an interruption that meets a stop under way, with
// the user asking to run again before it, halts under interruptionPolicy
// Stop, however the operator learns of it: the release's answer that the
// instance's watcher saw a spot notice, or AWS reclaiming the instance.
func TestStopPolicyHoldsWhenInterruptionMeetsStop(t *testing.T) {
	for _, tc := range []struct {
		name    string
		meet    func(s *scenario, i fakeec2.InstanceView)
		reached func(s *scenario) bool
	}{
		{"watcher's notice at release", func(s *scenario, i fakeec2.InstanceView) {
			s.Agent.SelfRelease(i.ID)
			s.spotNotice(i, true)
			s.runAgentCalls() // the release answers spot-notice
			s.until("the teardown closed", func() bool {
				ph := s.Workstation("dev").Status.Phase
				return ph != v1alpha1.WorkstationPhaseReleasing && ph != v1alpha1.WorkstationPhaseTerminating
			})
		}, func(s *scenario) bool {
			return len(s.notices) == 1 // closed before AWS's reclaim: the release's answer was all there was
		}},
		{"reclaim during the flush", func(s *scenario, i fakeec2.InstanceView) {
			s.Agent.FailRate = 1 // no release reaches the instance
			s.spotNotice(i, true)
			s.Advance(2 * time.Minute)
		}, func(s *scenario) bool { return len(s.notices) == 0 }},
		{"a later notice of an earlier instance", func(s *scenario, i fakeec2.InstanceView) {
			s.Agent.FailRate = 1 // the flush waits while the notices come
			s.Notice("dev", v1alpha1.NoticeSpotInterruption, i.ID, s.Clock.Now())
			s.ReconcileWorkstation("dev")
			// A late notice of an instance the Workstation ran before takes
			// the kind's place in status.notices: the teardown keeps its own.
			s.Notice("dev", v1alpha1.NoticeSpotInterruption, "i-0123456789abcdef0", s.Clock.Now().Add(time.Second))
			s.ReconcileWorkstation("dev")
		}, func(s *scenario) bool {
			st := s.Workstation("dev").Status
			return st.Teardown != nil && st.Teardown.InterruptedBy == v1alpha1.NoticeSpotInterruption &&
				!slices.ContainsFunc(st.Notices, func(n v1alpha1.ProcessedNotice) bool { return n.InstanceID == st.Teardown.InstanceID })
		}},
		{"reclaim at the stop's deadline", func(s *scenario, i fakeec2.InstanceView) {
			s.Agent.FailRate = 1
			s.spotNotice(i, true)
			s.Advance(2 * time.Minute)    // AWS reclaims it as the stop's deadline passes
			s.ReconcileWorkstation("dev") // before a poll: the operator terminates it at the deadline
		}, func(s *scenario) bool {
			ws := s.Workstation("dev")
			return len(s.notices) == 0 && ws.Status.Phase == v1alpha1.WorkstationPhaseTerminating && ws.Status.Teardown.TerminateTime != nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, id := runningStopPolicy(t)
			s.SetState("dev", v1alpha1.WorkstationStateStopped)
			s.until("a stop under way", func() bool { return s.Workstation("dev").Status.Phase == v1alpha1.WorkstationPhaseReleasing })
			s.SetState("dev", v1alpha1.WorkstationStateRunning) // before the interruption: it halts all the same
			var inst fakeec2.InstanceView
			for _, i := range s.EC2.Instances() {
				if i.ID == id {
					inst = i
				}
			}
			tc.meet(s, inst)
			if !tc.reached(s) {
				t.Fatalf("the scenario did not reach its interruption")
			}
			s.Agent.FailRate = 0
			s.settle()
			s.noRelaunchAfter(id)
		})
	}
}
