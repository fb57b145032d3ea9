package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ResumeAnnotation relaunches a Workstation that was stopped for idleness:
// "xdrive.io/resume: <RFC3339 time>", a time at or after status.idle.stopTime
// (to the second). It is not in Git, so Argo CD shows no drift.
const ResumeAnnotation = "xdrive.io/resume"

// IdleStop stops a Workstation that nobody uses: when no activity signal has
// fired for `after`, it is stopped as by spec.state Stopped (containers
// stopped, drive flushed and snapshotted), while spec.state stays Running.
// A signal that cannot be read counts as activity, and so does an instance
// the operator cannot reach.
type IdleStop struct {
	// after is how long the Workstation may be idle before it is stopped; the
	// class's default if absent (off if the class has none). At least 5m: a
	// warning Event is sent 5 minutes before the stop.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('5m') && duration(self) <= duration('720h')",message="after: must be between 5m and 720h"
	After *metav1.Duration `json:"after,omitempty"`

	// cpuLoad is the 1-minute load average at or above which the instance is
	// busy, as a decimal string; 0.5 if absent.
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9]{1,4}(\.[0-9]{1,3})?$`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=8
	CPULoad string `json:"cpuLoad,omitempty"`

	// gpuUtilizationPercent is the utilisation of any GPU, as nvidia-smi
	// reports it, at or above which the instance is busy; 10 if absent.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	GPUUtilizationPercent int32 `json:"gpuUtilizationPercent,omitempty"`

	// networkPorts are the host TCP ports whose traffic counts as activity;
	// the containers' declared host ports if absent.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=65535
	NetworkPorts []int32 `json:"networkPorts,omitempty"`

	// networkBytesPerSecond is the traffic on networkPorts, both ways, at or
	// above which the instance is busy; 4096 if absent. An open but quiet
	// browser tab stays below it.
	// +optional
	// +kubebuilder:validation:Minimum=1
	NetworkBytesPerSecond int64 `json:"networkBytesPerSecond,omitempty"`

	// checkCommand is run by bash on the instance at each check, as the
	// unprivileged user nobody, with an empty environment and no way to the
	// instance metadata: exit 0 means busy, 1 idle, anything else (or 3 s
	// without an answer) counts as busy. A class may forbid it.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	CheckCommand string `json:"checkCommand,omitempty"`
}

// ClassIdleStop bounds the idle auto-stop of a class's Workstations: how
// long they may stay idle, how high their busy thresholds must be, and
// whether they may run a checkCommand.
// +kubebuilder:validation:XValidation:rule="!has(self.defaultAfter) || !has(self.maxAfter) || duration(self.defaultAfter) <= duration(self.maxAfter)",message="defaultAfter: must not exceed maxAfter"
type ClassIdleStop struct {
	// defaultAfter is the idle stop's `after` of Workstations that set none.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('5m') && duration(self) <= duration('720h')",message="defaultAfter: must be between 5m and 720h"
	DefaultAfter *metav1.Duration `json:"defaultAfter,omitempty"`

	// maxAfter is the longest `after` a Workstation may set; a Workstation
	// that sets none gets defaultAfter, else maxAfter.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('5m') && duration(self) <= duration('720h')",message="maxAfter: must be between 5m and 720h"
	MaxAfter *metav1.Duration `json:"maxAfter,omitempty"`

	// minCPULoad is the lowest cpuLoad a Workstation may set, as a decimal
	// string; it also raises the default 0.5. A low threshold ("0") would
	// keep a machine busy forever.
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9]{1,4}(\.[0-9]{1,3})?$`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=8
	MinCPULoad string `json:"minCPULoad,omitempty"`

	// minGPUUtilizationPercent is the lowest gpuUtilizationPercent a
	// Workstation may set; it also raises the default 10.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MinGPUUtilizationPercent int32 `json:"minGPUUtilizationPercent,omitempty"`

	// minNetworkBytesPerSecond is the lowest networkBytesPerSecond a
	// Workstation may set; it also raises the default 4096.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MinNetworkBytesPerSecond int64 `json:"minNetworkBytesPerSecond,omitempty"`

	// maxExtend is how far `xdrive-ctl extend` on the instance may postpone
	// an idle stop: at most this long past the end of the idle window
	// (status.idle.lastActivityTime + after). 4h if absent; 0s forbids
	// extending. An extension is not activity: a program that extends again
	// and again still stops maxExtend after the last activity's window.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s') && duration(self) <= duration('720h')",message="maxExtend: must be between 0s and 720h"
	MaxExtend *metav1.Duration `json:"maxExtend,omitempty"`

	// allowCheckCommand lets Workstations set idleStop.checkCommand, a
	// command run on the instance whose exit 0 keeps it busy. Allowed if absent.
	// +optional
	AllowCheckCommand *bool `json:"allowCheckCommand,omitempty"`
}

