package common

import (
	"math/rand/v2"
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Failure backoff of the controllers' queues.
const (
	FailureBaseDelay = 500 * time.Millisecond
	FailureMaxDelay  = 5 * time.Minute
)

// RateLimiter is the per-item exponential backoff, with ±20% jitter, that a
// failed reconcile (a retryable AWS error among them) is retried after.
func RateLimiter() workqueue.TypedRateLimiter[reconcile.Request] {
	return jittered{workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](FailureBaseDelay, FailureMaxDelay)}
}

type jittered struct {
	workqueue.TypedRateLimiter[reconcile.Request]
}

func (j jittered) When(item reconcile.Request) time.Duration {
	return Jitter(j.TypedRateLimiter.When(item))
}

// Jitter spreads d by ±20%.
func Jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
