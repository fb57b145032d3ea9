package agent

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// blockingAgent answers each call when the test says so.
type blockingAgent struct {
	mu      sync.Mutex
	calls   int
	answers chan error
}

func (a *blockingAgent) Status(ctx context.Context, _ Target) (Status, error) {
	a.mu.Lock()
	a.calls++
	a.mu.Unlock()
	return Status{Mounted: true}, <-a.answers
}

func (a *blockingAgent) Release(ctx context.Context, _ Target) (Status, error) {
	a.mu.Lock()
	a.calls++
	a.mu.Unlock()
	return Status{Released: true}, <-a.answers
}

func (a *blockingAgent) Notify(ctx context.Context, _ Target) error {
	a.mu.Lock()
	a.calls++
	a.mu.Unlock()
	return <-a.answers
}

// TestCallsOnePerInstanceAndKind: a second Start while a call is in flight
// makes no second call; the result is kept, failures are counted until a
// success, and Forget drops what is known.
func TestCallsOnePerInstanceAndKind(t *testing.T) {
	ag := &blockingAgent{answers: make(chan error)}
	finished := make(chan CallKind, 10)
	c := &Calls{Agent: ag, Finished: func(owner string, kind CallKind) {
		if owner != "ns/ws" {
			t.Errorf("finished for %q", owner)
		}
		finished <- kind
	}}
	c.Start("ns/ws", "i-1", CallRelease, Target{}, time.Minute)
	c.Start("ns/ws", "i-1", CallRelease, Target{}, time.Minute)
	if _, inFlight := c.Last("i-1", CallRelease); !inFlight {
		t.Fatal("release not in flight")
	}
	ag.answers <- errors.New("connection refused")
	<-finished
	last, inFlight := c.Last("i-1", CallRelease)
	if inFlight || !last.Done() || last.Err == nil || last.Failures != 1 {
		t.Fatalf("after a failure: %+v in flight %v", last, inFlight)
	}
	c.Start("ns/ws", "i-1", CallRelease, Target{}, time.Minute)
	ag.answers <- errors.New("connection refused")
	<-finished
	if last, _ := c.Last("i-1", CallRelease); last.Failures != 2 {
		t.Fatalf("failures %d, want 2", last.Failures)
	}
	c.Start("ns/ws", "i-1", CallStatus, Target{}, time.Minute)
	ag.answers <- nil
	if kind := <-finished; kind != CallStatus {
		t.Fatalf("finished %s", kind)
	}
	if st, _ := c.Last("i-1", CallStatus); st.Err != nil || !st.Status.Mounted || st.Failures != 0 {
		t.Fatalf("status %+v", st)
	}
	c.Start("ns/ws", "i-1", CallNotify, Target{}, time.Minute)
	ag.answers <- errors.New("wall: not found")
	if kind := <-finished; kind != CallNotify {
		t.Fatalf("finished %s", kind)
	}
	if n, _ := c.Last("i-1", CallNotify); n.Err == nil || n.Failures != 1 {
		t.Fatalf("notify %+v", n)
	}
	if ag.calls != 4 {
		t.Fatalf("%d agent calls, want 4 (one per Start not in flight)", ag.calls)
	}
	c.Forget("i-1")
	for _, kind := range []CallKind{CallStatus, CallRelease, CallNotify} {
		if last, inFlight := c.Last("i-1", kind); last.Done() || inFlight {
			t.Fatalf("%s after Forget: %+v", kind, last)
		}
	}
}
