package workstation

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/controller/handoff"
)

// defaultReattachTolerance is the default of spec.reattachPriceTolerancePercent.
const defaultReattachTolerance = 20

// reusableVolume names the drive's released volume that a launch in its zone
// may reattach instead of restoring the drive from a snapshot: the drive is
// past the release (its snapshot taken or kept), and this Workstation has not declined it.
func (s launchStep) reusableVolume(xd *v1alpha1.XDrive) string {
	id, _ := handoff.ReusableVolume(xd, s.st.DeclinedVolumeID)
	return id
}

// driveReadyFor reports whether the drive is still as the recorded launch found it.
func (s launchStep) driveReadyFor(xd *v1alpha1.XDrive) bool {
	if !handoff.InRegion(xd, s.st.Launch.Region, s.r.Region) {
		return false // cannot happen while the lease asks for the launch's region; a drive elsewhere is not restored here
	}
	if id := s.st.ReattachVolumeID; id != "" {
		return s.reusableVolume(xd) == id
	}
	return handoff.Archived(xd)
}

// blankDrive says whether the drive the instance gets may be formatted: a new
// blank volume, or a reattached one of a drive that never had a snapshot.
func (s launchStep) blankDrive(xd *v1alpha1.XDrive) bool {
	if s.st.ReattachVolumeID != "" {
		return handoff.NeverSnapshotted(xd)
	}
	return s.st.Launch.SnapshotID == ""
}

// prewarmDrive says whether the instance reads every block of its drive
// once (spec.prewarm): only a volume restored from a snapshot loads its
// blocks lazily; a blank one has none to load, a reattached one is warm.
func (s launchStep) prewarmDrive(xd *v1alpha1.XDrive) bool {
	return xd.Spec.PrewarmOn() && s.st.ReattachVolumeID == "" && s.st.Launch.SnapshotID != ""
}

// dropLaunch forgets a launch that did not happen.
func (s launchStep) dropLaunch() {
	s.st.Launch = nil
	s.st.ReattachVolumeID = ""
}

// dropUnconfirmedLaunch drops a launch whose RunInstances may have taken
// effect in an earlier reconcile, its answer lost and its instance not listed
// yet: confirmLaunch looks for that instance before anything launches again.
// Its reattach request stays with it: an instance found is the one that
// waits for the volume.
func (s launchStep) dropUnconfirmedLaunch() {
	l := s.st.Launch
	if l == nil || !s.r.launches.mayHaveRun(s.ws.UID, l) {
		s.dropLaunch()
		return
	}
	s.st.UnconfirmedLaunch = &v1alpha1.UnconfirmedLaunch{Attempt: l.Attempt, Region: l.Region, Since: metav1.NewTime(s.now)}
	s.st.Launch = nil
}

// reattachFailure is the drive's record that it could not attach its volume to the instance.
func (s launchStep) reattachFailure(xd *v1alpha1.XDrive, instanceID string) *v1alpha1.FailedReattach {
	if xd == nil || s.st.ReattachVolumeID == "" {
		return nil
	}
	return handoff.ReattachFailure(xd, instanceID, s.st.ReattachVolumeID)
}

// abandonReattach ends an instance that never got the drive, so no flush is
// needed; the next launch restores the drive from its snapshot.
func (s launchStep) abandonReattach(ctx context.Context, f *v1alpha1.FailedReattach) (ctrl.Result, error) {
	st := s.st
	st.DeclinedVolumeID = f.VolumeID
	s.event(true, v1alpha1.ReasonReattachFailed, "Launch", "Volume %s could not be attached to %s (%s); ending it and restoring from the snapshot",
		f.VolumeID, f.InstanceID, f.Reason)
	s.teardown().startTeardown(v1alpha1.TeardownReattachFailed)
	s.teardown().recordRelease(v1alpha1.ConsistencyCrash)
	return s.teardown().terminating(ctx)
}

// forgetInstance forgets the terminated instance (closeTeardown): its
// identity, its price, and the volume it was to reattach.
func (s launchStep) forgetInstance() {
	st := s.st
	st.InstanceID, st.PrivateIP, st.PublicIP, st.SpotPrice, st.PricePerHour = "", "", "", "", ""
	st.LaunchTime, st.ReattachVolumeID = nil, ""
}

// forgetPlacement forgets where the last instance ran, once the Workstation is stopped.
func (s launchStep) forgetPlacement() {
	st := s.st
	st.InstanceType, st.AvailabilityZone, st.CapacityType = "", "", ""
}
