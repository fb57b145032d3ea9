package workstation

import (
	"context"
	"fmt"
	"math"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/controller/handoff"
	"github.com/xdrive-io/xdrive/internal/schedule"
)

// windowHorizon is how far ahead a class's schedule.maxWindow is checked.
const windowHorizon = 8 * 24 * time.Hour

// scheduled is the schedule's decision of one reconcile.
type scheduled struct {
	decision schedule.Decision
	lead     time.Duration
	basis    string
}

// effectiveSchedule is the Workstation's schedule, else its class's default;
// own says it is the Workstation's.
func (s scheduleStep) effectiveSchedule() (sch *v1alpha1.Schedule, own bool) {
	if s.ws.Spec.Schedule != nil {
		return s.ws.Spec.Schedule, true
	}
	if s.class != nil && s.class.class.Spec.Schedule != nil {
		return s.class.class.Spec.Schedule.Default, false
	}
	return nil, false
}

// decide reads the schedule, after the class is resolved, and decides
// whether its window is open now; it is the one writer of the scope's
// sched. A schedule that does not parse, or that the class refuses, is a
// refusal: no launch, a running instance left alone. xd is the drive, nil
// if it does not exist.
func (s scheduleStep) decide(xd *v1alpha1.XDrive) *refusal {
	s.sched = nil
	sch, own := s.effectiveSchedule()
	if sch == nil {
		s.forget()
		return nil
	}
	spec, err := schedule.Parse(*sch)
	if err != nil {
		where := "spec.schedule"
		if !own {
			where = fmt.Sprintf("WorkstationClass %s's schedule.default", s.class.class.Name)
		}
		s.forget()
		return &refusal{v1alpha1.ReasonInvalidSchedule, fmt.Sprintf("%s: %v", where, err)}
	}
	if ref := s.classBounds(spec, own); ref != nil {
		s.forget()
		return ref
	}
	lead, basis := schedule.Lead(driveOf(xd), s.measured())
	var wasOpenFor, resumed time.Time
	if st := s.st.Schedule; st != nil && st.Window == v1alpha1.ScheduleWindowOpen && st.WindowStart != nil {
		wasOpenFor = st.WindowStart.Time
	}
	if at, err := time.Parse(time.RFC3339, s.ws.Annotations[v1alpha1.ResumeAnnotation]); err == nil {
		resumed = at
	}
	d := spec.Decide(s.now, lead, wasOpenFor, resumed)
	s.sched = &scheduled{decision: d, lead: lead, basis: basis}
	if d.Window == v1alpha1.ScheduleWindowOpen {
		// A new window ends an idle stop of an earlier one.
		s.idle().resumeForWindow(d.WindowStart.Add(-lead))
	}
	return nil
}

// classBounds checks the schedule against the class: whether Workstations
// may set one, and the longest window.
func (s scheduleStep) classBounds(spec *schedule.Spec, own bool) *refusal {
	if s.class == nil || s.class.class.Spec.Schedule == nil {
		return nil
	}
	cs, name := s.class.class.Spec.Schedule, s.class.class.Name
	if own && !cs.WorkstationSchedulesAllowed() {
		return &refusal{v1alpha1.ReasonClassViolation, fmt.Sprintf(
			"WorkstationClass %s refuses this Workstation: spec.schedule is set, and the class sets schedule.allowWorkstationSchedules: false", name)}
	}
	if cs.MaxWindowMinutes == 0 {
		return nil
	}
	limit := time.Duration(cs.MaxWindowMinutes) * time.Minute
	if longest, at := spec.LongestWindow(s.now, windowHorizon); longest > limit {
		length := "never stops"
		if longest < math.MaxInt64 {
			length = "lasts " + longest.String()
		}
		return &refusal{v1alpha1.ReasonClassViolation, fmt.Sprintf(
			"WorkstationClass %s refuses this Workstation: the schedule's window from %s %s, above the class's schedule.maxWindowMinutes %d (%s)",
			name, at.Format(time.RFC3339), length, cs.MaxWindowMinutes, limit)}
	}
	return nil
}

