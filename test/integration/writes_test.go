package integration_test

import (
	"fmt"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/test/harness"
)

// statusWritesToReady is the budget of a Workstation's status writes from
// its creation to Ready: the wait for its drive (still missing or not
// reconciled 10 s after the Workstation's creation; a shorter wait goes out
// with the launch), the launch recorded
// before RunInstances, the instance recorded after it, and Ready
// (docs/performance.md). Each is a round trip to the API server, which
// is where the time of a large fleet goes.
const statusWritesToReady = 4

// TestStatusWritesToReady counts the status writes of one Workstation, and
// of its drive, from apply to Ready: created with its drive, and created
// before it (the Workstation then waits for the drive's first reconcile).
func TestStatusWritesToReady(t *testing.T) {
	for _, workstationFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("workstation first %v", workstationFirst), func(t *testing.T) {
			h := harness.New(t, harness.Config{Env: requireEnv(t)})
			h.Start()
			objs := []client.Object{h.NewDrive("data", 10), h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a")}
			if workstationFirst {
				objs[0], objs[1] = objs[1], objs[0]
			}
			h.Create(objs...)
			h.Eventually(converge, "Workstation Ready", h.WorkstationReady("box"))
			got := h.APIRequests()
			ws, drive := got["PATCH workstations/status"], got["PATCH xdrives/status"]
			t.Logf("to Ready: %d Workstation status writes, %d XDrive status writes (the lease's among them); all requests: %v", ws, drive, got)
			if ws > statusWritesToReady {
				t.Errorf("the Workstation wrote its status %d times on its way to Ready, over the budget of %d", ws, statusWritesToReady)
			}
			if ws == 0 || drive == 0 {
				t.Errorf("no status writes counted (Workstation %d, XDrive %d): the count is broken", ws, drive)
			}
		})
	}
}
