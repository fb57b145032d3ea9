package workstation

import (
	"context"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/cost"
)

// budgetWarnPercent is the share of a budget at which its Workstations are warned.
const budgetWarnPercent = 80

// budgetRecheck bounds the wait between two budget decisions while the
// class's Workstations in the namespace run: their prices and launches
// change what the time to the limit is.
const budgetRecheck = 5 * time.Minute

// BudgetStopped reports whether the class's monthly budget stopped the
// Workstation, and it was not lifted since: it then wants no instance,
// though spec.state is Running.
func BudgetStopped(w *v1alpha1.Workstation) bool {
	b := w.Status.Budget
	return b != nil && b.ExceededTime != nil
}

// budgetUse is the month's spend against one of the class's limits.
type budgetUse struct {
	scope        v1alpha1.BudgetScope
	spent, limit string
	// rate is what the spend grows by per hour now, USD.
	rate string
}

func (u budgetUse) fraction() float64 { return cost.Fraction(u.spent, u.limit) }

// check decides the Workstation's standing against its class's budget this
// month, the one writer of status.budget: it warns at 80% of a limit,
// stops the instance safely at 100% (stop is true: the caller goes on
// with the teardown), and lifts the stop when the month turns or the limit
// is raised or removed. next is when to decide again though nothing else
// changes; 0 means never.
func (s budgetStep) check(ctx context.Context) (stop bool, next time.Duration, err error) {
	st := s.st
	if !s.ws.DeletionTimestamp.IsZero() {
		return false, 0, nil // the deletion's teardown comes first
	}
	month := cost.MonthStart(s.now)
	if b := st.Budget; b != nil && b.Month.Time.Before(month) {
		s.lift(fmt.Sprintf("the month turned (%s)", month.Format("2006-01")))
		st.Budget = nil
	}
	var limits *v1alpha1.ClassBudget
	if s.class != nil {
		limits = s.class.class.Spec.Budget
	}
	if limits == nil {
		if BudgetStopped(s.ws) {
			s.lift("the class no longer sets a budget")
		}
		st.Budget = nil
		return false, 0, nil
	}
	uses, err := s.uses(ctx, limits)
	if err != nil || len(uses) == 0 {
		return false, 0, err
	}
	u := uses[0]
	for _, v := range uses[1:] {
		if v.fraction() > u.fraction() {
			u = v
		}
	}
	if st.Budget == nil {
		st.Budget = &v1alpha1.BudgetState{Month: metav1.NewTime(month)}
	}
	b := st.Budget
	exceeded := !cost.Less(u.spent, u.limit)
	warn := u.fraction()*100 >= budgetWarnPercent
	until := cost.NextMonth(s.now)
	switch {
	case exceeded && b.ExceededTime == nil:
		b.ExceededTime, b.StoppedUntil = ptrTime(s.now), ptrTime(until)
		b.Scope, b.LimitUSD, b.SpentUSD = u.scope, u.limit, u.spent
		s.event(true, v1alpha1.ReasonBudgetExceeded, "Budget", "%s: stopping (containers, flush, snapshot); no launch until %s, or until the limit is raised",
			u.describe(s.class.class.Name, s.ws.Namespace), until.Format(time.RFC3339))
	case !exceeded && b.ExceededTime != nil:
		s.lift(fmt.Sprintf("%s: the limit was raised", u.describe(s.class.class.Name, s.ws.Namespace)))
		b.ExceededTime, b.StoppedUntil = nil, nil
	}
	switch {
	case warn && b.WarningTime == nil:
		b.WarningTime = ptrTime(s.now)
		b.Scope, b.LimitUSD, b.SpentUSD = u.scope, u.limit, u.spent
		s.event(true, v1alpha1.ReasonBudgetWarning, "Budget", "%s: at %d%% of the limit, the Workstation stops (flush, snapshot) until %s or until the limit is raised",
			u.describe(s.class.class.Name, s.ws.Namespace), budgetWarnPercent, until.Format(time.RFC3339))
		if !exceeded {
			s.notify(ctx, u, until)
		}
	case !warn && b.WarningTime != nil:
		b.WarningTime = nil // the limit was raised: warn again at 80% of the new one
	}
	switch {
	case exceeded && st.Phase == v1alpha1.WorkstationPhaseRunning:
		s.teardown().startTeardown(v1alpha1.TeardownBudgetExceeded)
		return true, 0, nil
	case exceeded && st.Phase == v1alpha1.WorkstationPhaseLaunching:
		// RunInstances may have taken effect with its answer lost: confirmLaunch looks for its instance.
		s.event(true, v1alpha1.ReasonBudgetExceeded, "Launch", "Launch %d dropped: the monthly budget is spent", st.Launch.Attempt)
		s.launch().dropUnconfirmedLaunch()
		s.setPhase(v1alpha1.WorkstationPhasePending)
	}
	return false, s.nextCheck(uses, exceeded, until), nil
}

