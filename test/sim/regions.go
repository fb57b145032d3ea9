package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/controller/gc"
	"github.com/xdrive-io/xdrive/internal/controller/workstation"
	"github.com/xdrive-io/xdrive/internal/controller/xdrive"
	"github.com/xdrive-io/xdrive/internal/drives"
	"github.com/xdrive-io/xdrive/internal/instances"
	"github.com/xdrive-io/xdrive/internal/securitygroup"
	"github.com/xdrive-io/xdrive/test/fakeec2"
)

// HomeRegion is the operator's region; WestRegion the other region of a region seed.
const (
	HomeRegion = "us-east-1"
	WestRegion = "us-west-2"
)

// regions is a seed's second region (nil in most seeds): the class lists
// both, spot prices change between them so that placement moves the
// drive, copies stay pending, fail or are deleted from outside, and
// I16-I19 are checked.
type regions struct {
	rng  *rand.Rand
	west *fakeec2.Fake
	// cache and gc are the west's instance poll and collector.
	cache *instances.Cache
	gc    *gc.Collector
	// cheap is the region whose spot prices are low now.
	cheap string
	// held are copies kept pending (fakeec2.Hold), by ID, with the step they are released at.
	held map[string]int
	// volumes are the drive volumes already checked (I16's deletion, I17).
	volumes map[string]bool
	// deletedChecked are the deleted volumes already checked by I16.
	deletedChecked map[string]bool
	// launches are the instances already checked by I19.
	launches map[string]bool
	// cycleAt are the steps a user stops home's Workstation, waits for the
	// drive to rest, and starts it again where spot is cheap (moveCycle).
	cycleAt []int
}

// regionShare decides from the seed alone (the other seeds play as they
// did): one seed in seven has two regions. The residues are none of the
// fork seeds' (forkShare) and none of the seeds make mutants names.
func regionShare(seed uint64) bool {
	return seed%14 == 6 || seed%14 == 10
}

// seedRegions adds the second region to a region seed's world, before the operator boots.
func (w *World) seedRegions(seed uint64) {
	if !regionShare(seed) {
		return
	}
	west := fakeec2.New(fakeec2.Options{Cluster: Cluster, Region: WestRegion, Now: w.Clock.Now, KeepRootVolumes: seed%2 == 0,
		NewInstanceLag: w.newInstanceLag})
	west.SetFault(w.fault)
	fakeec2.Link(w.EC2, west)
	rng := rand.New(rand.NewPCG(seed^0x3c6ef372fe94f82b, seed))
	w.regions = &regions{rng: rng, west: west, cheap: HomeRegion,
		held: map[string]int{}, volumes: map[string]bool{}, deletedChecked: map[string]bool{}, launches: map[string]bool{},
		cycleAt: []int{15 + rng.IntN(20), 55 + rng.IntN(20), 100 + rng.IntN(20)}}
}

// bootRegions gives the reconcilers and the collector the west's services.
func (w *World) bootRegions(svc *drives.Service) {
	rg := w.regions
	if rg == nil {
		return
	}
	rg.cache = instances.NewCache(instances.CacheOptions{API: rg.west, Cluster: Cluster, Clock: w.Clock})
	westSvc := drives.NewService(rg.west, Cluster, 0, w.Clock)
	launcher := &instances.Launcher{API: rg.west, Cluster: Cluster}
	groups := &securitygroup.Service{API: rg.west, Cluster: Cluster}
	w.xd.Region, w.xd.Copies = HomeRegion, svc
	w.xd.Elsewhere = map[string]xdrive.RegionServices{WestRegion: {Volumes: westSvc, Snapshots: westSvc, Copies: westSvc, Instances: rg.cache}}
	w.ws.Region = HomeRegion
	w.ws.Elsewhere = map[string]workstation.RegionServices{WestRegion: {
		Catalog: instances.NewCatalog(rg.west, rg.west, 0), Launcher: launcher, Instances: rg.cache, Volumes: westSvc, Groups: groups,
	}}
	rg.gc = &gc.Collector{Client: w.operatorClient, Instances: rg.cache, Launcher: launcher, Volumes: westSvc, Snapshots: westSvc, Groups: groups,
		Clock: w.Clock, Grace: GCGrace}
}