// driveOf is what the lead needs of the drive: a blank drive loads nothing.
func driveOf(xd *v1alpha1.XDrive) schedule.Drive {
	if xd == nil || handoff.NeverSnapshotted(xd) {
		return schedule.Drive{}
	}
	return schedule.Drive{SizeGiB: xd.Spec.SizeGiB, InitializationRateMiBps: xd.Spec.InitializationRateMiBps, Prewarm: xd.Spec.PrewarmOn()}
}

// measured is what status keeps of the last launches.
func (s scheduleStep) measured() schedule.Measured {
	st := s.st.Schedule
	if st == nil || st.Measured == nil {
		return schedule.Measured{}
	}
	m := st.Measured
	out := schedule.Measured{Ready: seconds(m.ReadySeconds)}
	if m.LoadSeconds != nil && m.LoadedGiB > 0 {
		out.Load, out.LoadedGiB = seconds(m.LoadSeconds), m.LoadedGiB
	}
	return out
}

func seconds(n *int32) time.Duration {
	if n == nil {
		return 0
	}
	return time.Duration(*n) * time.Second
}

// forget drops the schedule's decisions from status, keeping the measurements.
func (s scheduleStep) forget() {
	if st := s.st.Schedule; st != nil {
		if st.Measured == nil {
			s.st.Schedule = nil
		} else {
			s.st.Schedule = &v1alpha1.ScheduleStatus{Measured: st.Measured}
		}
	}
}

// scheduleClosed reports whether the schedule keeps the Workstation stopped now.
func (s *scope) scheduleClosed() bool {
	return s.sched != nil && !s.sched.decision.Open()
}

// stopReason is why a running instance that is no longer wanted is torn
// down: the schedule's stop when only the schedule stops it.
func (s scheduleStep) stopReason() v1alpha1.TeardownReason {
	if Wants(s.ws) && s.scheduleClosed() {
		s.event(false, v1alpha1.ReasonScheduledStop, "Schedule", "The schedule's stop (%s): stopping: containers, flush, snapshot; next start %s",
			s.scheduleSpecText(), timeText(s.sched.decision.NextStart))
		return v1alpha1.TeardownScheduledStop
	}
	return stopReason(s.ws)
}

func (s scheduleStep) scheduleSpecText() string {
	sch, _ := s.effectiveSchedule()
	return fmt.Sprintf("%q in %s", sch.Stop, orDefault(sch.TimeZone, "UTC"))
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.UTC().Format(time.RFC3339)
}

// record writes the decision in status.schedule and has the Workstation
// looked at again when it may change: the launch for the next start, or
// the next stop. It never waits.
func (s scheduleStep) record(res ctrl.Result) ctrl.Result {
	if s.sched == nil {
		return res
	}
	d := s.sched.decision
	prev := s.st.Schedule
	st := &v1alpha1.ScheduleStatus{Window: d.Window, NextStart: timeOrNil(d.NextStart), LaunchAt: timeOrNil(d.LaunchAt),
		NextStop: timeOrNil(d.NextStop), WindowStart: timeOrNil(d.WindowStart),
		LeadSeconds: int32(s.sched.lead / time.Second), Basis: clip(s.sched.basis, 512)}
	if prev != nil {
		st.Measured = prev.Measured
	}
	if d.Window == v1alpha1.ScheduleWindowOpen && (prev == nil || prev.Window != v1alpha1.ScheduleWindowOpen) && Wants(s.ws) &&
		s.st.Phase != v1alpha1.WorkstationPhaseRunning {
		if d.WindowStart.After(s.now) {
			s.event(false, v1alpha1.ReasonScheduledStart, "Schedule", "Starting %s ahead of the scheduled start %s, to be Ready with the drive loaded by then (%s)",
				d.WindowStart.Sub(s.now).Round(time.Second), timeText(d.WindowStart), s.sched.basis)
		} else {
			s.event(false, v1alpha1.ReasonScheduledStart, "Schedule", "Starting: the scheduled window opened at %s; it ends at %s",
				timeText(d.WindowStart), timeText(d.NextStop))
		}
	}
	s.st.Schedule = st
	wake := d.Wake(s.now)
	if wake.IsZero() {
		return res
	}
	// A second past the minute, so that the fire is behind the clock.
	wait := wake.Sub(s.now) + time.Second
	if res.RequeueAfter == 0 || wait < res.RequeueAfter {
		res.RequeueAfter = wait
	}
	return res
}

