package sim

import (
	"context"
	"fmt"
	"k8s.io/apimachinery/pkg/api/equality"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/test/fakeec2"
)

// Failure is a seed that broke an invariant, with the trace that replays it.
type Failure struct {
	Seed  uint64
	Err   error
	Trace []string
}

func (f *Failure) Error() string {
	tail := f.Trace[max(0, len(f.Trace)-60):]
	return fmt.Sprintf("seed %d: %v\nreplay: go test ./test/sim/ -run TestSeed -seed %d -v\nlast steps:\n%s",
		f.Seed, f.Err, f.Seed, strings.Join(tail, "\n"))
}

// Run plays one seed: a random setup, steps random events with the invariants
// checked after each, then settles and checks that nothing leaked.
func Run(seed uint64, steps int) error {
	w := New(seed)
	w.ConflictRate, w.StaleRate, w.Agent.FailRate = 0.08, 0.15, 0.2
	w.CrashInCallRate, w.LostAnswerRate, w.LaunchLagRate = 0.03, 0.05, 0.3
	w.seedBudget(seed)
	w.setup()
	w.regionSetup()
	w.setSchedule(seed)
	w.seedForks(seed)
	for w.step = 1; w.step <= steps; w.step++ {
		if !w.regionStep() && !w.forkStep() {
			w.randomStep()
		}
		w.Agent.ShutdownWrites()
		if err := w.CheckSafety(); err != nil {
			return &Failure{Seed: seed, Err: err, Trace: w.Trace}
		}
		if w.step%2 == 0 {
			w.remember()
		}
	}
	if err := w.Settle(); err != nil {
		return &Failure{Seed: seed, Err: err, Trace: w.Trace}
	}
	return nil
}

func (w *World) setup() {
	if w.Rng.IntN(2) == 0 {
		w.KeepVolumeForMinutes = 10 // the warm period
	}
	// Half the seeds stop with the operator's default --stop-timeout (5
	// minutes): AWS's reclaim, two minutes after its notice, then often
	// meets a stop under way. The others stop within those two minutes.
	if w.Rng.IntN(2) == 0 {
		w.timings.StopTimeout = 5 * time.Minute
		w.boot()
	}
	// The default tolerance, one that reattaches only in the cheapest zone, and (twice as often) one that always reattaches.
	w.ReattachTolerance = []*int32{nil, ptr.To[int32](0), ptr.To[int32](1000), ptr.To[int32](1000)}[w.Rng.IntN(4)]
	// A third of the seeds start with the instance of an earlier Workstation
	// named dev, deleted while the manager was down, whose launch record was
	// lost: the new dev never adopts it (I8) and the collector ends it (I3).
	if w.Rng.IntN(3) == 0 {
		w.seedPredecessor("dev", "home")
	}
	policies := []v1alpha1.DeletionPolicy{v1alpha1.DeletionPolicyRetain, v1alpha1.DeletionPolicyDelete}
	w.CreateDrive("home", policies[w.Rng.IntN(2)])
	capacity := []v1alpha1.CapacityType{v1alpha1.CapacityTypeSpot, v1alpha1.CapacityTypeOnDemand}
	interruption := []v1alpha1.InterruptionPolicy{v1alpha1.InterruptionPolicyRelaunch, v1alpha1.InterruptionPolicyStop}
	w.CreateWorkstation("dev", "home", capacity[w.Rng.IntN(2)], interruption[w.Rng.IntN(2)])
	if w.Rng.IntN(3) == 0 {
		w.CreateDrive("data", policies[w.Rng.IntN(2)])
	}
	// Most seeds reach an idle stop, and half open the instance with their own security group.
	if w.Rng.IntN(3) > 0 {
		w.setIdleStop("dev", true)
	}
	if w.Rng.IntN(2) == 0 {
		w.setAccess("dev", true)
	}
}

// seedPredecessor launches an instance as a lost launch of an earlier
// Workstation of this name would have: the same tags, another owner UID.
func (w *World) seedPredecessor(name, drive string) {
	id, err := w.EC2.SeedInstance("t3.large", "us-east-1a", map[string]string{
		cloud.TagCluster: Cluster, cloud.TagWorkstation: Namespace + "/" + name, cloud.TagOwnerUID: string(w.uid()),
		cloud.TagDrive: Namespace + "/" + drive, cloud.TagName: name, cloud.TagLaunchAttempt: "1",
	})
	if err != nil {
		panic(err)
	}
	w.logf("aws: instance %s of an earlier ws/%s runs", id, name)
}