// classRegions are the default class's regions: both, in a region seed.
func (w *World) classRegions() []v1alpha1.ClassRegion {
	if w.regions == nil {
		return nil
	}
	return []v1alpha1.ClassRegion{{Name: HomeRegion}, {Name: WestRegion}}
}

// fakes are the regions' EC2s, the operator's first.
func (w *World) fakes() []*fakeec2.Fake {
	if w.regions == nil {
		return []*fakeec2.Fake{w.EC2}
	}
	return []*fakeec2.Fake{w.EC2, w.regions.west}
}

func (w *World) allInstances() []fakeec2.InstanceView {
	var out []fakeec2.InstanceView
	for _, f := range w.fakes() {
		out = append(out, f.Instances()...)
	}
	return out
}

func (w *World) allVolumes() []fakeec2.VolumeView {
	var out []fakeec2.VolumeView
	for _, f := range w.fakes() {
		out = append(out, f.Volumes()...)
	}
	return out
}

func (w *World) allSnapshots() []fakeec2.SnapshotView {
	var out []fakeec2.SnapshotView
	for _, f := range w.fakes() {
		out = append(out, f.Snapshots()...)
	}
	return out
}

func (w *World) allGroups() []fakeec2.GroupView {
	var out []fakeec2.GroupView
	for _, f := range w.fakes() {
		out = append(out, f.Groups()...)
	}
	return out
}

func (w *World) allWrites() []fakeec2.WriteRecord {
	var out []fakeec2.WriteRecord
	for _, f := range w.fakes() {
		out = append(out, f.AllWrites()...)
	}
	return out
}

func (w *World) violations() []string {
	var out []string
	for _, f := range w.fakes() {
		out = append(out, f.Violations()...)
	}
	return out
}

// fakeOf is the region's EC2 that holds the resource (instance, volume or snapshot ID).
func (w *World) fakeOf(id string) *fakeec2.Fake {
	for _, f := range w.fakes()[1:] {
		for _, i := range f.Instances() {
			if i.ID == id {
				return f
			}
		}
		for _, v := range f.Volumes() {
			if v.ID == id {
				return f
			}
		}
		for _, s := range f.Snapshots() {
			if s.ID == id {
				return f
			}
		}
	}
	return w.EC2
}

// regionStep is the seed's region events of one step: prices change
// between the regions, copies stay pending, fail or are deleted from
// outside, and a relaunch races a move. true if it made the step's move.
func (w *World) regionStep() bool {
	rg := w.regions
	if rg == nil {
		return false
	}
	if slices.Contains(rg.cycleAt, w.step) {
		w.moveCycle()
		return true
	}
	for id, at := range rg.held {
		if w.step >= at {
			w.fakeOf(id).Release(id)
			delete(rg.held, id)
			w.logf("aws: copy %s may complete again", id)
		}
	}
	if w.holdMoveCopy() {
		return false
	}
	r := rg.rng.IntN(100)
	switch {
	case r < 6:
		w.flipPrices()
	case r < 10:
		// The prices flip and the user restarts: the next launch may move the drive.
		w.flipPrices()
		w.relaunch("home")
	case r < 12:
		f := w.fakes()[rg.rng.IntN(2)]
		n := 1 + rg.rng.IntN(2)
		f.FailCopies(n)
		w.logf("aws: the next %d copies in %s fail", n, f.Region())
	case r < 15:
		if id := w.pickCopy(rg.rng.IntN(2) == 0); id != "" && w.fakeOf(id).DeleteSnapshotOutside(id) == nil {
			w.deletedOutside[id] = true
			w.logf("aws: copy %s deleted from outside", id)
		}
	case r < 18:
		if id := w.pickCopy(false); id != "" {
			w.fakeOf(id).Hold(id)
			rg.held[id] = w.step + 5 + rg.rng.IntN(30)
			w.logf("aws: copy %s stays pending until step %d", id, rg.held[id])
		}
	case r < 24:
		w.raceMove()
	case r < 26:
		if id := w.pickNewest(); id != "" && w.fakeOf(id).DeleteSnapshotOutside(id) == nil {
			w.deletedOutside[id] = true
			w.logf("aws: snapshot %s, the newest of its region, deleted from outside", id)
		}
	}
	return false
}

