package workstation

import (
	"context"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/controller/common"
	"github.com/xdrive-io/xdrive/internal/controller/phases"
	"github.com/xdrive-io/xdrive/internal/instances"
)

// scope is what every step of one reconcile shares (steps.go): the object,
// the clock, Events, the wait reason, the phase, and the report.
type scope struct {
	r   *Reconciler
	ws  *v1alpha1.Workstation
	st  *v1alpha1.WorkstationStatus
	key string
	gen int64
	now time.Time
	// wait says why a Workstation without an instance does not launch yet.
	wait *waitReason
	// hold lets a report-only status write wait for the news that follows (hold.go).
	hold common.Hold
	ev   common.Events
	// teardownDone is the teardown's answer (stopped): the deleted Workstation
	// holds no instance and no lease. The access step deletes its group then.
	teardownDone bool
	// class is what the Workstation's class resolved to; nil if it has none.
	class *classParams
	// refused is why the class refuses the Workstation now; nil if it allows it.
	refused *refusal
	// sched is the schedule's decision; nil without a schedule, or before
	// the class is resolved.
	sched *scheduled
	// leaseRead is the drive as read before this reconcile took its lease,
	// while that lease is in memory only (acquireLease).
	leaseRead *v1alpha1.XDrive
}

type waitReason struct{ reason, message string }

func (s *scope) waitFor(reason, format string, args ...any) {
	s.wait = &waitReason{reason: reason, message: sprintf(format, args...)}
}

func (s *scope) event(warning bool, reason, action, format string, args ...any) {
	s.ev.Add(warning, reason, action, format, args...)
}

// setPhase is the one way the Workstation's phase changes: a change missing
// from phases.Workstation is reported as a bug.
func (s *scope) setPhase(p v1alpha1.WorkstationPhase) {
	if common.ChangePhase(&s.ev, s.r.OnIllegalPhase, phases.Workstation, s.key, s.st.Phase, p) {
		s.st.Phase = p
	}
}

func (s *scope) set(condType string, status metav1.ConditionStatus, reason, msg string) {
	v1alpha1.SetCondition(&s.st.Conditions, s.gen, condType, status, reason, msg)
}

// wants reports whether the user asks for a running instance now, and
// the schedule's window, if any, is open: spec.state Stopped is a hard off
// that no schedule overrides.
func (s *scope) wants() bool {
	return Wants(s.ws) && !s.scheduleClosed()
}

// Wants reports whether the Workstation asks for a running instance: not
// deleted, not stopped, not halted by an interruption at this generation,
// not stopped for idleness (idle.go), and not stopped by its class's budget (budget.go).
func Wants(w *v1alpha1.Workstation) bool {
	return w.DeletionTimestamp.IsZero() && w.Spec.State != v1alpha1.WorkstationStateStopped &&
		w.Status.HaltedGeneration != w.Generation && !IdleStopped(w) && !BudgetStopped(w)
}

func (s *scope) reconcile(ctx context.Context) (ctrl.Result, error) {
	s.launch().expireAvoided()
	s.teardown().takeNotices()
	s.idle().resume()
	if res, done, err := s.launch().confirmLaunch(ctx); done {
		return res, err
	}
	if blocked, err := s.admission().admit(ctx); err != nil || blocked {
		return ctrl.Result{}, err
	}
	stop, recheck, err := s.budget().check(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	if stop {
		return s.teardown().releasing(ctx)
	}
	res, err := s.phaseStep(ctx)
	if recheck > 0 && (res.RequeueAfter == 0 || recheck < res.RequeueAfter) {
		res.RequeueAfter = recheck
	}
	return res, err
}

// phaseStep runs the step of the Workstation's phase.
func (s *scope) phaseStep(ctx context.Context) (ctrl.Result, error) {
	switch s.st.Phase {
	case v1alpha1.WorkstationPhaseLaunching:
		return s.launch().launching(ctx)
	case v1alpha1.WorkstationPhaseRunning:
		return s.run().running(ctx)
	case v1alpha1.WorkstationPhaseReleasing:
		return s.teardown().releasing(ctx)
	case v1alpha1.WorkstationPhaseTerminating:
		return s.teardown().terminating(ctx)
	}
	if s.wants() {
		return s.launch().pending(ctx)
	}
	return s.teardown().stopped(ctx)
}

// services returns a region's services ("" is the operator's).
func (s *scope) services(region string) (RegionServices, error) {
	svc, ok := s.r.in(region)
	if !ok {
		return svc, fmt.Errorf("region %s of Workstation %s is not served by this operator (add it to --regions)", region, s.key)
	}
	return svc, nil
}

// instanceServices are the services of the region of the Workstation's instance.
func (s *scope) instanceServices() (RegionServices, error) { return s.services(s.st.Region) }

// cachedInstance is the instance by ID from the shared poll of its region, without an EC2 call.
func (s *scope) cachedInstance(id string) (instances.Instance, bool) {
	svc, ok := s.r.in(s.st.Region)
	if !ok {
		return instances.Instance{}, false
	}
	return svc.Instances.Cached(id)
}

// instance returns the instance by ID, from the shared poll or EC2.
// Missing from EC2's answers is not gone: found is then false.
func (s *scope) instance(ctx context.Context, id string) (instances.Instance, bool, error) {
	svc, err := s.instanceServices()
	if err != nil {
		return instances.Instance{}, false, err
	}
	if inst, ok := svc.Instances.Cached(id); ok {
		return inst, true, nil
	}
	inst, found, err := svc.Instances.Get(ctx, id)
	if err != nil {
		return inst, found, fmt.Errorf("describe instance %s of Workstation %s: %w", id, s.key, err)
	}
	return inst, found, nil
}

// drive reads the referenced XDrive; nil if it does not exist.
func (s *scope) drive(ctx context.Context) (*v1alpha1.XDrive, error) {
	xd := &v1alpha1.XDrive{}
	err := s.r.Get(ctx, types.NamespacedName{Namespace: s.ws.Namespace, Name: s.ws.Spec.DriveRef.Name}, xd)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read XDrive %s of Workstation %s: %w", s.ws.Spec.DriveRef.Name, s.key, err)
	}
	return xd, nil
}

