package workstation

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/instances"
)

// idleWarning is how long before an idle stop the warning Event is sent.
const idleWarning = 5 * time.Minute

// defaultMaxExtend is how far past the idle window `xdrive-ctl extend` may
// postpone the stop when the class sets no idleStop.maxExtend.
const defaultMaxExtend = 4 * time.Hour

// jupyterPort is the container port taken for a Jupyter server.
const jupyterPort = 8888

// Defaults of spec.idleStop's thresholds.
const (
	defaultCPULoad        = "0.5"
	defaultGPUPercent     = 10
	defaultBytesPerSecond = 4096
)

// IdleStopped reports whether the Workstation was stopped for idleness and
// not resumed since: it then wants no instance, though spec.state is Running.
func IdleStopped(w *v1alpha1.Workstation) bool {
	i := w.Status.Idle
	return i != nil && i.StopTime != nil && !resumedAfter(w, i.StopTime.Time)
}

// resumedAfter reports whether the resume annotation names t or a later time.
func resumedAfter(w *v1alpha1.Workstation, t time.Time) bool {
	at, err := time.Parse(time.RFC3339, w.Annotations[v1alpha1.ResumeAnnotation])
	return err == nil && !at.Before(t) // both to the second
}

// idleAfter is the Workstation's idle window: its own, capped by the class's
// maximum, else the class's default, else the maximum; 0 means off.
func (s idleStep) idleAfter() time.Duration {
	var own, def, limit time.Duration
	if is := s.ws.Spec.IdleStop; is != nil && is.After != nil {
		own = is.After.Duration
	}
	if s.class != nil && s.class.class.Spec.IdleStop != nil {
		c := s.class.class.Spec.IdleStop
		if c.DefaultAfter != nil {
			def = c.DefaultAfter.Duration
		}
		if c.MaxAfter != nil {
			limit = c.MaxAfter.Duration
		}
	}
	after := own
	if after == 0 {
		after = def
	}
	if limit > 0 && (after == 0 || after > limit) {
		after = limit
	}
	return after
}

// idleViolations lists what the Workstation's idle stop asks beyond its
// class: a longer window, lower busy thresholds, a forbidden checkCommand.
func idleViolations(spec v1alpha1.WorkstationSpec, c v1alpha1.WorkstationClassSpec) []string {
	is, cl := spec.IdleStop, c.IdleStop
	if is == nil || cl == nil {
		return nil
	}
	var out []string
	if is.After != nil && cl.MaxAfter != nil && is.After.Duration > cl.MaxAfter.Duration {
		out = append(out, fmt.Sprintf("idleStop.after %s is above the class's idleStop.maxAfter %s", is.After.Duration, cl.MaxAfter.Duration))
	}
	if is.CPULoad != "" && instances.PriceAbove(cl.MinCPULoad, is.CPULoad) {
		out = append(out, fmt.Sprintf("idleStop.cpuLoad %s is below the class's idleStop.minCPULoad %s", is.CPULoad, cl.MinCPULoad))
	}
	if is.GPUUtilizationPercent != 0 && is.GPUUtilizationPercent < cl.MinGPUUtilizationPercent {
		out = append(out, fmt.Sprintf("idleStop.gpuUtilizationPercent %d is below the class's idleStop.minGPUUtilizationPercent %d",
			is.GPUUtilizationPercent, cl.MinGPUUtilizationPercent))
	}
	if is.NetworkBytesPerSecond != 0 && is.NetworkBytesPerSecond < cl.MinNetworkBytesPerSecond {
		out = append(out, fmt.Sprintf("idleStop.networkBytesPerSecond %d is below the class's idleStop.minNetworkBytesPerSecond %d",
			is.NetworkBytesPerSecond, cl.MinNetworkBytesPerSecond))
	}
	if is.CheckCommand != "" && !cl.CheckCommandAllowed() {
		out = append(out, "idleStop.checkCommand is set, and the class sets idleStop.allowCheckCommand: false")
	}
	return out
}

