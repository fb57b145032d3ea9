package sim

import (
	"fmt"

	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/test/fakeec2"
)

// costCounted is I10: a Workstation's cost ledger (status.cost) counts no
// launch twice, through lost writes and restarts: it has closed at most as
// many launches as it has had instances end, the last one it closed has
// ended, and the launches it counts are its own.
func (w *World) costCounted(insts []fakeec2.InstanceView) error {
	ended, owner := map[string]int32{}, map[string]string{}
	state := map[string]string{}
	for _, i := range insts {
		uid := i.Tags[cloud.TagOwnerUID]
		owner[i.ID], state[i.ID] = uid, i.State
		if i.State != fakeec2.StatePending && i.State != fakeec2.StateRunning {
			ended[uid]++
		}
	}
	for _, ws := range w.Workstations() {
		c := ws.Status.Cost
		if c == nil {
			continue
		}
		uid := string(ws.UID)
		if c.Launches > ended[uid] {
			return fmt.Errorf("I10: Workstation %s's cost counts %d ended launches; %d of its instances have ended", ws.Name, c.Launches, ended[uid])
		}
		if id := c.LastCountedInstanceID; id != "" && (owner[id] != uid || state[id] == fakeec2.StatePending || state[id] == fakeec2.StateRunning) {
			return fmt.Errorf("I10: Workstation %s's cost closed instance %s, of %q, which is %s", ws.Name, id, owner[id], state[id])
		}
		if c.Open != nil && owner[c.Open.InstanceID] != uid {
			return fmt.Errorf("I10: Workstation %s's cost counts instance %s of %q", ws.Name, c.Open.InstanceID, owner[c.Open.InstanceID])
		}
	}
	return nil
}
