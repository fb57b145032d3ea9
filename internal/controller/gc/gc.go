// Package gc finds owned instances and volumes that no object references and
// drives them through the normal path: instances are terminated, and volumes
// are snapshotted while detached, then deleted. It never deletes data without
// a completed snapshot.
package gc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/drives"
	"github.com/xdrive-io/xdrive/internal/instances"
	"github.com/xdrive-io/xdrive/internal/metrics"
	"github.com/xdrive-io/xdrive/internal/securitygroup"
)

// Instances lists the cluster's live instances.
type Instances interface {
	Live(ctx context.Context) ([]instances.Instance, error)
}

// Terminator ends instances.
type Terminator interface {
	Terminate(ctx context.Context, i instances.Instance) error
}

// Volumes lists and deletes owned volumes.
type Volumes interface {
	OwnedVolumes(ctx context.Context) ([]drives.Volume, error)
	DeleteVolume(ctx context.Context, v drives.Volume) error
}

// Snapshots takes and finds the snapshots that must precede a volume's deletion.
type Snapshots interface {
	DetachedSnapshot(ctx context.Context, volumeID string) (drives.Snapshot, bool, error)
	CreateSnapshot(ctx context.Context, r drives.SnapshotRequest) (drives.Snapshot, error)
}

// Groups lists and deletes the Workstations' own security groups.
type Groups interface {
	OwnedGroups(ctx context.Context) ([]securitygroup.Owned, error)
	Delete(ctx context.Context, groupID string) error
}

// Collector is the garbage collector.
type Collector struct {
	Client    client.Reader
	Instances Instances
	Launcher  Terminator
	Volumes   Volumes
	Snapshots Snapshots
	// Groups, if set, are swept too: a group whose Workstation is gone is
	// deleted once no instance uses it (its record may have been lost).
	Groups   Groups
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
	// Grace is how long a resource may be unreferenced before it is collected:
	// a launch or an adoption under way references it within that time.
	Grace time.Duration
	// Wake, if set, asks the objects an instance belongs to to look again.
	Wake func(instances.Instance)
}

// Report says what one pass did.
type Report struct {
	Terminated, Snapshotted, Deleted, GroupsDeleted []string
}

// Run collects every interval until ctx ends.
func (c *Collector) Run(ctx context.Context, interval time.Duration) error {
	log := logr.FromContextOrDiscard(ctx).WithName("gc")
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if _, err := c.Collect(ctx); err != nil {
			log.Error(err, "Garbage collection failed")
		}
	}, interval)
	return nil
}

type owners struct {
	workstations map[string]*v1alpha1.Workstation // by UID
	drives       map[string]*v1alpha1.XDrive      // by UID
	instances    map[string]bool                  // referenced instance IDs
	volumes      map[string]bool                  // referenced volume IDs
}

func (c *Collector) owners(ctx context.Context) (owners, error) {
	o := owners{workstations: map[string]*v1alpha1.Workstation{}, drives: map[string]*v1alpha1.XDrive{},
		instances: map[string]bool{}, volumes: map[string]bool{}}
	var wss v1alpha1.WorkstationList
	if err := c.Client.List(ctx, &wss); err != nil {
		return o, fmt.Errorf("list the Workstations: %w", err)
	}
	for i := range wss.Items {
		w := &wss.Items[i]
		o.workstations[string(w.UID)] = w
		o.instances[w.Status.InstanceID] = true
		if w.Status.Teardown != nil {
			o.instances[w.Status.Teardown.InstanceID] = true
		}
	}
	var xds v1alpha1.XDriveList
	if err := c.Client.List(ctx, &xds); err != nil {
		return o, fmt.Errorf("list the XDrives: %w", err)
	}
	for i := range xds.Items {
		d := &xds.Items[i]
		o.drives[string(d.UID)] = d
		o.volumes[d.Status.VolumeID] = true
	}
	return o, nil
}