// pickNewest is the newest completed snapshot of drive home in its region:
// deleted from outside, the drive may hold newer data only in a region it left.
func (w *World) pickNewest() string {
	xd := w.Drive("home")
	if xd == nil {
		return ""
	}
	var newest fakeec2.SnapshotView
	for _, f := range w.fakes() {
		if f.Region() != driveRegion(xd) {
			continue
		}
		for _, s := range f.Snapshots() {
			if !s.Deleted && s.State == fakeec2.SnapshotCompleted && s.Tags[cloud.TagDriveUID] == string(xd.UID) && w.regions.held[s.ID] == 0 &&
				(newest.ID == "" || takenAt(s).After(takenAt(newest))) {
				newest = s
			}
		}
	}
	return newest.ID
}

// flipPrices makes the other region's spot market the cheap one.
func (w *World) flipPrices() {
	rg := w.regions
	cheap := WestRegion
	if rg.cheap == WestRegion {
		cheap = HomeRegion
	}
	rg.cheap = cheap
	for _, f := range w.fakes() {
		price := "0.2000"
		if f.Region() == cheap {
			price = fmt.Sprintf("0.00%d", 1+rg.rng.IntN(9))
		}
		for _, t := range []string{"t3.large", "m5.large"} {
			for _, z := range []string{"a", "b", "c"} {
				f.SetSpotPrice(t, f.Region()+z, price)
			}
		}
	}
	w.logf("aws: spot is cheap in %s now", cheap)
}

// pickCopy is a copy of the operator's, pending (or completed, if asked), not deleted.
func (w *World) pickCopy(completed bool) string {
	state := fakeec2.SnapshotPending
	if completed {
		state = fakeec2.SnapshotCompleted
	}
	var ids []string
	for _, s := range w.allSnapshots() {
		if !s.Deleted && s.SourceID != "" && s.State == state && s.Tags[cloud.TagCluster] == Cluster && w.regions.held[s.ID] == 0 {
			ids = append(ids, s.ID)
		}
	}
	if len(ids) == 0 {
		return ""
	}
	return ids[w.regions.rng.IntN(len(ids))]
}

// raceMove meets a move under way: the prices flip back (the lease asks
// for another region, or its own), or the holder stops and starts again.
func (w *World) raceMove() {
	for _, xd := range w.Drives() {
		if xd.Status.Move == nil || xd.Status.Holder == nil {
			continue
		}
		switch w.regions.rng.IntN(3) {
		case 0:
			w.logf("race: the move of xd/%s to %s meets a price change", xd.Name, xd.Status.Move.Region)
			w.flipPrices()
			return
		case 1:
			// No spot capacity where the drive is going, for a while: the
			// next launch picks the drive's own region, and the move is abandoned.
			target := xd.Status.Move.Region
			f := w.EC2
			if target == WestRegion {
				f = w.regions.west
			}
			w.setSpotCapacity(f, false)
			w.logf("race: the move of xd/%s meets no spot capacity in %s", xd.Name, target)
			w.later(3+w.regions.rng.IntN(15), func() { w.setSpotCapacity(f, true) })
			w.relaunch(xd.Name)
			return
		}
		w.logf("race: the move of xd/%s to %s meets a relaunch", xd.Name, xd.Status.Move.Region)
		w.relaunch(xd.Name)
		return
	}
}

