package integration_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/operator"
	"github.com/xdrive-io/xdrive/test/harness"
)

// TestPreStopHooks (issue #30, part 3) on moto and simulated instances: a
// Stop's release, and then the instance's own watcher on a spot notice the
// operator never heard of, run each container's preStop hook before the
// containers stop and the drive is flushed. A hook that hangs is cut at its
// timeout and one that fails blocks nothing; the checkpoint reaches the
// next launch; status.preStop and an Event per hook say what each did.
func TestPreStopHooks(t *testing.T) {
	env := requireEnv(t)
	opts := operator.Options{}
	opts.Timings.StopTimeout, opts.Timings.FlushTimeout = 90*time.Second, 60*time.Second
	h := harness.New(t, harness.Config{Env: env, Instances: true, Options: opts})
	h.Start()
	box := h.NewWorkstation("box", "data", []string{"t3.large"})
	box.Spec.Containers = []v1alpha1.Container{
		{Name: "train", Image: "pytorch:2", PreStop: &v1alpha1.PreStopHook{Exec: []string{"checkpoint", "/work/ckpt", "1"}}},
		{Name: "hang", Image: "busybox:1", PreStop: &v1alpha1.PreStopHook{Exec: []string{"sleep", "600"}, TimeoutSeconds: 3}},
		{Name: "bad", Image: "busybox:1", PreStop: &v1alpha1.PreStopHook{Exec: []string{"false"}}},
	}
	h.Create(h.NewDrive("data", 20), box)
	h.Eventually(converge, "box Ready", h.WorkstationReady("box"))
	first := h.Workstation("box").Status.InstanceID

	// A Stop: the operator's release runs the hooks.
	h.SetState("box", v1alpha1.WorkstationStateStopped)
	h.Eventually(2*converge, "box Stopped", h.WorkstationPhase("box", v1alpha1.WorkstationPhaseStopped))
	checkHooks(t, h, first, map[string]v1alpha1.PreStopOutcome{
		"train": v1alpha1.PreStopRan, "hang": v1alpha1.PreStopTimedOut, "bad": v1alpha1.PreStopFailed,
	})
	if ok, why := h.FindEvent("Workstation", "box", v1alpha1.ReasonPreStopHookFailed, first,
		"train Ran in 1s", "hang TimedOut in 3s (exit 124)", "bad Failed in 0s (exit 1)", "flushed all the same"); !ok {
		t.Errorf("no event listing the hooks' outcomes: %s", why)
	}

	// The release passed the Stop's own deadline (90 s), not the instance's default (60 s).
	if in1, ok := h.Sim.Instance(first); !ok {
		t.Errorf("no simulated instance %s", first)
	} else if notice, err := in1.File("run/xdrive/notice"); err != nil || !strings.Contains(notice, `"kind":"stop"`) || !regexp.MustCompile(`"secondsLeft":(7[5-9]|8[0-9]|90),`).MatchString(notice) {
		t.Errorf("the notice of the Stop on %s: %q, %v", first, notice, err)
	}

	// The next launch sees the checkpoint; then a spot notice that only the
	// instance's IMDS shows: its watcher runs the hooks and flushes alone.
	h.SetState("box", v1alpha1.WorkstationStateRunning)
	h.Eventually(2*converge, "box Ready again", h.WorkstationReady("box"))
	second := h.Workstation("box").Status.InstanceID
	inst, ok := h.Sim.Instance(second)
	if !ok {
		t.Fatalf("no simulated instance %s", second)
	}
	if _, err := inst.Docker(t.Context(), "exec", "train", "test", "-e", "/work/ckpt"); err != nil {
		t.Errorf("the checkpoint of the stop did not reach the next launch: %v", err)
	}
	h.Sim.Notice(second)
	h.Eventually(2*converge, "the watcher's hooks recorded", func() (bool, string) {
		ps := h.Workstation("box").Status.PreStop
		return ps != nil && ps.InstanceID == second, fmt.Sprintf("status.preStop %+v", ps)
	})
	checkHooks(t, h, second, map[string]v1alpha1.PreStopOutcome{
		"train": v1alpha1.PreStopRan, "hang": v1alpha1.PreStopTimedOut, "bad": v1alpha1.PreStopFailed,
	})
	if notice, err := inst.File("run/xdrive/notice"); err != nil || !strings.Contains(notice, `"kind":"spot-interruption"`) {
		t.Errorf("the notice on %s: %q, %v", second, notice, err)
	}
	if walls := inst.Walls(); !strings.Contains(walls, "stops now (spot-interruption)") {
		t.Errorf("the wall messages on %s: %q", second, walls)
	}
	if _, release := inst.SSHCommands(); release != 0 {
		t.Errorf("the operator ran %d releases on %s: the watcher's release was expected alone", release, second)
	}
}

// checkHooks: status.preStop names the instance and each hook's outcome,
// within its bound. (The second stop's Event joins the first's series.)
func checkHooks(t *testing.T, h *harness.Harness, instanceID string, want map[string]v1alpha1.PreStopOutcome) {
	t.Helper()
	ps := h.Workstation("box").Status.PreStop
	if ps == nil || ps.InstanceID != instanceID || len(ps.Hooks) != len(want) {
		t.Fatalf("status.preStop = %+v, want the hooks of %s", ps, instanceID)
	}
	for _, r := range ps.Hooks {
		if r.Outcome != want[r.Container] || r.DurationSeconds == nil || *r.DurationSeconds > 5 {
			t.Errorf("hook of %s: %s in %v s, want %s within 5 s", r.Container, r.Outcome, r.DurationSeconds, want[r.Container])
		}
	}
}
