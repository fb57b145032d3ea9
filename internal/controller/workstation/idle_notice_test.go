package workstation

import (
	"cmp"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/controller/common"
	"github.com/xdrive-io/xdrive/internal/instances"
)

// noticeAgent answers status calls with status, and notify calls with notifyErr.
type noticeAgent struct {
	status    bootstrap.Status
	notifyErr error
	notices   []bootstrap.Notice
}

func (a *noticeAgent) Status(context.Context, agent.Target) (agent.Status, error) {
	return a.status, nil
}

func (a *noticeAgent) Release(context.Context, agent.Target) (agent.Status, error) {
	return agent.Status{}, errors.New("no release here")
}

func (a *noticeAgent) Notify(_ context.Context, t agent.Target) error {
	a.notices = append(a.notices, *t.Notice)
	return a.notifyErr
}

// idleRig is one Workstation with a 30-minute idle window on instance i-1,
// idle since t0, and the background calls run when the test says so.
type idleRig struct {
	t      *testing.T
	t0     time.Time
	clock  *clocktesting.FakeClock
	agent  *noticeAgent
	calls  *agent.Calls
	queued []func()
	r      *Reconciler
	ws     *v1alpha1.Workstation
	class  *v1alpha1.WorkstationClass
	inst   instances.Instance
	events []string
}

func newIdleRig(t *testing.T) *idleRig {
	g := &idleRig{t: t, t0: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC), agent: &noticeAgent{}}
	g.clock = clocktesting.NewFakeClock(g.t0)
	g.calls = &agent.Calls{Agent: g.agent, Clock: g.clock, Spawn: func(run func()) { g.queued = append(g.queued, run) }}
	g.ws = &v1alpha1.Workstation{}
	g.ws.Name, g.ws.Namespace, g.ws.UID = "dev", "team", "uid-1"
	g.ws.Spec.IdleStop = &v1alpha1.IdleStop{After: dur(30 * time.Minute)}
	g.ws.Status.InstanceID = "i-1"
	g.ws.Status.Idle = &v1alpha1.IdleState{InstanceID: "i-1", LastActivityTime: metav1.NewTime(g.t0), LastActivitySignal: v1alpha1.IdleSignalLaunch}
	g.class = &v1alpha1.WorkstationClass{}
	g.r = &Reconciler{Calls: g.calls, creds: map[types.UID]Credentials{g.ws.UID: {ClientKey: []byte("key"), uid: g.ws.UID}}}
	g.inst = instances.Instance{ID: "i-1", PublicIP: "10.0.0.5"}
	return g
}

// check runs a status check that ends at t0+m, answering st (with every signal idle).
func (g *idleRig) check(m time.Duration, st bootstrap.Status) {
	g.t.Helper()
	g.clock.SetTime(g.t0.Add(m))
	st.Phase = bootstrap.PhaseReady
	st.Activity = []bootstrap.Signal{{Name: "ssh", State: bootstrap.SignalIdle}}
	g.agent.status = st
	g.calls.Start("team/dev", "i-1", agent.CallStatus, agent.Target{}, time.Minute)
	g.runCalls()
}

func (g *idleRig) runCalls() {
	for _, run := range g.queued {
		run()
	}
	g.queued = nil
}

// reconcile runs idle() at the clock's time and returns its requeue.
func (g *idleRig) reconcile() time.Duration {
	g.t.Helper()
	rec := events.NewFakeRecorder(10)
	s := &scope{r: g.r, ws: g.ws, st: &g.ws.Status, key: "team/dev", now: g.clock.Now(), class: &classParams{class: g.class},
		ev: common.Events{Recorder: rec, Object: g.ws}}
	res, err := s.idle().follow(context.Background(), g.inst, ctrl.Result{})
	if err != nil {
		g.t.Fatalf("idle: %v", err)
	}
	if g.ws.Status.Idle.StopTime != nil {
		g.t.Fatalf("stopped at %s", g.ws.Status.Idle.StopTime)
	}
	s.ev.Flush()
	close(rec.Events)
	for e := range rec.Events {
		g.events = append(g.events, e)
	}
	return res.RequeueAfter
}