// relaunch stops the Workstation holding the drive, and starts it again a few steps later.
func (w *World) relaunch(drive string) {
	xd := w.Drive(drive)
	if xd == nil || xd.Status.Holder == nil {
		return
	}
	name := xd.Status.Holder.Name
	if w.SetState(name, v1alpha1.WorkstationStateStopped) {
		w.later(1+w.regions.rng.IntN(6), func() { w.SetState(name, v1alpha1.WorkstationStateRunning) })
	}
}

// regionSetup makes dev a spot Workstation, so that the prices move it,
// and the other region the cheap one.
func (w *World) regionSetup() {
	if w.regions != nil {
		w.UpdateWorkstation("dev", "capacity spot (regions)", func(ws *v1alpha1.Workstation) { ws.Spec.CapacityType = v1alpha1.CapacityTypeSpot })
		w.flipPrices()
	}
}

// setSpotCapacity gives or takes the region's spot capacity.
func (w *World) setSpotCapacity(f *fakeec2.Fake, available bool) {
	for _, t := range []string{"t3.large", "m5.large"} {
		for _, z := range []string{"a", "b", "c"} {
			f.SetCapacity(t, f.Region()+z, true, available)
		}
	}
}

// holdMoveCopy keeps the pending copy of a move under way pending for a
// while, half the time it finds one: the drive waits, and everything else
// meets the wait.
func (w *World) holdMoveCopy() bool {
	rg := w.regions
	for _, xd := range w.Drives() {
		m := xd.Status.Move
		if m == nil || m.CopySnapshotID == "" || rg.held[m.CopySnapshotID] != 0 || rg.rng.IntN(2) == 0 {
			continue
		}
		f := w.fakeOf(m.CopySnapshotID)
		for _, s := range f.Snapshots() {
			if s.ID == m.CopySnapshotID && s.State == fakeec2.SnapshotPending && !s.Deleted {
				f.Hold(s.ID)
				rg.held[s.ID] = w.step + 5 + rg.rng.IntN(30)
				w.logf("aws: copy %s of xd/%s stays pending until step %d", s.ID, xd.Name, rg.held[s.ID])
				return true
			}
		}
	}
	return false
}

// settleRegions lets every copy complete.
func (w *World) settleRegions() {
	rg := w.regions
	if rg == nil {
		return
	}
	for id := range rg.held {
		w.fakeOf(id).Release(id)
	}
	clear(rg.held)
	for _, f := range w.fakes() {
		f.FailCopies(0)
		w.setSpotCapacity(f, true)
	}
}

// driveRegion is the drive's region as its status says.
func driveRegion(xd *v1alpha1.XDrive) string {
	if xd.Status.Region != "" {
		return xd.Status.Region
	}
	return HomeRegion
}

