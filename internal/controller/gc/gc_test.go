package gc

import (
	"context"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/drives"
	"github.com/xdrive-io/xdrive/internal/instances"
)

type noInstances struct{}

func (noInstances) Live(context.Context) ([]instances.Instance, error) { return nil, nil }

type volumes struct {
	list    []drives.Volume
	deleted []string
}

func (v *volumes) OwnedVolumes(context.Context) ([]drives.Volume, error) { return v.list, nil }
func (v *volumes) DeleteVolume(_ context.Context, vol drives.Volume) error {
	v.deleted = append(v.deleted, vol.ID)
	return nil
}

type snapshots struct {
	completed map[string]bool // by volume
	created   []string
}

func (s *snapshots) DetachedSnapshot(_ context.Context, volumeID string) (drives.Snapshot, bool, error) {
	if s.completed[volumeID] {
		return drives.Snapshot{ID: "snap-" + volumeID, State: drives.SnapshotCompleted}, true, nil
	}
	return drives.Snapshot{}, false, nil
}

func (s *snapshots) CreateSnapshot(_ context.Context, r drives.SnapshotRequest) (drives.Snapshot, error) {
	s.created = append(s.created, r.VolumeID)
	return drives.Snapshot{ID: "snap-" + r.VolumeID}, nil
}

// TestCollectVolumes: the collector archives (snapshot, then delete once
// completed) a detached, old volume no drive references and whose drive is
// gone; it leaves a volume whose drive exists to that drive (waking it), and
// one that is young, attached or referenced.
func TestCollectVolumes(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	live := &v1alpha1.XDrive{ObjectMeta: metav1.ObjectMeta{Namespace: "lab", Name: "home", UID: "uid-home"}}
	live.Status.VolumeID = "vol-referenced"
	vol := func(id, driveUID string, age time.Duration, attachedTo string) drives.Volume {
		return drives.Volume{ID: id, State: drives.VolumeAvailable, AttachedTo: attachedTo, CreateTime: now.Add(-age),
			Tags: map[string]string{cloud.TagDriveUID: driveUID, cloud.TagDrive: "lab/x"}}
	}
	vols := &volumes{list: []drives.Volume{
		vol("vol-of-live-drive", "uid-home", time.Hour, ""),
		vol("vol-referenced", "uid-home", time.Hour, ""),
		vol("vol-young", "uid-gone", time.Minute, ""),
		vol("vol-attached", "uid-gone", time.Hour, "i-1"),
		vol("vol-orphan", "uid-gone", time.Hour, ""),
		vol("vol-orphan-snapshotted", "uid-gone", time.Hour, ""),
	}}
	snaps := &snapshots{completed: map[string]bool{"vol-orphan-snapshotted": true}}
	var woken []string
	c := &Collector{Client: fake.NewClientBuilder().WithScheme(scheme).WithObjects([]client.Object{live}...).Build(),
		Instances: noInstances{}, Volumes: vols, Snapshots: snaps, Clock: clocktesting.NewFakePassiveClock(now), Grace: 10 * time.Minute,
		Wake: func(i instances.Instance) { woken = append(woken, i.Tags[cloud.TagDrive]) }}
	rep, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(snaps.created, []string{"vol-orphan"}) || !slices.Equal(rep.Snapshotted, []string{"vol-orphan"}) {
		t.Errorf("snapshotted %v (report %v), want only vol-orphan", snaps.created, rep.Snapshotted)
	}
	if !slices.Equal(vols.deleted, []string{"vol-orphan-snapshotted"}) {
		t.Errorf("deleted %v, want only vol-orphan-snapshotted", vols.deleted)
	}
	if len(woken) != 1 {
		t.Errorf("woke %v, want the live drive of vol-of-live-drive once", woken)
	}
}
