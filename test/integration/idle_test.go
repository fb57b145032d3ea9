package integration_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/controller/workstation"
	"github.com/xdrive-io/xdrive/internal/operator"
	"github.com/xdrive-io/xdrive/test/harness"
)

// idleMinute makes 30 minutes of spec.idleStop last 3 s.
const idleMinute = 100 * time.Millisecond

var sshSession = bootstrap.Signal{Name: "ssh", State: bootstrap.SignalActive, Detail: "1 sessions, 0 other connections"}

func idleAfter(d time.Duration) *v1alpha1.IdleStop {
	return &v1alpha1.IdleStop{After: &metav1.Duration{Duration: d}}
}

func idleState(h *harness.Harness, name string) v1alpha1.IdleState {
	if i := h.Workstation(name).Status.Idle; i != nil {
		return *i
	}
	return v1alpha1.IdleState{}
}

// TestIdleStop: a Workstation with an SSH session open runs on past its idle
// window; one that nobody uses (idle window from its class's default) is
// warned, stopped through the normal teardown (flush, snapshot) with
// spec.state still Running, and relaunched by the resume annotation. A
// Workstation asking for more than the class's maximum is refused.
func TestIdleStop(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t), Options: operator.Options{Timings: operatorTimings()}})
	h.Agent.SetActivity("", sshSession) // every instance has a session, unless set otherwise
	cls := newClass(h, "idle", nil)
	cls.Spec.IdleStop = &v1alpha1.ClassIdleStop{DefaultAfter: &metav1.Duration{Duration: 30 * time.Minute}, MaxAfter: &metav1.Duration{Duration: time.Hour}}
	cls.Spec.AllowWorkstationOverrides = new(true)
	h.Create(cls)
	h.Start()

	quiet := h.NewWorkstation("quiet", "quiet-data", []string{"t3.large"}, "us-east-1a")
	quiet.Spec.ClassName = cls.Name // no idleStop of its own: the class's default, 30m
	busy := h.NewWorkstation("busy", "busy-data", []string{"t3.large"}, "us-east-1a")
	busy.Spec.IdleStop = idleAfter(30 * time.Minute)
	greedy := h.NewWorkstation("greedy", "greedy-data", []string{"t3.large"}, "us-east-1a")
	greedy.Spec.ClassName = cls.Name
	greedy.Spec.IdleStop = idleAfter(2 * time.Hour)
	h.Create(h.NewDrive("quiet-data", 10), h.NewDrive("busy-data", 10), h.NewDrive("greedy-data", 10), quiet, busy, greedy)

	h.Eventually(converge, "greedy refused by its class", classAllowed(h, "greedy", "False", v1alpha1.ReasonClassViolation, "idleStop.after 2h0m0s", "maxAfter 1h0m0s"))
	h.Eventually(converge, "quiet Ready", h.WorkstationReady("quiet"))
	h.Eventually(converge, "busy Ready", h.WorkstationReady("busy"))
	first := h.Workstation("quiet")
	addr := first.Status.PublicIP
	if addr == "" {
		addr = first.Status.PrivateIP
	}
	h.Agent.SetActivity(addr, idleSignalsOf()...)
	if got := idleState(h, "quiet"); got.InstanceID != first.Status.InstanceID {
		t.Fatalf("quiet's idle state = %+v, want its instance %s followed", got, first.Status.InstanceID)
	}

	h.Eventually(converge, "quiet stopped for idleness", func() (bool, string) {
		ws := h.Workstation("quiet")
		status, reason := harness.ReadyReason(ws.Status.Conditions)
		return ws.Status.Phase == v1alpha1.WorkstationPhaseStopped && reason == v1alpha1.ReasonIdleStopped && status == "False",
			fmt.Sprintf("phase %s, Ready %s/%s, idle %+v", ws.Status.Phase, status, reason, ws.Status.Idle)
	})
	ws := h.Workstation("quiet")
	if ws.Spec.State != v1alpha1.WorkstationStateRunning || ws.Status.Idle == nil || ws.Status.Idle.StopTime == nil {
		t.Fatalf("after the idle stop: spec.state %s, status.idle %+v; want Running and a stop time", ws.Spec.State, ws.Status.Idle)
	}
	for _, reason := range []string{v1alpha1.ReasonIdleStopSoon, v1alpha1.ReasonIdleStopped} {
		if ok, events := h.FindEvent("Workstation", "quiet", reason); !ok {
			t.Fatalf("no %s Event; events: %s", reason, events)
		}
	}
	// The warning reached the instance, with the deadline, and its answer is recorded.
	if !slices.ContainsFunc(h.Agent.Calls(), func(c string) bool { return strings.HasPrefix(c, "notify "+addr+" idle-stop ") }) {
		t.Fatalf("no notify call to %s at the warning; calls: %q", addr, h.Agent.Calls())
	}
	if ws.Status.Idle.NoticeTime == nil || ws.Status.Idle.NoticeError != "" {
		t.Errorf("status.idle after a delivered notice: %+v", ws.Status.Idle)
	}
	if ok, events := h.FindEvent("Workstation", "quiet", v1alpha1.ReasonStopping, "flushed the drive"); !ok {
		t.Fatalf("the idle stop did not flush the drive over the agent; events: %s", events)
	}
	h.Eventually(converge, "quiet's drive archived", h.DriveState("quiet-data", v1alpha1.ReasonArchived))
	if xd := h.Drive("quiet-data"); xd.Status.LatestSnapshotID == "" || xd.Status.VolumeID != "" {
		t.Fatalf("quiet's drive after the idle stop = %+v, want a snapshot and no volume", xd.Status)
	}

	// busy had a session all along: past several idle windows it still runs.
	busyStart := idleState(h, "busy").LastActivityTime
	h.Eventually(converge, "busy active past its idle window", func() (bool, string) {
		ws := h.Workstation("busy")
		i := idleState(h, "busy")
		past := i.LastActivityTime.Sub(busyStart.Time) > 2*30*idleMinute
		return past && ws.Status.Phase == v1alpha1.WorkstationPhaseRunning && i.StopTime == nil && i.LastActivitySignal == v1alpha1.IdleSignalSSH,
			fmt.Sprintf("phase %s, idle %+v", ws.Status.Phase, i)
	})

	// Resume: an annotation, not a spec change.
	gen := h.Workstation("quiet").Generation
	h.UpdateWorkstation("quiet", func(ws *v1alpha1.Workstation) {
		ws.Annotations = map[string]string{v1alpha1.ResumeAnnotation: time.Now().Add(time.Second).UTC().Format(time.RFC3339)}
	})
	h.Eventually(converge, "quiet relaunched after resume", func() (bool, string) {
		ws := h.Workstation("quiet")
		return ws.Status.InstanceID != "" && ws.Status.InstanceID != first.Status.InstanceID && ws.Status.Phase == v1alpha1.WorkstationPhaseRunning,
			fmt.Sprintf("phase %s, instance %s", ws.Status.Phase, ws.Status.InstanceID)
	})
	if ws := h.Workstation("quiet"); ws.Generation != gen {
		t.Fatalf("resume changed the spec: generation %d, was %d", ws.Generation, gen)
	}
	if ok, events := h.FindEvent("Workstation", "quiet", v1alpha1.ReasonResumed); !ok {
		t.Fatalf("no Resumed Event; events: %s", events)
	}
}

