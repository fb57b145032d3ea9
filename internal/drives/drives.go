// Package drives manages the EBS volumes and snapshots of XDrives. Its Service
// is the only writer of a drive's volume after launch, and of its snapshots.
package drives

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"k8s.io/utils/clock"

	"github.com/xdrive-io/xdrive/internal/batch"
	"github.com/xdrive-io/xdrive/internal/cloud"
)

// Snapshot states, as EC2 names them.
const (
	SnapshotPending   = "pending"
	SnapshotCompleted = "completed"
	SnapshotError     = "error"
)

// VolumeAvailable is the state of a volume that no instance has attached.
const VolumeAvailable = "available"

// Snapshot is what the operator needs to know of an EBS snapshot.
type Snapshot struct {
	ID        string
	VolumeID  string
	State     string
	Progress  string
	StartTime time.Time
	SizeGiB   int32
	Tags      map[string]string
}

// takenAt is when the operator asked for the snapshot, else when EC2 started it.
func (s Snapshot) takenAt() time.Time {
	if t, err := time.Parse(time.RFC3339Nano, s.Tags[cloud.TagTakenAt]); err == nil {
		return t
	}
	return s.StartTime
}

// Volume is what the operator needs to know of an EBS volume.
type Volume struct {
	ID         string
	Zone       string
	State      string
	SizeGiB    int32
	AttachedTo string
	// Device is the device name of its attachment, if attached.
	Device string
	// SnapshotID is the snapshot it was created from; empty for a blank volume.
	SnapshotID string
	Tags       map[string]string
	CreateTime time.Time
}

// Detached reports whether no instance can write to the volume.
func (v Volume) Detached() bool { return v.State == VolumeAvailable && v.AttachedTo == "" }

// Modification is the progress of a ModifyVolume.
type Modification struct {
	State      string // modifying, optimizing, completed, failed
	TargetSize int32
}

// Service reads and writes drive volumes and snapshots.
type Service struct {
	api     cloud.VolumesAPI
	cluster string
	snaps   *batch.Batcher[Snapshot]
	vols    *batch.Batcher[Volume]
	ofVol   *batch.Batcher[Snapshot]
	ofDrive *batch.Batcher[[]Volume]
	clock   clock.PassiveClock
}

// NewService returns a Service; lookups by ID from many drives are merged within
// window (zero: no merging). A nil clock is the real one.
func NewService(api cloud.VolumesAPI, cluster string, window time.Duration, clk clock.PassiveClock) *Service {
	if clk == nil {
		clk = clock.RealClock{}
	}
	s := &Service{api: api, cluster: cluster, clock: clk}
	s.snaps = batch.New(window, 200, s.describeSnapshotIDs)
	s.vols = batch.New(window, 200, s.describeVolumeIDs)
	s.ofVol = batch.New(window, 200, s.describeVolumeSnapshots)
	s.ofDrive = batch.New(window, 200, s.describeDriveVolumes)
	return s
}

// DriveVolumes returns the live volumes tagged for the drive with this UID,
// however they came to be: a launch whose instance is gone leaves one behind.
func (s *Service) DriveVolumes(ctx context.Context, driveUID string) ([]Volume, error) {
	list, _, err := s.ofDrive.Get(ctx, driveUID)
	return list, err
}

// IsDriveVolume tells a drive's volume from the other volumes a launch tags
// alike, such as the instance's root volume: the drive is attached at
// device, and is blank or made from one of the drive's snapshots: one of
// known, the one its launch named (TagDriveSnapshot: it holds after that
// snapshot is gone), or one tagged for one of owners. owners are the drive and, for a
// fork, its source, whose snapshot the fork's first volume is made from.
// Only volumes tagged with the drive's UID are asked about, so a source's own
// volumes (tagged with the source's UID) are never taken for a fork's; a root
// volume is made from an image's snapshot, which no drive tags.
func (s *Service) IsDriveVolume(ctx context.Context, v Volume, device string, owners []string, known ...string) (bool, error) {
	if v.AttachedTo != "" {
		return v.Device == device, nil
	}
	if v.SnapshotID == "" || slices.Contains(known, v.SnapshotID) || v.SnapshotID == v.Tags[cloud.TagDriveSnapshot] {
		return true, nil
	}
	sn, found, err := s.Snapshot(ctx, v.SnapshotID)
	return found && slices.Contains(owners, sn.Tags[cloud.TagDrive]), err
}

// OwnedVolumes returns every live volume this cluster owns, for the garbage collector.
func (s *Service) OwnedVolumes(ctx context.Context) ([]Volume, error) {
	return s.describeVolumes(ctx, &ec2.DescribeVolumesInput{
		Filters: []ec2types.Filter{cloud.TagFilter(cloud.TagCluster, s.cluster)},
	})
}

