package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/test/fakeec2"
)

// forks is a seed's share of forks and rollbacks (nil in most seeds): a
// fork of home made at a random step, rollback requests at random times,
// snapshot retentions small enough that pruning happens, and I12-I15.
type forks struct {
	rng *rand.Rand
	// forkAt is the step the fork is applied at; 0: no fork in this seed.
	forkAt int
	// rollbacks: the seed asks for rollbacks.
	rollbacks bool
	// cycleAt are the steps a user stops and starts home's Workstation at (cycle).
	cycleAt []int
	// sources are the fork drives (by UID) and what they fork.
	sources map[string]forkSource
	// uids are the UIDs each drive name has had, for a fork's source of that name.
	uids map[string][]string
	// volumes are the drive volumes already checked by I12 and I14.
	volumes map[string]bool
	// taken are the rollbacks the operator took, by drive UID and request time.
	taken map[string]*rollbackTaken
	// superseded are the snapshots a rollback made not current: the drive's
	// newest data is its target's, and I5 leaves them out.
	superseded map[string]bool
	// dropped are the writes a rollback made not current: kept in the
	// newer snapshots until the next snapshot completes, then the drive's
	// retention may delete them, as the user asked (I1 leaves them out).
	dropped map[int64]bool
	// forged are the drives whose status a tenant forged to name another drive's snapshot.
	forged map[string]bool
}

// forkSource is what a fork drive forks: the source's name and, if named, the snapshot.
type forkSource struct {
	name, snapshotID string
}

// rollbackTaken is a rollback the operator took.
type rollbackTaken struct {
	drive, target string
	request       time.Time
	// before are the drive's snapshots (any state) when it was taken: the
	// drive was at rest, so its next snapshot is none of them.
	before map[string]bool
	// newer are the drive's completed snapshots newer than the target when it was taken.
	newer []string
	ended bool
}

// forkShare decides from the seed alone (the other seeds play as they did):
// one seed in fourteen forks, another rolls back, a third both.
func forkShare(seed uint64) (fork, rollback bool) {
	switch seed % 14 {
	case 2:
		return true, false
	case 3:
		return false, true
	case 5:
		return true, true
	}
	return false, false
}

// seedForks plans the seed's fork and rollbacks, and gives home a small retention.
func (w *World) seedForks(seed uint64) {
	fork, rollback := forkShare(seed)
	if !fork && !rollback {
		return
	}
	f := &forks{rng: rand.New(rand.NewPCG(seed^0x2545f4914f6cdd1d, seed)), rollbacks: rollback,
		sources: map[string]forkSource{}, uids: map[string][]string{}, volumes: map[string]bool{}, taken: map[string]*rollbackTaken{},
		superseded: map[string]bool{}, dropped: map[int64]bool{}, forged: map[string]bool{}}
	if fork {
		f.forkAt = 10 + f.rng.IntN(90)
	}
	if rollback {
		f.cycleAt = []int{15 + f.rng.IntN(25), 60 + f.rng.IntN(25)}
	}
	w.forks = f
	w.setRetention("home", 1+int32(f.rng.IntN(3)))
}

// setRetention edits a drive's snapshotRetention as a user would.
func (w *World) setRetention(name string, keep int32) {
	xd := w.Drive(name)
	if xd == nil || !xd.DeletionTimestamp.IsZero() {
		return
	}
	xd.Spec.SnapshotRetention = keep
	xd.Generation++
	if err := w.Client.Update(context.Background(), xd); err != nil {
		panic(err)
	}
	w.logf("user: xd/%s snapshotRetention %d", name, keep)
}

// forkStep is the seed's fork and rollback events of one step; true if it
// made the step's move (randomStep's is then skipped).
func (w *World) forkStep() bool {
	f := w.forks
	if f == nil {
		return false
	}
	if w.step == f.forkAt {
		w.makeFork()
	}
	if f.rollbacks && slices.Contains(f.cycleAt, w.step) {
		w.cycle()
		return true
	}
	r := f.rng.IntN(100)
	switch {
	case f.rollbacks && r < 8:
		if drives := w.driveNames(); len(drives) > 0 {
			w.requestRollback(drives[f.rng.IntN(len(drives))])
		}
	case r < 10:
		if drives := w.driveNames(); len(drives) > 0 {
			w.setRetention(drives[f.rng.IntN(len(drives))], 1+int32(f.rng.IntN(3)))
		}
	case r < 12 && f.forkAt > 0:
		w.forgeRestore()
	case f.rollbacks && r < 30:
		w.lowerRetentionUnderRollback()
	}
	return false
}

