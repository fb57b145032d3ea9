package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CapacityType is the EC2 purchase option.
// +kubebuilder:validation:Enum=Spot;OnDemand
type CapacityType string

const (
	CapacityTypeSpot     CapacityType = "Spot"
	CapacityTypeOnDemand CapacityType = "OnDemand"
)

// WorkstationState is the state the user asks for.
// +kubebuilder:validation:Enum=Running;Stopped
type WorkstationState string

const (
	WorkstationStateRunning WorkstationState = "Running"
	WorkstationStateStopped WorkstationState = "Stopped"
)

// InterruptionPolicy says what happens after a spot interruption.
// +kubebuilder:validation:Enum=Relaunch;Stop
type InterruptionPolicy string

const (
	InterruptionPolicyRelaunch InterruptionPolicy = "Relaunch"
	InterruptionPolicyStop     InterruptionPolicy = "Stop"
)

// RebalancePolicy says what happens on an EC2 rebalance recommendation.
// +kubebuilder:validation:Enum=Ignore;Move
type RebalancePolicy string

const (
	RebalancePolicyIgnore RebalancePolicy = "Ignore"
	RebalancePolicyMove   RebalancePolicy = "Move"
)

// DriveReference names an XDrive in the same namespace.
type DriveReference struct {
	// name of the XDrive.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name,omitempty"`
}

// ImageSource selects the machine image.
// +kubebuilder:validation:XValidation:rule="has(self.id) != has(self.ssmParameter)",message="image: set exactly one of id or ssmParameter"
type ImageSource struct {
	// id is an AMI ID.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=21
	// +kubebuilder:validation:Pattern=`^ami-[0-9a-f]{8,17}$`
	ID string `json:"id,omitempty"`

	// ssmParameter is an SSM parameter path whose value is an AMI ID.
	// +optional
	// +kubebuilder:validation:Pattern=`^/[A-Za-z0-9_./-]+$`
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=2048
	SSMParameter string `json:"ssmParameter,omitempty"`
}

// ContainerPort publishes a container port on the instance.
type ContainerPort struct {
	// containerPort is the port inside the container.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	ContainerPort int32 `json:"containerPort,omitempty"`

	// hostPort is the port on the instance; containerPort if absent.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	HostPort int32 `json:"hostPort,omitempty"`

	// protocol is tcp or udp.
	// +optional
	// +kubebuilder:default=tcp
	// +kubebuilder:validation:Enum=tcp;udp
	Protocol string `json:"protocol,omitempty"`
}

// GPUMode says whether a container gets the instance's GPUs.
// +kubebuilder:validation:Enum=Auto;All;None
type GPUMode string

const (
	// GPUModeAuto passes all GPUs when the instance has any.
	GPUModeAuto GPUMode = "Auto"
	GPUModeAll  GPUMode = "All"
	GPUModeNone GPUMode = "None"
)

// Container is a Docker container run on the instance, with its data on the drive.
type Container struct {
	// name of the container; also the Docker container's name (kept on the drive across launches).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name,omitempty"`

	// image is the Docker image the container is created from. The container is kept across launches; a change of
	// its spec recreates it from a commit of the old one (changing the image starts afresh, keeping the old state as
	// NAME:xdrive-previous).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image,omitempty"`

	// command overrides the image's entrypoint.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Command []string `json:"command,omitempty"`

	// args are passed to the command.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	Args []string `json:"args,omitempty"`

	// env sets environment variables (literal values only). They are not a secret store: the values travel in
	// the instance's user-data and can stay in committed images (docs/security.md#host-keys).
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:XValidation:rule="self.all(e, !has(e.valueFrom))",message="env: only literal values are supported, not valueFrom"
	Env []corev1.EnvVar `json:"env,omitempty"`

	// ports publishes container ports on the instance.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Ports []ContainerPort `json:"ports,omitempty"`

	// gpus says whether the container sees the GPUs.
	// +optional
	// +kubebuilder:default=Auto
	GPUs GPUMode `json:"gpus,omitempty"`

	// preStop runs in the container before it is stopped and the drive flushed (prestop_types.go).
	// +optional
	PreStop *PreStopHook `json:"preStop,omitempty"`
}