// eventCount counts the Events so far of a reason.
func (g *idleRig) eventCount(reason string) int {
	n := 0
	for _, e := range g.events {
		if strings.Contains(e, " "+reason+" ") {
			n++
		}
	}
	return n
}

func (g *idleRig) at(m time.Duration) time.Time { return g.t0.Add(m) }

// TestIdleWarningNotifiesOnce: the warning starts one notify call, with the
// deadline, however often the Workstation is reconciled; its answer is
// recorded once, and a failed one is reported and changes nothing.
func TestIdleWarningNotifiesOnce(t *testing.T) {
	for name, notifyErr := range map[string]error{"delivered": nil, "failed": errors.New("connection refused")} {
		t.Run(name, func(t *testing.T) {
			g := newIdleRig(t)
			g.agent.notifyErr = notifyErr
			g.check(25*time.Minute, bootstrap.Status{})
			g.reconcile()
			g.reconcile()
			if len(g.queued) != 1 || g.eventCount(v1alpha1.ReasonIdleStopSoon) != 1 {
				t.Fatalf("%d calls queued, %d warnings; want 1, 1", len(g.queued), g.eventCount(v1alpha1.ReasonIdleStopSoon))
			}
			g.clock.SetTime(g.at(25*time.Minute + 2*time.Second))
			g.runCalls()
			want := bootstrap.Notice{Kind: bootstrap.NoticeKindIdleStop, Deadline: g.at(30 * time.Minute)}
			if len(g.agent.notices) != 1 || g.agent.notices[0] != want {
				t.Fatalf("notices %+v, want one %+v", g.agent.notices, want)
			}
			requeue := g.reconcile()
			g.reconcile()
			idle := g.ws.Status.Idle
			if idle.NoticeTime == nil || !idle.NoticeTime.Time.Equal(g.at(25*time.Minute+2*time.Second)) {
				t.Errorf("noticeTime %v", idle.NoticeTime)
			}
			wantFailed := 0
			if notifyErr != nil {
				wantFailed = 1
			}
			if failed := g.eventCount(v1alpha1.ReasonIdleNoticeFailed); (notifyErr != nil) != (idle.NoticeError != "") || failed != wantFailed {
				t.Errorf("noticeError %q, %d IdleNoticeFailed Events; events %q", idle.NoticeError, failed, g.events)
			}
			// The stop is where it was: the next check is due at the deadline.
			if want := 5*time.Minute - 2*time.Second; requeue != want || len(g.agent.notices) != 1 {
				t.Errorf("requeue %s, want %s; %d notices", requeue, want, len(g.agent.notices))
			}
			if _, deadline, warned := g.times(); !warned || !deadline.Equal(g.at(30*time.Minute)) {
				t.Errorf("deadline %s, warned %t", deadline, warned)
			}
		})
	}
}

func (g *idleRig) times() (warnAt, deadline time.Time, warned bool) {
	s := &scope{r: g.r, ws: g.ws, st: &g.ws.Status, class: &classParams{class: g.class}}
	return s.idle().idleTimes(30 * time.Minute)
}

