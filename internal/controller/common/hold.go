package common

import (
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
)

// Hold lets a reconcile's status write wait when all it would change is the
// report (conditions, what each reconcile observes again): the object waits
// for news that wakes it before the hold's end, and the reconcile that the
// news brings writes the report with it. Fewer writes, the same last word;
// decisions, phases, Events, failures and finalizer removals are never held.
type Hold struct{ until time.Time }

// Until holds the report until t at the latest; a t not after now holds nothing.
func (h *Hold) Until(now, t time.Time) {
	if t.After(now) {
		h.until = t
	}
}

// Held reports whether the status write waits: a hold is set, the status
// changed in its report only, and there is nothing to announce, remove or
// report as failed. The result then comes back by the hold's end.
func (h Hold) Held(now time.Time, reportOnly bool, ev *Events, removeFinalizer bool, result ctrl.Result, err error) (ctrl.Result, bool) {
	if h.until.IsZero() || !reportOnly || ev.Any() || removeFinalizer || err != nil {
		return result, false
	}
	if wait := h.until.Sub(now); result.RequeueAfter <= 0 || result.RequeueAfter > wait {
		result.RequeueAfter = wait
	}
	return result, true
}
