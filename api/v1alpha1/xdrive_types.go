package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// VolumeType is an EBS volume type.
// +kubebuilder:validation:Enum=gp3;gp2;io1;io2;st1;sc1
type VolumeType string

const (
	VolumeTypeGP3 VolumeType = "gp3"
	VolumeTypeGP2 VolumeType = "gp2"
	VolumeTypeIO1 VolumeType = "io1"
	VolumeTypeIO2 VolumeType = "io2"
	VolumeTypeST1 VolumeType = "st1"
	VolumeTypeSC1 VolumeType = "sc1"
)

// Filesystem is the filesystem made on a blank drive.
// +kubebuilder:validation:Enum=ext4;xfs
type Filesystem string

const (
	FilesystemExt4 Filesystem = "ext4"
	FilesystemXFS  Filesystem = "xfs"
)

// DeletionPolicy decides what happens to a drive's snapshots when the XDrive is deleted.
// +kubebuilder:validation:Enum=Retain;Delete
type DeletionPolicy string

const (
	DeletionPolicyRetain DeletionPolicy = "Retain"
	DeletionPolicyDelete DeletionPolicy = "Delete"
)

// DriveSource says where the first volume of a drive comes from.
// +kubebuilder:validation:XValidation:rule="[has(self.snapshotID), has(self.nameTag), has(self.xdrive)].filter(x, x).size() == 1",message="source: set exactly one of snapshotID, nameTag or xdrive"
type DriveSource struct {
	// snapshotID restores the drive from this EBS snapshot on first use.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=22
	// +kubebuilder:validation:Pattern=`^snap-[0-9a-f]{8,17}$`
	SnapshotID string `json:"snapshotID,omitempty"`

	// nameTag adopts the newest completed snapshot whose Name tag equals it
	// (the convention of the original xdrive tool).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	NameTag string `json:"nameTag,omitempty"`

	// xdrive forks another XDrive, of the namespace or, where the class of
	// the Workstation allows it (allowForkFrom), of another: the drive starts
	// from that drive's newest completed snapshot, or the one named. From then
	// on the two are independent: each keeps and prunes its own snapshots.
	// +optional
	XDrive *ForkSource `json:"xdrive,omitempty"`
}

// ForkSource names the drive, and optionally the snapshot, a fork starts from.
type ForkSource struct {
	// name is the XDrive forked.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name,omitempty"`

	// snapshotID picks one of that drive's completed snapshots; its newest if absent.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=22
	// +kubebuilder:validation:Pattern=`^snap-[0-9a-f]{8,17}$`
	SnapshotID string `json:"snapshotID,omitempty"`

	// namespace is the namespace of the XDrive forked; the fork's own if absent.
	// Another namespace's drive is restored only by a Workstation whose class's
	// allowForkFrom selects that namespace.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`
}

// NamespaceOf is the namespace of the drive forked, for a fork in namespace ns.
func (f *ForkSource) NamespaceOf(ns string) string {
	if f.Namespace == "" {
		return ns
	}
	return f.Namespace
}

