package sim

import (
	"context"
	"testing"
	"time"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// A rollback requested of a drive whose status says Archived while a volume
// of it is unrecorded (a launch the drive never adopted, stopped at once) is
// taken only once that volume is archived. Taken first, the volume's
// snapshot would end it at once, and the next restore would be the newest,
// not the one asked for (seed 285 of the fork and rollback model).
func TestRollbackWaitsForUnrecordedVolume(t *testing.T) {
	s := newScenario(t)
	s.running()
	s.SetState("dev", v1alpha1.WorkstationStateStopped)
	s.until("home archived with a snapshot", func() bool {
		st := s.Drive("home").Status
		return st.Phase == v1alpha1.XDrivePhaseArchived && st.LatestSnapshotID != "" && s.Workstation("dev").Status.Phase == v1alpha1.WorkstationPhaseStopped
	})
	first := s.Drive("home").Status.LatestSnapshotID
	s.SetState("dev", v1alpha1.WorkstationStateRunning)
	s.stoppedBeforeAdopted()
	xd := s.Drive("home")
	if xd.Status.Phase != v1alpha1.XDrivePhaseArchived || xd.Status.VolumeID != "" || s.Workstation("dev").Status.Phase != v1alpha1.WorkstationPhaseStopped {
		t.Fatalf("want dev stopped and home Archived without a recorded volume; home %+v", xd.Status)
	}
	xd.Annotations = map[string]string{v1alpha1.RollbackAnnotation: first + "@" + s.Clock.Now().UTC().Format(time.RFC3339)}
	if err := s.Client.Update(context.Background(), xd); err != nil {
		t.Fatal(err)
	}
	s.logf("user: rollback xd/home to %s", first)
	s.settle()
	st := s.Drive("home").Status
	if st.Rollback == nil || st.Rollback.SnapshotID != first || st.RestoreSnapshotID != first || st.LatestSnapshotID == first {
		t.Fatalf("want the rollback to %s in effect after the launch's volume was archived (a newer snapshot kept); status rollback %+v, restore %s, latest %s",
			first, st.Rollback, st.RestoreSnapshotID, st.LatestSnapshotID)
	}
}
