package workstation

import (
	"context"
	"fmt"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/controller/common"
	"github.com/xdrive-io/xdrive/internal/controller/handoff"
	"github.com/xdrive-io/xdrive/internal/instances"
)

// terminateFallback bounds the wait for the drive's snapshot to start after
// a flushed release; past it the instance is terminated anyway and the drive
// is snapshotted once detached.
const terminateFallback = 2 * time.Minute

func ptrTime(t time.Time) *metav1.Time {
	m := metav1.NewTime(t)
	return &m
}

// startTeardown begins releasing the current instance. It is the one way
// from Running to a stopped or replaced instance.
func (s teardownStep) startTeardown(reason v1alpha1.TeardownReason) {
	st := s.st
	if st.Teardown != nil && st.Teardown.InstanceID == st.InstanceID {
		return
	}
	deadline := s.r.Timings.StopTimeout
	if reason == v1alpha1.TeardownInterrupted || reason == v1alpha1.TeardownRebalance {
		deadline = s.r.Timings.FlushTimeout
	}
	st.Teardown = &v1alpha1.Teardown{InstanceID: st.InstanceID, Reason: reason,
		StartTime: metav1.NewTime(s.now), Deadline: metav1.NewTime(s.now.Add(deadline))}
	s.setPhase(v1alpha1.WorkstationPhaseReleasing)
}

// recordRelease writes down that no more writes reach the drive from the torn-down instance.
func (s teardownStep) recordRelease(c v1alpha1.Consistency) {
	st := s.st
	st.DriveRelease = &v1alpha1.DriveRelease{InstanceID: st.Teardown.InstanceID, Consistency: c, Time: metav1.NewTime(s.now)}
	s.setPhase(v1alpha1.WorkstationPhaseTerminating)
}

// releasing stops the containers and flushes the drive over SSH in the
// background, until the deadline. A status check that finds the drive
// released by the instance's own watcher counts as a release too.
func (s teardownStep) releasing(ctx context.Context) (ctrl.Result, error) {
	st := s.st
	td := st.Teardown
	inst, found, err := s.instance(ctx, td.InstanceID)
	if err != nil {
		return ctrl.Result{}, err
	}
	if found && inst.Gone() {
		s.vanished(inst)
		return s.terminating(ctx)
	}
	release, inFlight := s.r.Calls.Last(td.InstanceID, agent.CallRelease)
	if status, _ := s.r.Calls.Last(td.InstanceID, agent.CallStatus); status.Done() && status.Err == nil && status.Status.Released {
		s.recordHooks(status.Status.PreStop)
		if status.Status.SpotNotice {
			s.interruptedDuring(td, v1alpha1.NoticeInstanceWatcher)
			return s.flushed("The instance's watcher flushed the drive on " + td.InstanceID)
		}
		return s.flushed("The drive on " + td.InstanceID + " is released")
	}
	if release.Done() && release.Err == nil {
		s.recordHooks(release.Status.PreStop)
		if release.Status.SpotNotice {
			s.interruptedDuring(td, v1alpha1.NoticeInstanceWatcher)
		}
		return s.flushed("Stopped containers and flushed the drive on " + td.InstanceID)
	}
	remaining := td.Deadline.Sub(s.now)
	if remaining <= 0 {
		msg := fmt.Sprintf("The instance could not be flushed by %s; it is terminated and the drive snapshotted once detached",
			td.Deadline.UTC().Format(time.RFC3339))
		s.event(true, v1alpha1.ReasonCrashConsistent, "Teardown", "%s (%s)", msg, td.InstanceID)
		s.recordRelease(v1alpha1.ConsistencyCrash)
		return s.terminating(ctx)
	}
	if release.Err != nil {
		s.run().reportDriveMounted(metav1.ConditionUnknown, v1alpha1.ReasonSSHUnreachable,
			fmt.Sprintf("Teardown over SSH failed (%d attempts), retrying until %s: %v", release.Failures,
				td.Deadline.UTC().Format(time.RFC3339), release.Err))
	}
	if !found || inst.State != instances.StateRunning {
		return ctrl.Result{RequeueAfter: min(remaining, 3*time.Second)}, nil
	}
	if inFlight {
		return ctrl.Result{RequeueAfter: remaining}, nil // the call's end wakes us sooner
	}
	if retry := release.Finished.Add(common.Doubling(release.Failures-1, time.Second, 10*time.Second)); release.Err != nil && s.now.Before(retry) {
		return ctrl.Result{RequeueAfter: min(retry.Sub(s.now), remaining)}, nil
	}
	creds, err := s.r.credentials(ctx, s.ws)
	if err != nil {
		return ctrl.Result{}, err
	}
	target := creds.target(inst)
	target.Release = releaseFor(td)
	s.r.Calls.Start(s.key, td.InstanceID, agent.CallRelease, target, min(remaining, 2*time.Minute))
	return ctrl.Result{RequeueAfter: remaining}, nil
}

// flushed records the release: it is what starts the snapshot, so it is
// written down before anything is terminated.
func (s teardownStep) flushed(message string) (ctrl.Result, error) {
	s.recordRelease(v1alpha1.ConsistencyFlushed)
	s.event(false, v1alpha1.ReasonStopping, "Teardown", "%s", message)
	return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
}