// OwnedSnapshots returns every snapshot this cluster owns, newest first.
func (s *Service) OwnedSnapshots(ctx context.Context) ([]Snapshot, error) {
	return s.describeSnapshots(ctx, &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters:  []ec2types.Filter{cloud.TagFilter(cloud.TagCluster, s.cluster)},
	})
}

// Snapshot returns a snapshot by ID; found is false if EC2 does not know it.
func (s *Service) Snapshot(ctx context.Context, id string) (Snapshot, bool, error) {
	return s.snaps.Get(ctx, id)
}

// Volume returns a volume by ID; found is false if EC2 does not know it.
func (s *Service) Volume(ctx context.Context, id string) (Volume, bool, error) {
	return s.vols.Get(ctx, id)
}

// DriveSnapshots returns the drive's snapshots that this cluster owns, newest
// first: tagged with the drive (ns/name), and not with another drive UID, such
// as an earlier XDrive of the same name in a namespace of the same name.
func (s *Service) DriveSnapshots(ctx context.Context, drive, uid string) ([]Snapshot, error) {
	list, err := s.describeSnapshots(ctx, &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters:  []ec2types.Filter{cloud.TagFilter(cloud.TagCluster, s.cluster), cloud.TagFilter(cloud.TagDrive, drive)},
	})
	return slices.DeleteFunc(list, func(sn Snapshot) bool { return s.Foreign(sn, drive, uid) }), err
}

// NewestNamed returns the newest completed snapshot whose Name tag equals
// name, leaving out those that carry another drive's ownership tags.
func (s *Service) NewestNamed(ctx context.Context, name, drive, uid string) (Snapshot, bool, error) {
	list, err := s.describeSnapshots(ctx, &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters:  []ec2types.Filter{cloud.TagFilter(cloud.TagName, name), cloud.Filter("status", SnapshotCompleted)},
	})
	if err != nil {
		return Snapshot{}, false, err
	}
	for _, sn := range list {
		if !s.Foreign(sn, drive, uid) {
			return sn, true, nil
		}
	}
	return Snapshot{}, false, nil
}

// Untagged reports whether the snapshot carries no xdrive.io tag: it was made
// outside xdrive, e.g. by the original tool.
func (s Snapshot) Untagged() bool {
	for k := range s.Tags {
		if strings.HasPrefix(k, cloud.TagPrefix) {
			return false
		}
	}
	return true
}

// Foreign reports whether the snapshot carries ownership tags other than
// those of the drive (ns/name, and its UID where tagged) in this installation:
// another namespace's drive, another installation's, or an earlier XDrive of
// the same name (a namespace name may be reused by another tenant). A drive
// never restores, prunes or deletes a foreign snapshot.
func (s *Service) Foreign(sn Snapshot, drive, uid string) bool {
	if sn.Untagged() {
		return false
	}
	other := sn.Tags[cloud.TagDriveUID]
	return sn.Tags[cloud.TagCluster] != s.cluster || sn.Tags[cloud.TagDrive] != drive || other != "" && other != uid
}

// DetachedSnapshot returns the newest pending or completed snapshot of the
// volume that was taken while it was detached.
func (s *Service) DetachedSnapshot(ctx context.Context, volumeID string) (Snapshot, bool, error) {
	list, err := s.describeSnapshots(ctx, &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters: []ec2types.Filter{
			cloud.Filter("volume-id", volumeID),
			cloud.TagFilter(cloud.TagCluster, s.cluster),
			cloud.TagFilter(cloud.TagDetached, "true"),
			cloud.Filter("status", SnapshotPending, SnapshotCompleted),
		},
	})
	if err != nil || len(list) == 0 {
		return Snapshot{}, false, err
	}
	return list[0], true, nil
}

// SnapshotRequest describes a snapshot of a drive's volume.
type SnapshotRequest struct {
	VolumeID  string
	Drive     string // ns/name
	DriveUID  string
	DriveName string
	// Consistency is Flushed when the filesystem was unmounted first, else Crash.
	Consistency string
	// Detached says the volume was seen detached (available) right before.
	Detached bool
	// NotBefore: an existing snapshot of the volume counts only if it started at or after it.
	NotBefore time.Time
}

