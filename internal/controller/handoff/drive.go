package handoff

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
)

// What the Workstation controller asks about its XDrive, and the one thing
// it writes there: the lease (status.holder). Every function takes the
// drive as read; none is called on a nil drive.

// Reattachable reports whether a drive in this phase has released its
// volume, so that the holder's next instance may get it back instead of a
// restore from the snapshot.
func Reattachable(p v1alpha1.XDrivePhase) bool {
	return p == v1alpha1.XDrivePhaseSnapshotting || p == v1alpha1.XDrivePhaseDeletingVolume || p == v1alpha1.XDrivePhaseKept
}

// Phase is the drive's phase, for messages to people; decisions ask the
// questions below.
func Phase(xd *v1alpha1.XDrive) v1alpha1.XDrivePhase { return xd.Status.Phase }

// VolumeID is the drive's current volume, if any.
func VolumeID(xd *v1alpha1.XDrive) string { return xd.Status.VolumeID }

// Reconciled reports whether the drive controller has looked at the drive
// once: until then a lease would make it look at AWS twice.
func Reconciled(xd *v1alpha1.XDrive) bool { return xd.Status.Phase != "" }

// Archived reports whether the drive is at rest in its snapshots, with no volume.
func Archived(xd *v1alpha1.XDrive) bool { return xd.Status.Phase == v1alpha1.XDrivePhaseArchived }

// LeaseFree reports whether the holder may give the lease back: the drive
// is at rest, or keeps a volume nobody writes.
func LeaseFree(xd *v1alpha1.XDrive) bool {
	switch xd.Status.Phase {
	case v1alpha1.XDrivePhaseArchived, v1alpha1.XDrivePhasePending, v1alpha1.XDrivePhaseDeleting, v1alpha1.XDrivePhaseKept:
		return true
	}
	return false
}

// RestoreSnapshot is the snapshot a launch now restores the drive from.
func RestoreSnapshot(xd *v1alpha1.XDrive) string { return xd.Status.RestoreSnapshotID }

// KnownSnapshots are the drive's snapshots a volume of it may come from:
// the restore, the latest, and the source's named snapshot.
func KnownSnapshots(xd *v1alpha1.XDrive) []string {
	known := []string{xd.Status.RestoreSnapshotID, xd.Status.LatestSnapshotID}
	if src := xd.Spec.Source; src != nil && src.SnapshotID != "" {
		known = append(known, src.SnapshotID)
	}
	return known
}

// SnapshotOwners are the drives (ns/name, as snapshots are tagged) whose
// snapshots a volume of the drive may be made from: the drive itself and,
// for a fork, its source, whose snapshot the first volume restores.
func SnapshotOwners(xd *v1alpha1.XDrive) []string {
	owners := []string{cloud.ObjectKey(xd.Namespace, xd.Name)}
	if src := xd.Spec.Source; src != nil && src.XDrive != nil {
		owners = append(owners, cloud.ObjectKey(src.XDrive.NamespaceOf(xd.Namespace), src.XDrive.Name))
	}
	return owners
}

// NeverSnapshotted reports whether the drive has no data to restore: no
// snapshot was taken, and it has no source.
func NeverSnapshotted(xd *v1alpha1.XDrive) bool {
	return xd.Status.LatestSnapshotID == "" && xd.Spec.Source == nil
}

// Lease is the drive's lease, nil when free.
func Lease(xd *v1alpha1.XDrive) *v1alpha1.DriveHolder { return xd.Status.Holder }

// HeldBy reports whether the Workstation of that UID holds the drive's lease.
func HeldBy(xd *v1alpha1.XDrive, uid string) bool {
	return xd.Status.Holder != nil && xd.Status.Holder.UID == uid
}

// HolderUID is the UID of the drive's lease holder, "" without one: what
// the Workstations' index of the drives they hold is built from.
func HolderUID(xd *v1alpha1.XDrive) string {
	if xd.Status.Holder == nil {
		return ""
	}
	return xd.Status.Holder.UID
}

// WithLease is a copy of the drive with the lease set to h (nil: given
// back), to patch with an optimistic lock.
func WithLease(xd *v1alpha1.XDrive, h *v1alpha1.DriveHolder) *v1alpha1.XDrive {
	patched := xd.DeepCopy()
	patched.Status.Holder = h
	return patched
}

// WithLaunch is a copy of the drive whose lease records the holder's launch
// attempt about to be recorded.
func WithLaunch(xd *v1alpha1.XDrive, attempt int32, at metav1.Time) *v1alpha1.XDrive {
	patched := xd.DeepCopy()
	patched.Status.Holder.Launch = &v1alpha1.HolderLaunch{Attempt: attempt, StartTime: at}
	return patched
}

// WithBounds is a copy of the drive whose lease records the class's bounds.
func WithBounds(xd *v1alpha1.XDrive, b *v1alpha1.DriveBounds) *v1alpha1.XDrive {
	patched := xd.DeepCopy()
	patched.Status.Holder.Bounds = b
	return patched
}

