package handoff

import (
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// What the XDrive controller asks about the Workstation that holds its
// lease. Every function takes the holder, nil when no Workstation holds the
// drive (or the one named in the lease is gone).

// ReattachRequest is the holder's instance that waits for the drive's
// released volume, and that volume; empty when none waits, or the instance
// is the one the volume is attached to already.
func ReattachRequest(w *v1alpha1.Workstation, attachedTo string) (instanceID, volumeID string) {
	if w == nil {
		return "", ""
	}
	hs := w.Status
	if hs.ReattachVolumeID == "" || hs.InstanceID == "" || hs.InstanceID == attachedTo {
		return "", ""
	}
	return hs.InstanceID, hs.ReattachVolumeID
}

// ReattachAwaited reports whether the holder recorded a launch that asks for
// the volume, but not its instance yet: the volume waits for it. (An
// instance found for a dropped launch, see Workstation.status.unconfirmedLaunch,
// gets the volume if it is still there, else the failed reattach ends it.)
func ReattachAwaited(w *v1alpha1.Workstation, volumeID string) bool {
	if w == nil || volumeID == "" {
		return false
	}
	hs := w.Status
	return hs.Launch != nil && hs.InstanceID == "" && hs.ReattachVolumeID == volumeID
}

// TearsDown reports whether the holder is tearing the instance down: it
// released it, so the instance never gets the drive again.
func TearsDown(w *v1alpha1.Workstation, instanceID string) bool {
	return w != nil && w.Status.Teardown != nil && w.Status.Teardown.InstanceID == instanceID
}

// Declined reports that the holder will not reattach the volume.
func Declined(w *v1alpha1.Workstation, volumeID string) bool {
	return w != nil && w.Status.DeclinedVolumeID != "" && w.Status.DeclinedVolumeID == volumeID
}

// UnrecordedLaunch is the start of the holder's launch whose instance it
// has not recorded yet; false when there is none (or it tears one down).
func UnrecordedLaunch(w *v1alpha1.Workstation) (time.Time, bool) {
	if w == nil {
		return time.Time{}, false
	}
	hs := w.Status
	if hs.Launch == nil || hs.InstanceID != "" || hs.Teardown != nil {
		return time.Time{}, false
	}
	return hs.Launch.StartTime.Time, true
}

// Active reports whether the holder may have an instance, and so the drive a volume.
func Active(w *v1alpha1.Workstation) bool {
	if w == nil {
		return false
	}
	hs := w.Status
	return hs.Launch != nil || hs.InstanceID != "" || hs.Teardown != nil
}

// FailedRestore is the snapshot the holder's launch found gone, if any: the
// drive picks another.
func FailedRestore(w *v1alpha1.Workstation) string {
	if w == nil {
		return ""
	}
	return w.Status.FailedRestoreSnapshotID
}

// LaunchesRecorded is how many launches the holder has recorded (its
// status.launches): the drive's view of it has seen the launch its lease
// records once this reaches that launch's attempt.
func LaunchesRecorded(w *v1alpha1.Workstation) int32 {
	if w == nil {
		return 0
	}
	return w.Status.Launches
}

// LaunchSnapshot is the snapshot the holder's recorded launch restores, if any.
func LaunchSnapshot(w *v1alpha1.Workstation) (string, bool) {
	if w == nil || w.Status.Launch == nil {
		return "", false
	}
	return w.Status.Launch.SnapshotID, true
}

// ReleaseOf is the holder's release of the instance, if it recorded one.
func ReleaseOf(w *v1alpha1.Workstation, instanceID string) *v1alpha1.DriveRelease {
	if w == nil || instanceID == "" {
		return nil
	}
	rel := w.Status.DriveRelease
	if rel == nil || rel.InstanceID != instanceID {
		return nil
	}
	return rel
}

// Vouches reports whether the holder vouches for the instance: as its
// instance, as one it tears down, or as the unrecorded one of a launch it awaits.
func Vouches(w *v1alpha1.Workstation, instanceID string) bool {
	if w == nil {
		return false
	}
	hs := w.Status
	return hs.InstanceID == instanceID || (hs.Teardown != nil && hs.Teardown.InstanceID == instanceID) ||
		(hs.Launch != nil && hs.InstanceID == "")
}

// InterruptedAt is when the spot notice that tears the holder's instance
// down arrived; false unless an interruption is what releases the drive.
func InterruptedAt(w *v1alpha1.Workstation) (time.Time, bool) {
	if w == nil || w.Status.LastInterruptionTime == nil || w.Status.Teardown == nil ||
		w.Status.Teardown.Reason != v1alpha1.TeardownInterrupted {
		return time.Time{}, false
	}
	return w.Status.LastInterruptionTime.Time, true
}

// PrewarmOf is the holder's report of its instance's read of every block of
// the volume, if it has one with a percentage.
func PrewarmOf(w *v1alpha1.Workstation, volumeID string) *v1alpha1.DrivePrewarm {
	if w == nil {
		return nil
	}
	pw := w.Status.DrivePrewarm
	if pw == nil || pw.VolumeID != volumeID || pw.Percent == nil {
		return nil
	}
	return pw
}

// holderView is what the drive reads of a Workstation, and only that: the
// fields the functions above read, its drive and its deletion. A change to
// anything else (its conditions, say) does not wake the drive.
// TestHolderChangedCoversReads fails when a function above reads a status
// field that is missing here.
type holderView struct {
	Drive, InstanceID, FailedRestore string
	ReattachVolumeID, Declined       string
	Deleted                          bool
	Launches                         int32
	Launch                           *v1alpha1.LaunchAttempt
	Teardown                         *v1alpha1.Teardown
	Release                          *v1alpha1.DriveRelease
	Interrupted                      *metav1.Time
	Prewarm                          *v1alpha1.DrivePrewarm
}

func viewOf(w *v1alpha1.Workstation) holderView {
	return holderView{Drive: w.Spec.DriveRef.Name, InstanceID: w.Status.InstanceID, FailedRestore: w.Status.FailedRestoreSnapshotID,
		ReattachVolumeID: w.Status.ReattachVolumeID, Declined: w.Status.DeclinedVolumeID,
		Deleted: !w.DeletionTimestamp.IsZero(), Launches: w.Status.Launches, Launch: w.Status.Launch, Teardown: w.Status.Teardown,
		Release: w.Status.DriveRelease, Interrupted: w.Status.LastInterruptionTime, Prewarm: w.Status.DrivePrewarm}
}

// HolderChanged is the drive's wake-up predicate on Workstation updates: it
// fires when anything the drive reads of it changed.
func HolderChanged(old, new client.Object) bool {
	return !equality.Semantic.DeepEqual(viewOf(old.(*v1alpha1.Workstation)), viewOf(new.(*v1alpha1.Workstation)))
}

// ReleaseChanged reports whether a Workstation recorded its drive's release:
// the snapshot that follows is what an interruption's two minutes wait on.
func ReleaseChanged(old, new client.Object) bool {
	return !equality.Semantic.DeepEqual(old.(*v1alpha1.Workstation).Status.DriveRelease, new.(*v1alpha1.Workstation).Status.DriveRelease)
}

// DriveOf is the request of the drive a Workstation refers to.
func DriveOf(o client.Object) []reconcile.Request {
	w := o.(*v1alpha1.Workstation)
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: w.Namespace, Name: w.Spec.DriveRef.Name}}}
}
