package harness_test

import (
	"os"
	"testing"
	"time"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/test/harness"
)

// TestSimulatedInstances runs a Workstation on simulated instances
// (Config.Instances): the operator reaches them with the real SSH agent,
// and the stop releases the drive on the instance before its snapshot.
func TestSimulatedInstances(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the simulated instances' sshd lets in root only")
	}
	h := harness.New(t, harness.Config{Env: harness.Env(t), Instances: true})
	h.Start()
	h.Create(h.NewDrive("data", 10), h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a"))
	h.Eventually(90*time.Second, "the Workstation Ready", h.WorkstationReady("box"))
	id := h.Workstation("box").Status.InstanceID
	in, ok := h.Sim.Instance(id)
	if !ok {
		t.Fatalf("instance %s was not simulated; simulated: %v", id, h.Sim.Launched())
	}
	if status, _ := in.SSHCommands(); status == 0 {
		t.Error("the operator never ran xdrive-ctl status over SSH")
	}

	h.SetState("box", v1alpha1.WorkstationStateStopped)
	h.Eventually(90*time.Second, "the drive Archived", h.DriveState("data", v1alpha1.ReasonArchived))
	if _, release := in.SSHCommands(); release != 1 || !in.Released() {
		t.Errorf("xdrive-ctl release ran %d times; released on the instance: %v", release, in.Released())
	}
	if calls := h.Agent.Calls(); len(calls) != 0 {
		t.Errorf("the fake agent was called: %q", calls)
	}
}

func TestMain(m *testing.M) { harness.Main(m) }