// Settle stops the events and lets the operator catch up, then checks I3 and
// that every object ended where the user asked. It advances two minutes a round,
// past the garbage collector's grace, until two rounds change nothing.
func (w *World) Settle() error {
	w.ConflictRate, w.StaleRate, w.Agent.FailRate = 0, 0, 0
	w.CrashInCallRate, w.LostAnswerRate, w.LaunchLagRate = 0, 0, 0
	w.logf("SETTLE: no more events")
	w.restoreClass()
	w.clearSchedules()
	w.settleRegions()
	const roundTime = 2 * time.Minute
	minRounds := int(GCGrace/roundTime) + 2
	last, stable := "", 0
	for round := 0; round < 60 && (round < minRounds || stable < 2); round++ {
		w.step++
		w.settleForks()
		w.Advance(roundTime)
		w.Agent.ShutdownWrites()
		for _, f := range w.fakes() {
			f.Settle()
		}
		w.Agent.Boot()
		w.Poll()
		for range 2 {
			for _, ws := range w.Workstations() {
				w.ReconcileWorkstation(ws.Name)
			}
			w.runAgentCalls()
			for _, xd := range w.Drives() {
				w.ReconcileDrive(xd.Name)
			}
		}
		w.Collect()
		if err := w.CheckSafety(); err != nil {
			return err
		}
		if fp := w.fingerprint(); fp == last {
			stable++
		} else {
			last, stable = fp, 0
		}
	}
	return w.CheckSettled()
}

// fingerprint sums up the state that settling may still change.
func (w *World) fingerprint() string {
	var b strings.Builder
	for _, o := range w.objects() {
		b.WriteString(o.GetName() + "@" + o.GetResourceVersion() + " ")
	}
	for _, i := range w.allInstances() {
		b.WriteString(i.ID + i.State + " ")
	}
	for _, v := range w.allVolumes() {
		fmt.Fprintf(&b, "%s%v ", v.ID, v.Deleted)
	}
	for _, sn := range w.allSnapshots() {
		fmt.Fprintf(&b, "%s%s%v ", sn.ID, sn.State, sn.Deleted)
	}
	for _, g := range w.allGroups() {
		fmt.Fprintf(&b, "%s%v%d ", g.ID, g.Deleted, len(g.Rules))
	}
	return b.String()
}

// later runs a user's action after some steps.
func (w *World) later(steps int, action func()) {
	w.deferred = append(w.deferred, deferred{step: w.step + steps, action: action})
}

// deferred is a user's action due at a step.
type deferred struct {
	step   int
	action func()
}

// randomStep makes one move of the scheduler.
func (w *World) randomStep() {
	var due []deferred
	w.deferred = slices.DeleteFunc(w.deferred, func(d deferred) bool {
		if d.step <= w.step {
			due = append(due, d)
		}
		return d.step <= w.step
	})
	for _, d := range due {
		d.action()
	}
	r := w.Rng.IntN(1000)
	switch {
	case r < 300:
		// Names ever applied: a reconcile of a deleted object is a cheap no-op.
		if names := w.created["ws"]; len(names) > 0 {
			w.ReconcileWorkstation(names[w.Rng.IntN(len(names))])
		}
	case r < 520:
		if names := w.created["xd"]; len(names) > 0 {
			w.ReconcileDrive(names[w.Rng.IntN(len(names))])
		}
	case r < 560:
		w.Poll()
	case r < 600:
		w.RunAgentCall()
	case r < 700:
		w.transition()
	case r < 740:
		w.Agent.Boot()
	case r < 800:
		w.write()
	case r < 850:
		w.Advance(time.Duration(1+w.Rng.IntN(20)) * time.Second)
	case r < 865:
		w.Advance(time.Duration(2+w.Rng.IntN(13)) * time.Minute)
	case r < 920:
		w.userAction()
	case r < 975:
		w.awsEvent()
	case r < 985:
		w.Crash()
	default:
		w.Collect()
	}
}