// TestIdleStopExtended: `xdrive-ctl extend` on an idle instance postpones
// its stop, capped by the class's maxExtend past the idle window; the stop
// is warned of again for the new time, told to the instance, and comes no
// sooner.
func TestIdleStopExtended(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t), Options: operator.Options{Timings: operatorTimings()}})
	cls := newClass(h, "extend", nil)
	cls.Spec.IdleStop = &v1alpha1.ClassIdleStop{DefaultAfter: &metav1.Duration{Duration: 30 * time.Minute}, MaxExtend: &metav1.Duration{Duration: time.Hour}}
	h.Create(cls)
	h.Start()
	ws := h.NewWorkstation("ext", "ext-data", []string{"t3.large"}, "us-east-1a")
	ws.Spec.ClassName = cls.Name
	h.Agent.SetActivity("", idleSignalsOf()...)
	h.Create(h.NewDrive("ext-data", 10), ws)
	h.Eventually(converge, "ext Ready", h.WorkstationReady("ext"))
	first := h.Workstation("ext")
	addr := first.Status.PublicIP
	if addr == "" {
		addr = first.Status.PrivateIP
	}
	h.Agent.SetExtend(addr, time.Now().Add(5*time.Hour).UTC().Format(time.RFC3339), "alice")

	h.Eventually(converge, "ext stopped for idleness", h.WorkstationPhase("ext", v1alpha1.WorkstationPhaseStopped))
	idle := idleState(h, "ext")
	if idle.ExtendedUntil == nil || idle.ExtendedBy != "alice" || idle.StopTime == nil {
		t.Fatalf("status.idle = %+v, want an extension by alice and a stop", idle)
	}
	// Capped: 1h of the class's maxExtend past the 30m window, both scaled.
	limit := idle.LastActivityTime.Add(90 * idleMinute)
	if idle.ExtendedUntil.After(limit) || idle.ExtendedUntil.Time.Before(limit.Add(-time.Second)) {
		t.Errorf("extendedUntil %s, want the cap %s", idle.ExtendedUntil, limit)
	}
	if idle.StopTime.Before(idle.ExtendedUntil) {
		t.Errorf("stopped at %s, before the extension's %s", idle.StopTime, idle.ExtendedUntil)
	}
	if ok, events := h.FindEvent("Workstation", "ext", v1alpha1.ReasonIdleStopExtended, "alice", "beyond the limit of 1h0m0s"); !ok {
		t.Fatalf("no IdleStopExtended Event; events: %s", events)
	}
	want := "notify " + addr + " idle-stop " + idle.ExtendedUntil.UTC().Format(time.RFC3339)
	if !slices.Contains(h.Agent.Calls(), want) {
		t.Fatalf("no %q; calls: %q", want, h.Agent.Calls())
	}
}

