package workstation

import (
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// launchCalls tells a launch dropped before RunInstances was ever called
// from one that may have run with its answer lost. A launch recorded after
// this process began reconciling can only have been run by this process, so
// what it remembers settles it; an older one, from before a restart, may
// have run: it is kept as unconfirmed (status.unconfirmedLaunch).
type launchCalls struct {
	mu     sync.Mutex
	since  time.Time
	called map[string]bool
}

// start marks when this process began reconciling, once.
func (c *launchCalls) start(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.since.IsZero() {
		c.since = now
	}
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
// was called for it, or it was recorded before this process began.
func (c *launchCalls) mayHaveRun(uid types.UID, l *v1alpha1.LaunchAttempt) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.since.IsZero() || !l.StartTime.After(c.since) || c.called[launchKey(uid, l.Attempt)]
}

func launchKey(uid types.UID, attempt int32) string { return fmt.Sprintf("%s/%d", uid, attempt) }