func (w *World) workstationNames() []string {
	var out []string
	for _, ws := range w.Workstations() {
		out = append(out, ws.Name)
	}
	return out
}

func (w *World) driveNames() []string {
	var out []string
	for _, xd := range w.Drives() {
		out = append(out, xd.Name)
	}
	return out
}

// transition lets EC2 move one resource to its next state.
func (w *World) transition() {
	var ts []fakeec2.Transition
	var in []*fakeec2.Fake
	for _, f := range w.fakes() {
		for _, t := range f.Transitions() {
			ts, in = append(ts, t), append(in, f)
		}
	}
	if len(ts) == 0 {
		return
	}
	k := w.Rng.IntN(len(ts))
	t := ts[k]
	if err := in[k].Apply(t); err == nil {
		w.logf("aws: %s", t)
	}
}

// write is the user writing to a mounted drive.
func (w *World) write() {
	var mounted []string
	for _, i := range w.allInstances() {
		if w.Agent.Mounted(i.ID) {
			mounted = append(mounted, i.ID)
		}
	}
	if len(mounted) == 0 {
		return
	}
	id := mounted[w.Rng.IntN(len(mounted))]
	vol := w.Agent.driveVolume(id)
	if vol == "" {
		return
	}
	if n, err := w.fakeOf(vol).Write(vol); err == nil {
		w.logf("instance %s: write %d to %s", id, n, vol)
	}
}

func (w *World) userAction() {
	names := w.workstationNames()
	switch w.Rng.IntN(13) {
	case 0, 1:
		if len(names) > 0 {
			w.SetState(names[w.Rng.IntN(len(names))], v1alpha1.WorkstationStateStopped)
		}
	case 2, 3:
		if len(names) > 0 {
			w.SetState(names[w.Rng.IntN(len(names))], v1alpha1.WorkstationStateRunning)
		}
	case 4:
		if len(names) > 0 && w.Rng.IntN(3) == 0 {
			if ws := w.Workstation(names[w.Rng.IntN(len(names))]); ws != nil {
				w.Delete(ws)
			}
		}
	case 5:
		// A second Workstation on the same drive, or one of a deleted name
		// applied again: a new object (UID) whose predecessor may have left an instance.
		switch {
		case !slices.Contains(names, "twin") && w.Drive("home") != nil:
			w.CreateWorkstation("twin", "home", v1alpha1.CapacityTypeSpot, v1alpha1.InterruptionPolicyRelaunch)
		case !slices.Contains(names, "dev") && w.Drive("home") != nil:
			w.CreateWorkstation("dev", "home", v1alpha1.CapacityTypeOnDemand, v1alpha1.InterruptionPolicyRelaunch)
		}
	case 6:
		// driveRef may change only while stopped, as the API enforces.
		if drives := w.driveNames(); len(names) > 0 && len(drives) > 0 {
			name := names[w.Rng.IntN(len(names))]
			target := drives[w.Rng.IntN(len(drives))]
			w.UpdateWorkstation(name, "switch drive to "+target, func(ws *v1alpha1.Workstation) {
				if ws.Spec.State == v1alpha1.WorkstationStateStopped {
					ws.Spec.DriveRef.Name = target
				}
			})
		}
	case 7:
		if drives := w.driveNames(); len(drives) > 0 && w.Rng.IntN(4) == 0 {
			if xd := w.Drive(drives[w.Rng.IntN(len(drives))]); xd != nil {
				w.Delete(xd)
			}
		}
	case 8, 9:
		if len(names) > 0 {
			w.idleAction(names[w.Rng.IntN(len(names))])
		}
	case 10:
		if len(names) > 0 {
			w.specChange(names[w.Rng.IntN(len(names))])
		}
	case 11:
		if drives := w.driveNames(); len(drives) > 0 {
			w.driveChange(drives[w.Rng.IntN(len(drives))])
		}
	case 12:
		w.classChange()
	}
}

