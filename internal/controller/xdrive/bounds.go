package xdrive

import (
	"context"
	"fmt"
	"time"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// The drive never reads its holder's class: the holder records the class's
// bounds in the lease (status.holder.bounds), and the drive applies its
// warm period and retention within them, read only through
// XDrive.BoundedKeepVolume and BoundedSnapshotRetention. A lease given back
// takes its bounds with it, so both are applied while it is held: the warm
// period when it starts, the retention before the volume is kept.

// keepFor is how long the released volume is kept; zero: not kept.
func (s *scope) keepFor() time.Duration {
	keep, _ := s.xd.BoundedKeepVolume()
	return keep
}

// retention is how many completed snapshots are kept; zero: all.
func (s *scope) retention() int32 {
	keep, _ := s.xd.BoundedSnapshotRetention()
	return keep
}

// pruneBeyondRetention prunes once the drive has more snapshots than it keeps.
func (s *scope) pruneBeyondRetention(ctx context.Context) error {
	if keep := s.retention(); keep > 0 && s.st.SnapshotCount > keep {
		return s.prune(ctx)
	}
	return nil
}

// reportCapped says, in an Event of the action (Keep or Prune: Events of
// one action and reason make one series), that the lease's bounds cut what
// the spec asks to the class's limit (bound) in what the drive does now.
// The holder's ClassAllowed says the spec is beyond them; this says what was applied.
func (s *scope) reportCapped(action, asked, bound string, limit int32, effect string) {
	class := ""
	if b := s.st.Bounds(); b != nil {
		class = b.ClassName
	}
	s.ev.Add(true, v1alpha1.ReasonCappedByClass, action, "spec.%s is beyond WorkstationClass %s's %s %d: %s",
		asked, class, bound, limit, effect)
}

// reportKeepCapped says that the lease's bounds cut the warm period to keep.
func (s *scope) reportKeepCapped(keep time.Duration, effect string) {
	s.reportCapped("Keep", fmt.Sprintf("keepVolumeForMinutes %d", s.xd.Spec.KeepVolumeForMinutes), "maxKeepVolumeForMinutes",
		int32(keep/time.Minute), effect)
}
