package workstation

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// TestFirstReportOnly: only a first status that holds nothing but what each
// reconcile computes again may wait for the drive's first report.
func TestFirstReportOnly(t *testing.T) {
	first := v1alpha1.WorkstationStatus{Phase: v1alpha1.WorkstationPhasePending, ObservedGeneration: 1,
		Class:      &v1alpha1.ResolvedClass{Name: "default", SSHUser: "ec2-user"},
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonWaitingForDrive}}}
	if !firstReportOnly(v1alpha1.WorkstationStatus{}, first) {
		t.Error("a first status of phase, class and conditions is not held")
	}
	written := first
	written.Conditions = nil
	if firstReportOnly(written, first) {
		t.Error("a status written before counts as a first one")
	}
	launching := first
	launching.Phase = v1alpha1.WorkstationPhaseLaunching
	if firstReportOnly(v1alpha1.WorkstationStatus{}, launching) {
		t.Error("a first status that is not Pending is held")
	}
	withImage := first
	withImage.Class = &v1alpha1.ResolvedClass{Name: "default", ImageID: "ami-1"}
	if firstReportOnly(v1alpha1.WorkstationStatus{}, withImage) {
		t.Error("a first status that records an image is held")
	}
	recorded := first
	recorded.Launches = 1
	if firstReportOnly(v1alpha1.WorkstationStatus{}, recorded) {
		t.Error("a first status that records a launch is held")
	}
}
