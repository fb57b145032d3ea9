package sim

import (
	"errors"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/controller/workstation"
	"github.com/xdrive-io/xdrive/test/fakeec2"
)

// CheckSafety checks the invariants that hold after every step:
//
//	I1 no write lost: every write to a drive is held by a volume that still
//	   exists or by a completed snapshot, unless the user deleted the drive with
//	   deletionPolicy Delete;
//	I2 no duplicates: at most one pending or running instance per Workstation,
//	   and at most one drive volume per XDrive;
//	I4 a drive is never mounted by two instances at once;
//	I5 a drive volume attached to an instance holds every write of its
//	   drive's completed snapshots: a reattach never brings back a volume
//	   older than the drive's newest data;
//	I6 under interruptionPolicy Stop, nothing relaunches a Workstation after
//	   an interruption, whichever side saw it first, until its spec changes;
//	I8 a Workstation only ever names its own instances: an instance its
//	   status records carries its UID (never an earlier object's of that name);
//	I9 a drive's lease passes to another Workstation only once its holder
//	   is gone, and only the holder gives it back (checked at each write);
//	I7 the operator can always reach what it runs: a live instance that
//	   carries an operator-owned security group has SSH from the operator in it;
//	I10 the cost ledger counts no launch twice (cost.go);
//	I11 a Workstation its class's budget stopped launches nothing until
//	    the stop is lifted, and its instance is released flushed (budget.go);
//	I12-I15 forks restore only their source, rollbacks keep what they made
//	    not current, restore their target, and are taken only at rest (fork.go);
//	no reconcile panics, and no phase changes outside its kind's table;
//	and nothing the operator does not own is modified or deleted.
func (w *World) CheckSafety() error {
	if len(w.panics) > 0 {
		return fmt.Errorf("panic: %s", w.panics[0])
	}
	if len(w.leaseBroken) > 0 {
		return errors.New(w.leaseBroken[0])
	}
	if len(w.broken) > 0 {
		return errors.New(w.broken[0])
	}
	if len(w.illegalPhases) > 0 {
		return fmt.Errorf("phase change not in internal/controller/phases: %s", w.illegalPhases[0])
	}
	vols := w.allVolumes()
	snaps := w.allSnapshots()
	insts := w.allInstances()
	if err := w.noWriteLost(vols, snaps); err != nil {
		return err
	}
	byWorkstation := map[string][]string{}
	for _, i := range insts {
		if i.Tags[cloud.TagCluster] == Cluster && (i.State == fakeec2.StatePending || i.State == fakeec2.StateRunning) {
			uid := i.Tags[cloud.TagOwnerUID]
			byWorkstation[uid] = append(byWorkstation[uid], i.ID)
			if len(byWorkstation[uid]) > 1 {
				return fmt.Errorf("I2: Workstation %s has %d live instances %v", i.Tags[cloud.TagWorkstation], len(byWorkstation[uid]), byWorkstation[uid])
			}
		}
	}
	byDrive := map[string][]string{}
	mountedBy := map[string][]string{}
	for _, v := range vols {
		if v.Deleted || !isDriveVolume(v) {
			continue
		}
		uid := v.Tags[cloud.TagDriveUID]
		byDrive[uid] = append(byDrive[uid], v.ID)
		if len(byDrive[uid]) > 1 {
			return fmt.Errorf("I2: drive %s has %d volumes %v", v.Tags[cloud.TagDrive], len(byDrive[uid]), byDrive[uid])
		}
		if v.Attachment != nil && w.Agent.Mounted(v.Attachment.InstanceID) {
			mountedBy[uid] = append(mountedBy[uid], v.Attachment.InstanceID)
		}
	}
	for uid, ids := range mountedBy {
		if len(ids) > 1 {
			return fmt.Errorf("I4: drive %s is mounted by %v", uid, ids)
		}
	}
	if err := notBehind(vols, snaps, w.lostOutside(snaps, w.supersededSnapshots())); err != nil {
		return err
	}
	if err := w.forksKept(vols, snaps); err != nil {
		return err
	}
	if err := w.regionsKept(); err != nil {
		return err
	}
	if err := w.haltHeld(insts); err != nil {
		return err
	}
	if err := w.ownInstances(insts); err != nil {
		return err
	}
	if err := w.budgetKept(insts); err != nil {
		return err
	}
	if err := w.costCounted(insts); err != nil {
		return err
	}
	if err := operatorReaches(insts, w.allGroups()); err != nil {
		return err
	}
	if v := w.violations(); len(v) > 0 {
		return fmt.Errorf("ownership: the operator touched resources it does not own: %v", v)
	}
	return nil
}

