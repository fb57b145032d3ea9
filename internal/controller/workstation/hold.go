package workstation

import (
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/controller/common"
)

// reportHold bounds how long after its instance's launch a Workstation's
// report may wait for the drive to attach (holdReport).
const reportHold = 30 * time.Second

// holdReport lets this reconcile's status write wait, until at the latest,
// when all it would change is the report (conditions, the instance's
// addresses): the Workstation waits for news that wakes it before then (the
// first status check's end, the drive attaching), and that reconcile writes
// the report with the news. A Workstation so writes its status about 3 times
// on its way to Ready instead of 6; decisions, phases and Events are never held.
func (s *scope) holdReport(until time.Time) {
	if until.After(s.now) {
		s.holdUntil = until
	}
}

// heldReport reports whether the status write waits (holdReport), and the
// result, which comes back by the hold's end at the latest.
func (s *scope) heldReport(before *v1alpha1.WorkstationStatus, result ctrl.Result, err error) (ctrl.Result, bool) {
	if s.holdUntil.IsZero() || err != nil || s.removeFinalizer || s.ev.Any() || !reportOnly(*before, *s.st) {
		return result, false
	}
	if wait := s.holdUntil.Sub(s.now); result.RequeueAfter <= 0 || result.RequeueAfter > wait {
		result.RequeueAfter = wait
	}
	return result, true
}

// reportOnly reports whether two statuses differ in their report alone:
// what each reconcile computes again from what it observes.
func reportOnly(before, after v1alpha1.WorkstationStatus) bool {
	for _, st := range []*v1alpha1.WorkstationStatus{&before, &after} {
		st.Conditions, st.PublicIP, st.PrivateIP, st.Endpoints = nil, "", "", nil
	}
	return common.StoredAlike(before, after)
}
