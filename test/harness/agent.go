package harness

import "github.com/xdrive-io/xdrive/test/fakeagent"

// FakeAgent plays the instance side (test/fakeagent).
type FakeAgent = fakeagent.FakeAgent

// NewFakeAgent returns an agent whose instances are all healthy.
func NewFakeAgent() *FakeAgent { return fakeagent.NewFakeAgent() }

// ErrUnreachable is what an unreachable instance answers.
var ErrUnreachable = fakeagent.ErrUnreachable
