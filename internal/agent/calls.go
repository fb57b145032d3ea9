package agent

import (
	"context"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// CallKind is one of the agent's commands.
type CallKind string

// The commands a reconcile starts in the background.
const (
	CallStatus  CallKind = "status"
	CallRelease CallKind = "release"
	CallNotify  CallKind = "notify"
	// CallBudgetNotify tells the instance's users of the class's budget
	// (Notify): apart from the idle stop's, which reads its own answers.
	CallBudgetNotify CallKind = "budget-notify"
)

// Result is the outcome of the last finished call of one kind on one instance.
type Result struct {
	Started, Finished time.Time
	Status            Status
	Err               error
	// Failures counts the consecutive failed calls of this kind, this one included.
	Failures int
}

// Done reports whether a call has finished.
func (r Result) Done() bool { return !r.Finished.IsZero() }

// Calls runs agent commands in the background, at most one per instance and
// kind, and keeps each one's last result: a reconcile starts a call and
// observes its result later, and never waits on SSH.
type Calls struct {
	Agent Agent
	// Context bounds every call; the manager's context. Nil means Background.
	Context context.Context
	Clock   clock.PassiveClock
	// Spawn runs a call; default: a new goroutine. The simulation queues it.
	Spawn func(run func())
	// Finished is called after each call, with the owner given to Start.
	Finished func(owner string, kind CallKind)

	mu    sync.Mutex
	calls map[callKey]*callState
}

type callKey struct {
	instanceID string
	kind       CallKind
}

type callState struct {
	last     Result
	inFlight bool
}

// Last returns the last finished call's result (zero if none) and whether a call is in flight.
func (c *Calls) Last(instanceID string, kind CallKind) (Result, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.calls[callKey{instanceID, kind}]; ok {
		return st.last, st.inFlight
	}
	return Result{}, false
}

// Start begins a call unless one of that kind is in flight on the instance.
func (c *Calls) Start(owner, instanceID string, kind CallKind, t Target, timeout time.Duration) {
	key := callKey{instanceID, kind}
	c.mu.Lock()
	if c.calls == nil {
		c.calls = map[callKey]*callState{}
	}
	st, ok := c.calls[key]
	if !ok {
		st = &callState{}
		c.calls[key] = st
	}
	if st.inFlight {
		c.mu.Unlock()
		return
	}
	st.inFlight = true
	c.mu.Unlock()

	started := c.now()
	run := func() {
		ctx, cancel := context.WithTimeout(c.base(), timeout)
		res := Result{Started: started}
		switch kind {
		case CallRelease:
			res.Status, res.Err = c.Agent.Release(ctx, t)
		case CallNotify, CallBudgetNotify:
			res.Err = c.Agent.Notify(ctx, t)
		default:
			res.Status, res.Err = c.Agent.Status(ctx, t)
		}
		cancel()
		res.Finished = c.now()
		c.mu.Lock()
		if res.Err != nil {
			res.Failures = st.last.Failures + 1
		}
		st.last, st.inFlight = res, false
		c.mu.Unlock()
		if c.Finished != nil {
			c.Finished(owner, kind)
		}
	}
	if c.Spawn != nil {
		c.Spawn(run)
		return
	}
	go run()
}

// Forget drops what is known of an instance that has ended. A call still in
// flight finishes into a record nobody reads.
func (c *Calls) Forget(instanceID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, kind := range []CallKind{CallStatus, CallRelease, CallNotify, CallBudgetNotify} {
		delete(c.calls, callKey{instanceID, kind})
	}
}

func (c *Calls) now() time.Time {
	if c.Clock == nil {
		return time.Now()
	}
	return c.Clock.Now()
}

func (c *Calls) base() context.Context {
	if c.Context == nil {
		return context.Background()
	}
	return c.Context
}
