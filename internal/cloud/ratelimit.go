package cloud

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/time/rate"
)

// Bucket is one of EC2's request token buckets.
type Bucket struct {
	Burst     int
	PerSecond float64
}

// EC2Limits are the buckets the operator keeps under.
type EC2Limits struct {
	RunInstances, Mutating, NonMutating Bucket
}

// AWSEC2Limits are EC2's documented default request buckets.
var AWSEC2Limits = EC2Limits{
	RunInstances: Bucket{Burst: 5, PerSecond: 2},
	Mutating:     Bucket{Burst: 50, PerSecond: 5},
	NonMutating:  Bucket{Burst: 100, PerSecond: 20},
}

// Scaled multiplies every bucket's size and refill by f (at least one token).
func (l EC2Limits) Scaled(f float64) EC2Limits {
	s := func(b Bucket) Bucket {
		return Bucket{Burst: max(1, int(float64(b.Burst)*f)), PerSecond: b.PerSecond * f}
	}
	return EC2Limits{RunInstances: s(l.RunInstances), Mutating: s(l.Mutating), NonMutating: s(l.NonMutating)}
}

// CodeLocalRateLimit is the error code of a call the operator held back
// itself, to stay under EC2's buckets; it is classified as throttled.
const CodeLocalRateLimit = "xdrive.LocalRateLimit"

// MaxLimiterWait is the longest a call waits for a token; past it the call
// fails with CodeLocalRateLimit and the reconcile comes back later.
const MaxLimiterWait = time.Second

// RateLimitError is a call held back by the operator's own token bucket.
type RateLimitError struct {
	Operation  string
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%s held back to stay under EC2's request rate; retry in %s", e.Operation, e.RetryAfter.Round(time.Millisecond))
}

// ErrorCode implements smithy.APIError.
func (e *RateLimitError) ErrorCode() string { return CodeLocalRateLimit }

// ErrorMessage implements smithy.APIError.
func (e *RateLimitError) ErrorMessage() string { return e.Error() }

// ErrorFault implements smithy.APIError.
func (e *RateLimitError) ErrorFault() smithy.ErrorFault { return smithy.FaultClient }

// EC2RateLimiter keeps every EC2 call of the process under EC2's request
// buckets: as EC2 does, each API action has a bucket of its own, sized by
// its kind (RunInstances, mutating, non-mutating). A throttling answer from
// EC2 empties that action's bucket, so every caller slows down, not just the
// one that was refused.
type EC2RateLimiter struct {
	limits EC2Limits

	mu      sync.Mutex
	buckets map[string]*rate.Limiter // by action
}

// NewEC2RateLimiter returns a limiter with the given bucket sizes.
func NewEC2RateLimiter(l EC2Limits) *EC2RateLimiter {
	return &EC2RateLimiter{limits: l, buckets: map[string]*rate.Limiter{}}
}

// bucketOf returns the bucket of an EC2 action.
func (r *EC2RateLimiter) bucketOf(operation string) *rate.Limiter {
	r.mu.Lock()
	defer r.mu.Unlock()
	if lim, ok := r.buckets[operation]; ok {
		return lim
	}
	b := r.limits.Mutating
	switch {
	case operation == "RunInstances":
		b = r.limits.RunInstances
	case strings.HasPrefix(operation, "Describe"), strings.HasPrefix(operation, "Get"):
		b = r.limits.NonMutating
	}
	lim := rate.NewLimiter(rate.Limit(b.PerSecond), b.Burst)
	r.buckets[operation] = lim
	return lim
}

// Wait takes a token for the operation: it waits up to MaxLimiterWait, or
// returns a RateLimitError saying when to come back.
func (r *EC2RateLimiter) Wait(ctx context.Context, operation string) error {
	lim := r.bucketOf(operation)
	res := lim.Reserve()
	delay := res.Delay()
	if delay > MaxLimiterWait {
		res.Cancel()
		return &RateLimitError{Operation: operation, RetryAfter: delay}
	}
	if delay == 0 {
		return nil
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		res.Cancel()
		return ctx.Err()
	}
}

// Throttled empties the operation's bucket after EC2 refused a call.
func (r *EC2RateLimiter) Throttled(operation string) {
	lim := r.bucketOf(operation)
	lim.ReserveN(time.Now(), lim.Burst())
}

// Middleware is an aws.Config APIOptions entry that applies the limiter to EC2 calls.
func (r *EC2RateLimiter) Middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("xdriveEC2RateLimit",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if awsmiddleware.GetServiceID(ctx) != "EC2" {
				return next.HandleInitialize(ctx, in)
			}
			op := awsmiddleware.GetOperationName(ctx)
			if err := r.Wait(ctx, op); err != nil {
				return middleware.InitializeOutput{}, middleware.Metadata{}, err
			}
			out, md, err := next.HandleInitialize(ctx, in)
			if Classify(err) == KindThrottled {
				r.Throttled(op)
			}
			return out, md, err
		}), middleware.After)
}

// RetryAfter returns how long a RateLimitError asks to wait.
func RetryAfter(err error) (time.Duration, bool) {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return rl.RetryAfter, true
	}
	return 0, false
}
