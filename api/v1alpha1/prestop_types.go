package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PreStopHook is a command run in a container before the instance stops it
// and flushes the drive: on a spot interruption notice, a rebalance the
// interruptionPolicy acts on, an idle stop and a Stop. It gets
// timeoutSeconds at most, and never more than the stop's deadline leaves
// once the flush's measured need is set aside. /run/xdrive/notice on the
// instance holds the stop's kind, deadline and seconds left.
type PreStopHook struct {
	// exec is the command and its arguments, run with `docker exec` (no
	// shell), e.g. ["python", "/work/save_checkpoint.py"]. Bounded so that
	// the hooks of every container fit in EC2's 16 KiB of user-data.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	Exec []string `json:"exec,omitempty"`

	// timeoutSeconds is the longest the hook may run; 30 if absent. It is
	// cut sooner when the stop's deadline leaves less.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=600
	TimeoutSeconds int32 `json:"timeoutSeconds,omitempty"`
}

// PreStopOutcome is how a container's preStop hook ended.
// +kubebuilder:validation:Enum=Ran;TimedOut;Failed;Skipped
type PreStopOutcome string

const (
	// PreStopRan: the hook exited 0.
	PreStopRan PreStopOutcome = "Ran"
	// PreStopTimedOut: the hook was cut at its timeout; the stop went on.
	PreStopTimedOut PreStopOutcome = "TimedOut"
	// PreStopFailed: the hook exited non-zero (or the container was not
	// running); the stop went on.
	PreStopFailed PreStopOutcome = "Failed"
	// PreStopSkipped: the deadline left no time for the hook once the flush's need was set aside.
	PreStopSkipped PreStopOutcome = "Skipped"
)

// PreStopStatus is what the preStop hooks did at the last stop of an instance.
type PreStopStatus struct {
	// instanceID is the instance whose stop ran the hooks.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	InstanceID string `json:"instanceID,omitempty"`

	// time is when the operator learnt the outcomes.
	// +required
	Time metav1.Time `json:"time,omitempty"`

	// hooks are the outcomes, one per container with a hook.
	// +optional
	// +listType=map
	// +listMapKey=container
	// +kubebuilder:validation:MaxItems=16
	Hooks []PreStopResult `json:"hooks,omitempty"`
}

// PreStopResult is the outcome of one container's preStop hook.
type PreStopResult struct {
	// container is the name of the container the hook ran in.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Container string `json:"container,omitempty"`

	// outcome is Ran, TimedOut, Failed or Skipped.
	// +required
	Outcome PreStopOutcome `json:"outcome,omitempty"`

	// durationSeconds is how long the hook ran.
	// +optional
	// +kubebuilder:validation:Minimum=0
	DurationSeconds *int32 `json:"durationSeconds,omitempty"`

	// exitCode is the hook's exit status (124 when cut at its timeout).
	// +optional
	ExitCode *int32 `json:"exitCode,omitempty"`
}

// Event reasons of the preStop hooks.
const (
	// ReasonPreStopHook (an Event): every preStop hook of a stop ran to its end; it lists each.
	ReasonPreStopHook = "PreStopHook"
	// ReasonPreStopHookFailed (a warning Event): a hook of a stop timed out,
	// failed or had no time; the stop went on and the drive was flushed. It lists each hook.
	ReasonPreStopHookFailed = "PreStopHookFailed"
)
