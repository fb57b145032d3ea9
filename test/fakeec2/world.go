package fakeec2

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/internal/cloud"
)

// Data is an immutable node of a volume's write history: the last write and
// what came before it. nil is a blank volume.
type Data struct {
	Write  int64
	Parent *Data
}

// Descends reports whether this history contains all of the other.
func (d *Data) Descends(other *Data) bool {
	for ; d != nil; d = d.Parent {
		if d == other {
			return true
		}
	}
	return other == nil
}

// Has reports whether the write is part of this history.
func (d *Data) Has(write int64) bool {
	for ; d != nil; d = d.Parent {
		if d.Write == write {
			return true
		}
	}
	return false
}

// WriteRecord is one accepted Write.
type WriteRecord struct {
	ID       int64
	VolumeID string
	Time     time.Time
}

// Write appends a new write to the volume and returns its ID. It is refused
// unless the volume is attached to a pending, running or shutting-down instance.
func (f *Fake) Write(volumeID string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.volumes.byID[volumeID]
	if v == nil || v.deleted {
		return 0, fmt.Errorf("fakeec2: write to %s: no such volume", volumeID)
	}
	if v.attachedTo == "" { // termination detaches, so the instance is live
		return 0, fmt.Errorf("fakeec2: write to %s: not attached to a live instance", volumeID)
	}
	f.lastWrite++
	v.data = &Data{Write: f.lastWrite, Parent: v.data}
	f.writes = append(f.writes, WriteRecord{ID: f.lastWrite, VolumeID: v.id, Time: f.now()})
	return f.lastWrite, nil
}

// AllWrites lists every accepted write, oldest first.
func (f *Fake) AllWrites() []WriteRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.writes)
}

// InstanceView is what a checker can see of an instance.
type InstanceView struct {
	ID, Type, Zone, State string
	StateReason           string
	Spot                  bool
	ClientToken           string
	PublicIP              string
	LaunchTime            time.Time
	Tags                  map[string]string
	VolumeIDs             []string // attached now, by device name
	Forgotten             bool     // no longer listed by DescribeInstances
	Groups                []string // security groups
}

// Attachment is a volume's attachment to an instance.
type Attachment struct {
	InstanceID, Device  string
	DeleteOnTermination bool
}

// VolumeView is what a checker can see of a volume, deleted ones included.
type VolumeView struct {
	ID, Zone, State, Type string
	SizeGiB               int32
	SnapshotID            string // the snapshot it was restored from
	Tags                  map[string]string
	Attachment            *Attachment // nil when not attached
	Data                  *Data
	CreateTime            time.Time
	Initialized           bool
	Deleted               bool
	// Root: made by a launch from the image, at RootDevice.
	Root bool
}

// SnapshotView is what a checker can see of a snapshot, deleted ones included.
type SnapshotView struct {
	ID, VolumeID, State string
	Description         string
	SizeGiB             int32
	Tags                map[string]string
	Data                *Data
	StartTime           time.Time
	Deleted             bool
	// SourceRegion and SourceID name the snapshot a copy was made from.
	SourceRegion, SourceID string
}

// Instances lists every instance ever launched, in launch order.
func (f *Fake) Instances() []InstanceView {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []InstanceView
	for _, i := range f.instances.order {
		view := InstanceView{
			ID: i.id, Type: i.typ, Zone: i.zone, State: i.state, StateReason: i.reason, Spot: i.spot,
			ClientToken: i.clientToken, PublicIP: publicIP(i.ordinal), LaunchTime: i.launchTime, Tags: copyMap(i.tags), Forgotten: i.forgotten,
			Groups: slices.Clone(i.groups),
		}
		for _, v := range f.attachedTo(i.id) {
			view.VolumeIDs = append(view.VolumeIDs, v.id)
		}
		out = append(out, view)
	}
	return out
}

// Volumes lists every volume ever created, in creation order.
func (f *Fake) Volumes() []VolumeView {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []VolumeView
	for _, v := range f.volumes.order {
		view := VolumeView{
			ID: v.id, Zone: v.zone, State: v.state(), Type: v.volumeType, SizeGiB: v.size, SnapshotID: v.snapshotID(),
			Tags: copyMap(v.tags), Data: v.data, CreateTime: v.createTime, Initialized: v.initialized, Deleted: v.deleted,
			Root: v.snap != nil && v.snap.id == ImageSnapshotID,
		}
		if v.attachedTo != "" {
			view.Attachment = &Attachment{InstanceID: v.attachedTo, Device: v.device, DeleteOnTermination: v.deleteOnTermination}
		}
		out = append(out, view)
	}
	return out
}

