package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Schedule runs a Workstation in a window: it starts so that it is Ready,
// with its drive Hydrated, at each `start`, and stops (containers stopped,
// drive flushed and snapshotted) at each `stop`. spec.state stays the
// user's: Stopped is a hard off that no schedule overrides, and outside
// the window a Workstation whose spec.state is Running is stopped by the
// operator, as an idle stop is, with nothing written to its spec. The
// cron expressions are checked by the operator (ClassAllowed=False,
// reason InvalidSchedule, and an Event when they do not parse).
type Schedule struct {
	// timeZone is the IANA time zone the cron expressions are read in, e.g.
	// Europe/Berlin; UTC if absent. Daylight saving time is followed.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9_+/-]*$`
	TimeZone string `json:"timeZone,omitempty"`

	// start is a 5-field cron expression (minute hour day-of-month month
	// day-of-week), e.g. "0 9 * * 1-5": the Workstation is Ready with its
	// drive loaded at these times.
	// +required
	// +kubebuilder:validation:MinLength=9
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.split(' ').filter(f, f != '').size() == 5",message="start: must be a cron expression of 5 fields"
	Start string `json:"start,omitempty"`

	// stop is a 5-field cron expression, e.g. "0 19 * * 1-5": the
	// Workstation is stopped at these times.
	// +required
	// +kubebuilder:validation:MinLength=9
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.split(' ').filter(f, f != '').size() == 5",message="stop: must be a cron expression of 5 fields"
	Stop string `json:"stop,omitempty"`
}

// ClassSchedule is a class's default schedule and its bounds.
type ClassSchedule struct {
	// default is the schedule of the class's Workstations that set none.
	// +optional
	Default *Schedule `json:"default,omitempty"`

	// allowWorkstationSchedules lets Workstations set spec.schedule. Allowed if absent.
	// +optional
	AllowWorkstationSchedules *bool `json:"allowWorkstationSchedules,omitempty"`

	// maxWindowMinutes is the longest a scheduled window (a start to the
	// next stop) may last, e.g. 720 for 12 hours; a Workstation whose
	// schedule opens a longer window in the next 8 days is refused.
	// Unbounded if absent.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=525600
	MaxWindowMinutes int32 `json:"maxWindowMinutes,omitempty"`
}

// WorkstationSchedulesAllowed reports whether the class lets Workstations set a schedule.
func (c *ClassSchedule) WorkstationSchedulesAllowed() bool {
	return c == nil || c.AllowWorkstationSchedules == nil || *c.AllowWorkstationSchedules
}

// ScheduleWindow says whether the schedule wants the Workstation running now.
// +kubebuilder:validation:Enum=Open;Closed;Resumed
type ScheduleWindow string

const (
	// ScheduleWindowOpen: between a start (less its lead) and the next stop.
	ScheduleWindowOpen ScheduleWindow = "Open"
	// ScheduleWindowClosed: the operator keeps the Workstation stopped.
	ScheduleWindowClosed ScheduleWindow = "Closed"
	// ScheduleWindowResumed: closed, but started by hand (the xdrive.io/resume
	// annotation) until the next stop.
	ScheduleWindowResumed ScheduleWindow = "Resumed"
)

// TeardownScheduledStop: the schedule's stop time came.
const TeardownScheduledStop TeardownReason = "ScheduledStop"

// Reasons of the schedule.
const (
	// ReasonInvalidSchedule: spec.schedule (or the class's default) does not parse.
	ReasonInvalidSchedule = "InvalidSchedule"
	// ReasonScheduledStop: the Workstation is stopped outside its scheduled window.
	ReasonScheduledStop = "ScheduledStop"
	// ReasonScheduledStart: the Workstation starts ahead of its scheduled start.
	ReasonScheduledStart = "ScheduledStart"
)

// ScheduleStatus is what the operator decided from the schedule, and what
// it measured of the launches to decide it.
type ScheduleStatus struct {
	// window says whether the schedule wants the Workstation running now;
	// absent without a schedule.
	// +optional
	Window ScheduleWindow `json:"window,omitempty"`

	// windowStart is the start the open window belongs to: a window opens
	// leadSeconds before it and closes at the first stop after it.
	// +optional
	WindowStart *metav1.Time `json:"windowStart,omitempty"`

	// nextStart is the next start time: the Workstation is to be Ready, its
	// drive Hydrated, by then.
	// +optional
	NextStart *metav1.Time `json:"nextStart,omitempty"`

	// launchAt is when the operator launches for nextStart: nextStart less leadSeconds.
	// +optional
	LaunchAt *metav1.Time `json:"launchAt,omitempty"`

	// nextStop is the next stop time.
	// +optional
	NextStop *metav1.Time `json:"nextStop,omitempty"`

	// leadSeconds is how long before a start the operator launches.
	// +optional
	// +kubebuilder:validation:Minimum=1
	LeadSeconds int32 `json:"leadSeconds,omitempty"`

	// basis says how leadSeconds was estimated, for people.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Basis string `json:"basis,omitempty"`

	// measured is what the operator measured of the last launches; the lead
	// is estimated from it. Kept without a schedule too.
	// +optional
	Measured *LaunchMeasurement `json:"measured,omitempty"`
}

// LaunchMeasurement is how long the last launch took to be Ready, and the
// last restore to load its drive.
type LaunchMeasurement struct {
	// instanceID is the instance whose time to Ready was measured.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	InstanceID string `json:"instanceID,omitempty"`

	// readySeconds is from the instance's launch to its drive mounted and
	// its containers running.
	// +required
	// +kubebuilder:validation:Minimum=0
	ReadySeconds *int32 `json:"readySeconds,omitempty"`

	// loadInstanceID is the last instance whose restored drive was seen fully loaded.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	LoadInstanceID string `json:"loadInstanceID,omitempty"`

	// loadSeconds is how long after Ready that restored drive was fully
	// loaded (Hydrated); 0 if it was by then.
	// +optional
	// +kubebuilder:validation:Minimum=0
	LoadSeconds *int32 `json:"loadSeconds,omitempty"`

	// loadedGiB is the size of that restored drive.
	// +optional
	// +kubebuilder:validation:Minimum=1
	LoadedGiB int32 `json:"loadedGiB,omitempty"`
}