// CreateSnapshot snapshots the volume, unless a pending or completed snapshot
// of it taken by this cluster exists: CreateSnapshot takes no client token, so
// the tags are the record that makes a retry after a crash safe.
func (s *Service) CreateSnapshot(ctx context.Context, r SnapshotRequest) (Snapshot, error) {
	existing, found, err := s.ofVol.Get(ctx, r.VolumeID)
	if err != nil {
		return Snapshot{}, err
	}
	if found && !existing.StartTime.Before(r.NotBefore) && (!r.Detached || existing.Tags[cloud.TagDetached] == "true") {
		return existing, nil
	}
	now := s.clock.Now().UTC()
	tagMap := map[string]string{
		cloud.TagCluster:     s.cluster,
		cloud.TagDrive:       r.Drive,
		cloud.TagName:        r.DriveName,
		cloud.TagSourceVol:   r.VolumeID,
		cloud.TagConsistency: r.Consistency,
		cloud.TagTakenAt:     now.Format(time.RFC3339Nano),
	}
	if r.DriveUID != "" {
		tagMap[cloud.TagDriveUID] = r.DriveUID
	}
	if r.Detached {
		tagMap[cloud.TagDetached] = "true"
	}
	tags := cloud.Tags(tagMap)
	out, err := s.api.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{
		VolumeId:          aws.String(r.VolumeID),
		Description:       aws.String(fmt.Sprintf("xdrive %s at %s (%s)", r.Drive, now.Format(time.RFC3339), r.Consistency)),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot, Tags: tags}},
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("creating snapshot of %s: %w", r.VolumeID, err)
	}
	return Snapshot{
		ID: aws.ToString(out.SnapshotId), VolumeID: r.VolumeID, State: string(out.State),
		StartTime: aws.ToTime(out.StartTime), SizeGiB: aws.ToInt32(out.VolumeSize), Tags: cloud.TagMap(tags),
	}, nil
}

// DeleteVolume deletes a volume the cluster owns. A volume already gone is not an error.
func (s *Service) DeleteVolume(ctx context.Context, v Volume) error {
	if err := cloud.RequireOwned(v.Tags, s.cluster, "deleting volume", v.ID); err != nil {
		return err
	}
	_, err := s.api.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(v.ID)})
	if err != nil && !cloud.IsNotFound(err) {
		return fmt.Errorf("deleting volume %s: %w", v.ID, err)
	}
	return nil
}

// DeleteSnapshot deletes a snapshot the cluster owns. One already gone is not an error.
func (s *Service) DeleteSnapshot(ctx context.Context, snap Snapshot) error {
	if err := cloud.RequireOwned(snap.Tags, s.cluster, "deleting snapshot", snap.ID); err != nil {
		return err
	}
	_, err := s.api.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(snap.ID)})
	if err != nil && !cloud.IsNotFound(err) {
		return fmt.Errorf("deleting snapshot %s: %w", snap.ID, err)
	}
	return nil
}

// Resize grows a volume the cluster owns.
func (s *Service) Resize(ctx context.Context, v Volume, sizeGiB int32) error {
	if err := cloud.RequireOwned(v.Tags, s.cluster, "resizing volume", v.ID); err != nil {
		return err
	}
	_, err := s.api.ModifyVolume(ctx, &ec2.ModifyVolumeInput{VolumeId: aws.String(v.ID), Size: aws.Int32(sizeGiB)})
	if err != nil {
		return fmt.Errorf("resizing volume %s to %d GiB: %w", v.ID, sizeGiB, err)
	}
	return nil
}

// Modification returns the latest modification of a volume; found is false if there is none.
func (s *Service) Modification(ctx context.Context, volumeID string) (Modification, bool, error) {
	out, err := s.api.DescribeVolumesModifications(ctx, &ec2.DescribeVolumesModificationsInput{VolumeIds: []string{volumeID}})
	if cloud.IsNotFound(err) {
		return Modification{}, false, nil
	}
	if err != nil {
		return Modification{}, false, fmt.Errorf("describing modifications of %s: %w", volumeID, err)
	}
	if len(out.VolumesModifications) == 0 {
		return Modification{}, false, nil
	}
	m := slices.MaxFunc(out.VolumesModifications, func(a, b ec2types.VolumeModification) int {
		return aws.ToTime(a.StartTime).Compare(aws.ToTime(b.StartTime))
	})
	return Modification{State: string(m.ModificationState), TargetSize: aws.ToInt32(m.TargetSize)}, true, nil
}

// Prunable returns the completed snapshots beyond the newest keep; never the
// newest one, never a pending one. snaps must be newest first.
func Prunable(snaps []Snapshot, keep int) []Snapshot {
	keep = max(keep, 1)
	var out []Snapshot
	completed := 0
	for _, s := range snaps {
		if s.State != SnapshotCompleted {
			continue
		}
		completed++
		if completed > keep {
			out = append(out, s)
		}
	}
	return out
}