// Snapshots lists every snapshot ever started, in creation order.
func (f *Fake) Snapshots() []SnapshotView {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []SnapshotView
	for _, s := range f.snapshots.order {
		if s.id == ImageSnapshotID {
			continue
		}
		out = append(out, SnapshotView{
			ID: s.id, VolumeID: s.volumeID, State: s.state, Description: s.description, SizeGiB: s.size, Tags: copyMap(s.tags),
			Data: s.data, StartTime: s.startTime, Deleted: s.deleted, SourceRegion: s.sourceRegion, SourceID: s.sourceID,
		})
	}
	return out
}

// copyMap copies a map of strings; the copy of nil is empty.
func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	maps.Copy(out, m)
	return out
}

// TerminateOutside terminates a pending or running instance as the console
// or a spot reclaim would: it goes to shutting-down.
func (f *Fake) TerminateOutside(instanceID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.instances.byID[instanceID]
	if i == nil || i.state != StatePending && i.state != StateRunning {
		return fmt.Errorf("fakeec2: %s is not a pending or running instance", instanceID)
	}
	reason := ReasonUserShutdown
	if i.spot {
		reason = ReasonSpotTermination
	}
	f.shutDown(i, reason)
	return nil
}

// DeleteSnapshotOutside deletes a snapshot as someone outside the operator would.
func (f *Fake) DeleteSnapshotOutside(snapshotID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.liveSnapshot(snapshotID)
	if err != nil {
		return err
	}
	s.deleted = true
	return nil
}

// FailSnapshot moves a pending snapshot to error.
func (f *Fake) FailSnapshot(snapshotID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.liveSnapshot(snapshotID)
	if err != nil {
		return err
	}
	if s.state != SnapshotPending {
		return fmt.Errorf("fakeec2: snapshot %s is %s, not pending", snapshotID, s.state)
	}
	s.state, s.message = SnapshotError, "failed by the test"
	return nil
}

// HideInstance leaves the instance out of the next calls DescribeInstances
// answers that would list it without naming it in InstanceIds, for at most
// listingLag.
func (f *Fake) HideInstance(instanceID string, calls int) {
	f.HideInstanceFor(instanceID, calls, listingLag)
}

// HideInstanceFor is HideInstance for at most d.
func (f *Fake) HideInstanceFor(instanceID string, calls int, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hidden[instanceID] = hiding{calls: calls, until: f.now().Add(d)}
}

// Forget stops listing a terminated instance, as EC2 does about an hour later.
func (f *Fake) Forget(instanceID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.instances.byID[instanceID]
	if i == nil || i.state != StateTerminated {
		return fmt.Errorf("fakeec2: %s is not a terminated instance", instanceID)
	}
	i.forgotten = true
	return nil
}

// SeedInstance adds a running instance, as if launched by someone else. It
// fails where RunInstances would.
func (f *Fake) SeedInstance(instanceType, zone string, tags map[string]string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := &ec2.RunInstancesInput{
		ImageId: aws.String(slices.Sorted(maps.Values(f.opts.Parameters))[0]), InstanceType: ec2types.InstanceType(instanceType),
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), Placement: &ec2types.Placement{AvailabilityZone: aws.String(zone)},
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: cloud.Tags(tags)}},
	}
	plan, err := f.planLaunch(in)
	if err != nil {
		return "", err
	}
	i := f.launch(plan, in, f.newID("r"), "")
	i.state = StateRunning
	return i.id, nil
}

// SeedVolume adds a blank available gp3 volume.
func (f *Fake) SeedVolume(zone string, sizeGiB int32, tags map[string]string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(f.opts.Zones, zone) {
		return "", fmt.Errorf("fakeec2: unknown zone %q", zone)
	}
	return f.createVolume(volumeSpec{size: sizeGiB, volumeType: "gp3"}, zone, tags).id, nil
}

// SeedSnapshot adds a completed snapshot of a blank volume that no longer exists.
func (f *Fake) SeedSnapshot(sizeGiB int32, tags map[string]string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.newSnapshot("", sizeGiB, tags, nil)
	s.state, s.completionTime = SnapshotCompleted, f.now()
	return s.id
}

// SetKeepRootVolumes switches Options.KeepRootVolumes for the launches to come.
func (f *Fake) SetKeepRootVolumes(keep bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opts.KeepRootVolumes = keep
}