// idleThresholds are the Workstation's busy thresholds, raised to the
// class's minimums, and its checkCommand unless the class forbids it: a
// running Workstation outside its class (ClassAllowed=False) is checked
// within the class's bounds all the same.
func (s idleStep) idleThresholds() v1alpha1.IdleStop {
	t := v1alpha1.IdleStop{}
	if s.ws.Spec.IdleStop != nil {
		t = *s.ws.Spec.IdleStop
	}
	t.CPULoad = orDefault(t.CPULoad, defaultCPULoad)
	if t.GPUUtilizationPercent == 0 {
		t.GPUUtilizationPercent = defaultGPUPercent
	}
	if t.NetworkBytesPerSecond == 0 {
		t.NetworkBytesPerSecond = defaultBytesPerSecond
	}
	if s.class == nil || s.class.class.Spec.IdleStop == nil {
		return t
	}
	cl := s.class.class.Spec.IdleStop
	if instances.PriceAbove(cl.MinCPULoad, t.CPULoad) {
		t.CPULoad = cl.MinCPULoad
	}
	t.GPUUtilizationPercent = max(t.GPUUtilizationPercent, cl.MinGPUUtilizationPercent)
	t.NetworkBytesPerSecond = max(t.NetworkBytesPerSecond, cl.MinNetworkBytesPerSecond)
	if !cl.CheckCommandAllowed() {
		t.CheckCommand = ""
	}
	return t
}

// idleScaled shortens an idle duration by Timings.IdleMinute (tests and the demo).
func (s idleStep) idleScaled(d time.Duration) time.Duration {
	m := s.r.Timings.IdleMinute
	if m <= 0 || m == time.Minute {
		return d
	}
	return time.Duration(float64(d) * float64(m) / float64(time.Minute))
}

// idleCheck is what the status call asks the instance to check; nil when idle stop is off.
func (s idleStep) idleCheck() *bootstrap.IdleCheck {
	if s.idleAfter() == 0 {
		return nil
	}
	spec := s.idleThresholds()
	c := &bootstrap.IdleCheck{CPULoad: spec.CPULoad, GPUPercent: spec.GPUUtilizationPercent,
		Ports: spec.NetworkPorts, BytesPerSecond: spec.NetworkBytesPerSecond, Command: spec.CheckCommand}
	for _, ctr := range s.ws.Spec.Containers {
		for _, p := range ctr.Ports {
			if p.Protocol == "udp" {
				continue
			}
			host := p.HostPort
			if host == 0 {
				host = p.ContainerPort
			}
			if len(spec.NetworkPorts) == 0 {
				c.Ports = append(c.Ports, host)
			}
			if p.ContainerPort == jupyterPort {
				c.Jupyter = append(c.Jupyter, bootstrap.JupyterPort{Container: ctr.Name, Port: host})
			}
		}
	}
	return c
}

// activity reads a status check: what saw activity, or active false when
// every signal was idle. A failed check, a boot in progress and a missing
// or unreadable signal all count as activity: no data is not idleness.
func activity(last agent.Result) (signal v1alpha1.IdleSignal, detail string, active bool) {
	switch {
	case last.Err != nil:
		return v1alpha1.IdleSignalUnreachable, last.Err.Error(), true
	case last.Status.Phase != bootstrap.PhaseReady:
		return v1alpha1.IdleSignalBooting, "bootstrap phase " + last.Status.Phase, true
	case len(last.Status.Activity) == 0:
		return v1alpha1.IdleSignalUnreported, "the instance reported no activity signals", true
	}
	for _, sig := range last.Status.Activity {
		switch name := v1alpha1.IdleSignal(sig.Name); {
		case !slices.Contains(instanceSignals, name):
			// Not a name status.idle accepts: still activity.
			return v1alpha1.IdleSignalUnreported, "unknown signal " + sig.Name, true
		case sig.State != bootstrap.SignalIdle:
			return name, sig.State + ": " + sig.Detail, true
		}
	}
	return "", "", false
}