// isDriveVolume tells a drive volume from the root volume a launch tags alike.
func isDriveVolume(v fakeec2.VolumeView) bool {
	if v.Tags[cloud.TagDriveUID] == "" || v.Root {
		return false
	}
	return v.Attachment == nil || v.Attachment.Device == bootstrap.DriveDevice
}

// haltHeld is I6: no instance of a Workstation halted by an interruption is
// launched after it, while its spec is as it was.
func (w *World) haltHeld(insts []fakeec2.InstanceView) error {
	for uid, h := range w.halted {
		var ws *v1alpha1.Workstation
		for _, o := range w.Workstations() {
			if string(o.UID) == uid {
				ws = &o
			}
		}
		if ws == nil || ws.Generation != h.generation {
			delete(w.halted, uid) // deleted, or its spec changed: it may start again
			continue
		}
		for _, i := range insts {
			if i.Tags[cloud.TagOwnerUID] == uid && i.LaunchTime.After(h.at) {
				return fmt.Errorf("I6: Workstation %s (interruptionPolicy Stop) relaunched as %s after %s was interrupted",
					ws.Name, i.ID, h.instanceID)
			}
		}
	}
	return nil
}

// ownInstances is I8: the instance a Workstation records is its own; and
// every live instance of a Workstation is known to it: named by its status,
// its teardown, or covered by its launch record (a launch whose answer was
// lost), or by the record of a launch dropped while its instance could not
// be listed (status.unconfirmedLaunch).
func (w *World) ownInstances(insts []fakeec2.InstanceView) error {
	owner := map[string]string{}
	for _, i := range insts {
		owner[i.ID] = i.Tags[cloud.TagOwnerUID]
	}
	byUID := map[string]*v1alpha1.Workstation{}
	wss := w.Workstations()
	for k := range wss {
		ws := &wss[k]
		byUID[string(ws.UID)] = ws
		if id := ws.Status.InstanceID; id != "" && owner[id] != string(ws.UID) {
			return fmt.Errorf("I8: Workstation %s (%s) names instance %s of %q", ws.Name, ws.UID, id, owner[id])
		}
	}
	for _, i := range insts {
		ws := byUID[i.Tags[cloud.TagOwnerUID]]
		if ws == nil || i.Tags[cloud.TagCluster] != Cluster || (i.State != fakeec2.StatePending && i.State != fakeec2.StateRunning) {
			continue
		}
		st := ws.Status
		if st.InstanceID == i.ID || st.Launch != nil || st.UnconfirmedLaunch != nil || (st.Teardown != nil && st.Teardown.InstanceID == i.ID) {
			continue
		}
		return fmt.Errorf("I8: instance %s of Workstation %s is %s, and its status neither names it nor records a launch", i.ID, ws.Name, i.State)
	}
	return nil
}