// regionsKept checks I16, I17 and I19 in a region seed.
func (w *World) regionsKept() error {
	rg := w.regions
	if rg == nil {
		return nil
	}
	byRegion := map[string][]fakeec2.SnapshotView{}
	volRegion := map[string]string{}
	var vols []fakeec2.VolumeView
	for _, f := range w.fakes() {
		byRegion[f.Region()] = f.Snapshots()
		for _, v := range f.Volumes() {
			volRegion[v.ID] = f.Region()
			vols = append(vols, v)
		}
	}
	// heldIn are the writes a region's completed snapshots hold.
	heldIn := func(region string) map[int64]bool {
		held := map[int64]bool{}
		for _, s := range byRegion[region] {
			if s.State == fakeec2.SnapshotCompleted && (!s.Deleted || w.deletedOutside[s.ID]) {
				for d := s.Data; d != nil; d = d.Parent {
					held[d.Write] = true
				}
			}
		}
		return held
	}
	volumeDrive := map[string]string{}
	for _, v := range vols {
		volumeDrive[v.ID] = v.Tags[cloud.TagDriveUID]
	}
	// Writes a snapshot deleted from outside held are lost by that hand, in any region.
	excused := map[int64]bool{}
	for _, list := range byRegion {
		for _, s := range list {
			if s.State == fakeec2.SnapshotCompleted && s.Deleted && w.deletedOutside[s.ID] {
				for d := s.Data; d != nil; d = d.Parent {
					excused[d.Write] = true
				}
			}
		}
	}
	drivesByUID := map[string]v1alpha1.XDrive{}
	for _, xd := range w.Drives() {
		drivesByUID[string(xd.UID)] = xd
	}
	// I16: every write a drive carries is in its volume or a completed snapshot of its region.
	for uid, xd := range drivesByUID {
		if w.deletedDrives[uid] {
			continue // its data may go
		}
		region := driveRegion(&xd)
		held := heldIn(region)
		for _, v := range vols {
			if !v.Deleted && volRegion[v.ID] == region {
				for d := v.Data; d != nil; d = d.Parent {
					held[d.Write] = true
				}
			}
		}
		for _, wr := range w.allWrites() {
			if volumeDrive[wr.VolumeID] == uid && !held[wr.ID] && !excused[wr.ID] && !w.droppedWrite(wr.ID) {
				return fmt.Errorf("I16: write %d of XDrive %s (to %s) is in no volume and no completed snapshot of its region %s", wr.ID, xd.Name, wr.VolumeID, region)
			}
		}
	}
	// I16: a volume is deleted only once a completed snapshot of its own region holds its last write.
	for _, v := range vols {
		if !v.Deleted || rg.deletedChecked[v.ID] || !isDriveVolume(v) {
			continue
		}
		rg.deletedChecked[v.ID] = true
		if v.Data == nil || w.deletedDrives[v.Tags[cloud.TagDriveUID]] || w.droppedWrite(v.Data.Write) {
			continue
		}
		if !heldIn(volRegion[v.ID])[v.Data.Write] {
			return fmt.Errorf("I16: volume %s of %s in %s was deleted; no completed snapshot in %s holds its last write %d",
				v.ID, v.Tags[cloud.TagDrive], volRegion[v.ID], volRegion[v.ID], v.Data.Write)
		}
	}
	// I17: a volume restored from a copy holds the newest write of its drive;
	// one restored from any snapshot does while a completed snapshot, in any
	// region, still holds that write (one deleted from outside here does not
	// excuse restoring older data while a region left keeps the newer).
	snapByID := map[string]fakeec2.SnapshotView{}
	keptAnywhere := map[int64]string{} // write → a live completed snapshot holding it
	for _, list := range byRegion {
		for _, s := range list {
			snapByID[s.ID] = s
			if s.State == fakeec2.SnapshotCompleted && !s.Deleted {
				for d := s.Data; d != nil; d = d.Parent {
					keptAnywhere[d.Write] = s.ID
				}
			}
		}
	}
	for _, v := range vols {
		if rg.volumes[v.ID] || v.Deleted || !isDriveVolume(v) {
			continue
		}
		rg.volumes[v.ID] = true
		sn, ok := snapByID[v.SnapshotID]
		if !ok {
			continue
		}
		uid := v.Tags[cloud.TagDriveUID]
		last := w.lastWriteOf(uid, volumeDrive)
		if last == 0 || v.Data.Has(last) {
			continue
		}
		if sn.SourceID != "" && !excused[last] {
			return fmt.Errorf("I17: volume %s of %s in %s, restored from copy %s (of %s in %s), lacks the drive's newest write %d",
				v.ID, v.Tags[cloud.TagDrive], volRegion[v.ID], sn.ID, sn.SourceID, sn.SourceRegion, last)
		}
		if kept := keptAnywhere[last]; kept != "" {
			return fmt.Errorf("I17: volume %s of %s in %s, restored from %s, lacks the drive's newest write %d, which snapshot %s still holds",
				v.ID, v.Tags[cloud.TagDrive], volRegion[v.ID], sn.ID, last, kept)
		}
	}
	// I19: a Workstation launches only in its drive's region.
	for _, f := range w.fakes() {
		for _, i := range f.Instances() {
			if rg.launches[i.ID] || i.Tags[cloud.TagCluster] != Cluster {
				continue
			}
			rg.launches[i.ID] = true
			_, name, _ := cloud.SplitObjectKey(i.Tags[cloud.TagDrive])
			if xd := w.Drive(name); xd != nil && w.step > 0 && driveRegion(xd) != f.Region() {
				return fmt.Errorf("I19: instance %s of %s was launched in %s; its XDrive %s is in %s", i.ID, i.Tags[cloud.TagWorkstation], f.Region(), name, driveRegion(xd))
			}
		}
	}
	return nil
}