// TestIdleStopUnreachable: an instance the operator cannot reach is never
// stopped for idleness; once reachable and idle, it is.
func TestIdleStopUnreachable(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t), Options: operator.Options{Timings: operatorTimings()}})
	h.Start()
	ws := h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a")
	ws.Spec.IdleStop = idleAfter(30 * time.Minute)
	h.Create(h.NewDrive("data", 10), ws)
	h.Eventually(converge, "box Ready", h.WorkstationReady("box"))
	h.Agent.SetUnreachable(true)
	start := idleState(h, "box").LastActivityTime
	h.Eventually(converge, "box unreachable past its idle window", func() (bool, string) {
		ws := h.Workstation("box")
		i := idleState(h, "box")
		past := i.LastActivityTime.Sub(start.Time) > 2*30*idleMinute
		return past && ws.Status.Phase == v1alpha1.WorkstationPhaseRunning && i.LastActivitySignal == v1alpha1.IdleSignalUnreachable,
			fmt.Sprintf("phase %s, idle %+v", ws.Status.Phase, i)
	})
	h.Agent.SetUnreachable(false)
	h.Eventually(converge, "box stopped once seen idle", h.WorkstationPhase("box", v1alpha1.WorkstationPhaseStopped))
	if reason := idleReason(h, "box"); reason != v1alpha1.ReasonIdleStopped {
		t.Fatalf("Ready reason = %s, want %s", reason, v1alpha1.ReasonIdleStopped)
	}
}

func idleReason(h *harness.Harness, name string) string {
	_, reason := harness.ReadyReason(h.Workstation(name).Status.Conditions)
	return reason
}

func operatorTimings() workstation.Timings { return workstation.Timings{IdleMinute: idleMinute} }

// idleSignalsOf is an instance that nobody uses.
func idleSignalsOf() []bootstrap.Signal {
	var out []bootstrap.Signal
	for _, name := range strings.Fields("ssh jupyter gpu cpu network command") {
		out = append(out, bootstrap.Signal{Name: name, State: bootstrap.SignalIdle})
	}
	return out
}
