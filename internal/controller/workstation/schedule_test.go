package workstation

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/controller/common"
	"github.com/xdrive-io/xdrive/internal/schedule"
)

// weekdays is 9:00 to 19:00 UTC on weekdays; 2026-12-07 is a Monday.
var weekdays = &v1alpha1.Schedule{Start: "0 9 * * 1-5", Stop: "0 19 * * 1-5"}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// scheduleScope is a Workstation with the schedule at now, in class cls.
func scheduleScope(now time.Time, sch *v1alpha1.Schedule, cls *v1alpha1.WorkstationClass, change func(*v1alpha1.Workstation)) (*scope, *events.FakeRecorder) {
	ws := &v1alpha1.Workstation{}
	ws.Name, ws.Namespace, ws.Generation = "dev", "team", 2
	ws.Spec.State = v1alpha1.WorkstationStateRunning
	ws.Spec.Schedule = sch
	if change != nil {
		change(ws)
	}
	if cls == nil {
		cls = &v1alpha1.WorkstationClass{}
	}
	cls.Name = "standard"
	rec := events.NewFakeRecorder(10)
	return &scope{r: &Reconciler{Calls: &agent.Calls{}}, ws: ws, st: &ws.Status, key: "team/dev", gen: ws.Generation, now: now,
		class: &classParams{class: cls}, ev: common.Events{Recorder: rec, Object: ws}}, rec
}

// TestScheduleWants: the schedule's window decides whether a Workstation
// with spec.state Running runs; spec.state Stopped is a hard off.
func TestScheduleWants(t *testing.T) {
	lead := defaultLead()
	cases := []struct {
		name   string
		now    time.Time
		change func(*v1alpha1.Workstation)
		want   bool
	}{
		{"inside the window", at("2026-12-07T12:00:00Z"), nil, true},
		{"before the lead", at("2026-12-07T09:00:00Z").Add(-lead - time.Minute), nil, false},
		{"within the lead before the start", at("2026-12-07T09:00:00Z").Add(-lead + time.Minute), nil, true},
		{"after the stop", at("2026-12-07T19:00:00Z"), nil, false},
		{"spec.state Stopped inside the window", at("2026-12-07T12:00:00Z"), func(w *v1alpha1.Workstation) { w.Spec.State = v1alpha1.WorkstationStateStopped }, false},
		{"started by hand after the stop", at("2026-12-07T21:00:00Z"), func(w *v1alpha1.Workstation) {
			w.Annotations = map[string]string{v1alpha1.ResumeAnnotation: "2026-12-07T20:00:00Z"}
		}, true},
		{"no schedule", at("2026-12-07T21:00:00Z"), func(w *v1alpha1.Workstation) { w.Spec.Schedule = nil }, true},
	}
	for _, c := range cases {
		s, _ := scheduleScope(c.now, weekdays, nil, c.change)
		if ref := s.schedule().decide(nil); ref != nil {
			t.Fatalf("%s: refused: %s", c.name, ref.message)
		}
		if got := s.wants(); got != c.want {
			t.Errorf("%s: wants = %v, want %v (status %+v)", c.name, got, c.want, s.sched)
		}
	}
}

func defaultLead() time.Duration {
	lead, _ := schedule.Lead(schedule.Drive{}, schedule.Measured{})
	return lead
}

// TestScheduleClassDefault: a Workstation without a schedule takes its
// class's default.
func TestScheduleClassDefault(t *testing.T) {
	cls := &v1alpha1.WorkstationClass{}
	cls.Spec.Schedule = &v1alpha1.ClassSchedule{Default: weekdays}
	s, _ := scheduleScope(at("2026-12-07T21:00:00Z"), nil, cls, nil)
	if ref := s.schedule().decide(nil); ref != nil || s.wants() {
		t.Errorf("class default 9-19, at 21:00: refusal %v, wants %v; want stopped", ref, s.wants())
	}
}

