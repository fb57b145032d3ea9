package workstation

import (
	"testing"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// TestLaunchMayHaveRun: a dropped launch is kept as unconfirmed unless this
// process recorded it and never called RunInstances for it.
func TestLaunchMayHaveRun(t *testing.T) {
	var calls launchCalls
	self := calls.process()
	if self != calls.process() {
		t.Fatalf("the process's name changed: %q, then %q", self, calls.process())
	}
	var other launchCalls
	if other.process() == self {
		t.Fatalf("two processes share the name %q", self)
	}
	cases := []struct {
		name       string
		recordedBy string
		called     int32
		attempt    int32
		want       bool
	}{
		{"recorded by another process (before a restart): its answer may be lost", other.process(), 0, 1, true},
		{"recorded before records named their process", "", 0, 1, true},
		{"recorded here, never called", self, 0, 1, false},
		{"recorded here, called", self, 1, 1, true},
		{"recorded here, another attempt called", self, 2, 1, false},
	}
	for _, c := range cases {
		calls := launchCalls{self: self}
		if c.called != 0 {
			calls.calling("uid-1", c.called)
		}
		if got := calls.mayHaveRun("uid-1", &v1alpha1.LaunchAttempt{Attempt: c.attempt, RecordedBy: c.recordedBy}); got != c.want {
			t.Errorf("%s: mayHaveRun = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestDropUnconfirmedKeepsReattach: a dropped reattach launch that may have
// run keeps its reattach request with the unconfirmed record, so the
// instance it finds gets the kept volume; one that never ran drops both.
func TestDropUnconfirmedKeepsReattach(t *testing.T) {
	for _, c := range []struct {
		name       string
		recordedBy string
		keep       bool
	}{
		{"recorded by a predecessor: may have run", "other/process", true},
		{"recorded here, never sent", "", false},
	} {
		r := &Reconciler{}
		self := r.launches.process()
		ws := &v1alpha1.Workstation{}
		ws.UID = "uid-dev"
		by := c.recordedBy
		if by == "" {
			by = self
		}
		ws.Status.Launch = &v1alpha1.LaunchAttempt{Attempt: 2, RecordedBy: by}
		ws.Status.ReattachVolumeID = "vol-kept"
		s := &scope{r: r, ws: ws, st: &ws.Status}
		s.launch().dropUnconfirmedLaunch()
		st := ws.Status
		kept := st.UnconfirmedLaunch != nil && st.ReattachVolumeID == "vol-kept"
		if st.Launch != nil || kept != c.keep || !c.keep && (st.UnconfirmedLaunch != nil || st.ReattachVolumeID != "") {
			t.Errorf("%s: launch %+v, unconfirmed %+v, reattach %q; want kept %v", c.name, st.Launch, st.UnconfirmedLaunch, st.ReattachVolumeID, c.keep)
		}
	}
}