// TestIdleExtend: an extension asked on the instance postpones the stop, at
// most the class's maxExtend (4h if unset) past the idle window; it is
// recorded with who asked, reported once, and warned of again.
func TestIdleExtend(t *testing.T) {
	for name, tc := range map[string]struct {
		maxExtend *metav1.Duration
		asked     time.Duration // after t0
		want      time.Duration // the stop, after t0
		note      string        // in the Event
		by        string        // who the instance says asked; alice if empty
		wantBy    string        // status.idle.extendedBy, when by is set
	}{
		"within the default bound": {asked: 90 * time.Minute, want: 90 * time.Minute},
		"beyond the default bound": {asked: 6 * time.Hour, want: 30*time.Minute + 4*time.Hour, note: "beyond the limit of 4h0m0s"},
		"within the class's bound": {maxExtend: dur(time.Hour), asked: 80 * time.Minute, want: 80 * time.Minute},
		"beyond the class's bound": {maxExtend: dur(time.Hour), asked: 5 * time.Hour, want: 90 * time.Minute, note: "beyond the limit of 1h0m0s"},
		"forbidden by the class":   {maxExtend: dur(0), asked: 90 * time.Minute, want: 30 * time.Minute},
		"sooner than the stop":     {asked: 28 * time.Minute, want: 30 * time.Minute},
		"by an odd user name":      {asked: 40 * time.Minute, want: 40 * time.Minute, by: "x\"y", wantBy: ""},
	} {
		t.Run(name, func(t *testing.T) {
			g := newIdleRig(t)
			g.class.Spec.IdleStop = &v1alpha1.ClassIdleStop{MaxExtend: tc.maxExtend}
			g.check(25*time.Minute, bootstrap.Status{})
			g.reconcile()
			g.runCalls()
			// The warning says how to postpone, unless the class forbids it.
			forbidden := tc.maxExtend != nil && tc.maxExtend.Duration == 0
			if len(g.events) != 1 || strings.Contains(g.events[0], "xdrive-ctl extend") == forbidden {
				t.Fatalf("events at the warning: %q", g.events)
			}
			by := cmp.Or(tc.by, "alice")
			wantBy := by
			if tc.by != "" {
				wantBy = tc.wantBy
			}
			ext := bootstrap.Status{ExtendUntil: g.at(tc.asked).Format(time.RFC3339), ExtendBy: by}
			g.check(27*time.Minute, ext)
			g.reconcile()
			g.reconcile()
			idle := g.ws.Status.Idle
			_, deadline, warned := g.times()
			if !deadline.Equal(g.at(tc.want)) {
				t.Fatalf("deadline %s, want %s", deadline, g.at(tc.want))
			}
			postponed := tc.want > 30*time.Minute
			wantEvents := 0
			if postponed {
				wantEvents = 1
			}
			if n := g.eventCount(v1alpha1.ReasonIdleStopExtended); n != wantEvents {
				t.Fatalf("%d IdleStopExtended Events; events %q", n, g.events)
			}
			if !postponed {
				if idle.ExtendedUntil != nil || !warned {
					t.Errorf("extendedUntil %v, warned %t", idle.ExtendedUntil, warned)
				}
				return
			}
			if idle.ExtendedUntil == nil || !idle.ExtendedUntil.Time.Equal(g.at(tc.want)) || idle.ExtendedBy != wantBy || warned {
				t.Fatalf("extendedUntil %v by %q, warned %t", idle.ExtendedUntil, idle.ExtendedBy, warned)
			}
			if e := g.events[len(g.events)-1]; !strings.Contains(e, cmp.Or(wantBy, "an unknown user")) || !strings.Contains(e, tc.note) {
				t.Errorf("Event %q, want %q and %q", e, cmp.Or(wantBy, "an unknown user"), tc.note)
			}
			// The same report at the old deadline: no stop, no second Event.
			g.check(30*time.Minute, ext)
			if requeue := g.reconcile(); requeue != tc.want-35*time.Minute {
				t.Errorf("requeue %s, want %s (the new warning)", requeue, tc.want-35*time.Minute)
			}
			if n := g.eventCount(v1alpha1.ReasonIdleStopExtended); n != 1 {
				t.Errorf("%d IdleStopExtended Events", n)
			}
			// Warned again before the new deadline.
			g.check(tc.want-5*time.Minute, ext)
			g.reconcile()
			g.runCalls()
			if n := len(g.agent.notices); n != 2 || !g.agent.notices[1].Deadline.Equal(g.at(tc.want)) {
				t.Errorf("notices %+v, want a second one for %s", g.agent.notices, g.at(tc.want))
			}
		})
	}
}