// instanceChain are the conditions of the instance's way to Ready, each
// False or Unknown when the one before it is; ClassAllowed is not among them.
var instanceChain = slices.DeleteFunc(slices.Clone(v1alpha1.WorkstationDependents), func(t string) bool {
	return t == v1alpha1.ConditionClassAllowed
})

// setFrom sets every condition of the instance chain from the given one on,
// each through its owner's one writer.
func (s *scope) setFrom(first string, status metav1.ConditionStatus, reason, msg string) {
	report := map[string]func(metav1.ConditionStatus, string, string){
		v1alpha1.ConditionLaunched: s.launch().reportLaunched, v1alpha1.ConditionRunning: s.run().reportRunning,
		v1alpha1.ConditionDriveAttached: s.run().reportDriveAttached, v1alpha1.ConditionDriveMounted: s.run().reportDriveMounted,
		v1alpha1.ConditionContainersRunning: s.run().reportContainersRunning,
	}
	i := slices.Index(instanceChain, first)
	for _, t := range instanceChain[i:] {
		report[t](status, reason, msg)
	}
}

// report sets the conditions of the phases without an instance, and Ready.
func (s *scope) report(err error) {
	st := s.st
	switch st.Phase {
	case v1alpha1.WorkstationPhasePending:
		w := s.wait
		if w == nil {
			w = &waitReason{v1alpha1.ReasonPending, "Preparing a launch"}
		}
		s.setFrom(v1alpha1.ConditionLaunched, metav1.ConditionFalse, w.reason, w.message)
	case v1alpha1.WorkstationPhaseLaunching:
		s.setFrom(v1alpha1.ConditionLaunched, metav1.ConditionFalse, v1alpha1.ReasonLaunching,
			fmt.Sprintf("Launching %s (attempt %d)", st.Launch.Offering, st.Launch.Attempt))
	case v1alpha1.WorkstationPhaseReleasing:
		s.setFrom(v1alpha1.ConditionRunning, metav1.ConditionFalse, v1alpha1.ReasonStopping,
			fmt.Sprintf("%s: stopping containers and flushing the drive on %s until %s", st.Teardown.Reason, st.Teardown.InstanceID,
				st.Teardown.Deadline.UTC().Format(time.RFC3339)))
	case v1alpha1.WorkstationPhaseTerminating:
		msg := fmt.Sprintf("%s: drive released (%s); instance %s is terminating", st.Teardown.Reason, st.DriveRelease.Consistency, st.Teardown.InstanceID)
		s.setFrom(v1alpha1.ConditionRunning, metav1.ConditionFalse, v1alpha1.ReasonStopping, msg)
		if st.DriveRelease.Consistency == v1alpha1.ConsistencyCrash {
			s.run().reportDriveMounted(metav1.ConditionFalse, v1alpha1.ReasonCrashConsistent, msg)
		}
	case v1alpha1.WorkstationPhaseStopped:
		msg := "The Workstation is stopped; its drive is archived as snapshots"
		if st.HaltedGeneration == s.gen {
			msg = "Stopped after a spot interruption (interruptionPolicy=Stop); edit the spec to start again"
		}
		if s.wait != nil {
			msg = s.wait.message
		}
		s.setFrom(v1alpha1.ConditionLaunched, metav1.ConditionFalse, v1alpha1.ReasonStopped, msg)
	}
	if err != nil {
		reason, msg := common.Failure(err)
		s.launch().reportLaunched(metav1.ConditionUnknown, reason, msg)
	}
	s.idle().reportIdle()
	s.budget().reportBudget()
	s.schedule().reportSchedule()
	st.ObservedGeneration = s.gen
	v1alpha1.SetReady(&st.Conditions, s.gen, v1alpha1.ReasonReady, v1alpha1.WorkstationDependents)
}
