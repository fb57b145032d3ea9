package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReadyReason returns the status and reason of the Ready condition, or two
// empty strings when there is none. The reason is the object's state, as the
// STATUS printer column shows it (Archived, Attached, Stopped, ...).
func ReadyReason(conds []metav1.Condition) (metav1.ConditionStatus, string) {
	c := meta.FindStatusCondition(conds, ConditionReady)
	if c == nil {
		return "", ""
	}
	return c.Status, c.Reason
}
