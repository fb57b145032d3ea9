// Package controllers reconciles XDrives and Workstations into AWS state.
package controllers

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/metrics"
)

const (
	// Finalizer holds both kinds until their AWS side is safe.
	Finalizer = "xdrive.io/finalizer"
	// driveRefIndex indexes Workstations by the drive they reference.
	driveRefIndex = "spec.driveRef.name"
	// InterruptionAnnotation carries an interruption notice to a Workstation:
	// "<kind>/<instance-id>/<RFC3339 time>", written by the notice handler.
	InterruptionAnnotation = "xdrive.io/interruption"
)

// IndexWorkstationsByDrive registers the field index the controllers list by.
func IndexWorkstationsByDrive(ctx context.Context, indexer interface {
	IndexField(ctx context.Context, obj client.Object, field string, extract client.IndexerFunc) error
}) error {
	return indexer.IndexField(ctx, &v1alpha1.Workstation{}, driveRefIndex, func(o client.Object) []string {
		return []string{o.(*v1alpha1.Workstation).Spec.DriveRef.Name}
	})
}

// Backoff returns an exponential delay for the n-th wait, with ±20% jitter.
func Backoff(n int, base, limit time.Duration) time.Duration {
	d := base
	for i := 0; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// patchStatus writes the status once, and only if it changed.
func patchStatus[T client.Object](ctx context.Context, c client.Client, before, after T, beforeStatus, afterStatus any) error {
	if equality.Semantic.DeepEqual(beforeStatus, afterStatus) {
		return nil
	}
	return c.Status().Patch(ctx, after, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
}

// load reads the object and, unless it is being deleted, stores the
// finalizer before anything else happens: before the first AWS call.
func load(ctx context.Context, c client.Client, key client.ObjectKey, obj client.Object) (bool, error) {
	if err := c.Get(ctx, key, obj); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	if obj.GetDeletionTimestamp().IsZero() && controllerutil.AddFinalizer(obj, Finalizer) {
		if err := c.Update(ctx, obj); err != nil {
			return false, err
		}
	}
	return true, nil
}

// finish patches the status once, drops the finalizer if asked, and turns
// retryable AWS errors into a jittered requeue.
func finish[T client.Object](ctx context.Context, c client.Client, before, after T, beforeStatus, afterStatus any,
	ev *pendingEvents, removeFinalizer bool, result ctrl.Result, err error) (ctrl.Result, error) {
	if perr := patchStatus(ctx, c, before, after, beforeStatus, afterStatus); perr != nil {
		return ctrl.Result{}, errors.Join(err, perr)
	}
	ev.flush()
	if removeFinalizer {
		controllerutil.RemoveFinalizer(after, Finalizer)
		if uerr := c.Update(ctx, after); uerr != nil {
			return ctrl.Result{}, uerr
		}
	}
	if err != nil && cloud.IsRetryable(err) {
		return ctrl.Result{RequeueAfter: Backoff(2, time.Second, 30*time.Second)}, nil
	}
	return result, err
}

// pendingEvents holds a reconcile's Events until its status is written, so
// a reconcile that worked from a stale read announces nothing.
type pendingEvents struct {
	recorder events.EventRecorder
	obj      client.Object
	list     []func()
}

func (p *pendingEvents) add(warning bool, reason, action, format string, args ...any) {
	if p.recorder == nil {
		return
	}
	kind := "Normal"
	if warning {
		kind = "Warning"
	}
	p.list = append(p.list, func() { p.recorder.Eventf(p.obj, nil, kind, reason, action, format, args...) })
}

func (p *pendingEvents) flush() {
	for _, emit := range p.list {
		emit()
	}
	p.list = nil
}

// Kinds of notices in InterruptionAnnotation.
const (
	NoticeSpot       = "spot-interruption"
	NoticeRebalance  = "rebalance"
	NoticeScheduled  = "scheduled-change"
	NoticeTerminated = "terminated"
	NoticeInstance   = "instance-watcher"
)

func readyReason(conds []metav1.Condition) (metav1.ConditionStatus, string) {
	if c := meta.FindStatusCondition(conds, v1alpha1.ConditionReady); c != nil {
		return c.Status, c.Reason
	}
	return metav1.ConditionUnknown, ""
}

// stateGauge keeps a gauge of objects by state; an empty state forgets the object.
type stateGauge struct {
	mu    sync.Mutex
	state map[string]string
}

var driveStates = &stateGauge{state: map[string]string{}}

func (g *stateGauge) set(key, state string) {
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
