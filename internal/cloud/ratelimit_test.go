package cloud

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRateLimiterHoldsBackPastTheBurst: calls within a bucket's burst pass at
// once; past it a call that would wait more than MaxLimiterWait gets a
// RateLimitError, classified as throttled, saying when to come back.
func TestRateLimiterHoldsBackPastTheBurst(t *testing.T) {
	l := NewEC2RateLimiter(EC2Limits{
		RunInstances: Bucket{Burst: 2, PerSecond: 0.1},
		Mutating:     Bucket{Burst: 50, PerSecond: 5},
		NonMutating:  Bucket{Burst: 100, PerSecond: 20},
	})
	ctx := context.Background()
	for i := range 2 {
		if err := l.Wait(ctx, "RunInstances"); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	err := l.Wait(ctx, "RunInstances")
	after, ok := RetryAfter(err)
	if !ok || after < 9*time.Second || Classify(err) != KindThrottled {
		t.Fatalf("third RunInstances: err %v, retry after %s; want a throttled RateLimitError of about 10 s", err, after)
	}
	if err := l.Wait(ctx, "DescribeInstances"); err != nil {
		t.Fatalf("another bucket is not held back: %v", err)
	}
	for i := range 50 {
		if err := l.Wait(ctx, "CreateSnapshot"); err != nil {
			t.Fatalf("CreateSnapshot %d within its own burst: %v", i, err)
		}
	}
	for i := range 50 {
		if err := l.Wait(ctx, "TerminateInstances"); err != nil {
			t.Fatalf("TerminateInstances %d, after 50 CreateSnapshot, within its own burst: %v", i, err)
		}
	}
}

// TestThrottleEmptiesTheBucket: after EC2 refuses one call, the next caller
// of that action is held back too, not only the one refused; other actions,
// whose buckets are their own, are not.
func TestThrottleEmptiesTheBucket(t *testing.T) {
	l := NewEC2RateLimiter(EC2Limits{
		RunInstances: Bucket{Burst: 5, PerSecond: 2},
		Mutating:     Bucket{Burst: 3, PerSecond: 0.5},
		NonMutating:  Bucket{Burst: 100, PerSecond: 20},
	})
	ctx := context.Background()
	if err := l.Wait(ctx, "CreateSnapshot"); err != nil {
		t.Fatal(err)
	}
	l.Throttled("CreateSnapshot")
	var rl *RateLimitError
	if err := l.Wait(ctx, "CreateSnapshot"); !errors.As(err, &rl) {
		t.Fatalf("a CreateSnapshot right after a throttle: %v; want it held back", err)
	}
	for _, other := range []string{"DeleteVolume", "DescribeVolumes"} {
		if err := l.Wait(ctx, other); err != nil {
			t.Fatalf("%s, another action's bucket, is held back: %v", other, err)
		}
	}
}
