package common

import (
	"context"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// UrgentPriority is the queue priority of the work an interruption's two
// minutes wait on: a notice, a release, the snapshot after it. Routine
// reconciles run at priority 0, so urgent work jumps ahead of them.
const UrgentPriority = 100

// EnqueueUrgent adds requests ahead of routine work.
func EnqueueUrgent(q workqueue.TypedRateLimitingInterface[reconcile.Request], reqs ...reconcile.Request) {
	pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request])
	if !ok {
		for _, r := range reqs {
			q.Add(r)
		}
		return
	}
	p := UrgentPriority
	pq.AddWithOpts(priorityqueue.AddOpts{Priority: &p}, reqs...)
}

// UrgentOnChange enqueues, ahead of routine work, the requests mapTo returns
// for an object whose update changed what changed looks at.
func UrgentOnChange[T client.Object](changed func(old, new T) bool, mapTo func(T) []reconcile.Request) handler.TypedEventHandler[T, reconcile.Request] {
	return handler.TypedFuncs[T, reconcile.Request]{
		UpdateFunc: func(_ context.Context, e event.TypedUpdateEvent[T], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if changed(e.ObjectOld, e.ObjectNew) {
				EnqueueUrgent(q, mapTo(e.ObjectNew)...)
			}
		},
	}
}

// UrgentGeneric enqueues each generic event's object ahead of routine work.
func UrgentGeneric[T client.Object]() handler.TypedEventHandler[T, reconcile.Request] {
	return handler.TypedFuncs[T, reconcile.Request]{
		GenericFunc: func(_ context.Context, e event.TypedGenericEvent[T], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			EnqueueUrgent(q, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(e.Object)})
		},
	}
}
