package workstation

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
)

// maxHooks is status.preStop.hooks' limit: one per container.
const maxHooks = 16

// releaseFor is what a teardown's release tells the instance: the kind of
// stop, for its notice, and the teardown's deadline, within which the
// containers' preStop hooks run before the flush.
func releaseFor(td *v1alpha1.Teardown) bootstrap.Release {
	kind := bootstrap.NoticeKindStop
	switch td.Reason {
	case v1alpha1.TeardownInterrupted:
		kind = bootstrap.NoticeKindSpotInterruption
	case v1alpha1.TeardownRebalance:
		kind = bootstrap.NoticeKindRebalance
	case v1alpha1.TeardownIdleStop:
		kind = bootstrap.NoticeKindIdleStop
	}
	return bootstrap.Release{Kind: kind, Deadline: td.Deadline.Time}
}

// recordHooks writes down what the preStop hooks did in the release of the
// torn-down instance, once, with one Event listing each hook's outcome: a
// warning when any did not run to its end. (Events of the same reason
// within minutes join one series, so an Event per hook would hide some.)
func (s teardownStep) recordHooks(hooks []bootstrap.HookOutcome) {
	td := s.st.Teardown
	if len(hooks) == 0 || (s.st.PreStop != nil && s.st.PreStop.InstanceID == td.InstanceID) {
		return
	}
	ps := &v1alpha1.PreStopStatus{InstanceID: td.InstanceID, Time: metav1.NewTime(s.now)}
	var lines []string
	warning := false
	for _, h := range hooks[:min(len(hooks), maxHooks)] {
		switch h.Outcome {
		case v1alpha1.PreStopRan, v1alpha1.PreStopTimedOut, v1alpha1.PreStopSkipped:
		default:
			h.Outcome = v1alpha1.PreStopFailed
		}
		ps.Hooks = append(ps.Hooks, v1alpha1.PreStopResult{Container: h.Container, Outcome: h.Outcome,
			DurationSeconds: ptr.To(max(h.Seconds, 0)), ExitCode: ptr.To(h.ExitCode)})
		line := fmt.Sprintf("%s %s in %ds", h.Container, h.Outcome, h.Seconds)
		if h.Outcome != v1alpha1.PreStopRan {
			warning = true
			line += fmt.Sprintf(" (exit %d)", h.ExitCode)
		}
		lines = append(lines, line)
	}
	s.st.PreStop = ps
	if warning {
		s.event(true, v1alpha1.ReasonPreStopHookFailed, "PreStop", "The preStop hooks on %s: %s; the drive was flushed all the same",
			td.InstanceID, strings.Join(lines, "; "))
		return
	}
	s.event(false, v1alpha1.ReasonPreStopHook, "PreStop", "The preStop hooks on %s: %s", td.InstanceID, strings.Join(lines, "; "))
}