// cycle is a user who starts the Workstation holding home (if it is not
// running), writes, stops it and waits until the drive's snapshot is done,
// then starts it again and writes: a rollback seed then has snapshots to
// roll back to. It plays short rounds, each a step with its invariants
// checked, and the faults on.
func (w *World) cycle() {
	xd := w.Drive("home")
	if xd == nil || xd.Status.Holder == nil {
		return
	}
	name := xd.Status.Holder.Name
	w.logf("user: cycle ws/%s (start, write, stop, wait, start, write)", name)
	for _, want := range []v1alpha1.WorkstationState{v1alpha1.WorkstationStateRunning, v1alpha1.WorkstationStateStopped, v1alpha1.WorkstationStateRunning} {
		if ws := w.Workstation(name); ws == nil || ws.Spec.State != want && !w.SetState(name, want) {
			if w.step < 130 && want == v1alpha1.WorkstationStateRunning {
				w.forks.cycleAt = append(w.forks.cycleAt, w.step+10) // the user comes back later
			}
			return
		}
		for range 12 {
			if w.cycled(name, want) {
				break
			}
			w.cycleRound(name)
			if len(w.broken) > 0 {
				return
			}
		}
		if want == v1alpha1.WorkstationStateRunning {
			w.write()
			w.write()
		}
	}
}

// cycled reports whether a cycle's stop or start is done: stopped with the
// drive's snapshot completed, or running with the drive attached.
func (w *World) cycled(name string, want v1alpha1.WorkstationState) bool {
	ws, xd := w.Workstation(name), w.Drive("home")
	if ws == nil || xd == nil || string(ws.Status.Phase) != string(want) {
		return ws == nil || xd == nil
	}
	if want == v1alpha1.WorkstationStateRunning {
		return xd.Status.Phase == v1alpha1.XDrivePhaseAttached
	}
	return xd.Status.Phase == v1alpha1.XDrivePhaseArchived || xd.Status.Phase == v1alpha1.XDrivePhaseKept
}

// cycleRound is one round of a cycle: EC2, the instance and the operator each move once.
func (w *World) cycleRound(name string) {
	w.step++
	w.Advance(time.Duration(5+w.forks.rng.IntN(25)) * time.Second)
	w.transition()
	w.transition()
	w.Agent.Boot()
	w.Poll()
	w.ReconcileWorkstation(name)
	w.runAgentCalls()
	w.ReconcileDrive("home")
	w.Agent.ShutdownWrites()
	if err := w.CheckSafety(); err != nil {
		w.broken = append(w.broken, err.Error())
	}
	if w.step%2 == 0 {
		w.remember()
	}
}

// makeFork applies a fork of home, of its newest snapshot or (a third of
// the time) of one named, and attaches it: its own Workstation, or (as
// userAction may also do) a stopped Workstation re-pointed to it.
func (w *World) makeFork() {
	f := w.forks
	home := w.Drive("home")
	if home == nil || w.Drive("fork") != nil {
		return
	}
	src := forkSource{name: "home"}
	if snaps := w.completedSnapshots(string(home.UID)); len(snaps) > 0 && f.rng.IntN(3) == 0 {
		src.snapshotID = snaps[f.rng.IntN(len(snaps))]
	}
	xd := &v1alpha1.XDrive{}
	xd.Namespace, xd.Name, xd.UID = Namespace, "fork", w.uid()
	// Room for home to grow (driveChange): a fork smaller than its snapshot waits, rightly.
	xd.Spec = v1alpha1.XDriveSpec{SizeGiB: home.Spec.SizeGiB + 40, VolumeType: v1alpha1.VolumeTypeGP3, Filesystem: v1alpha1.FilesystemExt4,
		DeletionPolicy: home.Spec.DeletionPolicy, SnapshotRetention: 1 + int32(f.rng.IntN(2)), KeepVolumeForMinutes: w.KeepVolumeForMinutes,
		Source: &v1alpha1.DriveSource{XDrive: &v1alpha1.ForkSource{Name: src.name, SnapshotID: src.snapshotID}}}
	f.sources[string(xd.UID)] = src
	w.create(xd)
	w.logf("user: fork xd/home as xd/fork (snapshot %q)", src.snapshotID)
	if f.rng.IntN(2) == 0 {
		w.CreateWorkstation("forkws", "fork", v1alpha1.CapacityTypeOnDemand, v1alpha1.InterruptionPolicyRelaunch)
		return
	}
	for _, name := range w.workstationNames() {
		if w.UpdateWorkstation(name, "switch drive to fork", func(ws *v1alpha1.Workstation) {
			if ws.Spec.State == v1alpha1.WorkstationStateStopped {
				ws.Spec.DriveRef.Name = "fork"
			}
		}) {
			return
		}
	}
}

