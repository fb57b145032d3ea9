package xdrive

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/client-go/tools/events"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/controller/common"
	"github.com/xdrive-io/xdrive/internal/metrics"
)

// TestIllegalPhaseChangeIsReported: a phase change missing from
// phases.XDrive raises a Warning Event, the metric and the hook; an allowed
// one raises nothing.
func TestIllegalPhaseChangeIsReported(t *testing.T) {
	cases := []struct {
		from, to v1alpha1.XDrivePhase
		illegal  bool
	}{
		{v1alpha1.XDrivePhaseSnapshotting, v1alpha1.XDrivePhaseDeletingVolume, false},
		{v1alpha1.XDrivePhaseAttached, v1alpha1.XDrivePhaseDeletingVolume, true},
	}
	for _, c := range cases {
		xd := &v1alpha1.XDrive{Status: v1alpha1.XDriveStatus{Phase: c.from}}
		rec := events.NewFakeRecorder(5)
		var heard []string
		s := &scope{r: &Reconciler{OnIllegalPhase: func(key, from, to string) { heard = append(heard, key+" "+from+" "+to) }},
			xd: xd, st: &xd.Status, key: "lab/home", ev: common.Events{Recorder: rec, Object: xd}}
		counter := metrics.IllegalPhaseChanges.WithLabelValues("XDrive", string(c.from), string(c.to))
		before := testutil.ToFloat64(counter)
		s.setPhase(c.to)
		s.ev.Flush()
		if xd.Status.Phase != c.to {
			t.Errorf("%s -> %s: phase is %s; the change goes on either way", c.from, c.to, xd.Status.Phase)
		}
		counted := testutil.ToFloat64(counter) - before
		var warned bool
		select {
		case e := <-rec.Events:
			warned = strings.HasPrefix(e, "Warning "+common.ReasonIllegalPhaseChange)
		default:
		}
		if c.illegal != (len(heard) == 1) || c.illegal != (counted == 1) || c.illegal != warned {
			t.Errorf("%s -> %s: hook %v, metric +%v, warning %v; want all %v", c.from, c.to, heard, counted, warned, c.illegal)
		}
	}
}
