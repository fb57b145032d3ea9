package xdrive

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"

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
		if equality.Semantic.DeepEqual(holderView(pair[0]), holderView(pair[1])) {
			t.Errorf("drivePrewarm %+v -> %+v does not wake the drive", pair[0].Status.DrivePrewarm, pair[1].Status.DrivePrewarm)
		}
	}
}