// TestScheduleRefusals: a schedule that does not parse, or that its class
// refuses, is a refusal with a reason and a message that says why.
func TestScheduleRefusals(t *testing.T) {
	forbid := &v1alpha1.WorkstationClass{}
	forbid.Spec.Schedule = &v1alpha1.ClassSchedule{AllowWorkstationSchedules: new(false)}
	short := &v1alpha1.WorkstationClass{}
	short.Spec.Schedule = &v1alpha1.ClassSchedule{MaxWindowMinutes: 480}
	badDefault := &v1alpha1.WorkstationClass{}
	badDefault.Spec.Schedule = &v1alpha1.ClassSchedule{Default: &v1alpha1.Schedule{Start: "0 9 * * 1-5", Stop: "0 19 * * 8"}}
	cases := []struct {
		name   string
		sch    *v1alpha1.Schedule
		cls    *v1alpha1.WorkstationClass
		reason string
		words  []string
	}{
		{"a bad time zone", &v1alpha1.Schedule{TimeZone: "Europe/Atlantis", Start: "0 9 * * *", Stop: "0 19 * * *"}, nil,
			v1alpha1.ReasonInvalidSchedule, []string{"spec.schedule", "timeZone", "Europe/Atlantis"}},
		{"a bad start", &v1alpha1.Schedule{Start: "0 9 * * mon-fry", Stop: "0 19 * * *"}, nil,
			v1alpha1.ReasonInvalidSchedule, []string{"spec.schedule", "start"}},
		{"the class forbids schedules", weekdays, forbid, v1alpha1.ReasonClassViolation, []string{"allowWorkstationSchedules: false"}},
		{"a window above the class's maximum", weekdays, short, v1alpha1.ReasonClassViolation, []string{"lasts 10h0m0s", "maxWindowMinutes 480 (8h0m0s)"}},
		{"the class's default does not parse", nil, badDefault, v1alpha1.ReasonInvalidSchedule, []string{"standard's schedule.default", "stop"}},
	}
	for _, c := range cases {
		s, _ := scheduleScope(at("2026-12-07T12:00:00Z"), c.sch, c.cls, nil)
		ref := s.schedule().decide(nil)
		if ref == nil {
			t.Errorf("%s: not refused", c.name)
			continue
		}
		if ref.reason != c.reason {
			t.Errorf("%s: reason %s, want %s", c.name, ref.reason, c.reason)
		}
		for _, w := range c.words {
			if !strings.Contains(ref.message, w) {
				t.Errorf("%s: message %q lacks %q", c.name, ref.message, w)
			}
		}
		if s.sched != nil || s.st.Schedule != nil {
			t.Errorf("%s: a refused schedule decided %+v, status %+v", c.name, s.sched, s.st.Schedule)
		}
	}
}

// TestScheduleStopReason: a running instance outside the window is torn
// down as the schedule's stop (the normal flush and snapshot); spec.state
// Stopped and a deletion keep their own reasons.
func TestScheduleStopReason(t *testing.T) {
	now := metav1.Now()
	for _, c := range []struct {
		name   string
		change func(*v1alpha1.Workstation)
		want   v1alpha1.TeardownReason
	}{
		{"the stop time", nil, v1alpha1.TeardownScheduledStop},
		{"spec.state Stopped", func(w *v1alpha1.Workstation) { w.Spec.State = v1alpha1.WorkstationStateStopped }, v1alpha1.TeardownStop},
		{"deleted", func(w *v1alpha1.Workstation) { w.DeletionTimestamp = &now }, v1alpha1.TeardownDelete},
	} {
		s, _ := scheduleScope(at("2026-12-07T19:00:30Z"), weekdays, nil, c.change)
		s.schedule().decide(nil)
		if got := s.schedule().stopReason(); got != c.want {
			t.Errorf("%s: stop reason %s, want %s", c.name, got, c.want)
		}
	}
}

// TestScheduleIdleStop: an idle stop inside today's window holds until the
// next window opens, which starts the Workstation again.
func TestScheduleIdleStop(t *testing.T) {
	idleAt := metav1.NewTime(at("2026-12-07T15:00:00Z"))
	idled := func(w *v1alpha1.Workstation) {
		w.Status.Idle = &v1alpha1.IdleState{InstanceID: "i-1", StopTime: &idleAt}
	}
	s, _ := scheduleScope(at("2026-12-07T16:00:00Z"), weekdays, nil, idled)
	s.schedule().decide(nil)
	if s.wants() || s.st.Idle == nil {
		t.Errorf("the same day: wants %v, idle %+v; want the idle stop kept", s.wants(), s.st.Idle)
	}
	s, rec := scheduleScope(at("2026-12-08T08:58:00Z"), weekdays, nil, idled)
	s.schedule().decide(nil)
	s.ev.Flush()
	if !s.wants() || s.st.Idle != nil {
		t.Errorf("the next window: wants %v, idle %+v; want it resumed", s.wants(), s.st.Idle)
	}
	if e := <-rec.Events; !strings.Contains(e, "Resumed by the schedule") {
		t.Errorf("event %q, want the resume by the schedule", e)
	}
}

