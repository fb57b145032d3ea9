package xdrive

import (
	"context"
	"fmt"

	"github.com/xdrive-io/xdrive/internal/drives"
	"github.com/xdrive-io/xdrive/internal/instances"
)

// The drive's calls to EC2 and EBS: each error says what was being done, to
// what, and for which drive. The AWS error stays in the chain, so
// cloud.Classify and cloud.ErrorCode still read it.

func (s *scope) describeVolume(ctx context.Context, id string) (drives.Volume, bool, error) {
	v, found, err := s.svc().Volumes.Volume(ctx, id)
	if err != nil {
		return v, found, fmt.Errorf("describe volume %s of drive %s: %w", id, s.key, err)
	}
	return v, found, nil
}

func (s *scope) listVolumes(ctx context.Context) ([]drives.Volume, error) {
	vols, err := s.svc().Volumes.DriveVolumes(ctx, string(s.xd.UID))
	if err != nil {
		return nil, fmt.Errorf("list the volumes of drive %s: %w", s.key, err)
	}
	return vols, nil
}

func (s *scope) deleteVolume(ctx context.Context, v drives.Volume) error {
	if err := s.svc().Volumes.DeleteVolume(ctx, v); err != nil {
		return fmt.Errorf("delete volume %s of drive %s: %w", v.ID, s.key, err)
	}
	return nil
}

func (s *scope) growVolume(ctx context.Context, v drives.Volume, sizeGiB int32) error {
	if err := s.svc().Volumes.Resize(ctx, v, sizeGiB); err != nil {
		return fmt.Errorf("grow volume %s of drive %s to %d GiB: %w", v.ID, s.key, sizeGiB, err)
	}
	return nil
}

func (s *scope) describeModification(ctx context.Context, volumeID string) (drives.Modification, bool, error) {
	m, found, err := s.svc().Volumes.Modification(ctx, volumeID)
	if err != nil {
		return m, found, fmt.Errorf("describe the modification of volume %s of drive %s: %w", volumeID, s.key, err)
	}
	return m, found, nil
}

func (s *scope) attachVolume(ctx context.Context, v drives.Volume, instanceID, device string) error {
	if err := s.svc().Volumes.Attach(ctx, v, instanceID, device); err != nil {
		return fmt.Errorf("attach volume %s of drive %s to instance %s: %w", v.ID, s.key, instanceID, err)
	}
	return nil
}

func (s *scope) describeInitialization(ctx context.Context, volumeID string) (drives.Initialization, bool, error) {
	in, found, err := s.svc().Volumes.Initialization(ctx, volumeID)
	if err != nil {
		return in, found, fmt.Errorf("describe the initialization of volume %s of drive %s: %w", volumeID, s.key, err)
	}
	return in, found, nil
}

func (s *scope) describeSnapshot(ctx context.Context, id string) (drives.Snapshot, bool, error) {
	sn, found, err := s.svc().Snapshots.Snapshot(ctx, id)
	if err != nil {
		return sn, found, fmt.Errorf("describe snapshot %s of drive %s: %w", id, s.key, err)
	}
	return sn, found, nil
}

func (s *scope) listSnapshots(ctx context.Context) ([]drives.Snapshot, error) {
	owned, err := s.svc().Snapshots.DriveSnapshots(ctx, s.key, string(s.xd.UID))
	if err != nil {
		return nil, fmt.Errorf("list the snapshots of drive %s: %w", s.key, err)
	}
	s.recordSnapshots(owned)
	return owned, nil
}

func (s *scope) newestSnapshotNamed(ctx context.Context, name string) (drives.Snapshot, bool, error) {
	sn, found, err := s.svc().Snapshots.NewestNamed(ctx, name, s.key, string(s.xd.UID))
	if err != nil {
		return sn, found, fmt.Errorf("find the newest snapshot named %s for drive %s: %w", name, s.key, err)
	}
	return sn, found, nil
}

func (s *scope) createSnapshot(ctx context.Context, r drives.SnapshotRequest) (drives.Snapshot, error) {
	sn, err := s.svc().Snapshots.CreateSnapshot(ctx, r)
	if err != nil {
		return sn, fmt.Errorf("snapshot volume %s of drive %s: %w", s.st.VolumeID, s.key, err)
	}
	return sn, nil
}

func (s *scope) deleteSnapshot(ctx context.Context, sn drives.Snapshot) error {
	if err := s.svc().Snapshots.DeleteSnapshot(ctx, sn); err != nil {
		return fmt.Errorf("delete snapshot %s of drive %s: %w", sn.ID, s.key, err)
	}
	return nil
}

func (s *scope) describeInstance(ctx context.Context, id string) (instances.Instance, bool, error) {
	inst, found, err := s.svc().Instances.Get(ctx, id)
	if err != nil {
		return inst, found, fmt.Errorf("describe instance %s of drive %s: %w", id, s.key, err)
	}
	return inst, found, nil
}