// lowerRetentionUnderRollback is a user who, the drive rolled back, lowers
// its retention to one: the newer snapshots must stay until the next
// snapshot completes, whatever the retention (I13).
func (w *World) lowerRetentionUnderRollback() {
	for _, xd := range w.Drives() {
		if rb := xd.Status.Rollback; rb != nil && xd.Spec.SnapshotRetention != 1 && xd.Status.SnapshotCount > 1 {
			w.setRetention(xd.Name, 1)
			return
		}
	}
}

// completedSnapshots are a drive's completed snapshots not deleted, by its UID.
func (w *World) completedSnapshots(uid string) []string {
	var out []string
	for _, sn := range w.allSnapshots() {
		if !sn.Deleted && sn.State == fakeec2.SnapshotCompleted && sn.Tags[cloud.TagDriveUID] == uid {
			out = append(out, sn.ID)
		}
	}
	return out
}

// requestRollback sets the rollback annotation as `kubectl xdrive rollback`
// would, to one of the drive's completed snapshots; whether its Workstation
// runs or not (the plugin refuses that, and so must the operator). Now and
// then the target is not the drive's own: a snapshot of another drive.
func (w *World) requestRollback(name string) {
	f := w.forks
	xd := w.Drive(name)
	if xd == nil {
		return
	}
	snaps := w.completedSnapshots(string(xd.UID))
	if f.rng.IntN(6) == 0 {
		snaps = w.otherSnapshots(xd)
	}
	if len(snaps) == 0 {
		return
	}
	at := w.Clock.Now().UTC().Truncate(time.Second)
	if last := xd.Status.LastRollbackRequest; last != nil && !at.After(last.Time) {
		return // the plugin stamps requests to the second: one a second
	}
	target := snaps[f.rng.IntN(len(snaps))]
	if xd.Annotations == nil {
		xd.Annotations = map[string]string{}
	}
	xd.Annotations[v1alpha1.RollbackAnnotation] = target + "@" + at.Format(time.RFC3339)
	if err := w.Client.Update(context.Background(), xd); err != nil {
		panic(err)
	}
	w.logf("user: rollback xd/%s to %s (phase %s, holder %s)", name, target, xd.Status.Phase, xd.Status.HolderName())
}

// otherSnapshots are the completed snapshots of the cluster's other drives.
func (w *World) otherSnapshots(xd *v1alpha1.XDrive) []string {
	var out []string
	for _, sn := range w.allSnapshots() {
		if !sn.Deleted && sn.State == fakeec2.SnapshotCompleted && sn.Tags[cloud.TagCluster] == Cluster &&
			sn.Tags[cloud.TagDriveUID] != "" && sn.Tags[cloud.TagDriveUID] != string(xd.UID) {
			out = append(out, sn.ID)
		}
	}
	return out
}