// instanceSignals are the signals the instance reports.
var instanceSignals = []v1alpha1.IdleSignal{v1alpha1.IdleSignalSSH, v1alpha1.IdleSignalJupyter, v1alpha1.IdleSignalGPU,
	v1alpha1.IdleSignalCPU, v1alpha1.IdleSignalNetwork, v1alpha1.IdleSignalCommand}

// follow follows the instance's activity and, once nobody used it for the idle
// window, warns and then stops it by the normal teardown. It is the one
// writer of status.idle, and is called while the instance runs.
func (s idleStep) follow(ctx context.Context, inst instances.Instance, res ctrl.Result) (ctrl.Result, error) {
	st := s.st
	after := s.idleAfter()
	if after == 0 {
		st.Idle = nil
		return res, nil
	}
	now := s.now.Truncate(time.Second) // as status keeps it
	if st.Idle == nil || st.Idle.InstanceID != st.InstanceID {
		st.Idle = &v1alpha1.IdleState{InstanceID: st.InstanceID, LastActivityTime: metav1.NewTime(now), LastActivitySignal: v1alpha1.IdleSignalLaunch}
	}
	idle := st.Idle
	last, _ := s.r.Calls.Last(st.InstanceID, agent.CallStatus)
	signal, detail, active := activity(last)
	if last.Done() && active && last.Finished.After(idle.LastActivityTime.Time) {
		idle.LastActivityTime = metav1.NewTime(last.Finished.Truncate(time.Second))
		idle.LastActivitySignal, idle.LastActivityDetail = signal, clip(detail, 256)
	}
	s.idleExtended(last, after)
	s.idleNoticed(inst.ID)
	warnAt, deadline, warned := s.idleTimes(after)
	// The warning and the stop are decided on a check made at their time that
	// saw nothing; the stop comes no sooner than the warning's lead after it.
	quiet := func(t time.Time) bool { return last.Done() && !active && !last.Finished.Before(t) }
	if quiet(warnAt) && !warned {
		idle.WarningTime = ptrTime(now)
		warnAt, deadline, warned = s.idleTimes(after)
		postpone := ", or postponed on the instance with: sudo xdrive-ctl extend 1h"
		if s.maxExtend() == 0 {
			postpone = "" // the class forbids it
		}
		s.event(false, v1alpha1.ReasonIdleStopSoon, "IdleStop", "No activity since %s (last: %s); the Workstation stops at %s unless it is used%s",
			idle.LastActivityTime.UTC().Format(time.RFC3339), idle.LastActivitySignal, deadline.UTC().Format(time.RFC3339), postpone)
		s.notify(ctx, inst, deadline)
	}
	if warned && quiet(deadline) {
		idle.StopTime = ptrTime(now)
		s.event(false, v1alpha1.ReasonIdleStopped, "IdleStop", "No activity for %s since %s (last: %s); stopping: containers, flush, snapshot. Resume with the annotation %s=<RFC3339 time>",
			after, idle.LastActivityTime.UTC().Format(time.RFC3339), idle.LastActivitySignal, v1alpha1.ResumeAnnotation)
		s.teardown().startTeardown(v1alpha1.TeardownIdleStop)
		return s.teardown().releasing(ctx)
	}
	for _, t := range []time.Time{warnAt, deadline} {
		if wait := t.Sub(s.now); wait > 0 && (res.RequeueAfter == 0 || wait < res.RequeueAfter) {
			res.RequeueAfter = wait
			break
		}
	}
	return res, nil
}