// AccessPort names a declared container port to expose.
type AccessPort struct {
	// container is the name of a container in spec.containers.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Container string `json:"container,omitempty"`

	// containerPort is one of that container's declared ports; its hostPort is opened.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	ContainerPort int32 `json:"containerPort,omitempty"`
}

// WorkstationAccess opens the instance to given networks through a security
// group that the operator creates and owns for this Workstation.
type WorkstationAccess struct {
	// allowedCIDRs are the IPv4 networks that may reach SSH (port 22) and the exposed ports.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=18
	// +kubebuilder:validation:XValidation:rule="self.all(c, isCIDR(c) && cidr(c).ip().family() == 4)",message="allowedCIDRs: each must be an IPv4 CIDR such as 203.0.113.0/24"
	AllowedCIDRs []string `json:"allowedCIDRs,omitempty"`

	// ports are the declared container ports opened to allowedCIDRs; only SSH if absent.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Ports []AccessPort `json:"ports,omitempty"`
}

// WorkstationSpec is the desired state of a workstation.
// +kubebuilder:validation:XValidation:rule="!has(self.access) || !has(self.access.ports) || self.access.ports.all(p, has(self.containers) && self.containers.exists(c, c.name == p.container && has(c.ports) && c.ports.exists(q, q.containerPort == p.containerPort)))",message="access.ports: each must be a port declared in spec.containers"
// +kubebuilder:validation:XValidation:rule="!has(self.maxSpotPrice) || self.capacityType == 'Spot'",message="maxSpotPrice: only allowed with capacityType Spot"
// +kubebuilder:validation:XValidation:rule="!has(self.onDemandFallback) || !self.onDemandFallback || self.capacityType == 'Spot'",message="onDemandFallback: only allowed with capacityType Spot"
// +kubebuilder:validation:XValidation:rule="self.driveRef.name == oldSelf.driveRef.name || self.state == 'Stopped' && oldSelf.state == 'Stopped'",message="driveRef: may change only while state is Stopped"
// +kubebuilder:validation:XValidation:rule="!has(self.containers) || self.containers.all(c, !has(c.ports) || c.ports.all(p, self.containers.map(d, !has(d.ports) ? 0 : d.ports.filter(q, (has(q.hostPort) ? q.hostPort : q.containerPort) == (has(p.hostPort) ? p.hostPort : p.containerPort) && (has(q.protocol) ? q.protocol : 'tcp') == (has(p.protocol) ? p.protocol : 'tcp')).size()).sum() == 1))",message="containers: two ports publish the same hostPort and protocol"
type WorkstationSpec struct {
	// className names the WorkstationClass that limits this Workstation; the
	// class annotated xdrive.io/default-class: "true" if absent.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ClassName string `json:"className,omitempty"`

	// driveRef names the XDrive mounted on the instance. It changes only
	// while state is Stopped; an instance still running on the earlier drive
	// when the Workstation is started again is stopped (flush, snapshot) and
	// relaunched on the drive named.
	// +required
	DriveRef DriveReference `json:"driveRef,omitzero"`

	// instanceTypes are the candidate instance types, in order of preference.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	// +listType=set
	// +kubebuilder:validation:items:Pattern=`^[a-z][a-z0-9-]*[0-9][a-z0-9-]*\.[0-9a-z]+$`
	// +kubebuilder:validation:items:MaxLength=32
	InstanceTypes []string `json:"instanceTypes,omitempty"`

	// capacityType is Spot or OnDemand.
	// +optional
	// +kubebuilder:default=Spot
	CapacityType CapacityType `json:"capacityType,omitempty"`

	// maxSpotPrice is the highest hourly spot price in USD, as a decimal string.
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]{1,6})?$`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=16
	MaxSpotPrice string `json:"maxSpotPrice,omitempty"`

	// onDemandFallback launches on-demand when no spot capacity is found.
	// +optional
	OnDemandFallback *bool `json:"onDemandFallback,omitempty"`

	// reattachPriceTolerancePercent is how much more an offering in the zone of
	// the drive's released volume may cost than the cheapest elsewhere, and
	// still win: while the drive still has that volume, an offering in the volume's zone wins when it costs at most this
	// much more than the cheapest elsewhere; the volume is then reattached
	// instead of restored from its snapshot. 0 picks the cheapest always.
	// +optional
	// +kubebuilder:default=20
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	ReattachPriceTolerancePercent *int32 `json:"reattachPriceTolerancePercent,omitempty"`

	// regions narrow the class's regions to these; the class's if absent. A
	// region the class does not allow is refused.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:Pattern=`^[a-z]{2}(-[a-z]+)+-[0-9]$`
	// +kubebuilder:validation:items:MaxLength=32
	Regions []string `json:"regions,omitempty"`

	// availabilityZones are the candidate zones; every zone offering a listed type if absent.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:Pattern=`^[a-z]{2}(-[a-z]+)+-[0-9][a-z]$`
	// +kubebuilder:validation:items:MaxLength=32
	AvailabilityZones []string `json:"availabilityZones,omitempty"`

	// image selects the AMI, if the class allows overrides; a GPU image for GPU types and a CPU image otherwise if absent.
	// +optional
	Image *ImageSource `json:"image,omitempty"`

	// subnetIDs are candidate subnets, if the class allows overrides; the class's if absent.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:Pattern=`^subnet-[0-9a-f]{8,17}$`
	SubnetIDs []string `json:"subnetIDs,omitempty"`

	// securityGroupIDs are attached to the instance, if the class allows overrides; the class's if absent.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=5
	// +kubebuilder:validation:items:Pattern=`^sg-[0-9a-f]{8,17}$`
	SecurityGroupIDs []string `json:"securityGroupIDs,omitempty"`

	// keyName is an EC2 key pair for the user's own SSH access, if the class allows overrides.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	KeyName string `json:"keyName,omitempty"`

	// containersReachInstanceMetadata lets containers reach the instance
	// metadata service (IMDS hop limit 2), e.g. to use the instance role. By
	// default the hop limit is 1: only the host reaches IMDS, so containers
	// cannot read the user-data (which holds this launch's SSH host key and
	// the containers' env values) or the instance role's credentials.
	// +optional
	ContainersReachInstanceMetadata *bool `json:"containersReachInstanceMetadata,omitempty"`

	// iamInstanceProfile is the name or ARN of an instance profile, if the class allows overrides.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	IAMInstanceProfile string `json:"iamInstanceProfile,omitempty"`

	// tags are added to the instance and its volumes. Keys under xdrive.io/ and aws: are reserved.
	// +optional
	// +kubebuilder:validation:MaxProperties=40
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('xdrive.io/') && !k.startsWith('aws:'))",message="tags: keys starting with xdrive.io/ or aws: are reserved"
	Tags map[string]string `json:"tags,omitempty"`

	// mountPath is where the drive is mounted on the instance; not a system
	// directory or Docker's own, nor under or above one.
	// +optional
	// +kubebuilder:default=/v1
	// +kubebuilder:validation:Pattern=`^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$`
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:XValidation:rule="!self.split('/').exists(s, s == '.' || s == '..')",message="mountPath: must not contain . or .. segments"
	// +kubebuilder:validation:XValidation:rule="!['/etc','/proc','/sys','/dev','/boot','/usr','/bin','/sbin','/lib','/lib64','/run','/var/run','/var/lib/docker','/var/lib/containerd'].exists(d, self == d || self.startsWith(d + '/') || d.startsWith(self + '/'))",message="mountPath: must not be, lie under or hold a system directory (/etc, /proc, /sys, /dev, /boot, /usr, /bin, /sbin, /lib, /lib64, /run, /var/run) or Docker's own (/var/lib/docker, /var/lib/containerd)"
	MountPath string `json:"mountPath,omitempty"`

	// containers run under Docker, with Docker's data-root on the drive.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	Containers []Container `json:"containers,omitempty"`

	// state is Running or Stopped. Stopped stops the containers, flushes and snapshots the drive, and keeps the object.
	// +optional
	// +kubebuilder:default=Running
	State WorkstationState `json:"state,omitempty"`

	// interruptionPolicy says what happens after a spot interruption.
	// +optional
	// +kubebuilder:default=Relaunch
	InterruptionPolicy InterruptionPolicy `json:"interruptionPolicy,omitempty"`

	// rebalancePolicy says what happens on a rebalance recommendation.
	// +optional
	// +kubebuilder:default=Ignore
	RebalancePolicy RebalancePolicy `json:"rebalancePolicy,omitempty"`

	// idleStop stops the Workstation when nobody uses it; off if absent, unless its class sets a default.
	// +optional
	IdleStop *IdleStop `json:"idleStop,omitempty"`

	// schedule starts and stops the Workstation at set times (while
	// spec.state is Running); its class's default if absent.
	// +optional
	Schedule *Schedule `json:"schedule,omitempty"`

	// access opens SSH and the listed container ports to allowedCIDRs through a
	// security group the operator manages; the class's groups only if absent.
	// +optional
	Access *WorkstationAccess `json:"access,omitempty"`
}

// WorkstationPhase is where a Workstation is in its lifecycle. docs/design.md draws the state machine.
// +kubebuilder:validation:Enum=Pending;Launching;Running;Releasing;Terminating;Stopped
type WorkstationPhase string

const (
	// WorkstationPhasePending: waiting for the drive's lease, the drive to be archived, or capacity.
	WorkstationPhasePending WorkstationPhase = "Pending"
	// WorkstationPhaseLaunching: a launch is recorded; RunInstances is issued with its client token.
	WorkstationPhaseLaunching WorkstationPhase = "Launching"
	// WorkstationPhaseRunning: the instance is pending or running and holds the drive.
	WorkstationPhaseRunning WorkstationPhase = "Running"
	// WorkstationPhaseReleasing: committing containers and flushing the drive over SSH, until a deadline.
	WorkstationPhaseReleasing WorkstationPhase = "Releasing"
	// WorkstationPhaseTerminating: the release is recorded; the instance is terminated and awaited.
	WorkstationPhaseTerminating WorkstationPhase = "Terminating"
	// WorkstationPhaseStopped: no instance, none wanted.
	WorkstationPhaseStopped WorkstationPhase = "Stopped"
)

// DriveRelease records the moment after which no write can reach the drive's volume.
type DriveRelease struct {
	// instanceID is the instance the drive was released from.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	InstanceID string `json:"instanceID,omitempty"`

	// consistency is Flushed when the filesystem was cleanly unmounted, else Crash:
	// then the drive is snapshotted only once its volume is detached.
	// +required
	Consistency Consistency `json:"consistency,omitempty"`

	// time is when the release was recorded.
	// +required
	Time metav1.Time `json:"time,omitempty"`
}

// UnconfirmedLaunch is a dropped launch whose instance may exist.
type UnconfirmedLaunch struct {
	// attempt is the dropped launch's number.
	// +required
	// +kubebuilder:validation:Minimum=1
	Attempt int32 `json:"attempt,omitempty"`

	// region is the dropped launch's region; the operator's if absent.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	Region string `json:"region,omitempty"`

	// since is when the launch was dropped; its instance is looked for for
	// 3 minutes after it.
	// +required
	Since metav1.Time `json:"since,omitempty"`
}

// LaunchAttempt is a launch recorded before RunInstances is called, so that a
// retry after a crash or a lost status write reuses its client token.
type LaunchAttempt struct {
	// attempt numbers the Workstation's launches; it keys the client token.
	// +required
	// +kubebuilder:validation:Minimum=1
	Attempt int32 `json:"attempt,omitempty"`

	// offering is "<capacityType>/<instanceType>/<zone>".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Offering string `json:"offering,omitempty"`

	// subnetID is the subnet of the offering, if one was chosen.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	SubnetID string `json:"subnetID,omitempty"`

	// spotPrice is the spot price seen when the offering was chosen, USD per hour.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	SpotPrice string `json:"spotPrice,omitempty"`

	// pricePerHour is the offering's price when it was chosen, USD per hour:
	// the spot price, or the on-demand price if known.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	PricePerHour string `json:"pricePerHour,omitempty"`

	// region is the offering's region; the operator's if absent.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	Region string `json:"region,omitempty"`

	// snapshotID is the snapshot the drive volume is created from; absent for a blank drive.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	SnapshotID string `json:"snapshotID,omitempty"`

	// candidates is how many offerings were considered.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Candidates int32 `json:"candidates,omitempty"`

	// placement says why this offering was chosen (internal/placement).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Placement string `json:"placement,omitempty"`

	// recordedBy names the operator process that recorded the launch (its
	// host name and a nonce of its start). A launch another process recorded
	// may have run with its answer lost; one this process recorded has run
	// only if this process called RunInstances for it.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	RecordedBy string `json:"recordedBy,omitempty"`

	// startTime is when the launch was recorded.
	// +required
	StartTime metav1.Time `json:"startTime,omitempty"`
}

// TeardownReason is why an instance is being released.
// +kubebuilder:validation:Enum=Stop;Delete;Interrupted;Rebalance;Vanished;InstanceReleased;Stray;IdleStop;ReattachFailed;BudgetExceeded;ScheduledStop;DriveChanged
type TeardownReason string

const (
	TeardownStop        TeardownReason = "Stop"
	TeardownDelete      TeardownReason = "Delete"
	TeardownInterrupted TeardownReason = "Interrupted"
	TeardownRebalance   TeardownReason = "Rebalance"
	// TeardownVanished: the instance was terminated from outside.
	TeardownVanished TeardownReason = "Vanished"
	// TeardownInstanceReleased: a status check found the drive released: by the
	// instance's own watcher on a spot notice (then interruptedBy is set), or
	// by a release of the operator's whose record was lost.
	TeardownInstanceReleased TeardownReason = "InstanceReleased"
	// TeardownStray: an instance of this Workstation that no launch recorded.
	TeardownStray TeardownReason = "Stray"
	// TeardownIdleStop: nobody used the Workstation for spec.idleStop.after.
	TeardownIdleStop TeardownReason = "IdleStop"

	// TeardownReattachFailed: the drive's volume could not be attached to the instance.
	TeardownReattachFailed TeardownReason = "ReattachFailed"

	// TeardownBudgetExceeded: the class's monthly budget is spent (status.budget).
	TeardownBudgetExceeded TeardownReason = "BudgetExceeded"

	// TeardownDriveChanged: the instance runs on a drive spec.driveRef no
	// longer names (changed while spec.state was Stopped, then started again
	// before the operator stopped it); the next launch takes the new drive.
	TeardownDriveChanged TeardownReason = "DriveChanged"
)

// Teardown is the release of one instance, from its start to its termination.
type Teardown struct {
	// instanceID is the instance being released.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	InstanceID string `json:"instanceID,omitempty"`

	// reason is why.
	// +required
	Reason TeardownReason `json:"reason,omitempty"`

	// startTime is when the teardown began.
	// +required
	StartTime metav1.Time `json:"startTime,omitempty"`

	// deadline is when the flush over SSH is given up: the instance is then
	// terminated and the drive snapshotted crash-consistent once detached.
	// +required
	Deadline metav1.Time `json:"deadline,omitempty"`

	// terminateTime is when TerminateInstances was called, or the instance was seen going.
	// +optional
	TerminateTime *metav1.Time `json:"terminateTime,omitempty"`

	// interruptedBy is the notice that met this teardown of the operator's
	// own (a stop, an idle stop): the instance was interrupted all the same,
	// and interruptionPolicy applies when it ends.
	// +optional
	InterruptedBy NoticeKind `json:"interruptedBy,omitempty"`
}

// NoticeKind is a kind of interruption notice.
// +kubebuilder:validation:Enum=spot-interruption;rebalance;scheduled-change;instance-watcher
type NoticeKind string

const (
	NoticeSpotInterruption NoticeKind = "spot-interruption"
	NoticeRebalance        NoticeKind = "rebalance"
	NoticeScheduledChange  NoticeKind = "scheduled-change"
	NoticeInstanceWatcher  NoticeKind = "instance-watcher"
)

// NoticeAnnotationPrefix starts the annotation that carries one kind of notice:
// "xdrive.io/notice-<kind>: <instance-id>/<RFC3339 time>". Each kind has its own
// annotation, so a rebalance recommendation never overwrites a spot notice.
const NoticeAnnotationPrefix = "xdrive.io/notice-"

// ProcessedNotice is the last notice of one kind that the controller acted on.
type ProcessedNotice struct {
	// kind of notice.
	// +required
	Kind NoticeKind `json:"kind,omitempty"`

	// instanceID the notice named.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	InstanceID string `json:"instanceID,omitempty"`

	// time of the notice.
	// +required
	Time metav1.Time `json:"time,omitempty"`
}

// ResolvedClass is what a Workstation's class resolved to at its last admission.
type ResolvedClass struct {
	// name of the WorkstationClass.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name,omitempty"`

	// subnetIDs are the candidate subnets; the zone's default subnet if absent.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=32
	SubnetIDs []string `json:"subnetIDs,omitempty"`

	// securityGroupIDs are attached to the instance; the VPC's default group if absent.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=5
	// +kubebuilder:validation:items:MaxLength=32
	SecurityGroupIDs []string `json:"securityGroupIDs,omitempty"`

	// iamInstanceProfile is the instance profile, if any.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	IAMInstanceProfile string `json:"iamInstanceProfile,omitempty"`

	// imageID is the AMI of the last launch.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=21
	ImageID string `json:"imageID,omitempty"`

	// sshUser is the class's sshUser: the user `kubectl xdrive ssh` logs in as with the user's own key.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	SSHUser string `json:"sshUser,omitempty"`
}