// forgeRestore is a tenant who may write XDrive status: the fork's next
// restore is forged to name a snapshot of neither the fork nor its
// source: another drive's, or another installation's (seedForeign). The
// Workstation's restore check must refuse it.
func (w *World) forgeRestore() {
	xd := w.Drive("fork")
	if xd == nil || xd.Status.Phase != v1alpha1.XDrivePhaseArchived || !xd.DeletionTimestamp.IsZero() {
		return
	}
	src := w.forks.sources[string(xd.UID)]
	var theirs []string
	for _, sn := range w.allSnapshots() {
		uid := sn.Tags[cloud.TagDriveUID]
		if !sn.Deleted && sn.State == fakeec2.SnapshotCompleted && uid != string(xd.UID) && !slices.Contains(w.forks.uids[src.name], uid) {
			theirs = append(theirs, sn.ID)
		}
	}
	if len(theirs) == 0 {
		return
	}
	xd.Status.RestoreSnapshotID = theirs[w.forks.rng.IntN(len(theirs))]
	if err := w.Client.Status().Update(context.Background(), xd); err != nil {
		panic(err)
	}
	w.forks.forged[string(xd.UID)] = true
	w.logf("tenant: forge xd/fork status.restoreSnapshotID %s", xd.Status.RestoreSnapshotID)
}

// settleForks has a drive whose status still names a forged restore
// resolved again (a spec edit), so that settling can finish.
func (w *World) settleForks() {
	if w.forks == nil {
		return
	}
	for _, xd := range w.Drives() {
		if !w.forks.forged[string(xd.UID)] || !xd.DeletionTimestamp.IsZero() || !w.forgedRestore(&xd) {
			continue
		}
		xd.Generation++
		if err := w.Client.Update(context.Background(), &xd); err != nil {
			panic(err)
		}
		w.logf("user: edit xd/%s (resolved again after the forgery)", xd.Name)
	}
}

// forgedRestore reports whether a fork's next restore is neither its own snapshot nor its source's.
func (w *World) forgedRestore(xd *v1alpha1.XDrive) bool {
	id := xd.Status.RestoreSnapshotID
	for _, sn := range w.allSnapshots() {
		if sn.ID == id {
			uid := sn.Tags[cloud.TagDriveUID]
			return uid != string(xd.UID) && !slices.Contains(w.forks.uids[w.forks.sources[string(xd.UID)].name], uid)
		}
	}
	return false
}

// forkSourceGone reports a fork that has not restored yet whose source is
// gone: it waits, as the design says a missing source does. (The drive
// resolved its restore while the source existed, so it is Archived; its
// Workstation's restore check, which can no longer tell the snapshot is
// the source's, refuses it as ForeignSnapshot.)
func (w *World) forkSourceGone(xd *v1alpha1.XDrive) bool {
	if xd.Spec.Source == nil || xd.Spec.Source.XDrive == nil || xd.Status.LatestSnapshotID != "" {
		return false
	}
	src := w.Drive(xd.Spec.Source.XDrive.Name)
	return src == nil || !src.DeletionTimestamp.IsZero()
}

// superseded tells I5 the snapshots a rollback made not current.
func (w *World) supersededSnapshots() map[string]bool {
	if w.forks == nil {
		return nil
	}
	return w.forks.superseded
}

// droppedWrite tells I1 the writes a rollback made not current.
func (w *World) droppedWrite(id int64) bool {
	return w.forks != nil && w.forks.dropped[id]
}

// forksKept checks, after every step:
//
//	I12 a drive volume is restored from a completed snapshot of its own
//	    drive or, for a fork, of its source (the one named, if named);
//	    never from another drive's;
//	I13 while a rollback is in effect, no snapshot newer than its target
//	    is deleted (but from outside); it ends once the drive records a
//	    snapshot started after it was taken, and only then (or once its
//	    target is gone);
//	I14 a volume restored while a rollback is in effect is restored from its target;
//	I15 a rollback is taken only from a drive at rest whose Workstation is
//	    stopped (a request while in use changes nothing), only to a
//	    completed snapshot of the drive, and each request only once.
func (w *World) forksKept(vols []fakeec2.VolumeView, snaps []fakeec2.SnapshotView) error {
	f := w.forks
	if f == nil {
		return nil
	}
	drives := map[string]*v1alpha1.XDrive{}
	for _, xd := range w.Drives() {
		drives[string(xd.UID)] = &xd
		if !slices.Contains(f.uids[xd.Name], string(xd.UID)) {
			f.uids[xd.Name] = append(f.uids[xd.Name], string(xd.UID))
		}
	}
	byID := map[string]fakeec2.SnapshotView{}
	for _, sn := range snaps {
		byID[sn.ID] = sn
	}
	if err := w.rollbacksKept(drives, byID); err != nil {
		return err
	}
	for _, v := range vols {
		if f.volumes[v.ID] || v.Root || v.Tags[cloud.TagDriveUID] == "" {
			continue
		}
		f.volumes[v.ID] = true
		if err := w.restoredFromOwn(v, byID); err != nil {
			return err
		}
	}
	return nil
}