// XDriveSpec is the desired state of a drive.
// +kubebuilder:validation:XValidation:rule="!has(self.iops) || self.volumeType in ['gp3','io1','io2']",message="iops: only allowed with volumeType gp3, io1 or io2"
// +kubebuilder:validation:XValidation:rule="!(self.volumeType in ['io1','io2']) || has(self.iops)",message="iops: required with volumeType io1 and io2"
// +kubebuilder:validation:XValidation:rule="!has(self.throughputMiBps) || self.volumeType == 'gp3'",message="throughputMiBps: only allowed with volumeType gp3"
// +kubebuilder:validation:XValidation:rule="!(self.volumeType in ['st1','sc1']) || self.sizeGiB >= 125",message="sizeGiB: st1 and sc1 volumes must be at least 125 GiB"
// +kubebuilder:validation:XValidation:rule="has(oldSelf.encrypted) == has(self.encrypted)",message="encrypted: immutable"
// +kubebuilder:validation:XValidation:rule="has(oldSelf.kmsKeyID) == has(self.kmsKeyID)",message="kmsKeyID: immutable once set, and cannot be added later"
// +kubebuilder:validation:XValidation:rule="has(oldSelf.source) == has(self.source)",message="source: immutable once set, and cannot be added later"
// +kubebuilder:validation:XValidation:rule="!has(self.kmsKeyID) || !has(self.encrypted) || self.encrypted",message="kmsKeyID: only allowed when encrypted is true"
// +kubebuilder:validation:XValidation:rule="!has(self.iops) || self.volumeType != 'gp3' || (self.iops >= 3000 && self.iops <= 80000)",message="iops: must be 3000-80000 with volumeType gp3"
// +kubebuilder:validation:XValidation:rule="!has(self.iops) || self.volumeType != 'io1' || self.iops <= 64000",message="iops: must be at most 64000 with volumeType io1"
// +kubebuilder:validation:XValidation:rule="!has(self.prewarm) || !self.prewarm || !has(self.initializationRateMiBps)",message="prewarm: not allowed with initializationRateMiBps, whose provisioned rate already loads every block"
type XDriveSpec struct {
	// sizeGiB is the size of the drive. It may grow, never shrink.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16384
	// +kubebuilder:validation:XValidation:rule="self >= oldSelf",message="sizeGiB: may grow, never shrink"
	SizeGiB int32 `json:"sizeGiB,omitempty"`

	// volumeType is the EBS volume type.
	// +optional
	// +kubebuilder:default=gp3
	VolumeType VolumeType `json:"volumeType,omitempty"`

	// iops is the provisioned IOPS, for gp3 (3000-80000), io1 and io2 (100-256000).
	// +optional
	// +kubebuilder:validation:Minimum=100
	// +kubebuilder:validation:Maximum=256000
	IOPS int32 `json:"iops,omitempty"`

	// throughputMiBps is the provisioned throughput, for gp3 only (125-2000).
	// +optional
	// +kubebuilder:validation:Minimum=125
	// +kubebuilder:validation:Maximum=2000
	ThroughputMiBps int32 `json:"throughputMiBps,omitempty"`

	// encrypted encrypts the volumes and snapshots. Immutable.
	// +optional
	// +kubebuilder:default=true
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="encrypted: immutable"
	Encrypted *bool `json:"encrypted,omitempty"`

	// kmsKeyID is the KMS key for encryption: a key ID, key ARN, alias name
	// (alias/...) or alias ARN; the account's default EBS key if absent. Immutable.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^(([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})|alias/[A-Za-z0-9/_-]{1,250}|arn:aws(-[a-z]+)*:kms:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:(key/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})|alias/[A-Za-z0-9/_-]{1,250}))$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="kmsKeyID: immutable"
	KMSKeyID string `json:"kmsKeyID,omitempty"`

	// filesystem is made on a blank drive. Immutable.
	// +optional
	// +kubebuilder:default=ext4
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="filesystem: immutable"
	Filesystem Filesystem `json:"filesystem,omitempty"`

	// source says where the first volume comes from; a blank volume if absent. Immutable.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="source: immutable"
	Source *DriveSource `json:"source,omitempty"`

	// snapshotRetention keeps the newest N completed snapshots; all are kept if absent.
	// +optional
	// +kubebuilder:validation:Minimum=1
	SnapshotRetention int32 `json:"snapshotRetention,omitempty"`

	// deletionPolicy decides whether the drive's snapshots are deleted with the XDrive.
	// +optional
	// +kubebuilder:default=Retain
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// keepVolumeForMinutes keeps the volume this many minutes after a release,
	// once its snapshot has completed, so that a start in the same zone
	// reattaches it at full speed instead of restoring from the snapshot. Off
	// if absent. A kept gp3 volume costs about $0.08 per GiB-month.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10080
	KeepVolumeForMinutes int32 `json:"keepVolumeForMinutes,omitempty"`

	// initializationRateMiBps is the EBS provisioned rate for volume initialization
	// (100-300 MiB/s), passed on every restore from a snapshot; EBS's default,
	// lazy loading if absent. It is billed per GiB restored.
	// +optional
	// +kubebuilder:validation:Minimum=100
	// +kubebuilder:validation:Maximum=300
	// +kubebuilder:validation:XValidation:rule="self >= 100 && self <= 300",message="initializationRateMiBps: must be 100-300"
	InitializationRateMiBps int32 `json:"initializationRateMiBps,omitempty"`

	// prewarm has the instance read every block of a volume restored from a
	// snapshot once, in the background at idle IO priority, so that every
	// block is loaded from S3 before the user reads it. It costs nothing on
	// AWS; its reads yield to the user's. Not with initializationRateMiBps.
	// Off if absent.
	// +optional
	Prewarm *bool `json:"prewarm,omitempty"`
}

