// Package common holds what both reconcilers share: the finalizer, the
// load-and-finalize step, the single status patch, and Events held until it.
package common

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/controller/handoff"
	"github.com/xdrive-io/xdrive/internal/controller/phases"
	"github.com/xdrive-io/xdrive/internal/metrics"
)

const (
	// Finalizer holds both kinds until their AWS side is safe.
	Finalizer = "xdrive.io/finalizer"
	// DriveRefIndex indexes Workstations by the drive they reference.
	DriveRefIndex = "spec.driveRef.name"
	// HolderIndex indexes XDrives by the UID of their lease's holder.
	HolderIndex = "status.holder.uid"
)

// Index registers the field indexes the controllers list by.
func Index(ctx context.Context, indexer interface {
	IndexField(ctx context.Context, obj client.Object, field string, extract client.IndexerFunc) error
}) error {
	if err := indexer.IndexField(ctx, &v1alpha1.Workstation{}, DriveRefIndex, WorkstationDrive); err != nil {
		return err
	}
	return indexer.IndexField(ctx, &v1alpha1.XDrive{}, HolderIndex, DriveHolder)
}

// DriveHolder is the index function of HolderIndex.
func DriveHolder(o client.Object) []string {
	if uid := handoff.HolderUID(o.(*v1alpha1.XDrive)); uid != "" {
		return []string{uid}
	}
	return nil
}

// WorkstationDrive is the index function of DriveRefIndex.
func WorkstationDrive(o client.Object) []string {
	return []string{o.(*v1alpha1.Workstation).Spec.DriveRef.Name}
}

// Backoff returns an exponential delay for the n-th wait, with ±20% jitter.
func Backoff(n int, base, limit time.Duration) time.Duration {
	return Jitter(Doubling(n, base, limit))
}

// Doubling returns base doubled n times, at most limit; without jitter, so
// that every reconcile computes the same time from the same status.
func Doubling(n int, base, limit time.Duration) time.Duration {
	d := base
	for i := 0; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// Load reads the object and, unless it is being deleted, stores the
// finalizer before anything else happens: before the first AWS call.
// A copy older than the controller's own last write (w) is not worked on:
// fresh is then false, and the caller comes back after CacheCatchUp.
func Load(ctx context.Context, c client.Client, w *Writes, key client.ObjectKey, obj client.Object) (found, fresh bool, err error) {
	if err := c.Get(ctx, key, obj); err != nil {
		return false, false, client.IgnoreNotFound(err)
	}
	if w.Stale(obj) {
		return true, false, nil
	}
	if obj.GetDeletionTimestamp().IsZero() && controllerutil.AddFinalizer(obj, Finalizer) {
		if err := c.Update(ctx, obj); apierrors.IsConflict(err) {
			return true, false, nil // changed meanwhile: the next read has it
		} else if err != nil {
			return false, false, fmt.Errorf("add the finalizer to %s: %w", client.ObjectKeyFromObject(obj), err)
		}
		w.Wrote(obj)
	}
	return true, true, nil
}

// Finish patches the status once, with an optimistic lock, and only if it
// changed; then emits the held Events, drops the finalizer if asked, and
// comes back when the operator's own EC2 rate limiter asks. A write that
// lost to another (a conflict) comes back quietly, soon, and is no failure:
// the next reconcile starts from the newer object. Other errors go to the
// queue's per-item exponential backoff (RateLimiter).
func Finish[T client.Object](ctx context.Context, c client.Client, w *Writes, before, after T, beforeStatus, afterStatus any,
	ev *Events, removeFinalizer bool, result ctrl.Result, err error) (ctrl.Result, error) {
	key := client.ObjectKeyFromObject(after)
	if !StoredAlike(beforeStatus, afterStatus) {
		if perr := c.Status().Patch(ctx, after, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); perr != nil {
			return conflictQuietly(err, fmt.Errorf("write the status of %s: %w", key, perr))
		}
		w.Wrote(after)
	}
	ev.Flush()
	if removeFinalizer {
		controllerutil.RemoveFinalizer(after, Finalizer)
		if uerr := c.Update(ctx, after); uerr != nil {
			return conflictQuietly(err, fmt.Errorf("remove the finalizer of %s: %w", key, uerr))
		}
		w.Forget(after)
	}
	if after, ok := cloud.RetryAfter(err); ok {
		return ctrl.Result{RequeueAfter: Jitter(after)}, nil
	}
	return result, err
}

// conflictQuietly is the result of a failed write: after a conflict, a quick
// requeue that is no failure (unless the reconcile failed too); else the error.
func conflictQuietly(reconcileErr, writeErr error) (ctrl.Result, error) {
	if apierrors.IsConflict(writeErr) {
		if reconcileErr != nil {
			return ctrl.Result{}, reconcileErr
		}
		return ctrl.Result{RequeueAfter: Jitter(CacheCatchUp)}, nil
	}
	return ctrl.Result{}, errors.Join(reconcileErr, writeErr)
}

// Failure is the reason and message of a condition that reports a failed
// reconcile: AWSError only when an AWS call failed.
func Failure(err error) (reason, message string) {
	if cloud.IsAWS(err) {
		return v1alpha1.ReasonAWSError, fmt.Sprintf("AWS call failed (%s), retrying: %v", cloud.Classify(err), err)
	}
	return v1alpha1.ReasonRetrying, fmt.Sprintf("Retrying after an error: %v", err)
}

// Events holds a reconcile's Events, and the log lines of its decisions,
// until its status is written, so a reconcile that worked from a stale read
// announces nothing. Each decision is logged once, with the object's key.
type Events struct {
	Recorder events.EventRecorder
	Object   client.Object
	// Log carries the object's key (the reconciler's logger from the context).
	Log  logr.Logger
	list []func()
	// events counts the queued Events (not the log lines).
	events int
}

// Any reports whether an Event is queued.
func (p *Events) Any() bool { return p.events > 0 }

// Add queues an Event, and its log line.
func (p *Events) Add(warning bool, reason, action, format string, args ...any) {
	kind := "Normal"
	if warning {
		kind = "Warning"
	}
	p.events++
	p.list = append(p.list, func() {
		p.Log.Info(fmt.Sprintf(format, args...), "reason", reason, "action", action, "type", kind)
		if p.Recorder != nil {
			p.Recorder.Eventf(p.Object, nil, kind, reason, action, format, args...)
		}
	})
}

// PhaseChanged queues the log line of a phase change (info).
func (p *Events) PhaseChanged(from, to, why string) {
	p.list = append(p.list, func() { p.Log.Info("Phase changed", "from", orNew(from), "to", to, "why", why) })
}

// Waiting queues the log line of a wait (V(1)): what the object waits for.
func (p *Events) Waiting(reason, message string, after time.Duration) {
	p.list = append(p.list, func() { p.Log.V(1).Info("Waiting", "reason", reason, "message", message, "requeueAfter", after) })
}

// Flush emits the queued Events.
func (p *Events) Flush() {
	for _, emit := range p.list {
		emit()
	}
	p.list, p.events = nil, 0
}

// DeletionPredicate passes updates that mark an object for deletion.
func DeletionPredicate() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return !e.ObjectNew.GetDeletionTimestamp().IsZero()
	}}
}