// idleTimes are when the warning is due, when the stop is, and whether the
// warning was sent: the stop comes at the idle window's end or at
// status.idle.extendedUntil, whichever is later, and never sooner than the
// warning's lead after the warning (a warning sent late, e.g. after the
// manager was down, pushes the stop back). A warning counts from its due
// time on: one sent before the last activity or before an extension is
// sent again.
func (s idleStep) idleTimes(after time.Duration) (warnAt, deadline time.Time, warned bool) {
	idle := s.st.Idle
	deadline = idle.LastActivityTime.Add(s.idleScaled(after))
	if idle.ExtendedUntil != nil && idle.ExtendedUntil.After(deadline) {
		deadline = idle.ExtendedUntil.Time
	}
	warnAt = deadline.Add(-s.idleScaled(idleWarning))
	// Status keeps the warning's time to the second.
	warned = idle.WarningTime != nil && !idle.WarningTime.Time.Before(warnAt.Truncate(time.Second))
	if warned {
		if due := idle.WarningTime.Add(s.idleScaled(idleWarning)); due.After(deadline) {
			deadline = due
		}
	}
	return warnAt, deadline, warned
}

// maxExtend is how far past the idle window an extension may reach: the
// class's idleStop.maxExtend, else defaultMaxExtend.
func (s idleStep) maxExtend() time.Duration {
	if s.class != nil && s.class.class.Spec.IdleStop != nil && s.class.class.Spec.IdleStop.MaxExtend != nil {
		return s.class.class.Spec.IdleStop.MaxExtend.Duration
	}
	return defaultMaxExtend
}

// idleExtended records in status.idle an extension asked on the instance
// (`xdrive-ctl extend`) that postpones the stop, capped at maxExtend past
// the idle window's end. It is not activity: the window does not move.
func (s idleStep) idleExtended(last agent.Result, after time.Duration) {
	idle := s.st.Idle
	if !last.Done() || last.Err != nil || last.Status.ExtendUntil == "" {
		return
	}
	asked, err := time.Parse(time.RFC3339, last.Status.ExtendUntil)
	if err != nil {
		return // not a time: nothing is postponed
	}
	_, deadline, _ := s.idleTimes(after)
	limit := idle.LastActivityTime.Add(s.idleScaled(after) + s.idleScaled(s.maxExtend()))
	until := asked.Truncate(time.Second)
	capped := until.After(limit)
	if capped {
		until = limit.Truncate(time.Second)
	}
	if !until.After(deadline) {
		return
	}
	by := last.Status.ExtendBy
	if !instanceUserRE.MatchString(by) {
		by = "" // the instance's word, not trusted: a user name or nothing
	}
	idle.ExtendedUntil, idle.ExtendedBy = ptrTime(until), by
	note := ""
	if capped {
		note = fmt.Sprintf("; %s was asked, beyond the limit of %s past the idle window (the class's idleStop.maxExtend)", asked.UTC().Format(time.RFC3339), s.maxExtend())
	}
	s.event(false, v1alpha1.ReasonIdleStopExtended, "IdleStop", "Postponed on the instance by %s (xdrive-ctl extend): the Workstation stops at %s at the earliest%s",
		orDefault(by, "an unknown user"), until.UTC().Format(time.RFC3339), note)
}