// XDrivePhase is where a drive is in its lifecycle. docs/design.md draws the state machine.
// +kubebuilder:validation:Enum=Pending;Archived;Restoring;Attached;Detaching;Snapshotting;DeletingVolume;Kept;Deleting
type XDrivePhase string

const (
	// XDrivePhasePending: the restore source is not resolved yet.
	XDrivePhasePending XDrivePhase = "Pending"
	// XDrivePhaseArchived: no volume; the drive lives in its snapshots.
	XDrivePhaseArchived XDrivePhase = "Archived"
	// XDrivePhaseRestoring: a launch is creating the volume.
	XDrivePhaseRestoring XDrivePhase = "Restoring"
	// XDrivePhaseAttached: the volume is attached to the holder's instance.
	XDrivePhaseAttached XDrivePhase = "Attached"
	// XDrivePhaseDetaching: released without a flush; waiting for the volume to be detached.
	XDrivePhaseDetaching XDrivePhase = "Detaching"
	// XDrivePhaseSnapshotting: a snapshot taken after the last possible write is pending.
	XDrivePhaseSnapshotting XDrivePhase = "Snapshotting"
	// XDrivePhaseDeletingVolume: that snapshot completed; the volume is deleted once detached.
	XDrivePhaseDeletingVolume XDrivePhase = "DeletingVolume"
	// XDrivePhaseKept: that snapshot completed; the detached volume is kept until keptUntil for a reattach.
	XDrivePhaseKept XDrivePhase = "Kept"
	// XDrivePhaseDeleting: the XDrive is being deleted; snapshots are removed per deletionPolicy.
	XDrivePhaseDeleting XDrivePhase = "Deleting"
)

// DriveHolder is the Workstation that holds a drive's lease.
type DriveHolder struct {
	// name of the Workstation, in the drive's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name,omitempty"`

	// uid of the Workstation, so that a successor of the same name is not taken for it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	UID string `json:"uid,omitempty"`

	// region is where the holder launches next. When it is not the drive's
	// region and the drive is at rest, the drive copies its restore snapshot
	// there and moves once the copy completes. The Workstation controller
	// writes it with the lease; the drive's region if absent.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	Region string `json:"region,omitempty"`

	// bounds are the limits the holder's WorkstationClass puts on what the
	// drive does at a release. The Workstation controller writes them with the
	// lease and keeps them current while the class exists; the drive applies
	// its keepVolumeForMinutes and snapshotRetention within them. Absent in a
	// lease written before the operator recorded them.
	// +optional
	Bounds *DriveBounds `json:"bounds,omitempty"`

	// launch is the holder's latest launch on the drive, written with an
	// optimistic lock before the Workstation records it: a rollback the drive
	// read before it cannot be taken after it unseen. The drive takes no
	// rollback until it sees the holder record that launch (its
	// status.launches), or a minute has passed.
	// +optional
	Launch *HolderLaunch `json:"launch,omitempty"`
}

