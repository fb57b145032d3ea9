package harness

import (
	"fmt"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// WorkstationPhase waits for a Workstation to reach a phase.
func (h *Harness) WorkstationPhase(name string, phase v1alpha1.WorkstationPhase) func() (bool, string) {
	return func() (bool, string) {
		ws := h.Workstation(name)
		return ws.Status.Phase == phase, fmt.Sprintf("workstation %s phase=%s, want %s: %v", name, ws.Status.Phase, phase, ws.Status.Conditions)
	}
}

// DrivePhase waits for an XDrive to reach a phase.
func (h *Harness) DrivePhase(name string, phase v1alpha1.XDrivePhase) func() (bool, string) {
	return func() (bool, string) {
		xd := h.Drive(name)
		return xd.Status.Phase == phase, fmt.Sprintf("drive %s phase=%s, want %s: %v", name, xd.Status.Phase, phase, xd.Status.Conditions)
	}
}