// specChange edits a running or stopped Workstation mid-flight: its access,
// its interruption policy, or its reattach tolerance.
func (w *World) specChange(name string) {
	switch w.Rng.IntN(4) {
	case 0, 1:
		w.setAccess(name, w.Rng.IntN(2) == 0)
	case 2:
		w.UpdateWorkstation(name, "toggle interruptionPolicy", func(ws *v1alpha1.Workstation) {
			if ws.Spec.InterruptionPolicy == v1alpha1.InterruptionPolicyStop {
				ws.Spec.InterruptionPolicy = v1alpha1.InterruptionPolicyRelaunch
			} else {
				ws.Spec.InterruptionPolicy = v1alpha1.InterruptionPolicyStop
			}
		})
	case 3:
		tolerance := []*int32{nil, ptr.To[int32](0), ptr.To[int32](1000)}[w.Rng.IntN(3)]
		w.UpdateWorkstation(name, "set reattach tolerance", func(ws *v1alpha1.Workstation) { ws.Spec.ReattachPriceTolerancePercent = tolerance })
	}
}

// setAccess opens the Workstation to a network through its own security group, or closes it.
func (w *World) setAccess(name string, on bool) {
	var access *v1alpha1.WorkstationAccess
	if on {
		access = &v1alpha1.WorkstationAccess{AllowedCIDRs: []string{[]string{"203.0.113.0/24", "198.51.100.7/32"}[w.Rng.IntN(2)]}}
	}
	w.UpdateWorkstation(name, fmt.Sprintf("access %v", on), func(ws *v1alpha1.Workstation) { ws.Spec.Access = access })
}

// setSchedule gives one seed in five a spec.schedule on dev, chosen from
// the seed alone so that the other seeds' events stay as they were: a
// window every 20 minutes that closes 10 minutes after its start, so that
// scheduled stops and early starts meet every fault.
func (w *World) setSchedule(seed uint64) {
	if seed%5 != 4 {
		return
	}
	w.UpdateWorkstation("dev", "schedule: start every 20 min, stop 10 min after", func(ws *v1alpha1.Workstation) {
		ws.Spec.Schedule = &v1alpha1.Schedule{TimeZone: "Europe/Berlin", Start: "*/20 * * * *", Stop: "10-59/20 * * * *"}
	})
}

// clearSchedules takes the schedules off before the settle: a settled
// Workstation then runs as spec.state says.
func (w *World) clearSchedules() {
	for _, ws := range w.Workstations() {
		if ws.Spec.Schedule == nil || !ws.DeletionTimestamp.IsZero() {
			continue
		}
		ws.Spec.Schedule = nil
		ws.Generation++
		if err := w.Client.Update(context.Background(), &ws); err != nil {
			panic(err)
		}
		w.logf("user: schedule off ws/%s", ws.Name)
	}
}

func (w *World) setIdleStop(name string, on bool) {
	var idle *v1alpha1.IdleStop
	if on {
		idle = &v1alpha1.IdleStop{After: &metav1.Duration{Duration: 30 * time.Minute}}
	}
	w.UpdateWorkstation(name, fmt.Sprintf("idleStop %v", on), func(ws *v1alpha1.Workstation) { ws.Spec.IdleStop = idle })
}

// driveChange edits a drive mid-flight: its warm period, its prewarm, or its size.
func (w *World) driveChange(name string) {
	xd := w.Drive(name)
	if xd == nil || !xd.DeletionTimestamp.IsZero() {
		return
	}
	switch w.Rng.IntN(3) {
	case 0:
		xd.Spec.KeepVolumeForMinutes = []int32{0, 10}[w.Rng.IntN(2)]
	case 1:
		xd.Spec.Prewarm = ptr.To(w.Rng.IntN(2) == 0)
	case 2:
		xd.Spec.SizeGiB += 2 // sizeGiB may only grow
	}
	xd.Generation++
	if err := w.Client.Update(context.Background(), xd); err != nil {
		panic(err)
	}
	w.logf("user: edit xd/%s (keep %d min, prewarm %v, %d GiB)", name, xd.Spec.KeepVolumeForMinutes, xd.Spec.PrewarmOn(), xd.Spec.SizeGiB)
}