// restoredFromOwn is I12 and I14 for a new drive volume.
func (w *World) restoredFromOwn(v fakeec2.VolumeView, byID map[string]fakeec2.SnapshotView) error {
	f := w.forks
	uid := v.Tags[cloud.TagDriveUID]
	for _, rb := range f.taken {
		if rb.drive == uid && !rb.ended && v.SnapshotID != rb.target {
			return fmt.Errorf("I14: volume %s of %s is restored from %q while its rollback to %s (requested %s) is in effect",
				v.ID, v.Tags[cloud.TagDrive], v.SnapshotID, rb.target, rb.request.Format(time.RFC3339))
		}
	}
	if v.SnapshotID == "" {
		return nil
	}
	sn, ok := byID[v.SnapshotID]
	owner := sn.Tags[cloud.TagDriveUID]
	if !ok || owner == uid {
		return nil
	}
	src, isFork := f.sources[uid]
	switch {
	case !isFork:
		return fmt.Errorf("I12: volume %s of %s is restored from snapshot %s of another drive (%s)", v.ID, v.Tags[cloud.TagDrive], sn.ID, sn.Tags[cloud.TagDrive])
	case !slices.Contains(f.uids[src.name], owner):
		return fmt.Errorf("I12: volume %s of fork %s is restored from snapshot %s (drive %s, UID %q, installation %q), not of its source %s",
			v.ID, v.Tags[cloud.TagDrive], sn.ID, sn.Tags[cloud.TagDrive], owner, sn.Tags[cloud.TagCluster], src.name)
	case src.snapshotID != "" && sn.ID != src.snapshotID:
		return fmt.Errorf("I12: volume %s of fork %s is restored from snapshot %s of its source, not the one named, %s",
			v.ID, v.Tags[cloud.TagDrive], sn.ID, src.snapshotID)
	}
	return nil
}

// rollbacksKept is I13 and I15 for the rollbacks in the drives' status.
func (w *World) rollbacksKept(drives map[string]*v1alpha1.XDrive, byID map[string]fakeec2.SnapshotView) error {
	f := w.forks
	for uid, xd := range drives {
		rb := xd.Status.Rollback
		if rb == nil {
			continue
		}
		k := uid + "@" + rb.RequestTime.UTC().Format(time.RFC3339)
		seen := f.taken[k]
		switch {
		case seen != nil && seen.ended:
			return fmt.Errorf("I15: XDrive %s took the rollback request of %s to %s again, after it ended", xd.Name, rb.RequestTime.UTC().Format(time.RFC3339), rb.SnapshotID)
		case seen != nil:
			continue
		}
		target, ok := byID[rb.SnapshotID]
		if !ok || target.Deleted || target.State != fakeec2.SnapshotCompleted || target.Tags[cloud.TagDriveUID] != uid {
			return fmt.Errorf("I15: XDrive %s took a rollback to %s, which is not a completed snapshot of its own", xd.Name, rb.SnapshotID)
		}
		taken := &rollbackTaken{drive: uid, target: rb.SnapshotID, request: rb.RequestTime.Time, before: map[string]bool{}}
		for _, sn := range byID {
			if sn.Tags[cloud.TagDriveUID] == uid {
				taken.before[sn.ID] = true
			}
			if !sn.Deleted && sn.State == fakeec2.SnapshotCompleted && sn.Tags[cloud.TagDriveUID] == uid && sn.StartTime.After(target.StartTime) {
				taken.newer = append(taken.newer, sn.ID)
				f.superseded[sn.ID] = true
				w.dropWrites(sn.Data, target.Data)
			}
		}
		slices.Sort(taken.newer)
		f.taken[k] = taken
		w.logf("  check: XDrive %s rolled back to %s; newer kept: %v", xd.Name, rb.SnapshotID, taken.newer)
	}
	for k, rb := range f.taken {
		if rb.ended {
			continue
		}
		xd := drives[rb.drive]
		if xd != nil && xd.Status.Rollback != nil && xd.Status.Rollback.RequestTime.Time.Equal(rb.request) {
			for _, id := range rb.newer {
				if byID[id].Deleted && !w.deletedOutside[id] {
					return fmt.Errorf("I13: snapshot %s, newer than the rollback's target %s, was deleted while the rollback is in effect", id, rb.target)
				}
			}
			if latest, ok := byID[xd.Status.LatestSnapshotID]; ok && !rb.before[latest.ID] {
				return fmt.Errorf("I13: XDrive %s recorded snapshot %s, which completed after its rollback to %s, and the rollback is still in effect",
					xd.Name, latest.ID, rb.target)
			}
			continue
		}
		rb.ended = true
		if xd == nil || !xd.DeletionTimestamp.IsZero() || xd.Status.Rollback != nil || byID[rb.target].Deleted {
			continue // gone, replaced by a newer request, or its target is gone
		}
		if !w.completedAfter(rb, byID) {
			return fmt.Errorf("I13: XDrive %s's rollback to %s (%s) ended, and no snapshot completed after it", xd.Name, rb.target, k)
		}
	}
	return nil
}