// WorkstationStatus is the observed state of a workstation.
type WorkstationStatus struct {
	// conditions describe the workstation; Ready is the root.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type" protobuf:"bytes,1,rep,name=conditions"`

	// observedGeneration is the generation the status was computed for.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is where the Workstation is in its lifecycle.
	// +optional
	Phase WorkstationPhase `json:"phase,omitempty"`

	// class is what the Workstation's class resolved to.
	// +optional
	Class *ResolvedClass `json:"class,omitempty"`

	// instanceID is the current EC2 instance.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	InstanceID string `json:"instanceID,omitempty"`

	// instanceType is the type of the current instance.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	InstanceType string `json:"instanceType,omitempty"`

	// capacityType is how the current instance was bought.
	// +optional
	CapacityType CapacityType `json:"capacityType,omitempty"`

	// region is the region of the current instance; the operator's if absent.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	Region string `json:"region,omitempty"`

	// availabilityZone is the zone of the current instance.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	AvailabilityZone string `json:"availabilityZone,omitempty"`

	// privateIP of the current instance.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	PrivateIP string `json:"privateIP,omitempty"`

	// publicIP of the current instance.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	PublicIP string `json:"publicIP,omitempty"`

	// launchTime of the current instance.
	// +optional
	LaunchTime *metav1.Time `json:"launchTime,omitempty"`

	// spotPrice is the spot price seen at launch, USD per hour.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	SpotPrice string `json:"spotPrice,omitempty"`

	// pricePerHour is the price of the current instance seen at launch, USD
	// per hour: the spot price, or the on-demand price if known.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	PricePerHour string `json:"pricePerHour,omitempty"`

	// launches counts launches; it keys the RunInstances client token.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Launches int32 `json:"launches,omitempty"`

	// launch is the launch in progress, recorded before RunInstances is called.
	// +optional
	Launch *LaunchAttempt `json:"launch,omitempty"`

	// unconfirmedLaunch is a launch dropped after its RunInstances may have
	// taken effect with the answer lost: nothing launches again until its
	// instance is found by its tags (and adopted) or the lookup's time is up.
	// +optional
	UnconfirmedLaunch *UnconfirmedLaunch `json:"unconfirmedLaunch,omitempty"`

	// failedRestoreSnapshotID is a restore snapshot that EC2 no longer knows; the drive picks another.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	FailedRestoreSnapshotID string `json:"failedRestoreSnapshotID,omitempty"`

	// reattachVolumeID is the drive's released volume that the current launch or
	// instance gets by AttachVolume, instead of a new volume from a snapshot.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	ReattachVolumeID string `json:"reattachVolumeID,omitempty"`

	// declinedVolumeID is a released volume of the drive this Workstation will
	// not reattach (placement chose another zone, or the reattach failed): the
	// drive deletes it once its snapshot has completed.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	DeclinedVolumeID string `json:"declinedVolumeID,omitempty"`

	// teardown is the release of the current instance, once begun.
	// +optional
	Teardown *Teardown `json:"teardown,omitempty"`

	// driveRelease is set once no write can reach the drive from the instance it names.
	// +optional
	DriveRelease *DriveRelease `json:"driveRelease,omitempty"`

	// drivePrewarm is the current instance's read of every block of the
	// drive's restored volume (the XDrive's spec.prewarm), as it last reported
	// it; the XDrive folds it into its status.initialization.
	// +optional
	DrivePrewarm *DrivePrewarm `json:"drivePrewarm,omitempty"`

	// notices are the last notice of each kind acted on.
	// +optional
	// +listType=map
	// +listMapKey=kind
	// +kubebuilder:validation:MaxItems=8
	Notices []ProcessedNotice `json:"notices,omitempty"`

	// interruptions counts spot interruptions.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Interruptions int32 `json:"interruptions,omitempty"`

	// lastInterruptionTime is when the last interruption notice arrived.
	// +optional
	LastInterruptionTime *metav1.Time `json:"lastInterruptionTime,omitempty"`

	// haltedGeneration is the generation at which an interruption stopped the
	// Workstation (interruptionPolicy: Stop); any spec change starts it again.
	// +optional
	// +kubebuilder:validation:Minimum=1
	HaltedGeneration int64 `json:"haltedGeneration,omitempty"`

	// securityGroup is the security group the operator manages for spec.access.
	// +optional
	SecurityGroup *ManagedSecurityGroup `json:"securityGroup,omitempty"`

	// ssh is how to reach the current instance over SSH, with its pinned host key.
	// +optional
	SSH *SSHAccess `json:"ssh,omitempty"`

	// endpoints are the current instance's SSH and exposed ports; the first is the main one.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=17
	Endpoints []Endpoint `json:"endpoints,omitempty"`

	// avoidOfferings are type/zone offerings skipped until the given time.
	// +optional
	// +listType=map
	// +listMapKey=offering
	// +kubebuilder:validation:MaxItems=64
	AvoidOfferings []AvoidedOffering `json:"avoidOfferings,omitempty"`

	// idle is the idle auto-stop's state, while spec.idleStop applies.
	// +optional
	Idle *IdleState `json:"idle,omitempty"`

	// preStop is what the containers' preStop hooks did at the last stop.
	// +optional
	PreStop *PreStopStatus `json:"preStop,omitempty"`
	// schedule is the next start and stop of spec.schedule, and the lead.
	// +optional
	Schedule *ScheduleStatus `json:"schedule,omitempty"`

	// cost is what the Workstation's instances have cost over its life, in
	// USD (its drive's storage is in the XDrive's status.cost).
	// +optional
	Cost *WorkstationCost `json:"cost,omitempty"`

	// budget is where the Workstation stands against its class's monthly budget.
	// +optional
	Budget *BudgetState `json:"budget,omitempty"`
}