// HolderLaunch is a launch the lease's holder is about to record.
type HolderLaunch struct {
	// attempt is the launch's number, the holder's status.launches once recorded.
	// +required
	// +kubebuilder:validation:Minimum=1
	Attempt int32 `json:"attempt,omitempty"`

	// startTime is when the holder decided to launch.
	// +required
	StartTime metav1.Time `json:"startTime,omitempty"`
}

// DriveBounds are a WorkstationClass's limits on what a drive does at a release.
type DriveBounds struct {
	// className is the WorkstationClass they were read from.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	ClassName string `json:"className,omitempty"`

	// maxKeepVolumeForMinutes caps keepVolumeForMinutes; 0 keeps no volume. Unbounded if absent.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10080
	MaxKeepVolumeForMinutes *int32 `json:"maxKeepVolumeForMinutes,omitempty"`

	// maxSnapshotRetention caps snapshotRetention, and stands for it when it
	// is absent (keep every snapshot). Unbounded if absent.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxSnapshotRetention int32 `json:"maxSnapshotRetention,omitempty"`
}

// PendingSnapshot is a snapshot of the live volume that has not completed yet.
type PendingSnapshot struct {
	// id of the snapshot.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	ID string `json:"id,omitempty"`

	// volumeID is the volume it copies.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	VolumeID string `json:"volumeID,omitempty"`

	// startTime is when CreateSnapshot was called.
	// +required
	StartTime metav1.Time `json:"startTime,omitempty"`

	// consistency is Flushed when the filesystem was unmounted first, else Crash.
	// +required
	Consistency Consistency `json:"consistency,omitempty"`

	// completionTime is when the snapshot was seen completed.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// progress is EC2's progress of the snapshot while pending, e.g. "45%", as last seen.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=8
	Progress string `json:"progress,omitempty"`
}

// Consistency says how a snapshot relates to the filesystem on the volume.
// +kubebuilder:validation:Enum=Flushed;Crash
type Consistency string

const (
	// ConsistencyFlushed: the filesystem was cleanly unmounted before the snapshot.
	ConsistencyFlushed Consistency = "Flushed"
	// ConsistencyCrash: the volume was detached without a flush, as after a power cut.
	ConsistencyCrash Consistency = "Crash"
)

// RollbackAnnotation asks a drive at rest, whose Workstation is stopped, to
// restore from one of its own older snapshots next (kubectl xdrive rollback):
// "xdrive.io/rollback: <snapshot ID>@<RFC3339 time>". A request is acted on
// once, if its time is after status.lastRollbackRequest; the operator never
// writes it, so Argo CD shows no drift.
const RollbackAnnotation = "xdrive.io/rollback"

// DriveRollback is a rollback in effect: the next restore is an older
// snapshot, and every newer one is kept, whatever the retention, until the
// next snapshot of the drive completes.
type DriveRollback struct {
	// snapshotID is the snapshot the next restore uses.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	SnapshotID string `json:"snapshotID,omitempty"`

	// snapshotTime is when that snapshot was taken; newer ones are kept.
	// +required
	SnapshotTime metav1.Time `json:"snapshotTime,omitempty"`

	// requestTime is the request's time, from the annotation.
	// +required
	RequestTime metav1.Time `json:"requestTime,omitempty"`
}

