package workstation

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/controller/common"
	"github.com/xdrive-io/xdrive/internal/instances"
)

// cachedInstances knows the instances it is given, as the shared poll would.
type cachedInstances struct{ Instances }

func (cachedInstances) Cached(id string) (instances.Instance, bool) {
	return instances.Instance{ID: id, PublicIP: "10.0.0.5", State: instances.StateRunning}, true
}

// budgetNow is mid-February: the month's turn is 1 March.
var budgetNow = time.Date(2026, 2, 10, 12, 0, 0, 0, time.UTC)

// spentWS is a Workstation of the class named with this month's spend,
// running at rate per hour since now when rate is set.
func spentWS(name, class, spent, rate string) *v1alpha1.Workstation {
	w := &v1alpha1.Workstation{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team", UID: types.UID("uid-" + name), Generation: 1}}
	w.Spec.State = v1alpha1.WorkstationStateRunning
	w.Status.Class = &v1alpha1.ResolvedClass{Name: class}
	w.Status.Phase = v1alpha1.WorkstationPhaseStopped
	w.Status.Cost = &v1alpha1.WorkstationCost{InstanceUSD: spent,
		Month: &v1alpha1.MonthCost{Start: metav1.NewTime(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)), InstanceUSD: spent}}
	if rate != "" {
		lt := metav1.NewTime(budgetNow)
		w.Status.Phase, w.Status.InstanceID, w.Status.LaunchTime, w.Status.PricePerHour = v1alpha1.WorkstationPhaseRunning, "i-"+name, &lt, rate
		w.Status.Cost.Open = &v1alpha1.OpenLaunchCost{InstanceID: "i-" + name, Since: lt, PricePerHour: rate}
	}
	return w
}

// launchingWS is w with a launch recorded and not yet issued.
func launchingWS(w *v1alpha1.Workstation) *v1alpha1.Workstation {
	w.Status.Phase = v1alpha1.WorkstationPhaseLaunching
	w.Status.Launch = &v1alpha1.LaunchAttempt{Attempt: 1, Offering: "g5.xlarge/us-east-1a/spot"}
	return w
}

type budgetCase struct {
	name   string
	budget *v1alpha1.ClassBudget
	ws     *v1alpha1.Workstation
	others []*v1alpha1.Workstation
	// retired is the class's ledger of deleted Workstations' spend.
	retired []v1alpha1.RetiredSpend
	state   *v1alpha1.BudgetState // status.budget before
	now     time.Time

	stop     bool
	stopped  bool // status.budget says stopped after
	warned   bool
	notified bool
	scope    v1alpha1.BudgetScope
	spent    string
	phase    v1alpha1.WorkstationPhase // after, if set
	events   []string
	next     time.Duration // 0: any
}