// Collect makes one pass.
func (c *Collector) Collect(ctx context.Context) (Report, error) {
	var rep Report
	now := c.clock().Now()
	o, err := c.owners(ctx)
	if err != nil {
		return rep, err
	}
	live, err := c.Instances.Live(ctx)
	if err != nil {
		return rep, fmt.Errorf("list the owned instances: %w", err)
	}
	for _, inst := range live {
		if o.instances[inst.ID] || now.Sub(inst.LaunchTime) < c.Grace {
			continue
		}
		if err := c.Launcher.Terminate(ctx, inst); err != nil {
			return rep, fmt.Errorf("terminate unreferenced instance %s: %w", inst.ID, err)
		}
		rep.Terminated = append(rep.Terminated, inst.ID)
		metrics.GarbageCollected.WithLabelValues("instance", "terminated").Inc()
		c.event(o.workstations[inst.Tags[cloud.TagOwnerUID]], "Terminated unreferenced instance %s", inst.ID)
		if c.Wake != nil {
			c.Wake(inst)
		}
	}
	vols, err := c.Volumes.OwnedVolumes(ctx)
	if err != nil {
		return rep, fmt.Errorf("list the owned volumes: %w", err)
	}
	for _, v := range vols {
		if o.volumes[v.ID] || now.Sub(v.CreateTime) < c.Grace || !v.Detached() {
			continue // referenced, young, or still written by an instance that is being ended
		}
		if d := o.drives[v.Tags[cloud.TagDriveUID]]; d != nil {
			// Its drive exists: the drive archives its own volumes.
			if c.Wake != nil {
				c.Wake(instances.Instance{Tags: map[string]string{cloud.TagDrive: v.Tags[cloud.TagDrive]}})
			}
			continue
		}
		if err := c.archive(ctx, v, &rep); err != nil {
			return rep, err
		}
	}
	return rep, c.sweepGroups(ctx, o, &rep)
}

// sweepGroups deletes the groups of Workstations that no longer exist; one
// an instance still uses is left for a later pass.
func (c *Collector) sweepGroups(ctx context.Context, o owners, rep *Report) error {
	if c.Groups == nil {
		return nil
	}
	groups, err := c.Groups.OwnedGroups(ctx)
	if err != nil {
		return fmt.Errorf("list the owned security groups: %w", err)
	}
	for _, g := range groups {
		if o.workstations[g.OwnerUID] != nil {
			continue
		}
		err := c.Groups.Delete(ctx, g.ID)
		switch {
		case errors.Is(err, securitygroup.ErrInUse):
			continue
		case err != nil:
			return fmt.Errorf("delete security group %s of the deleted Workstation %s: %w", g.ID, g.Workstation, err)
		}
		rep.GroupsDeleted = append(rep.GroupsDeleted, g.ID)
		metrics.GarbageCollected.WithLabelValues("securitygroup", "deleted").Inc()
	}
	return nil
}

// archive snapshots a detached volume of a drive that no longer exists, and
// deletes it once that snapshot has completed.
func (c *Collector) archive(ctx context.Context, v drives.Volume, rep *Report) error {
	sn, found, err := c.Snapshots.DetachedSnapshot(ctx, v.ID)
	if err != nil {
		return fmt.Errorf("find the snapshot of unreferenced volume %s: %w", v.ID, err)
	}
	switch {
	case !found:
		_, err := c.Snapshots.CreateSnapshot(ctx, drives.SnapshotRequest{
			VolumeID: v.ID, Drive: v.Tags[cloud.TagDrive], DriveUID: v.Tags[cloud.TagDriveUID], DriveName: v.Tags[cloud.TagName],
			Consistency: string(v1alpha1.ConsistencyCrash), Detached: true,
		})
		if err != nil {
			return fmt.Errorf("snapshot unreferenced volume %s: %w", v.ID, err)
		}
		rep.Snapshotted = append(rep.Snapshotted, v.ID)
		metrics.GarbageCollected.WithLabelValues("volume", "snapshotted").Inc()
	case sn.State == drives.SnapshotCompleted:
		if err := c.Volumes.DeleteVolume(ctx, v); err != nil {
			return fmt.Errorf("delete unreferenced volume %s after its snapshot %s: %w", v.ID, sn.ID, err)
		}
		rep.Deleted = append(rep.Deleted, v.ID)
		metrics.GarbageCollected.WithLabelValues("volume", "deleted").Inc()
	}
	return nil
}

func (c *Collector) event(w *v1alpha1.Workstation, format string, args ...any) {
	if w == nil || c.Recorder == nil {
		return
	}
	c.Recorder.Eventf(w, nil, "Warning", "GarbageCollected", "Collect", format, args...)
}

func (c *Collector) clock() clock.PassiveClock {
	if c.Clock == nil {
		return clock.RealClock{}
	}
	return c.Clock
}
