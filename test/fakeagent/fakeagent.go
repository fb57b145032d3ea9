// Package fakeagent plays the instance side for the harness and the benchmarks' manager process.
package fakeagent

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
)

// FakeAgent plays the instance side: the drive is mounted and the declared
// containers run, until Release is called. It records every call.
type FakeAgent struct {
	mu          sync.Mutex
	released    map[string]bool // by address
	unreachable bool
	hung        bool
	releaseTime func(address string) time.Duration
	calls       []string
	containers  map[string]string
	hostKeys    map[string]string // by address: the host key last pinned
	preserveErr string
	storeErr    string
	activity    map[string][]bootstrap.Signal // by address; absent: every signal idle
	prewarm     func(t agent.Target) *bootstrap.Prewarm
	extend      map[string][2]string // by address: until, by
	// releaseStart is when the first release call reached each address, and
	// releaseArgs what it asked (kind, deadline): where the preStop hooks start.
	releaseStart map[string]time.Time
	releaseArgs  map[string]bootstrap.Release
}

// ErrUnreachable is what an unreachable instance answers.
var ErrUnreachable = errors.New("fake agent: connection refused")

// NewFakeAgent returns an agent whose instances are all healthy.
func NewFakeAgent() *FakeAgent {
	return &FakeAgent{released: map[string]bool{}, hostKeys: map[string]string{},
		releaseStart: map[string]time.Time{}, releaseArgs: map[string]bootstrap.Release{}}
}

// HostKey returns the host key last pinned for an address.
func (a *FakeAgent) HostKey(address string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hostKeys[address]
}

// SetPreserveErrors makes every instance report that containers' changes
// could not be carried over, or that Docker keeps data off the drive
// (empty: all is kept).
func (a *FakeAgent) SetPreserveErrors(preserve, store string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.preserveErr, a.storeErr = preserve, store
}

// SetUnreachable makes every call fail, as when SSH cannot be reached.
func (a *FakeAgent) SetUnreachable(v bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.unreachable = v
}

// SetHung makes every call wait until its deadline, as when SSH packets are dropped.
func (a *FakeAgent) SetHung(v bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.hung = v
}

// SetReleaseTime sets how long each instance's flush takes.
func (a *FakeAgent) SetReleaseTime(f func(address string) time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.releaseTime = f
}

// wait holds a call for d, or until ctx ends.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Calls returns "status <addr>", "release <addr>" and "notify <addr> ..." entries in call order.
func (a *FakeAgent) Calls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.calls...)
}

// Releases counts Release calls that succeeded.
func (a *FakeAgent) Releases() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.released)
}

// ReleaseStarted reports when the first release call reached an address,
// and the kind and deadline it passed on.
func (a *FakeAgent) ReleaseStarted(address string) (time.Time, bootstrap.Release, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.releaseStart[address]
	return at, a.releaseArgs[address], ok
}

// Status reports a mounted drive and running containers.
func (a *FakeAgent) Status(ctx context.Context, t agent.Target) (agent.Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, "status "+t.Address)
	a.hostKeys[t.Address] = t.HostKey
	if a.hung {
		a.mu.Unlock()
		err := wait(ctx, time.Hour)
		a.mu.Lock()
		return agent.Status{}, err
	}
	if a.unreachable {
		return agent.Status{}, ErrUnreachable
	}
	st := agent.Status{Phase: "ready", Mounted: !a.released[t.Address], Released: a.released[t.Address],
		Containers: a.containers, PreserveError: a.preserveErr, StoreError: a.storeErr}
	if t.Idle != nil {
		st.Activity = a.signals(t.Address)
		st.ExtendUntil, st.ExtendBy = a.extend[t.Address][0], a.extend[t.Address][1]
	}
	if a.prewarm != nil {
		st.Prewarm = a.prewarm(t)
	}
	return st, nil
}

// idleSignals are the signals of an instance nobody uses.
var idleSignals = []bootstrap.Signal{{Name: "ssh", State: bootstrap.SignalIdle}, {Name: "jupyter", State: bootstrap.SignalIdle},
	{Name: "gpu", State: bootstrap.SignalIdle}, {Name: "cpu", State: bootstrap.SignalIdle},
	{Name: "network", State: bootstrap.SignalIdle}, {Name: "command", State: bootstrap.SignalIdle}}

// SetActivity sets the activity signals the instance at an address reports
// when the operator asks for them; address "" sets those of every instance
// without its own. With no signals, every signal is idle.
func (a *FakeAgent) SetActivity(address string, signals ...bootstrap.Signal) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.activity == nil {
		a.activity = map[string][]bootstrap.Signal{}
	}
	a.activity[address] = signals
}

func (a *FakeAgent) signals(address string) []bootstrap.Signal {
	s, ok := a.activity[address]
	if !ok {
		s = a.activity[""]
	}
	if len(s) == 0 {
		return idleSignals
	}
	return s
}

// Release marks the instance flushed, after its release time.
func (a *FakeAgent) Release(ctx context.Context, t agent.Target) (agent.Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, "release "+t.Address)
	if _, seen := a.releaseStart[t.Address]; !seen {
		a.releaseStart[t.Address], a.releaseArgs[t.Address] = time.Now(), t.Release
	}
	if a.unreachable {
		return agent.Status{}, ErrUnreachable
	}
	var d time.Duration
	if a.hung {
		d = time.Hour
	} else if a.releaseTime != nil {
		d = a.releaseTime(t.Address)
	}
	if d > 0 {
		a.mu.Unlock()
		err := wait(ctx, d)
		a.mu.Lock()
		if err != nil {
			return agent.Status{}, err
		}
	}
	a.released[t.Address] = true
	return agent.Status{Phase: bootstrap.PhaseReleased, Released: true, Containers: a.containers}, nil
}

// SetExtend makes the instance at an address report `xdrive-ctl extend`
// asked by a user: the idle stop waits until then (RFC 3339).
func (a *FakeAgent) SetExtend(address, until, by string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.extend == nil {
		a.extend = map[string][2]string{}
	}
	a.extend[address] = [2]string{until, by}
}

// Notify records the notice: "notify <addr> <kind> <deadline>".
func (a *FakeAgent) Notify(ctx context.Context, t agent.Target) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t.Notice == nil {
		return errors.New("fake agent: notify without a notice")
	}
	a.calls = append(a.calls, "notify "+t.Address+" "+t.Notice.Kind+" "+t.Notice.Deadline.UTC().Format(time.RFC3339))
	if a.unreachable {
		return ErrUnreachable
	}
	return nil
}

// SetPrewarm sets what each status call reports of the instance's prewarm
// (`xdrive-ctl prewarm`); f returns nil for none. It is called with the
// agent's lock held.
func (a *FakeAgent) SetPrewarm(f func(t agent.Target) *bootstrap.Prewarm) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.prewarm = f
}

// SetContainers sets the container states every instance reports.
func (a *FakeAgent) SetContainers(states map[string]string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.containers = states
}
