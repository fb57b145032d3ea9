package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultClassAnnotation marks the WorkstationClass used by Workstations that name none.
const DefaultClassAnnotation = "xdrive.io/default-class"

// ImagePolicy selects the machine image by the instance type's kind.
type ImagePolicy struct {
	// cpu is the image of instance types without GPUs; the operator's default if absent.
	// +optional
	CPU *ImageSource `json:"cpu,omitempty"`

	// gpu is the image of GPU instance types; the operator's default if absent.
	// +optional
	GPU *ImageSource `json:"gpu,omitempty"`
}

// InstanceTypePrice is an instance type's hourly price.
type InstanceTypePrice struct {
	// instanceType is the EC2 instance type, e.g. g5.xlarge.
	// +required
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9.-]*$`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	InstanceType string `json:"instanceType,omitempty"`

	// pricePerHour is the price in USD per hour, as a decimal string.
	// +required
	// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]{1,6})?$`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=16
	PricePerHour string `json:"pricePerHour,omitempty"`
}

// ForkPolicy says from which other namespaces a class's drives may be forked.
type ForkPolicy struct {
	// namespaceSelector selects the namespaces whose XDrives may be forked; {} selects all.
	// +required
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'] && ((e.operator in ['In', 'NotIn']) == (has(e.values) && size(e.values) > 0)))",message="namespaceSelector: each matchExpression's operator must be In or NotIn (with values) or Exists or DoesNotExist (without)"
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// ClassRegion is a region a class's Workstations may run in, with its own
// network and images (subnet, group and image IDs differ between regions).
type ClassRegion struct {
	// name is the AWS region, e.g. us-west-2.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[a-z]{2}(-[a-z]+)+-[0-9]$`
	Name string `json:"name,omitempty"`

	// subnetIDs are the candidate subnets in the region; the zone's default subnet if absent.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:Pattern=`^subnet-[0-9a-f]{8,17}$`
	SubnetIDs []string `json:"subnetIDs,omitempty"`

	// securityGroupIDs are attached to every instance of the class in the region.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=5
	// +kubebuilder:validation:items:Pattern=`^sg-[0-9a-f]{8,17}$`
	SecurityGroupIDs []string `json:"securityGroupIDs,omitempty"`

	// image selects the AMI in the region; the class's image if absent (an
	// SSM parameter names the same image family in every region, an AMI ID does not).
	// +optional
	Image *ImagePolicy `json:"image,omitempty"`
}

// WorkstationClassSpec is what an admin allows the Workstations of a class.
// +kubebuilder:validation:XValidation:rule="!has(self.maxSpotPricePerHour) || !has(self.capacityTypes) || 'Spot' in self.capacityTypes",message="maxSpotPricePerHour: only meaningful when capacityTypes allows Spot"
// +kubebuilder:validation:XValidation:rule="!has(self.maxOnDemandPricePerHour) || !has(self.capacityTypes) || 'OnDemand' in self.capacityTypes",message="maxOnDemandPricePerHour: only meaningful when capacityTypes allows OnDemand"
type WorkstationClassSpec struct {
	// namespaceSelector selects the namespaces whose Workstations may use the class; {} selects all.
	// +required
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'] && ((e.operator in ['In', 'NotIn']) == (has(e.values) && size(e.values) > 0)))",message="namespaceSelector: each matchExpression's operator must be In or NotIn (with values) or Exists or DoesNotExist (without)"
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// subnetIDs are the candidate subnets; the zone's default subnet if absent.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:Pattern=`^subnet-[0-9a-f]{8,17}$`
	// +kubebuilder:validation:items:MaxLength=32
	SubnetIDs []string `json:"subnetIDs,omitempty"`

	// securityGroupIDs are attached to every instance of the class.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=5
	// +kubebuilder:validation:items:Pattern=`^sg-[0-9a-f]{8,17}$`
	// +kubebuilder:validation:items:MaxLength=32
	SecurityGroupIDs []string `json:"securityGroupIDs,omitempty"`

	// iamInstanceProfile is the name or ARN of the instance profile of every instance of the class.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	IAMInstanceProfile string `json:"iamInstanceProfile,omitempty"`

	// keyName is an EC2 key pair installed on every instance of the class.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	KeyName string `json:"keyName,omitempty"`

	// image selects the AMI for CPU and GPU instance types.
	// +optional
	Image *ImagePolicy `json:"image,omitempty"`

	// sshUser is the images' default user, whose authorized keys EC2 fills
	// with keyName's key: the user `kubectl xdrive ssh` logs in as with the
	// user's own key (ec2-user on Amazon Linux, ubuntu on Ubuntu).
	// +optional
	// +kubebuilder:default=ec2-user
	// +kubebuilder:validation:Pattern=`^[a-z_][a-z0-9_-]*$`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	SSHUser string `json:"sshUser,omitempty"`

	// instanceTypes are the allowed instance types: exact names, or patterns
	// where * matches any run of characters (g5.*); every type if absent.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9*][a-z0-9.*-]*$`
	// +kubebuilder:validation:items:MaxLength=32
	InstanceTypes []string `json:"instanceTypes,omitempty"`

	// capacityTypes are the allowed capacity types; both if absent.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=2
	CapacityTypes []CapacityType `json:"capacityTypes,omitempty"`

	// maxSpotPricePerHour caps the spot price in USD per hour, as a decimal string;
	// a Workstation's maxSpotPrice may only be lower.
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]{1,6})?$`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=16
	MaxSpotPricePerHour string `json:"maxSpotPricePerHour,omitempty"`

	// maxOnDemandPricePerHour caps the on-demand price in USD per hour, as a
	// decimal string. Prices come from onDemandPrices, else the
	// operator's list prices; a type priced by neither is refused under the cap.
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]{1,6})?$`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=16
	MaxOnDemandPricePerHour string `json:"maxOnDemandPricePerHour,omitempty"`

	// onDemandPrices are on-demand prices by instance type, over the
	// operator's list prices (read from the Pricing API, else its committed
	// table): for types either misses, or negotiated prices.
	// +optional
	// +listType=map
	// +listMapKey=instanceType
	// +kubebuilder:validation:MaxItems=256
	OnDemandPrices []InstanceTypePrice `json:"onDemandPrices,omitempty"`

	// maxDriveSizeGiB is the largest XDrive sizeGiB a Workstation of the class may mount.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16384
	MaxDriveSizeGiB int32 `json:"maxDriveSizeGiB,omitempty"`

	// allowedVolumeTypes are the volume types an XDrive may have to be mounted
	// by a Workstation of the class; every type if absent.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=6
	AllowedVolumeTypes []VolumeType `json:"allowedVolumeTypes,omitempty"`

	// maxDriveIOPS is the most provisioned IOPS an XDrive of the class's
	// Workstations may set.
	// +optional
	// +kubebuilder:validation:Minimum=100
	// +kubebuilder:validation:Maximum=256000
	MaxDriveIOPS int32 `json:"maxDriveIOPS,omitempty"`

	// maxDriveThroughputMiBps is the most provisioned throughput an XDrive of
	// the class's Workstations may set.
	// +optional
	// +kubebuilder:validation:Minimum=125
	// +kubebuilder:validation:Maximum=2000
	MaxDriveThroughputMiBps int32 `json:"maxDriveThroughputMiBps,omitempty"`

	// maxKeepVolumeForMinutes is the longest keepVolumeForMinutes an XDrive of
	// the class's Workstations may set; 0 forbids keeping volumes. Unbounded if absent.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10080
	MaxKeepVolumeForMinutes *int32 `json:"maxKeepVolumeForMinutes,omitempty"`

	// maxInitializationRateMiBps is the highest initializationRateMiBps (a
	// rate billed per GiB restored) an XDrive of the class's Workstations may
	// set; 0 forbids it. Unbounded if absent.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=300
	MaxInitializationRateMiBps *int32 `json:"maxInitializationRateMiBps,omitempty"`

	// maxSnapshotRetention is the most snapshots an XDrive of the class's
	// Workstations may keep: its snapshotRetention must be set, and at most this.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxSnapshotRetention int32 `json:"maxSnapshotRetention,omitempty"`

	// allowContainersReachInstanceMetadata lets Workstations set
	// containersReachInstanceMetadata, which lets their containers read the
	// instance role's credentials and the user-data. Allowed if absent.
	// +optional
	AllowContainersReachInstanceMetadata *bool `json:"allowContainersReachInstanceMetadata,omitempty"`

	// tags are added to every instance and volume of the class, over the Workstation's own.
	// Keys under xdrive.io/ and aws: are reserved.
	// +optional
	// +kubebuilder:validation:MaxProperties=20
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('xdrive.io/') && !k.startsWith('aws:'))",message="tags: keys starting with xdrive.io/ or aws: are reserved"
	Tags map[string]string `json:"tags,omitempty"`

	// allowWorkstationOverrides lets a Workstation set its own subnetIDs,
	// securityGroupIDs, iamInstanceProfile, keyName and image. Off if absent.
	// +optional
	AllowWorkstationOverrides *bool `json:"allowWorkstationOverrides,omitempty"`

	// allowedAccessCIDRs bounds a Workstation's spec.access.allowedCIDRs, if set:
	// each must lie within one of these IPv4 networks.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=18
	// +kubebuilder:validation:XValidation:rule="self.all(c, isCIDR(c) && cidr(c).ip().family() == 4)",message="allowedAccessCIDRs: each must be an IPv4 CIDR"
	AllowedAccessCIDRs []string `json:"allowedAccessCIDRs,omitempty"`

	// allowUntaggedSnapshots lets a drive be restored from a snapshot with no
	// xdrive.io tags (made outside xdrive, e.g. by the original tool). On if absent.
	// +optional
	AllowUntaggedSnapshots *bool `json:"allowUntaggedSnapshots,omitempty"`

	// allowForkFrom lets the class's Workstations restore a drive forked from
	// an XDrive of another namespace (source.xdrive.namespace), if its
	// namespaceSelector selects that namespace. Absent: no fork across namespaces.
	// +optional
	AllowForkFrom *ForkPolicy `json:"allowForkFrom,omitempty"`

	// regions are the regions the class's Workstations may run in, each with
	// its own network and images. A drive follows its Workstation: it is
	// copied to the region chosen (CopySnapshot) before the launch there.
	// Absent: the operator's region only, with the fields above.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=8
	Regions []ClassRegion `json:"regions,omitempty"`

	// driveMoveHorizonHours is how many hours of running a move of the drive
	// to another region must pay back: a region other than the drive's is
	// chosen only if its price, lower by this many hours, saves more than
	// the copy costs (GiB transferred) and the copy's wait (priced at the
	// drive's region's offering). Default 8.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=720
	DriveMoveHorizonHours int32 `json:"driveMoveHorizonHours,omitempty"`

	// idleStop sets the default and the maximum idle time of the class's Workstations.
	// +optional
	IdleStop *ClassIdleStop `json:"idleStop,omitempty"`

	// budget limits what the class's Workstations cost per month, in USD (budget_types.go).
	// +optional
	Budget *ClassBudget `json:"budget,omitempty"`
	// schedule sets the default schedule of the class's Workstations and its bounds.
	// +optional
	Schedule *ClassSchedule `json:"schedule,omitempty"`
}