// nextCheck is when the spend next meets a threshold at today's rates,
// within budgetRecheck while anything runs; else the month's turn, when a
// stop ends.
func (s budgetStep) nextCheck(uses []budgetUse, exceeded bool, until time.Time) time.Duration {
	next := time.Duration(0)
	if exceeded || s.st.Budget.WarningTime != nil {
		next = until.Sub(s.now)
	}
	earlier := func(d time.Duration) {
		if d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	for _, u := range uses {
		if cost.Less("0", u.rate) {
			earlier(budgetRecheck)
		}
		warnAt := cost.Scale(u.limit, budgetWarnPercent, 100)
		for _, threshold := range []string{warnAt, u.limit} {
			if d, ok := cost.Until(u.spent, threshold, u.rate); ok && cost.Less(u.spent, threshold) {
				earlier(d + time.Second)
			}
		}
	}
	return next
}

// uses is the month's spend against each of the class's limits: the
// Workstation's own, and its namespace's in the class, summed over the
// Workstations the cache holds (no API call).
func (s budgetStep) uses(ctx context.Context, limits *v1alpha1.ClassBudget) ([]budgetUse, error) {
	own, rate := cost.MonthUSD(s.st, s.now), cost.RatePerHour(s.st)
	var out []budgetUse
	if limits.MonthlyUSDPerWorkstation != "" {
		out = append(out, budgetUse{scope: v1alpha1.BudgetScopeWorkstation, spent: own, limit: limits.MonthlyUSDPerWorkstation, rate: rate})
	}
	if limits.MonthlyUSDPerNamespace == "" {
		return out, nil
	}
	var list v1alpha1.WorkstationList
	// Read only: the cache's objects, not copies of each (a namespace may hold thousands).
	if err := s.r.List(ctx, &list, client.InNamespace(s.ws.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list the Workstations of namespace %s for the budget of Workstation %s: %w", s.ws.Namespace, s.key, err)
	}
	spent, rates := []string{own, retiredUSD(s.class.class.Status, s.ws.Namespace, cost.MonthStart(s.now))}, []string{rate}
	for i := range list.Items {
		w := &list.Items[i]
		if w.UID == s.ws.UID || w.Status.Class == nil || w.Status.Class.Name != s.class.class.Name {
			continue
		}
		spent, rates = append(spent, cost.MonthUSD(&w.Status, s.now)), append(rates, cost.RatePerHour(&w.Status))
	}
	return append(out, budgetUse{scope: v1alpha1.BudgetScopeNamespace, spent: cost.Sum(spent...),
		limit: limits.MonthlyUSDPerNamespace, rate: cost.Sum(rates...)}), nil
}

// describe says which limit the spend is measured against, for Events and conditions.
func (u budgetUse) describe(class, namespace string) string {
	if u.scope == v1alpha1.BudgetScopeNamespace {
		return fmt.Sprintf("namespace %s has spent %s this month on WorkstationClass %s, of its monthly budget of %s (monthlyUSDPerNamespace)",
			namespace, cost.Format(u.spent), class, cost.Format(u.limit))
	}
	return fmt.Sprintf("the Workstation has spent %s this month, of WorkstationClass %s's monthly budget of %s per Workstation (monthlyUSDPerWorkstation)",
		cost.Format(u.spent), class, cost.Format(u.limit))
}

// lift ends a budget stop: the Workstation launches again if spec.state asks.
func (s budgetStep) lift(why string) {
	if BudgetStopped(s.ws) {
		s.event(false, v1alpha1.ReasonBudgetRestored, "Budget", "The budget stop is lifted: %s", why)
	}
}

// notify tells the running instance's users of the warning, in the
// background: a wall message and /run/xdrive/notice, with the time the rest
// of the budget runs out at today's prices (at the latest the month's turn).
// A failure changes nothing of the budget: the Event is sent all the same.
func (s budgetStep) notify(ctx context.Context, u budgetUse, until time.Time) {
	if s.st.Phase != v1alpha1.WorkstationPhaseRunning || s.st.InstanceID == "" {
		return
	}
	inst, ok := s.cachedInstance(s.st.InstanceID)
	if !ok {
		return
	}
	deadline := until
	if d, ok := cost.Until(u.spent, u.limit, u.rate); ok && s.now.Add(d).Before(deadline) {
		deadline = s.now.Add(d)
	}
	creds, err := s.r.credentials(ctx, s.ws)
	if err != nil {
		s.event(true, v1alpha1.ReasonBudgetWarning, "Budget", "Could not tell the instance's users of the budget warning: %v", err)
		return
	}
	t := creds.target(inst)
	t.Notice = &bootstrap.Notice{Kind: bootstrap.NoticeKindBudget, Deadline: deadline.Truncate(time.Second)}
	s.r.Calls.Start(s.key, inst.ID, agent.CallBudgetNotify, t, s.r.Timings.statusTimeout())
}

// reportBudget shows a budget stop in the conditions of a stopped Workstation: why and until when.
func (s budgetStep) reportBudget() {
	if s.st.Phase != v1alpha1.WorkstationPhaseStopped || !BudgetStopped(s.ws) {
		return
	}
	b := s.st.Budget
	s.setFrom(v1alpha1.ConditionLaunched, metav1.ConditionFalse, v1alpha1.ReasonBudgetExceeded, fmt.Sprintf(
		"Stopped at %s: the %s monthly budget of %s was spent (%s this month); spec.state is still Running. It starts again at %s, or when the class's limit is raised",
		b.ExceededTime.UTC().Format(time.RFC3339), b.Scope, cost.Format(b.LimitUSD), cost.Format(b.SpentUSD), b.StoppedUntil.UTC().Format(time.RFC3339)))
}

// maxRetiredUIDs bounds the Workstations a namespace's retired spend names.
const maxRetiredUIDs = 32

// retire adds a deleted Workstation's spend this month to its class's
// ledger of its namespace's deleted Workstations (status.retiredSpend)
// before its finalizer comes off: the namespace's budget keeps counting it.
// Once per Workstation (by UID), and only under a namespace budget.
func (s budgetStep) retire(ctx context.Context) error {
	if s.class == nil || s.class.class.Spec.Budget == nil || s.class.class.Spec.Budget.MonthlyUSDPerNamespace == "" {
		return nil
	}
	spent := cost.MonthUSD(s.st, s.now)
	if !cost.Less("0", spent) {
		return nil
	}
	cls := s.class.class
	patched := cls.DeepCopy()
	if patched.Status == nil {
		patched.Status = &v1alpha1.WorkstationClassStatus{}
	}
	if !addRetired(patched.Status, s.ws.Namespace, string(s.ws.UID), cost.MonthStart(s.now), spent) {
		return nil
	}
	err := s.r.Status().Patch(ctx, patched, client.MergeFromWithOptions(cls, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsNotFound(err) {
		return nil // the class is gone, and its budget with it
	}
	if err != nil {
		return fmt.Errorf("record the month's spend of deleted Workstation %s in WorkstationClass %s: %w", s.key, cls.Name, err)
	}
	s.ev.Log.Info("Kept the month's spend of the deleted Workstation in its namespace's budget", "workstation", s.key,
		"class", cls.Name, "spentUSD", spent)
	return nil
}

// addRetired adds uid's spend to namespace's entry for month, replacing an
// entry of an earlier month. It reports false when uid is already counted.
func addRetired(st *v1alpha1.WorkstationClassStatus, namespace, uid string, month time.Time, spent string) bool {
	i := slices.IndexFunc(st.RetiredSpend, func(r v1alpha1.RetiredSpend) bool { return r.Namespace == namespace })
	if i < 0 {
		st.RetiredSpend = append(st.RetiredSpend, v1alpha1.RetiredSpend{Namespace: namespace})
		i = len(st.RetiredSpend) - 1
	}
	r := &st.RetiredSpend[i]
	if !r.Month.Time.Equal(month) {
		*r = v1alpha1.RetiredSpend{Namespace: namespace, Month: metav1.NewTime(month), InstanceUSD: "0"}
	}
	if slices.Contains(r.Workstations, uid) {
		return false
	}
	r.InstanceUSD = cost.Sum(r.InstanceUSD, spent)
	r.Workstations = append(r.Workstations, uid)
	if n := len(r.Workstations); n > maxRetiredUIDs {
		r.Workstations = r.Workstations[n-maxRetiredUIDs:]
	}
	return true
}

// retiredUSD is what namespace's deleted Workstations of the class spent in month.
func retiredUSD(st *v1alpha1.WorkstationClassStatus, namespace string, month time.Time) string {
	if st == nil {
		return "0"
	}
	for _, r := range st.RetiredSpend {
		if r.Namespace == namespace && r.Month.Time.Equal(month) {
			return r.InstanceUSD
		}
	}
	return "0"
}