func timeOrNil(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	m := metav1.NewTime(t.Truncate(time.Second))
	return &m
}

// observeReady measures the instance's time from its launch to Ready
// (the drive mounted, the containers running), once, on the status check
// that reports it Ready: the measurement goes in the same status write.
func (s scheduleStep) observeReady(instanceID string) {
	st := s.st.Schedule
	if s.st.LaunchTime == nil || (st != nil && st.Measured != nil && st.Measured.InstanceID == instanceID) {
		return
	}
	m := &v1alpha1.LaunchMeasurement{InstanceID: instanceID, ReadySeconds: new(secondsOf(s.now.Sub(s.st.LaunchTime.Time)))}
	if st == nil {
		st = &v1alpha1.ScheduleStatus{}
	} else if was := st.Measured; was != nil {
		m.LoadInstanceID, m.LoadSeconds, m.LoadedGiB = was.LoadInstanceID, was.LoadSeconds, was.LoadedGiB
	}
	st.Measured = m
	s.st.Schedule = st
}

// observeLoad measures, for a drive restored at this instance's launch,
// how long after Ready it was fully loaded, once.
func (s scheduleStep) observeLoad(xd *v1alpha1.XDrive, instanceID, volumeID string) {
	st := s.st.Schedule
	if xd == nil || s.st.LaunchTime == nil || st == nil || st.Measured == nil {
		return
	}
	m := st.Measured
	if m.InstanceID != instanceID || m.ReadySeconds == nil || m.LoadInstanceID == instanceID {
		return
	}
	if loaded, restored := handoff.Loaded(xd, volumeID); loaded && restored {
		since := secondsOf(s.now.Sub(s.st.LaunchTime.Time))
		m.LoadInstanceID, m.LoadSeconds, m.LoadedGiB = instanceID, new(max(0, since-*m.ReadySeconds)), xd.Spec.SizeGiB
	}
}

func secondsOf(d time.Duration) int32 {
	return int32(min(max(d, 0), math.MaxInt32*time.Second) / time.Second)
}

// reportSchedule shows a scheduled stop in the conditions of a stopped Workstation.
func (s scheduleStep) reportSchedule() {
	if s.st.Phase != v1alpha1.WorkstationPhaseStopped || !Wants(s.ws) || !s.scheduleClosed() {
		return
	}
	d := s.sched.decision
	s.setFrom(v1alpha1.ConditionLaunched, metav1.ConditionFalse, v1alpha1.ReasonScheduledStop, fmt.Sprintf(
		"Stopped outside its schedule; spec.state is still Running. Next start %s (launch at %s, %s ahead). Start now: kubectl xdrive start %s",
		timeText(d.NextStart), timeText(d.LaunchAt), s.sched.lead, s.ws.Name))
}

// decideSchedule runs decide with the drive read for it.
func (s scheduleStep) decideSchedule(ctx context.Context) (*refusal, error) {
	if sch, _ := s.effectiveSchedule(); sch == nil {
		return s.decide(nil), nil
	}
	xd, err := s.drive(ctx)
	if err != nil {
		return nil, err
	}
	return s.decide(xd), nil
}