func TestBudgetDecisions(t *testing.T) {
	march := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	feb := metav1.NewTime(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	jan := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	exceeded := func(month metav1.Time) *v1alpha1.BudgetState {
		at := metav1.NewTime(month.Add(24 * time.Hour))
		until := metav1.NewTime(month.AddDate(0, 1, 0))
		return &v1alpha1.BudgetState{Month: month, WarningTime: &at, ExceededTime: &at, StoppedUntil: &until,
			Scope: v1alpha1.BudgetScopeWorkstation, LimitUSD: "10", SpentUSD: "10"}
	}
	perWS := &v1alpha1.ClassBudget{MonthlyUSDPerWorkstation: "10"}
	perNS := &v1alpha1.ClassBudget{MonthlyUSDPerNamespace: "10"}
	for _, tc := range []budgetCase{
		{name: "no budget", ws: spentWS("dev", "gpu", "500", "1")},
		{name: "no budget lifts a stop", ws: spentWS("dev", "gpu", "500", ""), state: exceeded(feb), events: []string{v1alpha1.ReasonBudgetRestored}},
		{name: "under 80%: next check at 80% or the recheck", budget: perWS, ws: spentWS("dev", "gpu", "5", "1"), spent: "", next: budgetRecheck},
		{name: "under 80%, stopped: nothing to wake for", budget: perWS, ws: spentWS("dev", "gpu", "5", "")},
		{name: "near 80% at $1/h: the check comes when it is met", budget: perWS, ws: spentWS("dev", "gpu", "7.95", "1"), next: 3*time.Minute + time.Second},
		{name: "80%: warned and told on the instance", budget: perWS, ws: spentWS("dev", "gpu", "8", "1"),
			warned: true, notified: true, scope: v1alpha1.BudgetScopeWorkstation, spent: "8", events: []string{v1alpha1.ReasonBudgetWarning}},
		{name: "80% while stopped: warned, nothing to tell", budget: perWS, ws: spentWS("dev", "gpu", "9", ""),
			warned: true, scope: v1alpha1.BudgetScopeWorkstation, spent: "9", events: []string{v1alpha1.ReasonBudgetWarning}, next: march.Sub(budgetNow)},
		{name: "100% while running: a safe stop", budget: perWS, ws: spentWS("dev", "gpu", "10", "1"),
			stop: true, stopped: true, warned: true, scope: v1alpha1.BudgetScopeWorkstation, spent: "10",
			events: []string{v1alpha1.ReasonBudgetExceeded, v1alpha1.ReasonBudgetWarning}},
		{name: "100% while stopped: no launch until March", budget: perWS, ws: spentWS("dev", "gpu", "12", ""),
			stopped: true, warned: true, scope: v1alpha1.BudgetScopeWorkstation, spent: "12",
			events: []string{v1alpha1.ReasonBudgetExceeded, v1alpha1.ReasonBudgetWarning}, next: march.Sub(budgetNow)},
		{name: "the namespace's sum in the class, not other classes", budget: perNS, ws: spentWS("dev", "gpu", "2", "1"),
			others: []*v1alpha1.Workstation{spentWS("a", "gpu", "5", "0.5"), spentWS("b", "gpu", "3", ""), spentWS("c", "cpu", "100", "3")},
			stop:   true, stopped: true, warned: true, scope: v1alpha1.BudgetScopeNamespace, spent: "10",
			events: []string{v1alpha1.ReasonBudgetExceeded, v1alpha1.ReasonBudgetWarning}},
		{name: "deleted Workstations' spend this month stays in the namespace's sum", budget: perNS, ws: spentWS("dev", "gpu", "2", "1"),
			others:  []*v1alpha1.Workstation{spentWS("a", "gpu", "3", "")},
			retired: []v1alpha1.RetiredSpend{{Namespace: "team", Month: feb, InstanceUSD: "5"}, {Namespace: "other", Month: feb, InstanceUSD: "50"}},
			stop:    true, stopped: true, warned: true, scope: v1alpha1.BudgetScopeNamespace, spent: "10",
			events: []string{v1alpha1.ReasonBudgetExceeded, v1alpha1.ReasonBudgetWarning}},
		{name: "deleted Workstations' spend of an earlier month is not counted", budget: perNS, ws: spentWS("dev", "gpu", "2", ""),
			retired: []v1alpha1.RetiredSpend{{Namespace: "team", Month: jan, InstanceUSD: "50"}}},
		{name: "the namespace's rate brings the next check forward", budget: perNS, ws: spentWS("dev", "gpu", "2", "1"),
			others: []*v1alpha1.Workstation{spentWS("a", "gpu", "5.9", "2")}, next: 2*time.Minute + time.Second},
		{name: "the nearer of the two limits", budget: &v1alpha1.ClassBudget{MonthlyUSDPerNamespace: "100", MonthlyUSDPerWorkstation: "4"},
			ws: spentWS("dev", "gpu", "4", ""), others: []*v1alpha1.Workstation{spentWS("a", "gpu", "50", "")},
			stopped: true, warned: true, scope: v1alpha1.BudgetScopeWorkstation, spent: "4",
			events: []string{v1alpha1.ReasonBudgetExceeded, v1alpha1.ReasonBudgetWarning}},
		{name: "100% while launching: the launch is dropped", budget: perWS, ws: launchingWS(spentWS("dev", "gpu", "10", "")),
			stopped: true, warned: true, scope: v1alpha1.BudgetScopeWorkstation, spent: "10", phase: v1alpha1.WorkstationPhasePending,
			events: []string{v1alpha1.ReasonBudgetExceeded, v1alpha1.ReasonBudgetWarning, v1alpha1.ReasonBudgetExceeded}},
		{name: "a stop is not decided twice", budget: perWS, ws: spentWS("dev", "gpu", "10", ""), state: exceeded(feb),
			stopped: true, warned: true, scope: v1alpha1.BudgetScopeWorkstation, spent: "10"},
		{name: "the limit raised: lifted, warned again at 80% of the new one", budget: &v1alpha1.ClassBudget{MonthlyUSDPerWorkstation: "100"},
			ws: spentWS("dev", "gpu", "10", ""), state: exceeded(feb), events: []string{v1alpha1.ReasonBudgetRestored}},
		{name: "the month turned: lifted, counted afresh", budget: perWS, ws: spentWS("dev", "gpu", "0", ""), state: exceeded(jan),
			events: []string{v1alpha1.ReasonBudgetRestored}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.ws.Status.Budget = tc.state
			now := budgetNow
			if !tc.now.IsZero() {
				now = tc.now
			}
			scheme := runtime.NewScheme()
			if err := v1alpha1.AddToScheme(scheme); err != nil {
				t.Fatal(err)
			}
			objs := []client.Object{tc.ws}
			for _, o := range tc.others {
				objs = append(objs, o)
			}
			clock := clocktesting.NewFakeClock(now)
			var queued []func()
			notices := &noticeAgent{}
			r := &Reconciler{Client: fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build(), Instances: cachedInstances{},
				Calls: &agent.Calls{Agent: notices, Clock: clock, Spawn: func(run func()) { queued = append(queued, run) }},
				creds: map[types.UID]Credentials{tc.ws.UID: {ClientKey: []byte("key"), uid: tc.ws.UID}}}
			cls := &v1alpha1.WorkstationClass{ObjectMeta: metav1.ObjectMeta{Name: "gpu"}}
			cls.Spec.Budget, cls.Status = tc.budget, &v1alpha1.WorkstationClassStatus{RetiredSpend: tc.retired}
			rec := events.NewFakeRecorder(10)
			s := &scope{r: r, ws: tc.ws, st: &tc.ws.Status, key: "team/" + tc.ws.Name, now: now, class: &classParams{class: cls},
				ev: common.Events{Recorder: rec, Object: tc.ws}}
			wasRunning := tc.ws.Status.Phase == v1alpha1.WorkstationPhaseRunning
			stop, next, err := s.budget().check(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			s.ev.Flush()
			close(rec.Events)
			var got []string
			for e := range rec.Events {
				got = append(got, strings.Fields(e)[1])
			}
			if strings.Join(got, ",") != strings.Join(tc.events, ",") {
				t.Errorf("events %v, want %v", got, tc.events)
			}
			b := tc.ws.Status.Budget
			if stop != tc.stop || BudgetStopped(tc.ws) != tc.stopped {
				t.Errorf("stop %v, stopped %v; want %v, %v (status.budget %+v)", stop, BudgetStopped(tc.ws), tc.stop, tc.stopped, b)
			}
			if Wants(tc.ws) == tc.stopped {
				t.Errorf("Wants %v while stopped by the budget is %v", Wants(tc.ws), tc.stopped)
			}
			if tc.stop {
				td := tc.ws.Status.Teardown
				if !wasRunning || td == nil || td.Reason != v1alpha1.TeardownBudgetExceeded || tc.ws.Status.Phase != v1alpha1.WorkstationPhaseReleasing {
					t.Errorf("a budget stop takes the normal teardown: phase %s, teardown %+v", tc.ws.Status.Phase, td)
				}
			}
			if tc.phase != "" && (tc.ws.Status.Phase != tc.phase || tc.ws.Status.Launch != nil) {
				t.Errorf("phase %s, launch %+v; want %s and the launch dropped", tc.ws.Status.Phase, tc.ws.Status.Launch, tc.phase)
			}
			if tc.stopped && (b.StoppedUntil == nil || !b.StoppedUntil.Time.Equal(march)) {
				t.Errorf("stopped until %v, want %s", b.StoppedUntil, march)
			}
			if (b != nil && b.WarningTime != nil) != tc.warned {
				t.Errorf("warned: %+v, want %v", b, tc.warned)
			}
			if tc.scope != "" && (b.Scope != tc.scope || b.SpentUSD != tc.spent) {
				t.Errorf("status.budget %+v, want scope %s spent %s", b, tc.scope, tc.spent)
			}
			for _, run := range queued {
				run()
			}
			if notified := len(notices.notices) == 1 && notices.notices[0].Kind == bootstrap.NoticeKindBudget; notified != tc.notified || len(notices.notices) > 1 {
				t.Errorf("notices %+v, want notified %v", notices.notices, tc.notified)
			}
			if tc.next != 0 && next != tc.next {
				t.Errorf("next check in %s, want %s", next, tc.next)
			}
		})
	}
}

// TestBudgetNoticeDeadline: the instance is told when the rest of the
// budget runs out at today's rate, and a second reconcile tells it nothing more.
func TestBudgetNoticeDeadline(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	ws := spentWS("dev", "gpu", "8", "0.5")
	clock := clocktesting.NewFakeClock(budgetNow)
	var queued []func()
	notices := &noticeAgent{}
	r := &Reconciler{Client: fake.NewClientBuilder().WithScheme(scheme).WithObjects(ws).Build(), Instances: cachedInstances{},
		Calls: &agent.Calls{Agent: notices, Clock: clock, Spawn: func(run func()) { queued = append(queued, run) }},
		creds: map[types.UID]Credentials{ws.UID: {ClientKey: []byte("key"), uid: ws.UID}}}
	cls := &v1alpha1.WorkstationClass{ObjectMeta: metav1.ObjectMeta{Name: "gpu"}}
	cls.Spec.Budget = &v1alpha1.ClassBudget{MonthlyUSDPerWorkstation: "10"}
	for range 2 {
		s := &scope{r: r, ws: ws, st: &ws.Status, key: "team/dev", now: clock.Now(), class: &classParams{class: cls},
			ev: common.Events{Recorder: events.NewFakeRecorder(10), Object: ws}}
		if _, _, err := s.budget().check(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, run := range queued {
			run()
		}
		queued = nil
		clock.Step(time.Minute)
	}
	if len(notices.notices) != 1 || !notices.notices[0].Deadline.Equal(budgetNow.Add(4*time.Hour)) {
		t.Fatalf("notices %+v; want one, at %s ($2 left at $0.5/h)", notices.notices, budgetNow.Add(4*time.Hour))
	}
}

// TestRetire: a deleted Workstation's spend this month is added to its
// class's ledger for the namespace once, even when its deletion is retried;
// a new month starts the entry afresh; under no namespace budget nothing is
// written. A stale class (another deletion recorded since) is a conflict;
// a class deleted meanwhile holds the deletion up no more.
func TestRetire(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	feb := metav1.NewTime(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	jan := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cls := &v1alpha1.WorkstationClass{ObjectMeta: metav1.ObjectMeta{Name: "gpu"}}
	cls.Spec.Budget = &v1alpha1.ClassBudget{MonthlyUSDPerNamespace: "100"}
	cls.Status = &v1alpha1.WorkstationClassStatus{}
	cls.Status.RetiredSpend = []v1alpha1.RetiredSpend{{Namespace: "team", Month: jan, InstanceUSD: "40", Workstations: []string{"uid-old"}},
		{Namespace: "other", Month: feb, InstanceUSD: "7", Workstations: []string{"uid-x"}}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(cls).WithStatusSubresource(cls).Build()
	r := &Reconciler{Client: c}
	read := func() *v1alpha1.WorkstationClass {
		got := &v1alpha1.WorkstationClass{}
		if err := c.Get(context.Background(), types.NamespacedName{Name: "gpu"}, got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	retire := func(ws *v1alpha1.Workstation, cls *v1alpha1.WorkstationClass) error {
		s := &scope{r: r, ws: ws, st: &ws.Status, key: "team/" + ws.Name, now: budgetNow, class: &classParams{class: cls},
			ev: common.Events{Recorder: events.NewFakeRecorder(10), Object: ws}}
		return s.budget().retire(context.Background())
	}
	entry := func(cls *v1alpha1.WorkstationClass, ns string) v1alpha1.RetiredSpend {
		for _, e := range cls.Status.RetiredSpend {
			if e.Namespace == ns {
				return e
			}
		}
		t.Fatalf("no entry for %s in %+v", ns, cls.Status.RetiredSpend)
		return v1alpha1.RetiredSpend{}
	}

	if err := retire(spentWS("a", "gpu", "3", ""), read()); err != nil {
		t.Fatal(err)
	}
	if e := entry(read(), "team"); !e.Month.Equal(&feb) || e.InstanceUSD != "3" || strings.Join(e.Workstations, ",") != "uid-a" {
		t.Fatalf("after a's deletion: %+v; want February's 3 for uid-a, January's dropped", e)
	}
	stale := read()
	if err := retire(spentWS("a", "gpu", "3", ""), read()); err != nil {
		t.Fatal(err)
	}
	if err := retire(spentWS("b", "gpu", "2.5", "1"), read()); err != nil {
		t.Fatal(err)
	}
	if e := entry(read(), "team"); e.InstanceUSD != "5.5" || strings.Join(e.Workstations, ",") != "uid-a,uid-b" {
		t.Fatalf("after a's retried deletion and b's: %+v; want 5.5 for uid-a and uid-b", e)
	}
	if e := entry(read(), "other"); e.InstanceUSD != "7" {
		t.Fatalf("another namespace's entry changed: %+v", e)
	}
	if err := retire(spentWS("c", "gpu", "1", ""), stale); !apierrors.IsConflict(err) {
		t.Fatalf("retire from a class read before b's deletion: %v, want a conflict", err)
	}
	noBudget := read()
	noBudget.Spec.Budget = &v1alpha1.ClassBudget{MonthlyUSDPerWorkstation: "5"}
	if err := retire(spentWS("d", "gpu", "1", ""), noBudget); err != nil {
		t.Fatal(err)
	}
	if e := entry(read(), "team"); e.InstanceUSD != "5.5" {
		t.Fatalf("recorded without a namespace budget: %+v", e)
	}

	// A class deleted since it was read has no budget left to keep the spend in: the deletion goes on.
	gone := read()
	gone.Name = "deleted-class"
	if err := retire(spentWS("e", "deleted-class", "1", ""), gone); err != nil {
		t.Fatalf("retire into a deleted class: %v, want nothing to do", err)
	}

	st := &v1alpha1.WorkstationClassStatus{}
	for i := range maxRetiredUIDs + 3 {
		addRetired(st, "team", fmt.Sprintf("uid-%d", i), feb.Time, "1")
	}
	if e := st.RetiredSpend[0]; len(e.Workstations) != maxRetiredUIDs || e.Workstations[0] != "uid-3" || e.InstanceUSD != fmt.Sprint(maxRetiredUIDs+3) {
		t.Fatalf("after %d deletions: %d UIDs from %s, %s USD", maxRetiredUIDs+3, len(e.Workstations), e.Workstations[0], e.InstanceUSD)
	}
}