// ReusableVolume names the drive's released volume, and its zone, that a
// launch in that zone may reattach instead of restoring the drive from a
// snapshot: the drive is past the release (its snapshot taken or kept), and
// the Workstation has not declined it.
func ReusableVolume(xd *v1alpha1.XDrive, declined string) (volumeID, zone string) {
	xs := xd.Status
	if !Reattachable(xs.Phase) || xs.VolumeID == "" || xs.AvailabilityZone == "" || xs.Release == nil ||
		!xd.DeletionTimestamp.IsZero() || xs.VolumeID == declined {
		return "", ""
	}
	return xs.VolumeID, xs.AvailabilityZone
}

// ReattachFailure is the drive's record that it could not attach the volume
// to the instance, if any.
func ReattachFailure(xd *v1alpha1.XDrive, instanceID, volumeID string) *v1alpha1.FailedReattach {
	f := xd.Status.FailedReattach
	if f == nil || f.InstanceID != instanceID || f.VolumeID != volumeID {
		return nil
	}
	return f
}

// AttachedVolume is the drive's volume once it is attached to the instance.
func AttachedVolume(xd *v1alpha1.XDrive, instanceID string) (string, bool) {
	if xd.Status.AttachedTo != instanceID || xd.Status.Phase != v1alpha1.XDrivePhaseAttached {
		return "", false
	}
	return xd.Status.VolumeID, true
}

// SnapshotStarted reports whether the drive is done with the instance's
// disk, or copying it: it let go of the instance, started the snapshot of
// its release, or waits for the detach (a crash release).
func SnapshotStarted(xd *v1alpha1.XDrive, instanceID string) bool {
	xs := xd.Status
	return xs.AttachedTo != instanceID || xs.PendingSnapshot != nil && xs.Release != nil && xs.Release.InstanceID == instanceID ||
		xs.Phase == v1alpha1.XDrivePhaseDetaching
}

// Loaded reports whether the drive's live volume has every block loaded
// (what Hydrated says), and whether this volume was restored from a
// snapshot, not created blank nor reattached: only such a load tells how
// long the next restore takes.
func Loaded(xd *v1alpha1.XDrive, volumeID string) (loaded, restored bool) {
	in := xd.Status.Initialization
	if in == nil || in.VolumeID != volumeID || in.ReadError != "" {
		return false, false
	}
	if in.Percent == nil {
		return true, false // nothing to load
	}
	return *in.Percent >= 100, xd.Status.ReattachedAt == nil
}

// Region is the drive's region (its volume, newest and restore snapshots),
// or home, the operator's, when the status names none.
func Region(xd *v1alpha1.XDrive, home string) string {
	if xd.Status.Region != "" {
		return xd.Status.Region
	}
	return home
}

// LeaseRegion is the region the lease holder launches in next, or the
// drive's own when the lease names none.
func LeaseRegion(xd *v1alpha1.XDrive, home string) string {
	if h := xd.Status.Holder; h != nil && h.Region != "" {
		return h.Region
	}
	return Region(xd, home)
}

// WithLeaseRegion is a copy of the drive whose lease asks for region, to
// patch with an optimistic lock: the drive moves only while the lease asks.
func WithLeaseRegion(xd *v1alpha1.XDrive, region string) *v1alpha1.XDrive {
	patched := xd.DeepCopy()
	patched.Status.Holder.Region = region
	return patched
}

// InRegion reports whether a launch in region may restore the drive now:
// the drive is there, no move is under way, and the lease asks for no other.
// The drive moves only while the lease asks for another region, so a
// launch the holder records after this read cannot find the drive gone.
func InRegion(xd *v1alpha1.XDrive, region, home string) bool {
	if region == "" {
		region = home // a launch recorded before regions: the operator's
	}
	return Region(xd, home) == region && xd.Status.Move == nil && LeaseRegion(xd, home) == region
}

// Move is the drive's move to another region under way, nil without one.
func Move(xd *v1alpha1.XDrive) *v1alpha1.DriveMove { return xd.Status.Move }

// RollbackInEffect reports whether the next restore is an older snapshot:
// the drive does not move to another region meanwhile.
func RollbackInEffect(xd *v1alpha1.XDrive) bool { return xd.Status.Rollback != nil }

// SizeGiB is the drive's size as last known, for the cost of copying it.
func SizeGiB(xd *v1alpha1.XDrive) int32 { return max(xd.Status.SizeGiB, xd.Spec.SizeGiB) }

// LeaseChanged reports whether the drive's lease changed between two
// versions of the drive: its region asks for a move.
func LeaseChanged(old, new *v1alpha1.XDrive) bool {
	o, n := old.Status.Holder, new.Status.Holder
	return (o == nil) != (n == nil) || o != nil && (o.UID != n.UID || o.Region != n.Region)
}
