package integration_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/controller/workstation"
	"github.com/xdrive-io/xdrive/internal/operator"
	"github.com/xdrive-io/xdrive/test/harness"
)

// statusAnswerBound is generous: the answer takes well under 2 s (make
// bench measures it); a reconcile held by SSH would take minutes.
const statusAnswerBound = 15 * time.Second

// TestSpecChangeAnsweredWhileSSHHangs: with every SSH call to the instance
// hanging, a Stop and then a Start still show in the status at once; the
// release gives up at its deadline and the Workstation launches again.
func TestSpecChangeAnsweredWhileSSHHangs(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t), Options: operator.Options{
		PollInterval: time.Minute, Timings: workstation.Timings{StopTimeout: 30 * time.Second, IdleRequeue: time.Second},
	}})
	h.Start()
	h.Create(h.NewDrive("data", 10), h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a"))
	h.Eventually(converge, "Ready", h.WorkstationReady("box"))
	first := h.Workstation("box").Status.InstanceID

	h.Agent.SetHung(true)
	time.Sleep(2 * time.Second) // a status check is now hanging
	h.SetState("box", v1alpha1.WorkstationStateStopped)
	stopGen := h.Workstation("box").Generation
	h.Eventually(statusAnswerBound, "the Stop in the status", answered(h, stopGen, v1alpha1.WorkstationPhaseReleasing))

	h.SetState("box", v1alpha1.WorkstationStateRunning)
	startGen := h.Workstation("box").Generation
	h.Eventually(statusAnswerBound, "the Start in the status", answered(h, startGen, v1alpha1.WorkstationPhaseReleasing))

	h.Agent.SetHung(false)
	h.Eventually(2*converge, "Ready on a new instance", func() (bool, string) {
		ws := h.Workstation("box")
		if ready, why := h.WorkstationReady("box")(); !ready {
			return false, why
		}
		return ws.Status.InstanceID != first, "still on " + first
	})
}

func answered(h *harness.Harness, gen int64, phase v1alpha1.WorkstationPhase) func() (bool, string) {
	return func() (bool, string) {
		st := h.Workstation("box").Status
		return st.ObservedGeneration >= gen && st.Phase == phase,
			fmt.Sprintf("observedGeneration %d (want %d), phase %s (want %s)", st.ObservedGeneration, gen, st.Phase, phase)
	}
}
