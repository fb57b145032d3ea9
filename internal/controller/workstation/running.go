package workstation

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/controller/common"
	"github.com/xdrive-io/xdrive/internal/controller/handoff"
	"github.com/xdrive-io/xdrive/internal/instances"
	"github.com/xdrive-io/xdrive/internal/metrics"
)

// running follows the current instance; it owns the Running, DriveAttached,
// DriveMounted and ContainersRunning conditions.
func (s runStep) running(ctx context.Context) (ctrl.Result, error) {
	st := s.st
	if !s.wants() {
		s.teardown().startTeardown(s.schedule().stopReason())
		return s.teardown().releasing(ctx)
	}
	inst, found, err := s.instance(ctx, st.InstanceID)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !found {
		// Missing from EC2's answers is not gone: listings lag, tags can be edited.
		s.setFrom(v1alpha1.ConditionRunning, metav1.ConditionUnknown, v1alpha1.ReasonInstancePending,
			fmt.Sprintf("Instance %s is not listed by EC2 right now; waiting", st.InstanceID))
		return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
	}
	if inst.Gone() {
		s.teardown().vanished(inst)
		return s.teardown().terminating(ctx)
	}
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionLaunched); c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != s.gen {
		s.launch().reportLaunched(metav1.ConditionTrue, v1alpha1.ReasonLaunching, "Instance "+inst.ID+" launched")
	}
	if inst.Type != "" {
		s.launch().recordInstance(inst, st.Region)
	}
	if inst.State != instances.StateRunning {
		s.setFrom(v1alpha1.ConditionRunning, metav1.ConditionFalse, v1alpha1.ReasonInstancePending, "Instance "+inst.ID+" is "+inst.State)
		return ctrl.Result{RequeueAfter: 3 * time.Second}, nil
	}
	s.reportRunning(metav1.ConditionTrue, v1alpha1.ReasonInstanceRunning, "Instance "+inst.ID+" is running")
	if price, err := strconv.ParseFloat(st.SpotPrice, 64); err == nil {
		metrics.HourlyCost.WithLabelValues(s.ws.Namespace, s.ws.Name).Set(price)
	}
	xd, err := s.drive(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	held, err := s.lease().releaseOthers(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	if earlier := s.lease().earlierDriveOn(held, inst.ID); earlier != "" {
		// Stopped the normal way (flush, snapshot); the next launch takes the drive the spec names.
		s.event(false, v1alpha1.ReasonStopping, "Teardown", "Instance %s runs on XDrive %s, which spec.driveRef no longer names: stopping it to launch on XDrive %s",
			inst.ID, earlier, s.ws.Spec.DriveRef.Name)
		s.teardown().startTeardown(v1alpha1.TeardownDriveChanged)
		return s.teardown().releasing(ctx)
	}
	if f := s.launch().reattachFailure(xd, inst.ID); f != nil {
		return s.launch().abandonReattach(ctx, f)
	}
	var volumeID string
	attached := false
	if xd != nil {
		volumeID, attached = handoff.AttachedVolume(xd, inst.ID)
	}
	if !attached {
		s.setFrom(v1alpha1.ConditionDriveAttached, metav1.ConditionFalse, v1alpha1.ReasonWaitingForDrive,
			fmt.Sprintf("Waiting for XDrive %s to attach to %s", s.ws.Spec.DriveRef.Name, inst.ID))
		if st.LaunchTime != nil {
			s.hold.Until(s.now, st.LaunchTime.Add(reportHold)) // the drive's attaching wakes this Workstation
		}
		return ctrl.Result{}, nil
	}
	s.reportDriveAttached(metav1.ConditionTrue, v1alpha1.ReasonAttached,
		fmt.Sprintf("Volume %s is attached in %s", volumeID, inst.Zone))
	res, err := s.checkInstanceSide(ctx, inst, volumeID)
	s.schedule().observeLoad(xd, inst.ID, volumeID)
	if err != nil || st.Phase != v1alpha1.WorkstationPhaseRunning {
		return res, err
	}
	return s.idle().follow(ctx, inst, res)
}

func stopReason(w *v1alpha1.Workstation) v1alpha1.TeardownReason {
	if !w.DeletionTimestamp.IsZero() {
		return v1alpha1.TeardownDelete
	}
	return v1alpha1.TeardownStop
}

// vanished closes the books on an instance terminated from outside.
func (s teardownStep) vanished(inst instances.Instance) {
	st := s.st
	if st.Teardown == nil || st.Teardown.InstanceID != inst.ID {
		st.Teardown = &v1alpha1.Teardown{InstanceID: inst.ID, Reason: v1alpha1.TeardownVanished,
			StartTime: metav1.NewTime(s.now), Deadline: metav1.NewTime(s.now), TerminateTime: ptrTime(s.now)}
	}
	if st.DriveRelease == nil || st.DriveRelease.InstanceID != inst.ID {
		st.DriveRelease = &v1alpha1.DriveRelease{InstanceID: inst.ID, Consistency: v1alpha1.ConsistencyCrash, Time: metav1.NewTime(s.now)}
	}
	switch {
	case st.CapacityType == v1alpha1.CapacityTypeSpot && s.wants() && st.Phase == v1alpha1.WorkstationPhaseRunning:
		s.interrupt(v1alpha1.NoticeSpotInterruption, s.now)
		st.Teardown.Reason = v1alpha1.TeardownInterrupted
	case inst.StateReason == instances.ReasonSpotTermination:
		s.interruptedDuring(st.Teardown, v1alpha1.NoticeSpotInterruption)
	}
	s.setPhase(v1alpha1.WorkstationPhaseTerminating)
	s.event(true, v1alpha1.ReasonInstanceGone, "Observe", "Instance %s is %s without a teardown; its volume is snapshotted once detached", inst.ID, inst.State)
}

// statusTimeout bounds one status check over SSH, unless Timings.StatusTimeout is set.
const statusTimeout = 10 * time.Second

// statusTimeout is Timings.StatusTimeout, or the default.
func (t Timings) statusTimeout() time.Duration { return cmp.Or(t.StatusTimeout, statusTimeout) }

// checkInstanceSide reads the last status check of the instance, and starts
// the next one in the background when it is due.
func (s runStep) checkInstanceSide(ctx context.Context, inst instances.Instance, volumeID string) (ctrl.Result, error) {
	last, inFlight := s.r.Calls.Last(inst.ID, agent.CallStatus)
	if !inFlight && !s.now.Before(s.nextStatusCheck(last)) {
		creds, err := s.r.credentials(ctx, s.ws)
		if err != nil {
			return ctrl.Result{}, err
		}
		t := creds.statusTarget(inst, volumeID)
		t.Idle = s.idle().idleCheck()
		s.r.Calls.Start(s.key, inst.ID, agent.CallStatus, t, s.r.Timings.statusTimeout())
		inFlight = true
	}
	requeue := ctrl.Result{RequeueAfter: s.r.Timings.statusTimeout() + time.Second} // the call's end wakes us sooner
	if !inFlight {
		requeue.RequeueAfter = s.nextStatusCheck(last).Sub(s.now)
	}
	if !last.Done() {
		s.hold.Until(s.now, s.now.Add(requeue.RequeueAfter)) // the first check's result is the next thing to report
		return requeue, nil
	}
	if last.Err != nil {
		s.setFrom(v1alpha1.ConditionDriveMounted, metav1.ConditionUnknown, v1alpha1.ReasonSSHUnreachable,
			fmt.Sprintf("Cannot reach %s over SSH (%d attempts): %v", inst.ID, last.Failures, last.Err))
		return requeue, nil
	}
	status := last.Status
	if status.Released {
		// The drive is flushed: by the instance's own watcher on a notice the
		// operator has not seen, or by a release of the operator's whose record
		// was lost (a lost status write, a restart).
		s.teardown().startTeardown(v1alpha1.TeardownInstanceReleased)
		s.teardown().recordHooks(status.PreStop)
		if status.SpotNotice {
			s.teardown().interruptedDuring(s.st.Teardown, v1alpha1.NoticeInstanceWatcher)
		}
		s.teardown().recordRelease(v1alpha1.ConsistencyFlushed)
		return ctrl.Result{RequeueAfter: time.Millisecond}, nil
	}
	s.preserved(status)
	s.prewarmed(status.Prewarm, volumeID)
	switch {
	case status.VolumeID != "" && status.VolumeID != volumeID:
		s.setFrom(v1alpha1.ConditionDriveMounted, metav1.ConditionFalse, v1alpha1.ReasonVolumeMismatch,
			fmt.Sprintf("The instance mounted %s, but the drive is %s", status.VolumeID, volumeID))
		return requeue, nil
	case !status.Mounted:
		s.setFrom(v1alpha1.ConditionDriveMounted, metav1.ConditionFalse, v1alpha1.ReasonNotMounted,
			fmt.Sprintf("The drive is not mounted at %s yet (bootstrap phase %q)", s.ws.Spec.MountPath, status.Phase))
		return requeue, nil
	}
	s.reportDriveMounted(metav1.ConditionTrue, v1alpha1.ReasonMounted,
		fmt.Sprintf("Volume %s is mounted at %s", volumeID, s.ws.Spec.MountPath))
	up, reason, msg := containersRunning(s.ws, status)
	s.reportContainersRunning(up, reason, msg)
	if up == metav1.ConditionTrue {
		s.schedule().observeReady(inst.ID) // in the write that reports it Ready
	}
	return requeue, nil
}

// containersRunning is what ContainersRunning says of a status check that found the drive mounted.
func containersRunning(ws *v1alpha1.Workstation, status agent.Status) (metav1.ConditionStatus, string, string) {
	if status.Phase != bootstrap.PhaseReady {
		return metav1.ConditionFalse, v1alpha1.ReasonContainersStarting, fmt.Sprintf("The bootstrap is in phase %q", status.Phase)
	}
	var down []string
	for _, c := range ws.Spec.Containers {
		if state := status.Containers[c.Name]; state != "running" {
			down = append(down, fmt.Sprintf("%s (%s)", c.Name, orDefault(state, "absent")))
		}
	}
	switch {
	case len(down) > 0:
		return metav1.ConditionFalse, v1alpha1.ReasonContainersDown, "Not running: " + strings.Join(down, ", ")
	case len(ws.Spec.Containers) == 0:
		return metav1.ConditionTrue, v1alpha1.ReasonNoContainers, "No containers are declared"
	}
	return metav1.ConditionTrue, v1alpha1.ReasonContainersUp, fmt.Sprintf("%d containers are running", len(ws.Spec.Containers))
}

// The instance chain's conditions past Launched, each set by its one writer.

func (s runStep) reportRunning(status metav1.ConditionStatus, reason, msg string) {
	s.set(v1alpha1.ConditionRunning, status, reason, msg)
}

func (s runStep) reportDriveAttached(status metav1.ConditionStatus, reason, msg string) {
	s.set(v1alpha1.ConditionDriveAttached, status, reason, msg)
}

func (s runStep) reportDriveMounted(status metav1.ConditionStatus, reason, msg string) {
	s.set(v1alpha1.ConditionDriveMounted, status, reason, msg)
}

func (s runStep) reportContainersRunning(status metav1.ConditionStatus, reason, msg string) {
	s.set(v1alpha1.ConditionContainersRunning, status, reason, msg)
}

// nextStatusCheck is when the instance is checked again after the last
// check: soon while it boots, backing off while it cannot be reached, and
// every IdleRequeue once it is ready.
func (s runStep) nextStatusCheck(last agent.Result) time.Time {
	switch {
	case !last.Done():
		return time.Time{}
	case last.Err != nil:
		return last.Finished.Add(common.Doubling(last.Failures-1, 2*time.Second, 5*time.Minute))
	case last.Status.Released || !last.Status.Mounted || last.Status.Phase != bootstrap.PhaseReady:
		return last.Finished.Add(3 * time.Second)
	}
	for _, c := range s.ws.Spec.Containers {
		if last.Status.Containers[c.Name] != "running" {
			return last.Finished.Add(10 * time.Second)
		}
	}
	return s.idle().idleCheckDue(last.Finished.Add(s.r.Timings.IdleRequeue), last)
}
