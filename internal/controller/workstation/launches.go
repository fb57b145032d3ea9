package workstation

import (
	"crypto/rand"
	"fmt"
	"os"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// launchCalls tells a launch dropped before RunInstances was ever called
// from one that may have run with its answer lost. A launch record names
// the process that wrote it (status.launch.recordedBy). One this process
// wrote has run only if this process called RunInstances for it; any other,
// e.g. a predecessor's from before a restart, may have run: it is kept as
// unconfirmed (status.unconfirmedLaunch).
type launchCalls struct {
	mu     sync.Mutex
	self   string
	called map[string]bool
}

// process names this process in the launch records it writes.
func (c *launchCalls) process() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.self == "" {
		host, _ := os.Hostname()
		c.self = fmt.Sprintf("%.100s/%s", host, rand.Text()[:8])
	}
	return c.self
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

// mayHaveRun reports whether the launch may have an instance: another
// process recorded it, or this one called RunInstances for it.
func (c *launchCalls) mayHaveRun(uid types.UID, l *v1alpha1.LaunchAttempt) bool {
	self := c.process()
	c.mu.Lock()
	defer c.mu.Unlock()
	return l.RecordedBy != self || c.called[launchKey(uid, l.Attempt)]
}

func launchKey(uid types.UID, attempt int32) string { return fmt.Sprintf("%s/%d", uid, attempt) }