// TestScheduleRecord: status shows the next start and stop, the lead and
// its basis, and the reconcile comes back when the launch is due, a second
// past it, and no later than the requeue it had.
func TestScheduleRecord(t *testing.T) {
	s, _ := scheduleScope(at("2026-12-07T20:00:00Z"), weekdays, nil, nil)
	s.schedule().decide(nil)
	res := s.schedule().record(ctrl.Result{})
	lead := defaultLead()
	st := s.st.Schedule
	if st == nil || st.Window != v1alpha1.ScheduleWindowClosed || !st.NextStart.Time.Equal(at("2026-12-08T09:00:00Z")) ||
		!st.NextStop.Time.Equal(at("2026-12-08T19:00:00Z")) || !st.LaunchAt.Time.Equal(at("2026-12-08T09:00:00Z").Add(-lead)) ||
		st.LeadSeconds != int32(lead/time.Second) || st.Basis == "" {
		t.Fatalf("status.schedule = %+v", st)
	}
	if want := at("2026-12-08T09:00:00Z").Add(-lead).Sub(s.now) + time.Second; res.RequeueAfter != want {
		t.Errorf("requeue after %s, want %s", res.RequeueAfter, want)
	}
	if res := s.schedule().record(ctrl.Result{RequeueAfter: time.Minute}); res.RequeueAfter != time.Minute {
		t.Errorf("an earlier requeue: %s, want it kept", res.RequeueAfter)
	}
}

// TestScheduleObserve: the launch's time to Ready is measured once, from
// the instance's launch time to the reconcile that reports it Ready; a
// restored drive's load is measured after it, a blank one's not.
func TestScheduleObserve(t *testing.T) {
	t0 := at("2026-12-07T08:40:00Z")
	s, _ := scheduleScope(t0, weekdays, nil, nil)
	s.st.LaunchTime = &metav1.Time{Time: t0}
	xd := &v1alpha1.XDrive{}
	xd.Spec.SizeGiB = 100
	xd.Status.VolumeID = "vol-1"
	xd.Status.Initialization = &v1alpha1.VolumeInitialization{VolumeID: "vol-1", Percent: new(int32(40))}

	s.now = t0.Add(time.Minute)
	s.schedule().observeLoad(xd, "i-1", "vol-1")
	if s.st.Schedule != nil {
		t.Fatalf("not Ready yet: measured %+v", s.st.Schedule)
	}
	s.now = t0.Add(2 * time.Minute)
	s.schedule().observeReady("i-1")
	m := s.st.Schedule.Measured
	if m == nil || m.InstanceID != "i-1" || m.ReadySeconds == nil || *m.ReadySeconds != 120 || m.LoadInstanceID != "" {
		t.Fatalf("Ready at 2m: measured %+v", m)
	}
	s.now = t0.Add(5 * time.Minute)
	s.schedule().observeReady("i-1")
	s.schedule().observeLoad(xd, "i-1", "vol-1")
	if m := s.st.Schedule.Measured; *m.ReadySeconds != 120 || m.LoadInstanceID != "" {
		t.Errorf("Ready again, 40%% loaded: measured %+v, want Ready kept and no load", m)
	}
	xd.Status.Initialization.Percent = new(int32(100))
	s.now = t0.Add(9 * time.Minute)
	s.schedule().observeLoad(xd, "i-1", "vol-1")
	if m := s.st.Schedule.Measured; m.LoadInstanceID != "i-1" || m.LoadSeconds == nil || *m.LoadSeconds != 420 || m.LoadedGiB != 100 {
		t.Errorf("loaded at 9m: measured %+v, want 420 s after Ready for 100 GiB", m)
	}
	// The next launch, of a blank volume: its Ready replaces the last, the load is kept.
	s.st.LaunchTime = &metav1.Time{Time: t0.Add(time.Hour)}
	s.now = t0.Add(time.Hour + 30*time.Second)
	s.schedule().observeReady("i-2")
	xd.Status.Initialization = &v1alpha1.VolumeInitialization{VolumeID: "vol-2"}
	s.schedule().observeLoad(xd, "i-2", "vol-2")
	if m := s.st.Schedule.Measured; m.InstanceID != "i-2" || *m.ReadySeconds != 30 || m.LoadInstanceID != "i-1" || *m.LoadSeconds != 420 {
		t.Errorf("a blank relaunch: measured %+v, want Ready 30 s and i-1's load kept", m)
	}
}