// operatorReaches is I7: an operator-owned group on a live instance admits the operator's SSH.
func operatorReaches(insts []fakeec2.InstanceView, groups []fakeec2.GroupView) error {
	owned := map[string]fakeec2.GroupView{}
	for _, g := range groups {
		if g.Tags[cloud.TagCluster] == Cluster && !g.Deleted {
			owned[g.ID] = g
		}
	}
	ssh := fakeec2.GroupRule{Protocol: "tcp", Port: 22, CIDR: OperatorCIDR}
	for _, i := range insts {
		if i.State != fakeec2.StatePending && i.State != fakeec2.StateRunning {
			continue
		}
		for _, id := range i.Groups {
			if g, ok := owned[id]; ok && !slices.Contains(g.Rules, ssh) {
				return fmt.Errorf("I7: instance %s carries the operator's group %s, which no longer admits the operator's SSH (rules %v)", i.ID, id, g.Rules)
			}
		}
	}
	return nil
}

// noWriteLost is I1: every write is in the history of a live volume or of a completed snapshot.
func (w *World) noWriteLost(vols []fakeec2.VolumeView, snaps []fakeec2.SnapshotView) error {
	held := map[int64]bool{}
	seen := map[*fakeec2.Data]bool{}
	mark := func(d *fakeec2.Data) {
		for ; d != nil && !seen[d]; d = d.Parent {
			seen[d] = true
			held[d.Write] = true
		}
	}
	volumeDrive := map[string]string{}
	for _, v := range vols {
		volumeDrive[v.ID] = v.Tags[cloud.TagDriveUID]
		if !v.Deleted {
			mark(v.Data)
		}
	}
	for _, s := range snaps {
		if s.State == fakeec2.SnapshotCompleted && (!s.Deleted || w.deletedOutside[s.ID]) {
			mark(s.Data)
		}
	}
	var lost []int64
	for _, wr := range w.allWrites() {
		if !held[wr.ID] && !w.deletedDrives[volumeDrive[wr.VolumeID]] && !w.droppedWrite(wr.ID) {
			lost = append(lost, wr.ID)
		}
	}
	if len(lost) > 0 {
		return fmt.Errorf("I1: writes %v are in no volume and no completed snapshot", lost)
	}
	return nil
}

// CheckSettled checks what must hold once events stop and the operator has
// caught up: I3 nothing leaked, and every object where the user asked.
func (w *World) CheckSettled() error {
	referenced := map[string]bool{}
	for _, ws := range w.Workstations() {
		referenced[ws.Status.InstanceID] = true
		want := ws.DeletionTimestamp.IsZero() && ws.Spec.State == "Running" && ws.Status.HaltedGeneration != ws.Generation &&
			!workstation.IdleStopped(&ws) && !workstation.BudgetStopped(&ws)
		switch {
		case !ws.DeletionTimestamp.IsZero():
			return fmt.Errorf("settle: Workstation %s is still being deleted (phase %s)", ws.Name, ws.Status.Phase)
		case want && ws.Status.Phase != "Running" && !w.waitsForDrive(ws.Spec.DriveRef.Name, ws.Name):
			return fmt.Errorf("settle: Workstation %s wants to run but is %s", ws.Name, ws.Status.Phase)
		case !want && ws.Status.Phase != "Stopped":
			return fmt.Errorf("settle: Workstation %s is stopped but is %s", ws.Name, ws.Status.Phase)
		case ws.Status.Phase == "Running" && !w.Agent.Mounted(ws.Status.InstanceID):
			return fmt.Errorf("settle: Workstation %s is Running on %q, which does not have its drive mounted", ws.Name, ws.Status.InstanceID)
		}
	}
	for _, xd := range w.Drives() {
		referenced[xd.Status.VolumeID] = true
		// No Workstation, stopped or running, holds the lease of a drive at
		// rest that it no longer names.
		if h := xd.Status.Holder; h != nil {
			if ws := w.Workstation(h.Name); ws != nil && string(ws.UID) == h.UID && ws.Spec.DriveRef.Name != xd.Name {
				return fmt.Errorf("settle: XDrive %s (%s) is held by Workstation %s (%s), which now names XDrive %s",
					xd.Name, xd.Status.Phase, h.Name, ws.Status.Phase, ws.Spec.DriveRef.Name)
			}
		}
		if !xd.DeletionTimestamp.IsZero() && !w.holdsWithInstance(xd) {
			return fmt.Errorf("settle: XDrive %s is still being deleted (phase %s, holder %q)", xd.Name, xd.Status.Phase, xd.Status.HolderName())
		}
	}
	for _, i := range w.allInstances() {
		if i.Tags[cloud.TagCluster] == Cluster && i.State != fakeec2.StateTerminated && !referenced[i.ID] {
			return fmt.Errorf("I3: instance %s (%s) is %s and referenced by no Workstation", i.ID, i.Tags[cloud.TagWorkstation], i.State)
		}
	}
	for _, v := range w.allVolumes() {
		if !v.Deleted && isDriveVolume(v) && !referenced[v.ID] {
			return fmt.Errorf("I3: volume %s of %s is referenced by no XDrive", v.ID, v.Tags[cloud.TagDrive])
		}
		if !v.Deleted && v.Root && v.Attachment == nil && v.Tags[cloud.TagCluster] == Cluster {
			return fmt.Errorf("I3: root volume %s outlived its instance", v.ID)
		}
	}
	for _, s := range w.allSnapshots() {
		if !s.Deleted && s.State == fakeec2.SnapshotPending && s.Tags[cloud.TagCluster] == Cluster {
			return fmt.Errorf("I3: snapshot %s is still pending", s.ID)
		}
	}
	owners := map[string]bool{}
	for _, ws := range w.Workstations() {
		owners[string(ws.UID)] = true
	}
	for _, g := range w.allGroups() {
		if !g.Deleted && g.Tags[cloud.TagCluster] == Cluster && !owners[g.Tags[cloud.TagOwnerUID]] {
			return fmt.Errorf("I3: security group %s of %s outlived its Workstation", g.ID, g.Tags[cloud.TagWorkstation])
		}
	}
	return w.regionsSettled()
}