// idleAction turns a Workstation's idle auto-stop on or off, resumes it, or
// logs a user in or out of its instance.
func (w *World) idleAction(name string) {
	switch w.Rng.IntN(4) {
	case 0:
		w.setIdleStop(name, true)
	case 1:
		w.setIdleStop(name, false)
	case 2:
		w.Resume(name)
	case 3:
		if ws := w.Workstation(name); ws != nil && ws.Status.InstanceID != "" {
			w.Agent.SetBusy(ws.Status.InstanceID, !w.Agent.busy[ws.Status.InstanceID])
		}
	}
}

// awsEvent is something AWS or someone at the console does.
func (w *World) awsEvent() {
	live := w.liveInstances()
	switch w.Rng.IntN(10) {
	case 8:
		// A spot instance sees the notice at IMDS; the queue's copy comes later,
		// or never. Its watcher releases the drive if it is still mounted and
		// the watcher runs (a third of the time it is down). When nothing on
		// the instance acts, the operator learns of the notice from the reclaim.
		spot := slices.DeleteFunc(slices.Clone(live), func(i fakeec2.InstanceView) bool { return !i.Spot })
		if len(spot) > 0 {
			i := spot[w.Rng.IntN(len(spot))]
			if w.Rng.IntN(3) == 0 || !w.Agent.SelfRelease(i.ID) {
				w.logf("aws: spot notice at IMDS of %s; its watcher does not act", i.ID)
			}
			w.spotNotice(i, true)
			// Half the time the user, who sees nothing of it, restarts the
			// Workstation and leaves its spec alone for a while: the release
			// or the reclaim may then meet a stop under way, with a wish to
			// run again, and I6 holds until the spec changes.
			if name := workstationName(i); w.Rng.IntN(2) == 0 && w.SetState(name, v1alpha1.WorkstationStateStopped) {
				w.later(1+w.Rng.IntN(8), func() {
					w.SetState(name, v1alpha1.WorkstationStateRunning)
					w.handsOff[name] = w.step + 80
				})
			}
		}
	case 9:
		if len(live) > 0 {
			i := live[w.Rng.IntN(len(live))]
			w.spotNotice(i, false)
			w.noticeOf(i, v1alpha1.NoticeSpotInterruption, w.Clock.Now().Truncate(time.Second))
		}
	case 0, 1:
		if len(live) > 0 {
			i := live[w.Rng.IntN(len(live))]
			at := w.Clock.Now().Truncate(time.Second)
			w.spotNotice(i, false)
			w.noticeOf(i, v1alpha1.NoticeSpotInterruption, at)
			if w.Rng.IntN(2) == 0 {
				w.noticeOf(i, v1alpha1.NoticeRebalance, at) // AWS may send both in the same second
			}
			if w.Rng.IntN(3) == 0 {
				w.Agent.SelfRelease(i.ID)
			}
		}
	case 2:
		if len(live) > 0 {
			i := live[w.Rng.IntN(len(live))]
			if w.fakeOf(i.ID).TerminateOutside(i.ID) == nil {
				w.logf("aws: instance %s terminated from outside", i.ID)
			}
		}
	case 3:
		if len(live) > 0 {
			i := live[w.Rng.IntN(len(live))]
			w.fakeOf(i.ID).HideInstance(i.ID, 1+w.Rng.IntN(3))
			w.logf("aws: instance %s missing from the next listings", i.ID)
		}
	case 4:
		if id := w.ownedSnapshot(fakeec2.SnapshotCompleted); id != "" && w.fakeOf(id).DeleteSnapshotOutside(id) == nil {
			w.deletedOutside[id] = true
			w.logf("aws: snapshot %s deleted from outside", id)
		}
	case 5:
		if id := w.ownedSnapshot(fakeec2.SnapshotPending); id != "" && w.fakeOf(id).FailSnapshot(id) == nil {
			w.logf("aws: snapshot %s failed", id)
		}
	case 6:
		if id := w.ownedSnapshot(fakeec2.SnapshotPending); id != "" && w.fakeOf(id).DeleteSnapshotOutside(id) == nil {
			w.logf("aws: pending snapshot %s deleted from outside", id)
		}
	case 7:
		// The next reattach fails: a transient error, or one that sends the
		// Workstation back to the snapshot; or it takes effect and its answer
		// is lost, so that the SDK's retry answers what EC2 says of an
		// attachment already made.
		if w.Rng.IntN(2) == 0 {
			code := []string{"InternalError", "VolumeInUse", "IncorrectState"}[w.Rng.IntN(3)]
			w.EC2.InjectError("AttachVolume", code, true, 1)
			w.logf("aws: the next AttachVolume takes effect and answers %s", code)
			return
		}
		code := []string{"InternalError", "VolumeInUse", "IncorrectInstanceState"}[w.Rng.IntN(3)]
		w.EC2.InjectError("AttachVolume", code, false, 1)
		w.logf("aws: the next AttachVolume fails with %s", code)
	}
}

