package workstation

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
)

// preserved maps the instance's report on keeping the containers' changes
// to ContainersPreserved, its one writer; a new failure is also an Event.
func (s runStep) preserved(status agent.Status) {
	cond, reason, msg := metav1.ConditionTrue, v1alpha1.ReasonPreserved, "Containers and Docker's store are kept on the drive"
	switch {
	case status.StoreError != "":
		cond, reason, msg = metav1.ConditionFalse, v1alpha1.ReasonStoreOffDrive, status.StoreError
	case status.PreserveError != "":
		cond, reason, msg = metav1.ConditionFalse, v1alpha1.ReasonCarryOverFailed,
			"Kept with their previous settings, changes not carried over: "+status.PreserveError
	case status.Phase != bootstrap.PhaseReady:
		return // not known until the containers have started
	}
	old := meta.FindStatusCondition(s.st.Conditions, v1alpha1.ConditionContainersPreserved)
	if cond == metav1.ConditionFalse && (old == nil || old.Status != cond || old.Message != msg) {
		s.event(true, reason, "Containers", "%s", msg)
	}
	s.set(v1alpha1.ConditionContainersPreserved, cond, reason, msg)
}