// CheckCommandAllowed reports whether the class lets Workstations set a checkCommand.
func (c *ClassIdleStop) CheckCommandAllowed() bool {
	return c == nil || c.AllowCheckCommand == nil || *c.AllowCheckCommand
}

// IdleSignal names what saw activity.
// +kubebuilder:validation:Enum=ssh;jupyter;gpu;cpu;network;command;launch;booting;unreachable;unreported
type IdleSignal string

// Signals the instance reports, and what the operator itself counts as activity.
const (
	IdleSignalSSH     IdleSignal = "ssh"
	IdleSignalJupyter IdleSignal = "jupyter"
	IdleSignalGPU     IdleSignal = "gpu"
	IdleSignalCPU     IdleSignal = "cpu"
	IdleSignalNetwork IdleSignal = "network"
	IdleSignalCommand IdleSignal = "command"
	// IdleSignalLaunch: the instance started; the clock starts then.
	IdleSignalLaunch IdleSignal = "launch"
	// IdleSignalBooting: the bootstrap has not finished.
	IdleSignalBooting IdleSignal = "booting"
	// IdleSignalUnreachable: the status check failed; no data is not idleness.
	IdleSignalUnreachable IdleSignal = "unreachable"
	// IdleSignalUnreported: the instance reported no activity signals.
	IdleSignalUnreported IdleSignal = "unreported"
)

// IdleState is the idle auto-stop's state of the current or last instance.
type IdleState struct {
	// instanceID is the instance the times refer to.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	InstanceID string `json:"instanceID,omitempty"`

	// lastActivityTime is when activity was last seen; the Workstation is
	// stopped once it has been idle for `after` since.
	// +required
	LastActivityTime metav1.Time `json:"lastActivityTime,omitempty"`

	// lastActivitySignal is what saw it.
	// +required
	LastActivitySignal IdleSignal `json:"lastActivitySignal,omitempty"`

	// lastActivityDetail is what the signal read, e.g. "1 session" or "unknown: nvidia-smi failed".
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	LastActivityDetail string `json:"lastActivityDetail,omitempty"`

	// warningTime is when the last warning Event was sent; the instance is
	// told too (a wall message and /run/xdrive/notice).
	// +optional
	WarningTime *metav1.Time `json:"warningTime,omitempty"`

	// noticeTime is when the instance answered the last warning's notice.
	// +optional
	NoticeTime *metav1.Time `json:"noticeTime,omitempty"`

	// noticeError is why the last warning did not reach the instance; empty
	// if it did. It changes nothing of the stop.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	NoticeError string `json:"noticeError,omitempty"`

	// extendedUntil is the stop postponed by `xdrive-ctl extend` on the
	// instance: the time asked, capped at the class's idleStop.maxExtend
	// (4h if absent) past the end of the idle window. The stop comes no
	// sooner, and is warned of again before it.
	// +optional
	ExtendedUntil *metav1.Time `json:"extendedUntil,omitempty"`

	// extendedBy is the instance user who asked for extendedUntil.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	ExtendedBy string `json:"extendedBy,omitempty"`

	// stopTime is when the Workstation was stopped for idleness; it stays
	// stopped until a xdrive.io/resume annotation names this or a later time,
	// or spec.state goes to Stopped and back.
	// +optional
	StopTime *metav1.Time `json:"stopTime,omitempty"`
}