// StatusChanged passes updates that changed anything, status included.
func StatusChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetResourceVersion() != e.ObjectNew.GetResourceVersion()
	}}
}

// StateGauge keeps a gauge of objects by state; an empty state forgets the object.
type StateGauge struct {
	mu    sync.Mutex
	state map[string]string
}

// DriveStates counts XDrives by phase.
var DriveStates = &StateGauge{state: map[string]string{}}

// Set records the object's state.
func (g *StateGauge) Set(key, state string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	old, had := g.state[key]
	if had && old == state {
		return
	}
	if had {
		metrics.DrivesByState.WithLabelValues(old).Dec()
	}
	if state == "" {
		delete(g.state, key)
		return
	}
	g.state[key] = state
	metrics.DrivesByState.WithLabelValues(state).Inc()
}

// ReasonIllegalPhaseChange is the Warning Event of a phase change that the
// kind's table (internal/controller/phases) does not list.
const ReasonIllegalPhaseChange = "IllegalPhaseChange"

// ChangePhase reports a change of phase from to to, with the table's
// reason. A change missing from the table is a bug in the controller: it
// raises a Warning Event and the metric, and calls hook (the simulation's,
// which fails the seed) if set; the change itself goes on, as stopping
// half-way would strand the object. It reports whether the phase changes.
func ChangePhase[P ~string](ev *Events, hook func(key, from, to string), t phases.Table[P], key string, from, to P) bool {
	if from == to {
		return false
	}
	if !t.Allows(from, to) {
		ev.Add(true, ReasonIllegalPhaseChange, "Phase", "Phase %s -> %s is not an allowed change of a %s (docs/design.md): a bug, please report it",
			orNew(string(from)), to, t.Kind)
		metrics.IllegalPhaseChanges.WithLabelValues(t.Kind, string(from), string(to)).Inc()
		if hook != nil {
			hook(key, string(from), string(to))
		}
	}
	ev.PhaseChanged(string(from), string(to), t.Why(from, to))
	return true
}

func orNew(phase string) string {
	if phase == "" {
		return "(new)"
	}
	return phase
}