// DriveMove is a move of a drive at rest to another region: its restore
// snapshot is copied there, and the drive's region changes only once the
// copy has completed.
type DriveMove struct {
	// region the drive moves to.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	Region string `json:"region,omitempty"`

	// sourceRegion is the region of the snapshot copied: the drive's, or a
	// fork's source's when the fork restores from another region.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	SourceRegion string `json:"sourceRegion,omitempty"`

	// sourceSnapshotID is the snapshot copied: the restore snapshot when the move began.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	SourceSnapshotID string `json:"sourceSnapshotID,omitempty"`

	// copySnapshotID is the copy in region, once CopySnapshot answered.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	CopySnapshotID string `json:"copySnapshotID,omitempty"`

	// startTime is when the move was recorded, before CopySnapshot.
	// +required
	StartTime metav1.Time `json:"startTime,omitempty"`

	// progress is EC2's progress of the copy, e.g. "45%", as last seen.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=8
	Progress string `json:"progress,omitempty"`

	// attempts counts the copies begun; a failed copy is deleted and begun again.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Attempts int32 `json:"attempts,omitempty"`

	// failure says why the last copy failed, for people.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Failure string `json:"failure,omitempty"`
}

// RegionSnapshots are a drive's snapshots left in a region it moved from.
type RegionSnapshots struct {
	// region of the snapshots.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	Region string `json:"region,omitempty"`

	// latestSnapshotID is the newest of them.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	LatestSnapshotID string `json:"latestSnapshotID,omitempty"`

	// latestSnapshotTime is when the write it holds was taken.
	// +optional
	LatestSnapshotTime *metav1.Time `json:"latestSnapshotTime,omitempty"`

	// snapshotCount is how many are kept there; absent means none.
	// +optional
	// +kubebuilder:validation:Minimum=1
	SnapshotCount int32 `json:"snapshotCount,omitempty"`
}

// DriveSnapshot is one of a drive's completed snapshots.
type DriveSnapshot struct {
	// id is the EBS snapshot ID.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	ID string `json:"id,omitempty"`

	// startTime is when the snapshot was taken.
	// +required
	StartTime metav1.Time `json:"startTime,omitempty"`

	// sizeGiB is the size of the volume it was taken of.
	// +optional
	// +kubebuilder:validation:Minimum=1
	SizeGiB int32 `json:"sizeGiB,omitempty"`

	// consistency is Flushed or Crash; absent for a snapshot made outside xdrive.
	// +optional
	Consistency Consistency `json:"consistency,omitempty"`
}