// describeVolumeSnapshots finds, per volume, the newest pending or completed snapshot this cluster took.
func (s *Service) describeVolumeSnapshots(ctx context.Context, volumeIDs []string) (map[string]Snapshot, error) {
	list, err := s.describeSnapshots(ctx, &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters: []ec2types.Filter{
			cloud.Filter("volume-id", volumeIDs...),
			cloud.TagFilter(cloud.TagCluster, s.cluster),
			cloud.Filter("status", SnapshotPending, SnapshotCompleted),
		},
	})
	out := make(map[string]Snapshot, len(volumeIDs))
	for _, snap := range list { // newest first
		if snap.State != SnapshotPending && snap.State != SnapshotCompleted {
			continue // a failed snapshot is no record of the volume: take a new one
		}
		if _, seen := out[snap.VolumeID]; !seen {
			out[snap.VolumeID] = snap
		}
	}
	return out, err
}

func (s *Service) describeSnapshotIDs(ctx context.Context, ids []string) (map[string]Snapshot, error) {
	list, err := s.describeSnapshots(ctx, &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters:  []ec2types.Filter{cloud.Filter("snapshot-id", ids...)},
	})
	out := make(map[string]Snapshot, len(list))
	for _, snap := range list {
		out[snap.ID] = snap
	}
	return out, err
}

func (s *Service) describeSnapshots(ctx context.Context, in *ec2.DescribeSnapshotsInput) ([]Snapshot, error) {
	var out []Snapshot
	p := ec2.NewDescribeSnapshotsPaginator(s.api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describing snapshots: %w", err)
		}
		for _, sn := range page.Snapshots {
			out = append(out, Snapshot{
				ID: aws.ToString(sn.SnapshotId), VolumeID: aws.ToString(sn.VolumeId), State: string(sn.State),
				Progress: aws.ToString(sn.Progress), StartTime: aws.ToTime(sn.StartTime),
				SizeGiB: aws.ToInt32(sn.VolumeSize), Tags: cloud.TagMap(sn.Tags),
			})
		}
	}
	slices.SortStableFunc(out, func(a, b Snapshot) int { return b.takenAt().Compare(a.takenAt()) })
	return out, nil
}

func (s *Service) describeVolumeIDs(ctx context.Context, ids []string) (map[string]Volume, error) {
	list, err := s.describeVolumes(ctx, &ec2.DescribeVolumesInput{
		Filters: []ec2types.Filter{cloud.Filter("volume-id", ids...)},
	})
	out := make(map[string]Volume, len(list))
	for _, v := range list {
		out[v.ID] = v
	}
	return out, err
}

func (s *Service) describeDriveVolumes(ctx context.Context, driveUIDs []string) (map[string][]Volume, error) {
	list, err := s.describeVolumes(ctx, &ec2.DescribeVolumesInput{
		Filters: []ec2types.Filter{
			cloud.TagFilter(cloud.TagCluster, s.cluster),
			cloud.Filter("tag:"+cloud.TagDriveUID, driveUIDs...),
		},
	})
	out := make(map[string][]Volume, len(driveUIDs))
	for _, v := range list {
		uid := v.Tags[cloud.TagDriveUID]
		out[uid] = append(out[uid], v)
	}
	return out, err
}

// describeVolumes lists volumes, oldest first; deleted ones are left out.
func (s *Service) describeVolumes(ctx context.Context, in *ec2.DescribeVolumesInput) ([]Volume, error) {
	var out []Volume
	p := ec2.NewDescribeVolumesPaginator(s.api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describing volumes: %w", err)
		}
		for _, v := range page.Volumes {
			if v.State == ec2types.VolumeStateDeleted || v.State == ec2types.VolumeStateDeleting {
				continue
			}
			vol := Volume{
				ID: aws.ToString(v.VolumeId), Zone: aws.ToString(v.AvailabilityZone), State: string(v.State),
				SizeGiB: aws.ToInt32(v.Size), Tags: cloud.TagMap(v.Tags), CreateTime: aws.ToTime(v.CreateTime),
				SnapshotID: aws.ToString(v.SnapshotId),
			}
			for _, a := range v.Attachments {
				if a.State == ec2types.VolumeAttachmentStateAttached || a.State == ec2types.VolumeAttachmentStateAttaching {
					vol.AttachedTo, vol.Device = aws.ToString(a.InstanceId), aws.ToString(a.Device)
				}
			}
			out = append(out, vol)
		}
	}
	slices.SortStableFunc(out, func(a, b Volume) int { return a.CreateTime.Compare(b.CreateTime) })
	return out, nil
}
