package handoff

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// TestHolderViewSeesPrewarm: a new prewarm report of the holder wakes the
// drive, which folds it into its initialization.
func TestHolderViewSeesPrewarm(t *testing.T) {
	old := &v1alpha1.Workstation{}
	reported := old.DeepCopy()
	reported.Status.DrivePrewarm = &v1alpha1.DrivePrewarm{VolumeID: "vol-1", Percent: new(int32(10))}
	further := reported.DeepCopy()
	*further.Status.DrivePrewarm.Percent = 20
	for _, pair := range [][2]*v1alpha1.Workstation{{old, reported}, {reported, further}} {
		if !HolderChanged(pair[0], pair[1]) {
			t.Errorf("drivePrewarm %+v -> %+v does not wake the drive", pair[0].Status.DrivePrewarm, pair[1].Status.DrivePrewarm)
		}
	}
}

// TestHolderChangesThatWakeTheDrive: which changes of the holder wake the
// drive (HolderChanged), and which wake it at once (ReleaseChanged: the
// snapshot after a release is what an interruption's two minutes wait on).
func TestHolderChangesThatWakeTheDrive(t *testing.T) {
	now := metav1.Now()
	cases := []struct {
		name         string
		change       func(*v1alpha1.Workstation)
		wake, urgent bool
	}{
		{"a condition", func(w *v1alpha1.Workstation) {
			v1alpha1.SetCondition(&w.Status.Conditions, 1, v1alpha1.ConditionRunning, metav1.ConditionTrue, v1alpha1.ReasonInstanceRunning, "")
		}, false, false},
		{"the phase alone", func(w *v1alpha1.Workstation) { w.Status.Phase = v1alpha1.WorkstationPhaseReleasing }, false, false},
		{"the drive it refers to", func(w *v1alpha1.Workstation) { w.Spec.DriveRef.Name = "other" }, true, false},
		{"its instance", func(w *v1alpha1.Workstation) { w.Status.InstanceID = "i-2" }, true, false},
		{"its launch", func(w *v1alpha1.Workstation) { w.Status.Launch = &v1alpha1.LaunchAttempt{} }, true, false},
		{"a teardown", func(w *v1alpha1.Workstation) { w.Status.Teardown = &v1alpha1.Teardown{InstanceID: "i-1"} }, true, false},
		{"the drive's release", func(w *v1alpha1.Workstation) {
			w.Status.DriveRelease = &v1alpha1.DriveRelease{InstanceID: "i-1", Consistency: v1alpha1.ConsistencyFlushed, Time: now}
		}, true, true},
		{"a reattach request", func(w *v1alpha1.Workstation) { w.Status.ReattachVolumeID = "vol-1" }, true, false},
		{"a declined volume", func(w *v1alpha1.Workstation) { w.Status.DeclinedVolumeID = "vol-1" }, true, false},
		{"a failed restore", func(w *v1alpha1.Workstation) { w.Status.FailedRestoreSnapshotID = "snap-1" }, true, false},
		{"an interruption", func(w *v1alpha1.Workstation) { w.Status.LastInterruptionTime = &now }, true, false},
		{"its deletion", func(w *v1alpha1.Workstation) { w.DeletionTimestamp = &now }, true, false},
	}
	for _, c := range cases {
		old := &v1alpha1.Workstation{}
		old.Spec.DriveRef.Name = "home"
		old.Status.InstanceID = "i-1"
		changed := old.DeepCopy()
		c.change(changed)
		if wake := HolderChanged(old, changed); wake != c.wake {
			t.Errorf("%s: wakes the drive = %v, want %v", c.name, wake, c.wake)
		}
		if urgent := ReleaseChanged(old, changed); urgent != c.urgent {
			t.Errorf("%s: wakes it at once = %v, want %v", c.name, urgent, c.urgent)
		}
	}
}