// DrivePrewarm is an instance's progress reading every block of the drive's volume once.
type DrivePrewarm struct {
	// volumeID is the volume read.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	VolumeID string `json:"volumeID,omitempty"`

	// percent of the volume's bytes read, 0-100; 100 once every block has been read.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percent *int32 `json:"percent,omitempty"`

	// estimatedCompletionTime is when the read ends at its rate so far; absent when done or not known yet.
	// +optional
	EstimatedCompletionTime *metav1.Time `json:"estimatedCompletionTime,omitempty"`
}

// ManagedSecurityGroup is the security group the operator owns for one Workstation.
type ManagedSecurityGroup struct {
	// id of the group.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	ID string `json:"id,omitempty"`

	// vpcID is the VPC the group is in: the VPC of the instance's subnet.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	VPCID string `json:"vpcID,omitempty"`

	// region is the group's region; the operator's if absent.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	Region string `json:"region,omitempty"`

	// syncedGeneration is the generation whose spec.access the rules were last set from.
	// +optional
	// +kubebuilder:validation:Minimum=1
	SyncedGeneration int64 `json:"syncedGeneration,omitempty"`

	// syncTime is when the rules were last compared with EC2's.
	// +optional
	SyncTime *metav1.Time `json:"syncTime,omitempty"`
}