// OverridesAllowed reports whether Workstations may set their own infrastructure fields.
func (s WorkstationClassSpec) OverridesAllowed() bool {
	return s.AllowWorkstationOverrides != nil && *s.AllowWorkstationOverrides
}

// ContainersReachInstanceMetadataAllowed reports whether Workstations may let containers reach IMDS.
func (s WorkstationClassSpec) ContainersReachInstanceMetadataAllowed() bool {
	return s.AllowContainersReachInstanceMetadata == nil || *s.AllowContainersReachInstanceMetadata
}

// UntaggedSnapshotsAllowed reports whether legacy, untagged snapshots may be restored.
func (s WorkstationClassSpec) UntaggedSnapshotsAllowed() bool {
	return s.AllowUntaggedSnapshots == nil || *s.AllowUntaggedSnapshots
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=wsc
// +kubebuilder:printcolumn:name="Default",type=string,JSONPath=`.metadata.annotations.xdrive\.io/default-class`
// +kubebuilder:printcolumn:name="Types",type=string,JSONPath=`.spec.instanceTypes`
// +kubebuilder:printcolumn:name="Capacity",type=string,JSONPath=`.spec.capacityTypes`
// +kubebuilder:printcolumn:name="Namespaces",type=string,JSONPath=`.spec.namespaceSelector`
// +kubebuilder:printcolumn:name="Overrides",type=boolean,JSONPath=`.spec.allowWorkstationOverrides`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// WorkstationClass is what an admin allows the Workstations that use it: the
// network, instance role, images, instance types, prices and drive sizes, and
// which namespaces may use it. It is cluster-scoped.
type WorkstationClass struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the class allows.
	// +required
	Spec WorkstationClassSpec `json:"spec,omitzero"`

	// status is what the operator keeps of the class: the month's spend of
	// deleted Workstations, for budgets.
	// +optional
	Status *WorkstationClassStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// WorkstationClassList is a list of WorkstationClasses.
type WorkstationClassList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WorkstationClass `json:"items"`
}