// completedAfter reports whether a snapshot of the drive taken after the rollback has completed.
func (w *World) completedAfter(rb *rollbackTaken, byID map[string]fakeec2.SnapshotView) bool {
	for _, sn := range byID {
		if sn.Tags[cloud.TagDriveUID] == rb.drive && sn.State == fakeec2.SnapshotCompleted && !rb.before[sn.ID] {
			return true
		}
	}
	return false
}

// dropWrites marks the writes of a newer snapshot that its rollback's target lacks.
func (w *World) dropWrites(newer, target *fakeec2.Data) {
	for d := newer; d != nil && !target.Descends(d); d = d.Parent {
		w.forks.dropped[d.Write] = true
	}
}

// rollbackAtRest is I15's first part, around one reconcile of a drive: a
// rollback it takes was requested of a drive at rest (no volume) whose
// holder had no launch, instance or teardown, as the reconcile read the
// drive and its holder (reads may lag; a lagging read is what the
// controller decides on, so it is what the check holds it to).
func (w *World) rollbackAtRest(name string) func() {
	if w.forks == nil {
		return func() {}
	}
	before := w.Drive(name)
	if before == nil {
		return func() {}
	}
	return func() {
		after := w.Drive(name)
		if after == nil || after.Status.Rollback == nil {
			return
		}
		if b := before.Status.Rollback; b != nil && b.RequestTime.Equal(&after.Status.Rollback.RequestTime) {
			return
		}
		read, _ := w.seen[key(before)].(*v1alpha1.XDrive)
		if read == nil {
			read = before
		}
		var holder *v1alpha1.Workstation
		if h := read.Status.Holder; h != nil {
			holder, _ = w.seen[key(&v1alpha1.Workstation{ObjectMeta: metav1.ObjectMeta{Name: h.Name}})].(*v1alpha1.Workstation)
		}
		if atRest(read, holder) {
			return
		}
		w.broken = append(w.broken, fmt.Sprintf("I15: XDrive %s took a rollback to %s while in use, as it read itself and its holder (phase %s, volume %q, holder %s active)",
			name, after.Status.Rollback.SnapshotID, read.Status.Phase, read.Status.VolumeID, read.Status.HolderName()))
	}
}

// atRest reports whether a drive is at rest with its holder (as read, if any) stopped.
func atRest(xd *v1alpha1.XDrive, holder *v1alpha1.Workstation) bool {
	st := xd.Status
	rest := st.VolumeID == "" && (st.Phase == v1alpha1.XDrivePhaseArchived || st.Phase == v1alpha1.XDrivePhasePending || st.Phase == "")
	if h := st.Holder; rest && h != nil && holder != nil && string(holder.UID) == h.UID {
		hs := holder.Status
		rest = hs.Launch == nil && hs.InstanceID == "" && hs.Teardown == nil
	}
	return rest
}