// lastWriteOf is the drive's newest write: the last written, by time, to any of its volumes.
func (w *World) lastWriteOf(uid string, volumeDrive map[string]string) int64 {
	var last fakeec2.WriteRecord
	for _, wr := range w.allWrites() {
		if volumeDrive[wr.VolumeID] == uid && !w.droppedWrite(wr.ID) && !wr.Time.Before(last.Time) {
			last = wr
		}
	}
	return last.ID
}

// regionsSettled checks I18 in a region seed: no copy of an abandoned move
// is left, and a drive deleted with deletionPolicy Delete left no snapshot
// in any region.
func (w *World) regionsSettled() error {
	if w.regions == nil {
		return nil
	}
	drivesByUID := map[string]v1alpha1.XDrive{}
	for _, xd := range w.Drives() {
		drivesByUID[string(xd.UID)] = xd
	}
	for _, f := range w.fakes() {
		for _, s := range f.Snapshots() {
			if s.Deleted || s.Tags[cloud.TagCluster] != Cluster {
				continue
			}
			uid := s.Tags[cloud.TagDriveUID]
			xd, exists := drivesByUID[uid]
			if !exists {
				if w.deletedDrives[uid] {
					return fmt.Errorf("I18: snapshot %s in %s of %s outlived its drive, deleted with deletionPolicy Delete", s.ID, f.Region(), s.Tags[cloud.TagDrive])
				}
				continue
			}
			if s.SourceID == "" || f.Region() == driveRegion(&xd) {
				continue
			}
			left := slices.ContainsFunc(xd.Status.Elsewhere, func(e v1alpha1.RegionSnapshots) bool { return e.Region == f.Region() })
			if m := xd.Status.Move; !left && (m == nil || m.CopySnapshotID != s.ID) {
				return fmt.Errorf("I18: copy %s in %s of XDrive %s (in %s) belongs to no move and no region the drive left", s.ID, f.Region(), xd.Name, driveRegion(&xd))
			}
		}
	}
	return nil
}

// regionText is the drive's region, lease region and move, for the trace.
func regionText(xd *v1alpha1.XDrive) string {
	out := "in " + driveRegion(xd)
	if h := xd.Status.Holder; h != nil && h.Region != "" && h.Region != driveRegion(xd) {
		out += " lease-asks " + h.Region
	}
	if m := xd.Status.Move; m != nil {
		out += fmt.Sprintf(" moving-to %s (copy %q of %s)", m.Region, m.CopySnapshotID, m.SourceSnapshotID)
	}
	return out
}

