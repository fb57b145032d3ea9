package workstation

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// Table tests of the Workstation's decisions, beside the code: each row is
// a Workstation, and what the controller does with it. A row says what is
// meant; a simulation seed only finds what breaks.

// TestWants: whether the Workstation asks for a running instance, which
// decides between launching (Pending) and staying Stopped, and whether a
// running instance is torn down.
func TestWants(t *testing.T) {
	stop := metav1.NewTime(time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC))
	now := metav1.Now()
	cases := []struct {
		name   string
		change func(*v1alpha1.Workstation)
		want   bool
	}{
		{"spec.state Running", func(*v1alpha1.Workstation) {}, true},
		{"spec.state Stopped", func(w *v1alpha1.Workstation) { w.Spec.State = v1alpha1.WorkstationStateStopped }, false},
		{"deleted", func(w *v1alpha1.Workstation) { w.DeletionTimestamp = &now }, false},
		{"halted by an interruption at this generation", func(w *v1alpha1.Workstation) { w.Status.HaltedGeneration = w.Generation }, false},
		{"halted at an earlier generation: the new spec lifts it", func(w *v1alpha1.Workstation) { w.Status.HaltedGeneration = w.Generation - 1 }, true},
		{"stopped for idleness", func(w *v1alpha1.Workstation) { w.Status.Idle = &v1alpha1.IdleState{StopTime: &stop} }, false},
		{"stopped for idleness, resumed since", func(w *v1alpha1.Workstation) {
			w.Status.Idle = &v1alpha1.IdleState{StopTime: &stop}
			w.Annotations = map[string]string{v1alpha1.ResumeAnnotation: "2026-11-30T10:05:00Z"}
		}, true},
		{"stopped for idleness after the last resume", func(w *v1alpha1.Workstation) {
			w.Status.Idle = &v1alpha1.IdleState{StopTime: &stop}
			w.Annotations = map[string]string{v1alpha1.ResumeAnnotation: "2026-11-30T09:00:00Z"}
		}, false},
		{"idle state without a stop", func(w *v1alpha1.Workstation) { w.Status.Idle = &v1alpha1.IdleState{} }, true},
	}
	for _, c := range cases {
		ws := &v1alpha1.Workstation{}
		ws.Generation = 3
		ws.Spec.State = v1alpha1.WorkstationStateRunning
		c.change(ws)
		if got := Wants(ws); got != c.want {
			t.Errorf("%s: Wants = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestStopReason: a running instance that is no longer wanted is torn down
// for the Workstation's deletion, or else for a stop.
func TestStopReason(t *testing.T) {
	now := metav1.Now()
	ws := &v1alpha1.Workstation{}
	if got := stopReason(ws); got != v1alpha1.TeardownStop {
		t.Errorf("not deleted: stopReason = %s, want %s", got, v1alpha1.TeardownStop)
	}
	ws.Spec.State = v1alpha1.WorkstationStateStopped
	ws.DeletionTimestamp = &now
	if got := stopReason(ws); got != v1alpha1.TeardownDelete {
		t.Errorf("deleted while stopped: stopReason = %s, want %s", got, v1alpha1.TeardownDelete)
	}
}

// TestForcedByAWS: which teardowns an AWS notice forced; the others were
// asked for or found. A release found by a status check (InstanceReleased)
// is the watcher's only if the instance saw a spot notice: that is recorded
// as the teardown's interruptedBy, not by its reason.
func TestForcedByAWS(t *testing.T) {
	for reason, want := range map[v1alpha1.TeardownReason]bool{
		v1alpha1.TeardownInterrupted:      true,
		v1alpha1.TeardownRebalance:        true,
		v1alpha1.TeardownInstanceReleased: false,
		v1alpha1.TeardownStop:             false,
		v1alpha1.TeardownDelete:           false,
		v1alpha1.TeardownVanished:         false,
		v1alpha1.TeardownStray:            false,
		v1alpha1.TeardownIdleStop:         false,
		v1alpha1.TeardownReattachFailed:   false,
		v1alpha1.TeardownScheduledStop:    false,
	} {
		if got := forcedByAWS(reason); got != want {
			t.Errorf("forcedByAWS(%s) = %v, want %v", reason, got, want)
		}
	}
}

// TestNoticeArrived: which annotation changes wake the Workstation at once
// (a new interruption notice of any kind), and which wait their turn.
func TestNoticeArrived(t *testing.T) {
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	type change struct {
		name     string
		old, new map[string]string
		want     bool
	}
	cases := []change{
		{"no change", nil, nil, false},
		{"another annotation", nil, map[string]string{"team": "a"}, false},
		{"a resume", nil, map[string]string{v1alpha1.ResumeAnnotation: "2026-11-30T10:00:00Z"}, false},
		{"the same notice again",
			map[string]string{NoticeAnnotation(v1alpha1.NoticeSpotInterruption): FormatNotice("i-1", at)},
			map[string]string{NoticeAnnotation(v1alpha1.NoticeSpotInterruption): FormatNotice("i-1", at)}, false},
		{"a newer notice for the same instance",
			map[string]string{NoticeAnnotation(v1alpha1.NoticeSpotInterruption): FormatNotice("i-1", at)},
			map[string]string{NoticeAnnotation(v1alpha1.NoticeSpotInterruption): FormatNotice("i-1", at.Add(time.Second))}, true},
	}
	for _, kind := range noticeKinds {
		cases = append(cases, change{"a first " + string(kind) + " notice", nil,
			map[string]string{NoticeAnnotation(kind): FormatNotice("i-1", at)}, true})
	}
	for _, c := range cases {
		old, updated := &v1alpha1.Workstation{}, &v1alpha1.Workstation{}
		old.Annotations, updated.Annotations = c.old, c.new
		if got := noticeArrived(old, updated); got != c.want {
			t.Errorf("%s: noticeArrived = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestParseNotice: a notice annotation is "instance/RFC 3339 time"; anything
// else is no notice.
func TestParseNotice(t *testing.T) {
	at := time.Date(2026, 11, 30, 10, 0, 0, 123456789, time.UTC)
	if id, got, ok := parseNotice(FormatNotice("i-1", at)); !ok || id != "i-1" || !got.Equal(at) {
		t.Errorf("parseNotice(FormatNotice) = (%q, %v, %v), want (i-1, %v, true)", id, got, ok, at)
	}
	for _, v := range []string{"", "i-1", "/2026-11-30T10:00:00Z", "i-1/yesterday"} {
		if _, _, ok := parseNotice(v); ok {
			t.Errorf("parseNotice(%q) is a notice", v)
		}
	}
}