// XDriveStatus is the observed state of a drive.
type XDriveStatus struct {
	// conditions describe the drive; Ready is the root, its reason the drive's phase.
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

	// phase is where the drive is in its lifecycle; the XDrive controller owns it.
	// +optional
	Phase XDrivePhase `json:"phase,omitempty"`

	// holder is the Workstation that holds the drive's lease. Only the Workstation
	// controller writes it, with an optimistic lock, so two Workstations can never both hold it.
	// +optional
	Holder *DriveHolder `json:"holder,omitempty"`

	// region is the drive's region: where its live volume, its newest
	// snapshot and its restore snapshot are. The operator's region if absent.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	Region string `json:"region,omitempty"`

	// move is a move to another region in progress.
	// +optional
	Move *DriveMove `json:"move,omitempty"`

	// elsewhere are the drive's snapshots kept in the regions it moved from,
	// pruned to its retention there, and deleted with it per deletionPolicy.
	// +optional
	// +listType=map
	// +listMapKey=region
	// +kubebuilder:validation:MaxItems=16
	Elsewhere []RegionSnapshots `json:"elsewhere,omitempty"`

	// volumeID is the live EBS volume, if any.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	VolumeID string `json:"volumeID,omitempty"`

	// availabilityZone is the zone of the live volume.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	AvailabilityZone string `json:"availabilityZone,omitempty"`

	// attachedTo is the instance the live volume was created for.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	AttachedTo string `json:"attachedTo,omitempty"`

	// release is the release of the live volume the drive acts on: after it no write can reach the volume.
	// +optional
	Release *DriveRelease `json:"release,omitempty"`

	// restoreSnapshotID is the snapshot the next volume is created from; absent means blank.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	RestoreSnapshotID string `json:"restoreSnapshotID,omitempty"`

	// pendingSnapshot is a snapshot of the live volume that has not completed yet.
	// +optional
	PendingSnapshot *PendingSnapshot `json:"pendingSnapshot,omitempty"`

	// latestSnapshotID is the newest completed snapshot of the drive.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	LatestSnapshotID string `json:"latestSnapshotID,omitempty"`

	// latestSnapshotTime is when the newest completed snapshot was started.
	// +optional
	LatestSnapshotTime *metav1.Time `json:"latestSnapshotTime,omitempty"`

	// snapshotCount is how many completed snapshots the drive owns; absent means none.
	// +optional
	// +kubebuilder:validation:Minimum=1
	SnapshotCount int32 `json:"snapshotCount,omitempty"`

	// snapshots are the drive's completed snapshots, newest first, as last
	// listed (at most 100): what kubectl xdrive snapshots shows.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	Snapshots []DriveSnapshot `json:"snapshots,omitempty"`

	// rollback makes the next restore an older snapshot, while it is in effect.
	// +optional
	Rollback *DriveRollback `json:"rollback,omitempty"`

	// lastRollbackRequest is the time of the newest rollback request acted
	// on, applied or refused; older requests are ignored.
	// +optional
	LastRollbackRequest *metav1.Time `json:"lastRollbackRequest,omitempty"`

	// sizeGiB is the size of the live volume, or of the newest snapshot.
	// +optional
	// +kubebuilder:validation:Minimum=1
	SizeGiB int32 `json:"sizeGiB,omitempty"`

	// keptUntil is when the kept volume (phase Kept) is deleted, unless reattached first.
	// +optional
	KeptUntil *metav1.Time `json:"keptUntil,omitempty"`

	// reattachedAt is when the live volume was reattached to attachedTo: a
	// snapshot of it from before then lacks the writes since.
	// +optional
	ReattachedAt *metav1.Time `json:"reattachedAt,omitempty"`

	// trailingSnapshot is the snapshot of an earlier release that was still
	// pending when the volume was reattached; it is recorded when it completes.
	// +optional
	TrailingSnapshot *PendingSnapshot `json:"trailingSnapshot,omitempty"`

	// failedReattach is the last reattach of the volume that failed; the
	// Workstation then ends that instance and restores from the snapshot.
	// +optional
	FailedReattach *FailedReattach `json:"failedReattach,omitempty"`

	// initialization is how far the live volume has loaded its blocks from its snapshot.
	// +optional
	Initialization *VolumeInitialization `json:"initialization,omitempty"`

	// cost estimates what the drive's own storage (volumes and snapshots) has
	// cost over its life, in USD.
	// +optional
	Cost *DriveCost `json:"cost,omitempty"`
}

// FailedReattach is a reattach of the drive's volume that failed.
type FailedReattach struct {
	// instanceID is the instance the volume was to be attached to.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	InstanceID string `json:"instanceID,omitempty"`

	// volumeID is the volume.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	VolumeID string `json:"volumeID,omitempty"`

	// reason says why, for people.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`
}

// InitializationTypePrewarm is status.initialization.type while the
// instance's read of every block (spec.prewarm) is ahead of EBS's report.
const InitializationTypePrewarm = "prewarm"