// moveCycle is a user who runs home's Workstation and writes, stops it and
// waits for the drive to rest, then starts it again with spot cheap in the
// other region: the launch moves the drive there. While the copy runs,
// copies fail, stay pending, are deleted from outside, or the prices or
// capacity change under the move. It plays short rounds, each a step with
// its invariants checked, and the faults on.
func (w *World) moveCycle() {
	rg := w.regions
	xd := w.Drive("home")
	if xd == nil || xd.Status.Holder == nil {
		return
	}
	name := xd.Status.Holder.Name
	w.logf("user: move cycle ws/%s (start, write, stop, wait, start where spot is cheap)", name)
	for _, want := range []v1alpha1.WorkstationState{v1alpha1.WorkstationStateRunning, v1alpha1.WorkstationStateStopped, v1alpha1.WorkstationStateRunning} {
		if ws := w.Workstation(name); ws == nil || ws.Spec.State != want && !w.SetState(name, want) {
			return
		}
		if want == v1alpha1.WorkstationStateRunning {
			if xd := w.Drive("home"); xd != nil && xd.Status.Phase != v1alpha1.XDrivePhaseAttached && rg.cheap == driveRegion(xd) {
				w.flipPrices()
			}
		}
		for range 20 {
			if w.cycled(name, want) && (want == v1alpha1.WorkstationStateRunning || w.archived("home")) {
				break
			}
			if w.kept("home") {
				w.Advance(time.Duration(1+rg.rng.IntN(3)) * time.Minute) // past the warm period: the drive moves only at rest
			}
			w.moveRound(name)
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

// moveRound is one round of a move cycle: EC2, the instance and the
// operator each move once, and now and then a fault meets the copy.
func (w *World) moveRound(name string) {
	rg := w.regions
	w.step++
	w.Advance(time.Duration(5+rg.rng.IntN(25)) * time.Second)
	w.transition()
	w.transition()
	w.Agent.Boot()
	w.Poll()
	w.ReconcileWorkstation(name)
	w.runAgentCalls()
	w.ReconcileDrive("home")
	if xd := w.Drive("home"); xd != nil && xd.Status.Move != nil {
		switch rg.rng.IntN(12) {
		case 0:
			w.fakes()[rg.rng.IntN(2)].FailCopies(1)
			w.logf("aws: the next copy fails")
		case 1:
			if id := w.pickCopy(rg.rng.IntN(3) == 0); id != "" && w.fakeOf(id).DeleteSnapshotOutside(id) == nil {
				w.deletedOutside[id] = true
				w.logf("aws: copy %s deleted from outside", id)
			}
		case 2:
			w.raceMove()
		case 3, 4:
			w.holdMoveCopy()
		case 5:
			w.Crash()
		}
	}
	w.Agent.ShutdownWrites()
	if err := w.CheckSafety(); err != nil {
		w.broken = append(w.broken, err.Error())
	}
	if w.step%2 == 0 {
		w.remember()
	}
}

func (w *World) archived(drive string) bool {
	xd := w.Drive(drive)
	return xd == nil || xd.Status.Phase == v1alpha1.XDrivePhaseArchived
}

func (w *World) kept(drive string) bool {
	xd := w.Drive(drive)
	return xd != nil && xd.Status.Phase == v1alpha1.XDrivePhaseKept
}

// lostOutside adds to superseded, in a region seed, the snapshots whose
// newest write a snapshot deleted from outside held: a drive whose restore
// was deleted falls back to an older one of its region, though a region it
// left may keep a newer one (I5 leaves those out; see docs/design.md).
func (w *World) lostOutside(snaps []fakeec2.SnapshotView, superseded map[string]bool) map[string]bool {
	if w.regions == nil {
		return superseded
	}
	lost := map[*fakeec2.Data]bool{}
	for _, s := range snaps {
		if s.Deleted && w.deletedOutside[s.ID] && s.State == fakeec2.SnapshotCompleted {
			for d := s.Data; d != nil; d = d.Parent {
				lost[d] = true
			}
		}
	}
	out := map[string]bool{}
	for id := range superseded {
		out[id] = true
	}
	for _, s := range snaps {
		if s.Data != nil && lost[s.Data] {
			out[s.ID] = true
		}
	}
	return out
}

// takenAt is when the write a snapshot holds was taken: a copy's source's time.
func takenAt(s fakeec2.SnapshotView) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, s.Tags[cloud.TagTakenAt]); err == nil {
		return t
	}
	return s.StartTime
}