// instanceUserRE is a user name as xdrive-ctl extend reports it.
var instanceUserRE = regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,31}$`)

// notify tells the instance's users of the stop at deadline, in the
// background: a wall message and /run/xdrive/notice. Its answer is read by
// idleNoticed; a failure changes nothing of the stop.
func (s idleStep) notify(ctx context.Context, inst instances.Instance, deadline time.Time) {
	creds, err := s.r.credentials(ctx, s.ws)
	if err != nil {
		s.noticeFailed(err)
		return
	}
	t := creds.target(inst)
	t.Notice = &bootstrap.Notice{Kind: bootstrap.NoticeKindIdleStop, Deadline: deadline}
	s.r.Calls.Start(s.key, inst.ID, agent.CallNotify, t, s.r.Timings.statusTimeout())
}

// idleNoticed records the answer of the last warning's notify call, once.
func (s idleStep) idleNoticed(instanceID string) {
	idle := s.st.Idle
	last, _ := s.r.Calls.Last(instanceID, agent.CallNotify)
	finished := last.Finished.Truncate(time.Second) // as status keeps it
	if !last.Done() || idle.WarningTime == nil || last.Started.Before(idle.WarningTime.Time) ||
		(idle.NoticeTime != nil && !finished.After(idle.NoticeTime.Time)) {
		return
	}
	idle.NoticeTime = ptrTime(finished)
	idle.NoticeError = ""
	if last.Err != nil {
		s.noticeFailed(last.Err)
	}
}

// noticeFailed reports a warning that did not reach the instance.
func (s idleStep) noticeFailed(err error) {
	s.st.Idle.NoticeError = clip(err.Error(), 256)
	s.event(true, v1alpha1.ReasonIdleNoticeFailed, "IdleStop", "Could not tell the instance's users of the idle stop (wall, /run/xdrive/notice): %v; the stop is unchanged", err)
}

// idleCheckDue moves the next status check forward to the warning's time
// and the deadline, so that both are decided on a check made then.
func (s idleStep) idleCheckDue(next time.Time, last agent.Result) time.Time {
	idle := s.st.Idle
	after := s.idleAfter()
	if idle == nil || after == 0 || idle.InstanceID != s.st.InstanceID {
		return next
	}
	warnAt, deadline, _ := s.idleTimes(after)
	for _, t := range []time.Time{warnAt, deadline} {
		if last.Finished.Before(t) && t.Before(next) {
			return t
		}
	}
	return next
}

// resume ends an idle stop when the resume annotation names a later time,
// or when the user stops the Workstation themselves.
func (s idleStep) resume() {
	idle := s.st.Idle
	if idle == nil || idle.StopTime == nil {
		return
	}
	if resumedAfter(s.ws, idle.StopTime.Time) {
		s.event(false, v1alpha1.ReasonResumed, "IdleStop", "Resumed by the annotation %s=%s", v1alpha1.ResumeAnnotation, s.ws.Annotations[v1alpha1.ResumeAnnotation])
		s.st.Idle = nil
	} else if s.ws.Spec.State == v1alpha1.WorkstationStateStopped {
		s.st.Idle = nil
	}
}

// resumeForWindow ends an idle stop made before the schedule's window
// opened at openedAt: a new window starts the Workstation again.
func (s idleStep) resumeForWindow(openedAt time.Time) {
	idle := s.st.Idle
	if idle == nil || idle.StopTime == nil || !idle.StopTime.Time.Before(openedAt) {
		return
	}
	s.event(false, v1alpha1.ReasonResumed, "IdleStop", "Resumed by the schedule: its window opened at %s, after the idle stop at %s",
		openedAt.UTC().Format(time.RFC3339), idle.StopTime.UTC().Format(time.RFC3339))
	s.st.Idle = nil
}

// reportIdle shows an idle stop in the conditions of a stopped Workstation.
func (s idleStep) reportIdle() {
	if s.st.Phase != v1alpha1.WorkstationPhaseStopped || !IdleStopped(s.ws) {
		return
	}
	idle := s.st.Idle
	s.setFrom(v1alpha1.ConditionLaunched, metav1.ConditionFalse, v1alpha1.ReasonIdleStopped, fmt.Sprintf(
		"Stopped at %s after no activity since %s (last: %s); spec.state is still Running. Resume: kubectl annotate workstation %s %s=$(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ) --overwrite",
		idle.StopTime.UTC().Format(time.RFC3339), idle.LastActivityTime.UTC().Format(time.RFC3339), idle.LastActivitySignal, s.ws.Name, v1alpha1.ResumeAnnotation))
}

// clip shortens s to at most n bytes.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