// VolumeInitialization is the progress of a restored volume loading its blocks.
type VolumeInitialization struct {
	// volumeID is the volume.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	VolumeID string `json:"volumeID,omitempty"`

	// percent is how much of the volume is initialized, 0-100; absent when it has nothing to load (a blank volume).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percent *int32 `json:"percent,omitempty"`

	// type is default (lazy loading), provisioned-rate or volume-copy, as EBS
	// reports it, or prewarm while the instance's read of every block
	// (spec.prewarm) is ahead of EBS's report.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	Type string `json:"type,omitempty"`

	// estimatedCompletionTime is when EBS expects the initialization to end
	// (provisioned rate only), or, without EBS's estimate, when the prewarm expects to.
	// +optional
	EstimatedCompletionTime *metav1.Time `json:"estimatedCompletionTime,omitempty"`

	// readError is why the last read of EBS's progress failed (percent is
	// then the last one read, if any); it is read again a minute later, and
	// the drive's lifecycle goes on meanwhile.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	ReadError string `json:"readError,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// The category (`kubectl get xdrive-all` lists both kinds) must differ from every
// plural, singular and short name: kubectl expands a category before a resource
// name, so a category "xdrive" would shadow the XDrive kind's singular name.
// +kubebuilder:resource:shortName=xd,categories=xdrive-all
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Size",type=integer,JSONPath=`.spec.sizeGiB`
// +kubebuilder:printcolumn:name="Workstation",type=string,JSONPath=`.status.holder.name`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,priority=1
// +kubebuilder:printcolumn:name="Zone",type=string,JSONPath=`.status.availabilityZone`,priority=1
// +kubebuilder:printcolumn:name="Volume",type=string,JSONPath=`.status.volumeID`,priority=1
// +kubebuilder:printcolumn:name="Initialized",type=integer,JSONPath=`.status.initialization.percent`,priority=1
// +kubebuilder:printcolumn:name="Snapshot",type=string,JSONPath=`.status.latestSnapshotID`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// XDrive is a named, persistent drive kept as EBS snapshots while nothing runs.
type XDrive struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +required
	Spec XDriveSpec `json:"spec,omitzero"`
	// status is the observed state, written by the controller.
	// +optional
	Status XDriveStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// XDriveList is a list of XDrives.
type XDriveList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []XDrive `json:"items"`
}

// IsEncrypted reports whether the drive's volumes and snapshots are encrypted (the default).
func (s XDriveSpec) IsEncrypted() bool { return s.Encrypted == nil || *s.Encrypted }

// PrewarmOn reports whether the instance reads every block of a restored volume (spec.prewarm).
func (s XDriveSpec) PrewarmOn() bool { return s.Prewarm != nil && *s.Prewarm }

// Bounds are the lease's bounds (holder.bounds): the one read of them. Nil
// when no lease records any; the spec then applies as it is.
func (s XDriveStatus) Bounds() *DriveBounds {
	if s.Holder == nil {
		return nil
	}
	return s.Holder.Bounds
}

// BoundedKeepVolume is how long a released volume is kept for a reattach
// (zero: not kept): spec.keepVolumeForMinutes within the lease's bounds.
// capped reports that the bounds cut it.
func (d *XDrive) BoundedKeepVolume() (keep time.Duration, capped bool) {
	minutes := d.Spec.KeepVolumeForMinutes
	if b := d.Status.Bounds(); b != nil && b.MaxKeepVolumeForMinutes != nil && minutes > *b.MaxKeepVolumeForMinutes {
		minutes, capped = *b.MaxKeepVolumeForMinutes, true
	}
	return time.Duration(minutes) * time.Minute, capped
}

// BoundedSnapshotRetention is how many completed snapshots a prune keeps
// (zero: all): spec.snapshotRetention within the lease's bounds, whose
// maximum also stands for an absent retention. capped reports that the
// bounds cut it.
func (d *XDrive) BoundedSnapshotRetention() (keep int32, capped bool) {
	keep = d.Spec.SnapshotRetention
	if b := d.Status.Bounds(); b != nil && b.MaxSnapshotRetention > 0 && (keep == 0 || keep > b.MaxSnapshotRetention) {
		return b.MaxSnapshotRetention, true
	}
	return keep, false
}

// HolderName names the Workstation holding the drive's lease, or "".
func (s XDriveStatus) HolderName() string {
	if s.Holder == nil {
		return ""
	}
	return s.Holder.Name
}

// PendingSnapshotID names the snapshot of the live volume in progress, or "".
func (s XDriveStatus) PendingSnapshotID() string {
	if s.PendingSnapshot == nil || s.Phase != XDrivePhaseSnapshotting {
		return ""
	}
	return s.PendingSnapshot.ID
}
