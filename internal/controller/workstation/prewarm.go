package workstation

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
)

// prewarmed records what the instance reported of its read of every block
// of the drive's volume in status.drivePrewarm, with the time the read
// should end at its rate so far. A report about another volume is not the
// drive's. The XDrive folds it into its initialization and Hydrated, which it owns.
func (s runStep) prewarmed(report *bootstrap.Prewarm, volumeID string) {
	if report == nil || volumeID == "" || report.VolumeID != volumeID {
		return
	}
	pct := report.Percent()
	p := &v1alpha1.DrivePrewarm{VolumeID: volumeID, Percent: &pct}
	if left, ok := report.Left(); ok && pct < 100 {
		eta := metav1.NewTime(s.now.Add(left).Truncate(time.Second))
		p.EstimatedCompletionTime = &eta
	}
	s.st.DrivePrewarm = p
}

// forgetPrewarm forgets the last instance's report, as a new launch is recorded.
func (s runStep) forgetPrewarm() {
	s.st.DrivePrewarm = nil
}
