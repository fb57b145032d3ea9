package plugin

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// TestProgress: the line start --wait and stop --wait print shows the
// phases, the snapshot's EC2 progress and the drive's initialization as bars.
func TestProgress(t *testing.T) {
	ws := &v1alpha1.Workstation{Status: v1alpha1.WorkstationStatus{
		Phase: v1alpha1.WorkstationPhaseRunning, InstanceID: "i-1",
		DrivePrewarm: &v1alpha1.DrivePrewarm{VolumeID: "vol-1", Percent: ptr.To[int32](30)},
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: "NotMounted", Message: "The drive is not mounted yet"}},
	}}
	xd := &v1alpha1.XDrive{Status: v1alpha1.XDriveStatus{Phase: v1alpha1.XDrivePhaseSnapshotting,
		PendingSnapshot: &v1alpha1.PendingSnapshot{ID: "snap-1", StartTime: metav1.NewTime(time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)), Progress: "45%"},
		Initialization:  &v1alpha1.VolumeInitialization{VolumeID: "vol-1", Percent: ptr.To[int32](62)},
	}}
	xd.Name = "home"
	want := "Workstation Running (NotMounted: The drive is not mounted yet); instance i-1; " +
		"drive home Snapshotting, snapshot snap-1 pending since 10:00:00 [####......] 45%, initializing [######....] 62%; prewarm [###.......] 30%"
	if got := progress(ws, xd); got != want {
		t.Errorf("progress:\n got %s\nwant %s", got, want)
	}
	for pct, want := range map[int32]string{-5: "[..........] 0%", 0: "[..........] 0%", 99: "[#########.] 99%", 100: "[##########] 100%", 120: "[##########] 100%"} {
		if got := bar(pct); got != want {
			t.Errorf("bar(%d) = %q, want %q", pct, got, want)
		}
	}
}