// terminating ends the released instance and waits until EC2 says it is terminated.
func (s teardownStep) terminating(ctx context.Context) (ctrl.Result, error) {
	st := s.st
	td := st.Teardown
	inst, found, err := s.instance(ctx, td.InstanceID)
	if err != nil {
		return ctrl.Result{}, err
	}
	if found && inst.Gone() && inst.StateReason == instances.ReasonSpotTermination {
		// AWS reclaimed it before the teardown's own terminate took effect.
		s.interruptedDuring(td, v1alpha1.NoticeSpotInterruption)
	}
	if found && inst.State == instances.StateTerminated {
		s.closeCost(td)
		return s.closeTeardown(ctx)
	}
	if td.TerminateTime == nil {
		if wait, err := s.waitForSnapshotStart(ctx); err != nil || wait {
			return ctrl.Result{RequeueAfter: 2 * time.Second}, err
		}
		if !found {
			return ctrl.Result{RequeueAfter: 5 * time.Second}, nil // terminate needs its ownership tags
		}
		// Shutting down already: a reconcile from a read older than its own Terminate.
		svc, err := s.instanceServices()
		if err != nil {
			return ctrl.Result{}, err
		}
		if inst.State != instances.StateShuttingDown {
			if err := svc.Launcher.Terminate(ctx, inst); err != nil {
				return ctrl.Result{}, fmt.Errorf("terminate instance %s of Workstation %s: %w", inst.ID, s.key, err)
			}
		}
		t := metav1.NewTime(s.now)
		td.TerminateTime = &t
		if inst.State != instances.StateShuttingDown {
			inst.State = instances.StateShuttingDown
			svc.Instances.Remember(inst)
		}
		s.event(false, v1alpha1.ReasonStopping, "Terminate", "Terminating instance %s", inst.ID)
	}
	return ctrl.Result{RequeueAfter: 3 * time.Second}, nil
}

// waitForSnapshotStart holds a flushed instance until its drive's snapshot
// has started, so the instance's disk is copied while it still exists.
func (s teardownStep) waitForSnapshotStart(ctx context.Context) (bool, error) {
	st := s.st
	if st.DriveRelease.Consistency != v1alpha1.ConsistencyFlushed || s.now.After(st.DriveRelease.Time.Add(terminateFallback)) {
		return false, nil
	}
	xd, err := s.drive(ctx)
	if err != nil || xd == nil {
		return false, err
	}
	return !handoff.SnapshotStarted(xd, st.Teardown.InstanceID), nil
}

// forcedByAWS reports whether a teardown was forced by an AWS notice. A release
// by the instance's own watcher is recorded as td.InterruptedBy.
func forcedByAWS(r v1alpha1.TeardownReason) bool {
	return r == v1alpha1.TeardownInterrupted || r == v1alpha1.TeardownRebalance
}

// noticeFor reports whether a spot or scheduled-change notice named the
// instance: one that met a stop under way interrupted it all the same.
func (s teardownStep) noticeFor(instanceID string) bool {
	return slices.ContainsFunc(s.st.Notices, func(n v1alpha1.ProcessedNotice) bool {
		return n.InstanceID == instanceID && n.Kind != v1alpha1.NoticeRebalance
	})
}

// interruptedDuring records an interruption that met a teardown the operator
// started: the instance's watcher acted on a spot notice, or AWS reclaimed
// the instance. The stop was interrupted all the same, and
// interruptionPolicy applies when it closes.
func (s teardownStep) interruptedDuring(td *v1alpha1.Teardown, kind v1alpha1.NoticeKind) {
	if forcedByAWS(td.Reason) || td.InterruptedBy != "" || s.noticeFor(td.InstanceID) {
		return
	}
	td.InterruptedBy = kind
	s.markProcessed(kind, td.InstanceID, s.now)
	s.interrupt(kind, s.now)
}

// closeTeardown forgets the terminated instance; the Workstation then stops,
// or launches again.
func (s teardownStep) closeTeardown(ctx context.Context) (ctrl.Result, error) {
	st := s.st
	td := st.Teardown
	if (forcedByAWS(td.Reason) || td.InterruptedBy != "" || s.noticeFor(td.InstanceID)) && s.ws.Spec.InterruptionPolicy == v1alpha1.InterruptionPolicyStop {
		st.HaltedGeneration = s.gen
	}
	s.launch().forgetInstance()
	st.Teardown = nil
	s.r.Calls.Forget(td.InstanceID)
	s.event(false, v1alpha1.ReasonStopped, "Terminate", "Instance %s is terminated", td.InstanceID)
	if s.wants() {
		return s.launch().pending(ctx)
	}
	return s.stopped(ctx)
}

// stopped holds no instance; it gives the drive's lease back once the drive
// is at rest, and lets a deleted Workstation go.
func (s teardownStep) stopped(ctx context.Context) (ctrl.Result, error) {
	st := s.st
	wasStopped := st.Phase == v1alpha1.WorkstationPhaseStopped
	s.setPhase(v1alpha1.WorkstationPhaseStopped)
	if res, done, err := s.launch().confirmLaunch(ctx); done {
		return res, err // a launch dropped in this reconcile too
	}
	s.launch().forgetPlacement()
	if !wasStopped || !s.ws.DeletionTimestamp.IsZero() {
		// A launch whose status write was lost may have left an instance: look once.
		if adopted, err := s.launch().adoptStray(ctx); err != nil || adopted {
			return ctrl.Result{RequeueAfter: time.Millisecond}, err
		}
	}
	released, err := s.lease().releaseLease(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !released {
		return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
	}
	if !s.ws.DeletionTimestamp.IsZero() {
		s.teardownDone = true
	}
	return ctrl.Result{}, nil
}

// forgetRelease forgets the last instance's release, as a new launch is recorded.
func (s teardownStep) forgetRelease() {
	s.st.DriveRelease = nil
}