// holdsWithInstance reports whether the drive's lease holder runs an
// instance: only then may a drive being deleted wait for it.
func (w *World) holdsWithInstance(xd v1alpha1.XDrive) bool {
	h := xd.Status.Holder
	if h == nil {
		return false
	}
	ws := w.Workstation(h.Name)
	return ws != nil && string(ws.UID) == h.UID && ws.Status.InstanceID != ""
}

// waitsForDrive reports whether a Workstation rightly waits: its drive is
// missing, being deleted, or held by another Workstation.
func (w *World) waitsForDrive(drive, ws string) bool {
	xd := w.Drive(drive)
	if xd == nil || !xd.DeletionTimestamp.IsZero() {
		return true
	}
	if c := meta.FindStatusCondition(xd.Status.Conditions, v1alpha1.ConditionVolumeReady); xd.Status.Phase == v1alpha1.XDrivePhasePending &&
		c != nil && (c.Reason == v1alpha1.ReasonSnapshotMissing || c.Reason == v1alpha1.ReasonSourceNotFound) {
		return true // every snapshot was deleted from outside: the drive refuses to start blank
	}
	if w.forkSourceGone(xd) {
		return true // a missing source waits (fork.go)
	}
	holders := []string{"", ws}
	return !slices.Contains(holders, xd.Status.HolderName())
}

// notBehind is I5: an attached drive volume descends from every completed
// snapshot of its drive, so no write the drive once had is missing from it.
// A snapshot a rollback made not current (superseded) is left out.
func notBehind(vols []fakeec2.VolumeView, snaps []fakeec2.SnapshotView, superseded map[string]bool) error {
	for _, v := range vols {
		if v.Deleted || v.Attachment == nil || !isDriveVolume(v) {
			continue
		}
		for _, sn := range snaps {
			if sn.Deleted || sn.State != fakeec2.SnapshotCompleted || sn.Tags[cloud.TagDriveUID] != v.Tags[cloud.TagDriveUID] || sn.Data == nil || superseded[sn.ID] {
				continue
			}
			if !v.Data.Descends(sn.Data) {
				return fmt.Errorf("I5: volume %s of %s, attached to %s, lacks writes of its drive's snapshot %s",
					v.ID, v.Tags[cloud.TagDrive], v.Attachment.InstanceID, sn.ID)
			}
		}
	}
	return nil
}

