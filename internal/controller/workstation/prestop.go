package workstation

import (
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
// torn-down instance, once, with an Event per hook.
func (s teardownStep) recordHooks(hooks []bootstrap.HookOutcome) {
	td := s.st.Teardown
	if len(hooks) == 0 || (s.st.PreStop != nil && s.st.PreStop.InstanceID == td.InstanceID) {
		return
	}
	ps := &v1alpha1.PreStopStatus{InstanceID: td.InstanceID, Time: metav1.NewTime(s.now)}
	for _, h := range hooks {
		if len(ps.Hooks) == maxHooks {
			break
		}
		switch h.Outcome {
		case v1alpha1.PreStopRan, v1alpha1.PreStopTimedOut, v1alpha1.PreStopSkipped:
		default:
			h.Outcome = v1alpha1.PreStopFailed
		}
		ps.Hooks = append(ps.Hooks, v1alpha1.PreStopResult{Container: h.Container, Outcome: h.Outcome,
			DurationSeconds: ptr.To(max(h.Seconds, 0)), ExitCode: ptr.To(h.ExitCode)})
		if h.Outcome == v1alpha1.PreStopRan {
			s.event(false, v1alpha1.ReasonPreStopHook, "PreStop", "The preStop hook of container %s ran in %ds on %s", h.Container, h.Seconds, td.InstanceID)
		} else {
			s.event(true, v1alpha1.ReasonPreStopHookFailed, "PreStop", "The preStop hook of container %s: %s after %ds (exit %d) on %s; the drive was flushed all the same",
				h.Container, h.Outcome, h.Seconds, h.ExitCode, td.InstanceID)
		}
	}
	s.st.PreStop = ps
}
