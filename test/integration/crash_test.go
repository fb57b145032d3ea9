package integration_test

import (
	"fmt"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/test/faultproxy"
	"github.com/xdrive-io/xdrive/test/harness"
)

// crasher restarts the manager right after armed EC2 calls arrive at the
// proxy, while they may still be in flight.
type crasher struct {
	mu       sync.Mutex
	armed    map[string]int // action -> restarts left
	restarts []string       // actions that caused a restart
	signal   chan string
	done     chan struct{}
	// hold, if set, is called as each action is armed.
	hold func(action string)
}

func startCrasher(t *testing.T, h *harness.Harness) *crasher {
	c := &crasher{armed: map[string]int{}, signal: make(chan string, 16), done: make(chan struct{})}
	h.Proxy.OnCall(func(action string, _ url.Values) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.armed[action] > 0 {
			c.armed[action]--
			c.restarts = append(c.restarts, action)
			c.signal <- action
		}
	})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-c.done:
				return
			case <-c.signal:
				h.Restart()
			}
		}
	}()
	t.Cleanup(func() {
		h.Proxy.OnCall(nil)
		close(c.done)
		<-stopped
	})
	return c
}

// arm restarts the manager on the next call of each action.
func (c *crasher) arm(actions ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range actions {
		c.armed[a]++
		if c.hold != nil {
			c.hold(a)
		}
	}
}

// fired returns the actions that caused a restart so far.
func (c *crasher) fired() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.restarts)
}

// TestCrashSafeRoundTrip: the manager is restarted right after each mutating
// EC2 call of a round trip (launch, stop, start elsewhere). The round trip
// still converges, with one live instance, one volume, one snapshot per
// release, and nothing leaked.
func TestCrashSafeRoundTrip(t *testing.T) {
	// The call usually reaches moto before the restart: its answer is lost.
	t.Run("answer-lost", func(t *testing.T) { crashSafeRoundTrip(t, 0) })
	// The call is held at the proxy until the restart cancels it: it is lost.
	t.Run("call-lost", func(t *testing.T) { crashSafeRoundTrip(t, 5*time.Second) })
}

func crashSafeRoundTrip(t *testing.T, hold time.Duration) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.Start()
	c := startCrasher(t, h)
	c.hold = func(action string) {
		if hold > 0 {
			h.Proxy.Inject(faultproxy.Rule{Action: action, Times: 1, Fault: faultproxy.Latency(hold)})
		}
	}

	c.arm("RunInstances")
	h.Create(h.NewDrive("data", 10), h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a"))
	h.Eventually(2*converge, "workstation Ready", h.WorkstationReady("box"))
	if live := h.LiveWorkstationInstances("box"); len(live) != 1 {
		t.Fatalf("live instances after the launch = %v, want 1", harness.InstanceIDs(live))
	}
	firstVolume := h.Drive("data").Status.VolumeID

	c.arm("TerminateInstances", "CreateSnapshot", "DeleteVolume")
	h.SetState("box", v1alpha1.WorkstationStateStopped)
	h.Eventually(2*converge, "drive Archived", func() (bool, string) {
		xd := h.Drive("data")
		c := harness.Condition(xd.Status.Conditions, v1alpha1.ConditionVolumeReady)
		return c.Status == "True" && c.Reason == v1alpha1.ReasonArchived && xd.Status.VolumeID == "", fmt.Sprintf("%+v", xd.Status)
	})
	h.Eventually(converge, "no live instance", func() (bool, string) {
		live := h.Instances()
		return len(live) == 0, fmt.Sprintf("live %v", harness.InstanceIDs(live))
	})
	if _, exists := h.Volume(firstVolume); exists {
		t.Fatalf("volume %s survived the archive", firstVolume)
	}
	snapshot := h.Drive("data").Status.LatestSnapshotID

	c.arm("RunInstances")
	h.UpdateWorkstation("box", func(ws *v1alpha1.Workstation) {
		ws.Spec.State = v1alpha1.WorkstationStateRunning
		ws.Spec.AvailabilityZones = []string{"us-east-1b"}
	})
	h.Eventually(2*converge, "workstation Ready in us-east-1b", func() (bool, string) {
		ok, detail := h.WorkstationReady("box")()
		return ok && h.Workstation("box").Status.AvailabilityZone == "us-east-1b", detail
	})

	want := []string{"RunInstances", "TerminateInstances", "CreateSnapshot", "DeleteVolume", "RunInstances"}
	if got := c.fired(); !sameMultiset(got, want) {
		t.Fatalf("restarts happened on %v, want one on each of %v", got, want)
	}
	if hold > 0 {
		// Every held call was cancelled by the restart, so each was made again.
		counts := h.Proxy.Counts()
		for action, least := range map[string]int{"RunInstances": 4, "TerminateInstances": 2, "CreateSnapshot": 2, "DeleteVolume": 2} {
			if counts[action] < least {
				t.Fatalf("%s calls = %d, want at least %d: a held call was not lost and retried", action, counts[action], least)
			}
		}
	}
	ws := h.Workstation("box")
	live := h.LiveWorkstationInstances("box")
	if len(live) != 1 || aws.ToString(live[0].InstanceId) != ws.Status.InstanceID {
		t.Fatalf("live instances = %v, want exactly %s", harness.InstanceIDs(live), ws.Status.InstanceID)
	}
	if all := h.WorkstationInstances("box"); len(all) != 2 {
		t.Errorf("instances ever launched = %v, want 2 (one per start)", harness.InstanceIDs(all))
	}
	xd := h.Drive("data")
	vols := h.Volumes()
	if len(vols) != 1 || aws.ToString(vols[0].VolumeId) != xd.Status.VolumeID {
		t.Fatalf("volumes = %v, want exactly the drive's %s", harness.VolumeIDs(vols), xd.Status.VolumeID)
	}
	if z := aws.ToString(vols[0].AvailabilityZone); z != "us-east-1b" || aws.ToString(vols[0].SnapshotId) != snapshot {
		t.Fatalf("drive volume in %s from %s, want us-east-1b from %s", z, aws.ToString(vols[0].SnapshotId), snapshot)
	}
	if xd.Status.SnapshotCount != 1 || xd.Status.LatestSnapshotID != snapshot {
		t.Errorf("drive status.snapshotCount = %d, latest %s; want 1 and %s", xd.Status.SnapshotCount, xd.Status.LatestSnapshotID, snapshot)
	}
	bySource := map[string][]string{}
	for _, s := range h.Snapshots() {
		src := aws.ToString(s.VolumeId)
		bySource[src] = append(bySource[src], aws.ToString(s.SnapshotId))
	}
	if len(bySource) != 1 || len(bySource[firstVolume]) != 1 || bySource[firstVolume][0] != snapshot {
		t.Fatalf("snapshots by source volume = %v, want exactly %s of %s", bySource, snapshot, firstVolume)
	}
	// The teardown flushed the drive before it was snapshotted.
	for _, s := range h.Snapshots() {
		tags := cloud.TagMap(s.Tags)
		if got := tags[cloud.TagConsistency]; got != string(v1alpha1.ConsistencyFlushed) {
			t.Errorf("snapshot %s consistency = %q, want flushed (agent releases: %d)", aws.ToString(s.SnapshotId), got, h.Agent.Releases())
		}
	}
}

func sameMultiset(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