// liveVolumes are the drive volumes not deleted, by ID.
func (w *World) liveVolumes() map[string]fakeec2.VolumeView {
	out := map[string]fakeec2.VolumeView{}
	for _, v := range w.allVolumes() {
		if !v.Deleted && isDriveVolume(v) {
			out[v.ID] = v
		}
	}
	return out
}

// collectorOwnsOnlyOrphans is the ownership table's row of the collector:
// it snapshots and deletes only the volumes of drives that no longer exist
// (drives, by UID, as they were when it ran); a drive archives its own.
func (w *World) collectorOwnsOnlyOrphans(drives map[string]string, live map[string]fakeec2.VolumeView, snaps map[string]bool) {
	for _, v := range w.allVolumes() {
		if name, ok := drives[v.Tags[cloud.TagDriveUID]]; ok && v.Deleted && live[v.ID].ID != "" {
			w.broken = append(w.broken, fmt.Sprintf("ownership: the collector deleted volume %s of XDrive %s, which exists (a drive archives its own volumes)", v.ID, name))
		}
	}
	for _, sn := range w.allSnapshots() {
		if name, ok := drives[sn.Tags[cloud.TagDriveUID]]; ok && !snaps[sn.ID] {
			w.broken = append(w.broken, fmt.Sprintf("ownership: the collector snapshotted volume %s of XDrive %s, which exists (a drive archives its own volumes)", sn.VolumeID, name))
		}
	}
}

// noDeleteUnderLaunch: a drive never deletes a volume that its holder's
// recorded launch asks to reattach (docs/design.md, "Reattach"), as the
// drive read the holder and itself in that reconcile (reads may lag).
func (w *World) noDeleteUnderLaunch(name string, live map[string]fakeec2.VolumeView) {
	xd, _ := w.seen[key(&v1alpha1.XDrive{ObjectMeta: metav1.ObjectMeta{Name: name}})].(*v1alpha1.XDrive)
	if xd == nil || xd.Status.Holder == nil || !xd.DeletionTimestamp.IsZero() {
		return
	}
	h := xd.Status.Holder
	ws, _ := w.seen[key(&v1alpha1.Workstation{ObjectMeta: metav1.ObjectMeta{Name: h.Name}})].(*v1alpha1.Workstation)
	if ws == nil || string(ws.UID) != h.UID {
		return
	}
	hs := ws.Status
	if hs.Launch == nil || hs.InstanceID != "" || hs.ReattachVolumeID == "" || live[hs.ReattachVolumeID].ID == "" {
		return
	}
	for _, v := range w.allVolumes() {
		if v.ID == hs.ReattachVolumeID && v.Deleted {
			w.broken = append(w.broken, fmt.Sprintf("reattach: XDrive %s deleted volume %s, which the launch its holder %s recorded asks to reattach", name, v.ID, h.Name))
		}
	}
}

// failureTrue checks a drive's status against EC2 at each write: a reattach
// is never recorded as failed while EC2 says the volume is attached to that instance.
func (w *World) failureTrue(before *v1alpha1.XDrive, obj client.Object) {
	after, ok := obj.(*v1alpha1.XDrive)
	if !ok || after.Status.FailedReattach == nil {
		return
	}
	f := after.Status.FailedReattach
	if before != nil && before.Status.FailedReattach != nil && *before.Status.FailedReattach == *f {
		return
	}
	for _, v := range w.allVolumes() {
		if v.ID == f.VolumeID && !v.Deleted && v.Attachment != nil && v.Attachment.InstanceID == f.InstanceID {
			w.broken = append(w.broken, fmt.Sprintf("reattach: XDrive %s recorded its reattach of %s to %s as failed (%s), and EC2 says it is attached there",
				after.Name, v.ID, f.InstanceID, f.Reason))
		}
	}
}