func (w *World) liveInstances() []fakeec2.InstanceView {
	var out []fakeec2.InstanceView
	for _, i := range w.allInstances() {
		if i.Tags[cloud.TagCluster] == Cluster && (i.State == fakeec2.StatePending || i.State == fakeec2.StateRunning) {
			out = append(out, i)
		}
	}
	return out
}

func workstationName(i fakeec2.InstanceView) string {
	_, name, _ := cloud.SplitObjectKey(i.Tags[cloud.TagWorkstation])
	return name
}

func (w *World) ownedSnapshot(state string) string {
	var ids []string
	for _, s := range w.allSnapshots() {
		if !s.Deleted && s.State == state && s.Tags[cloud.TagCluster] == Cluster {
			ids = append(ids, s.ID)
		}
	}
	if len(ids) == 0 {
		return ""
	}
	return ids[w.Rng.IntN(len(ids))]
}

// classChange is an admin at work: the default class is deleted, made
// again, or made to refuse the drives' size.
func (w *World) classChange() {
	ctx := context.Background()
	cls := &v1alpha1.WorkstationClass{}
	err := w.Client.Get(ctx, client.ObjectKey{Name: "default"}, cls)
	switch {
	case apierrors.IsNotFound(err):
		w.seedDefaultClass()
		w.logf("admin: create WorkstationClass default")
	case err != nil:
		panic(err)
	case w.Rng.IntN(2) == 0:
		if err := w.Client.Delete(ctx, cls); err != nil {
			panic(err)
		}
		w.logf("admin: delete WorkstationClass default")
	default:
		cls.Spec.MaxDriveSizeGiB = []int32{0, 5}[w.Rng.IntN(2)]
		if w.Budget != nil {
			// The budget raised, or brought back (no draw of the seed's stream: the other seeds stay as they were).
			cls.Spec.Budget = w.Budget.DeepCopy()
			if cls.Generation%2 == 1 {
				cls.Spec.Budget = raisedBudget()
			}
		}
		cls.Generation++
		if err := w.Client.Update(ctx, cls); err != nil {
			panic(err)
		}
		w.logf("admin: WorkstationClass default maxDriveSizeGiB %d, budget %+v", cls.Spec.MaxDriveSizeGiB, cls.Spec.Budget)
	}
}

// restoreClass brings the default class back as it was, so that settling can finish.
func (w *World) restoreClass() {
	ctx := context.Background()
	cls := &v1alpha1.WorkstationClass{}
	if err := w.Client.Get(ctx, client.ObjectKey{Name: "default"}, cls); apierrors.IsNotFound(err) {
		w.seedDefaultClass()
		return
	}
	if cls.Spec.MaxDriveSizeGiB != 0 || !equality.Semantic.DeepEqual(cls.Spec.Budget, w.Budget) {
		cls.Spec.MaxDriveSizeGiB = 0
		cls.Spec.Budget = w.Budget.DeepCopy()
		cls.Generation++
		if err := w.Client.Update(ctx, cls); err != nil {
			panic(err)
		}
	}
}

// interrupted notes an interruption of a Workstation whose policy is Stop:
// nothing may relaunch it until its spec changes.
func (w *World) interrupted(i fakeec2.InstanceView) {
	ws := w.Workstation(workstationName(i))
	if ws == nil || string(ws.UID) != i.Tags[cloud.TagOwnerUID] || ws.Spec.InterruptionPolicy != v1alpha1.InterruptionPolicyStop {
		return
	}
	if _, seen := w.halted[string(ws.UID)]; !seen {
		w.halted[string(ws.UID)] = halt{instanceID: i.ID, at: w.Clock.Now(), generation: ws.Generation}
	}
}