// SSHAccess is what a client needs to reach the current instance safely.
type SSHAccess struct {
	// instanceID is the instance this applies to.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	InstanceID string `json:"instanceID,omitempty"`

	// user to log in as with the operator's per-Workstation key.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	User string `json:"user,omitempty"`

	// hostPublicKey is the instance's SSH host key (authorized_keys format), made
	// by the operator for this launch: pin it, never trust on first use.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	HostPublicKey string `json:"hostPublicKey,omitempty"`
}

// Endpoint is one way into the current instance.
type Endpoint struct {
	// name is "ssh", or the container whose port it is.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name,omitempty"`

	// url such as ssh://root@203.0.113.7:22 or http://203.0.113.7:8888.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	URL string `json:"url,omitempty"`
}

// AvoidedOffering is an instance type in a zone that is skipped for a while.
type AvoidedOffering struct {
	// offering is "<capacityType>/<instanceType>/<zone>".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Offering string `json:"offering,omitempty"`

	// until is when the offering may be tried again.
	// +required
	Until metav1.Time `json:"until,omitempty"`

	// reason is why it is avoided.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Reason string `json:"reason,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// The category (`kubectl get xdrive-all` lists both kinds) must differ from every
// plural, singular and short name: kubectl expands a category before a resource
// name, so a category "xdrive" would shadow the XDrive kind's singular name.
// +kubebuilder:resource:shortName=ws,categories=xdrive-all
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="$/H",type=string,JSONPath=`.status.pricePerHour`,description="The current instance's price per hour, USD, seen at launch"
// +kubebuilder:printcolumn:name="Idle",type=date,JSONPath=`.status.idle.lastActivityTime`,description="Time since the last activity the idle auto-stop saw"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,priority=1
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Spent",type=string,JSONPath=`.status.cost.instanceUSD`,priority=1,description="USD of instance time counted so far: every ended launch (kubectl xdrive status adds the current one up to now)"
// +kubebuilder:printcolumn:name="Class",type=string,JSONPath=`.status.class.name`,priority=1
// +kubebuilder:printcolumn:name="Drive",type=string,JSONPath=`.spec.driveRef.name`,priority=1
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.status.instanceType`,priority=1
// +kubebuilder:printcolumn:name="Capacity",type=string,JSONPath=`.status.capacityType`,priority=1
// +kubebuilder:printcolumn:name="Zone",type=string,JSONPath=`.status.availabilityZone`,priority=1
// +kubebuilder:printcolumn:name="IP",type=string,JSONPath=`.status.publicIP`,priority=1
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.status.endpoints[0].url`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// Workstation is an EC2 machine, spot or on-demand, with an XDrive mounted on it.
type Workstation struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +required
	Spec WorkstationSpec `json:"spec,omitzero"`
	// status is the observed state, written by the controller.
	// +optional
	Status WorkstationStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// WorkstationList is a list of Workstations.
type WorkstationList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Workstation `json:"items"`
}
