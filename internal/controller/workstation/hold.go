package workstation

import (
	"time"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/controller/common"
)

// reportHold bounds how long after its instance's launch a Workstation's
// report may wait for the drive to attach (common.Hold).
const reportHold = 30 * time.Second

// firstReportHold bounds how long after its creation a Workstation's first
// status may wait for its drive to appear in the cache and report once:
// the drive's creation and its update wake it.
const firstReportHold = 10 * time.Second

// reportOnly reports whether two statuses differ in their report alone:
// what each reconcile computes again from what it observes (conditions, the
// instance's addresses). Such a change may wait for the news that follows
// (s.hold): the first status check's end, the drive attaching. A
// Workstation so writes its status at most 4 times on its way to Ready.
func reportOnly(before, after v1alpha1.WorkstationStatus) bool {
	for _, st := range []*v1alpha1.WorkstationStatus{&before, &after} {
		st.Conditions, st.PublicIP, st.PrivateIP, st.Endpoints = nil, "", "", nil
	}
	return common.StoredAlike(before, after)
}

// firstReportOnly reports whether a status written for the first time holds
// only what each reconcile computes again: the phase Pending, the class as
// resolved now, observedGeneration and conditions. Such a first status may
// wait for the drive, created with the Workstation, to appear and report
// (s.hold), and go out with the launch record, one write rather than two.
func firstReportOnly(before, after v1alpha1.WorkstationStatus) bool {
	if !common.StoredAlike(before, v1alpha1.WorkstationStatus{}) || after.Phase != v1alpha1.WorkstationPhasePending ||
		after.Class != nil && after.Class.ImageID != "" {
		return false
	}
	after.Phase, after.ObservedGeneration, after.Class = "", 0, nil
	return reportOnly(before, after)
}
