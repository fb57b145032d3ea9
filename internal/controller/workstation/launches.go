package workstation

import (
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// launchCalls tells a launch dropped before RunInstances was ever called
// from one that may have run with its answer lost. A launch record this
// process wrote can only have been run by this process (the attempt number
// only grows, so no other process wrote the same attempt), and what it
// remembers settles it. Any other, e.g. one from before a restart, may have
// run: it is kept as unconfirmed (status.unconfirmedLaunch).
type launchCalls struct {
	mu      sync.Mutex
	written map[string]bool
	called  map[string]bool
}

// wrote records that this process stored the launch's record: called once
// the status write that holds it succeeded, never before (a lost write may
// hold a record of the same attempt a predecessor stored).
func (c *launchCalls) wrote(uid types.UID, attempt int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.written == nil {
		c.written = map[string]bool{}
	}
	c.written[launchKey(uid, attempt)] = true
}

// calling records a RunInstances about to be made for the launch.
func (c *launchCalls) calling(uid types.UID, attempt int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.called == nil {
		c.called = map[string]bool{}
	}
	c.called[launchKey(uid, attempt)] = true
}

// mayHaveRun reports whether the launch may have an instance: RunInstances
// was called for it, or another process wrote its record.
func (c *launchCalls) mayHaveRun(uid types.UID, l *v1alpha1.LaunchAttempt) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := launchKey(uid, l.Attempt)
	return !c.written[key] || c.called[key]
}

func launchKey(uid types.UID, attempt int32) string { return fmt.Sprintf("%s/%d", uid, attempt) }
