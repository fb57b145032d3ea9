package phases

import "github.com/xdrive-io/xdrive/api/v1alpha1"

// Workstation phases, short for the table.
const (
	wsPending     = v1alpha1.WorkstationPhasePending
	wsLaunching   = v1alpha1.WorkstationPhaseLaunching
	wsRunning     = v1alpha1.WorkstationPhaseRunning
	wsReleasing   = v1alpha1.WorkstationPhaseReleasing
	wsTerminating = v1alpha1.WorkstationPhaseTerminating
	wsStopped     = v1alpha1.WorkstationPhaseStopped
)

// Workstation is the Workstation's state machine.
var Workstation = Table[v1alpha1.WorkstationPhase]{Kind: "Workstation", Changes: []Change[v1alpha1.WorkstationPhase]{
	{"", wsPending, ""},
	{wsPending, wsLaunching, "wants Running, its class allows it, holds the lease, drive Archived,\nno unarchived drive volume, no stray instance,\nan offering — the launch is written down first"},
	{wsPending, wsRunning, "a live instance of this UID found by its tags"},
	{wsLaunching, wsRunning, "RunInstances (deterministic client token), or the instance found by its tags"},
	{wsLaunching, wsPending, "no capacity (offering avoided) / restore snapshot gone / invalid spec / the class refuses it"},
	{wsLaunching, wsStopped, "stopped before RunInstances"},
	{wsRunning, wsReleasing, "stop, delete, spot notice, rebalance (Move),\nidle past spec.idleStop.after (a check at the deadline saw nothing)"},
	{wsRunning, wsTerminating, "the instance's own watcher released the drive (flushed),\nor the instance is shutting-down/terminated (crash release)"},
	{wsReleasing, wsTerminating, "`xdrive-ctl release` succeeded (flushed release),\nor the deadline passed (crash release)"},
	{wsTerminating, wsPending, "EC2 says terminated, and the user wants Running"},
	{wsTerminating, wsStopped, "EC2 says terminated, and the user wants Stopped\n(or interruptionPolicy Stop halted this generation)"},
	{wsPending, wsStopped, "stopped or deleted before a launch was written down"},
	{wsStopped, wsPending, "wants Running"},
	{wsStopped, wsRunning, "a live instance of this UID found by its tags (a launch whose status write was lost)"},
	{wsStopped, "", "deleted, no stray instance, lease given back"},
}}

// XDrive phases, short for the table.
const (
	xdPending        = v1alpha1.XDrivePhasePending
	xdArchived       = v1alpha1.XDrivePhaseArchived
	xdRestoring      = v1alpha1.XDrivePhaseRestoring
	xdAttached       = v1alpha1.XDrivePhaseAttached
	xdDetaching      = v1alpha1.XDrivePhaseDetaching
	xdSnapshotting   = v1alpha1.XDrivePhaseSnapshotting
	xdDeletingVolume = v1alpha1.XDrivePhaseDeletingVolume
	xdKept           = v1alpha1.XDrivePhaseKept
	xdDeleting       = v1alpha1.XDrivePhaseDeleting
)

// XDrive is the drive's state machine.
var XDrive = Table[v1alpha1.XDrivePhase]{Kind: "XDrive", Changes: []Change[v1alpha1.XDrivePhase]{
	{"", xdPending, ""},
	{xdPending, xdArchived, "restore source resolved (newest completed snapshot, else spec.source, else blank)"},
	{xdPending, xdPending, "every snapshot gone from outside (SnapshotMissing): never hand out a blank drive for a drive that had data"},
	{xdArchived, xdPending, "every snapshot gone from outside (SnapshotMissing), seen at a new generation or a failed restore"},
	{xdArchived, xdRestoring, "a volume of this drive found by its tags (drive UID, drive device or drive snapshot)"},
	{xdPending, xdRestoring, "a volume of this drive found by its tags, before the first archive"},
	{xdDeleting, xdRestoring, "a volume of this drive found while the XDrive is deleted: archived before it goes"},
	{xdRestoring, xdAttached, "its instance is running"},
	{xdAttached, xdSnapshotting, "the holder recorded a flushed release of this instance"},
	{xdRestoring, xdSnapshotting, "a flushed release recorded before the instance ran"},
	{xdAttached, xdDetaching, "crash release, instance shutting-down/terminated, or no Workstation vouches for the instance"},
	{xdRestoring, xdDetaching, "a crash release, or the instance gone, before it ran"},
	{xdDetaching, xdRestoring, "the holder vouches for the instance again (its status write was lost): the volume is live"},
	{xdDetaching, xdSnapshotting, "the volume is detached (available): no write can follow"},
	{xdSnapshotting, xdDeletingVolume, "the snapshot completed, and is recorded"},
	{xdSnapshotting, xdSnapshotting, "failed or vanished: taken again from the same release"},
	{xdSnapshotting, xdDetaching, "the snapshot of a crash release failed or vanished: taken again once the volume is seen detached"},
	{xdDeletingVolume, xdSnapshotting, "the snapshot is gone before the volume was deleted: taken again from the flushed release"},
	{xdDeletingVolume, xdDetaching, "the snapshot of a crash release is gone; or MayDeleteVolume refuses (never delete on doubt)"},
	{xdDeletingVolume, xdKept, "keepVolumeForMinutes (within the lease's bounds) is set and the holder has not declined the volume"},
	{xdKept, xdDeletingVolume, "keptUntil passed, the holder declined it, or the XDrive is deleted"},
	{xdSnapshotting, xdRestoring, "the holder's new instance in the volume's zone asked for it (reattachVolumeID):\nAttachVolume once it is detached; the pending snapshot goes on as trailingSnapshot"},
	{xdDeletingVolume, xdRestoring, "the same (reattach)"},
	{xdKept, xdRestoring, "the same (reattach after a Start)"},
	{xdDeletingVolume, xdArchived, "the snapshot is still there, the volume detached and deleted"},
	{xdRestoring, xdArchived, "VolumeLost: the volume vanished from outside before it was archived"},
	{xdAttached, xdArchived, "VolumeLost: the volume vanished from outside"},
	{xdDetaching, xdArchived, "VolumeLost: the volume vanished from outside"},
	{xdSnapshotting, xdArchived, "VolumeLost: the volume vanished from outside"},
	{xdArchived, xdDeleting, "XDrive deleted and no holder"},
	{xdPending, xdDeleting, "XDrive deleted before its first archive, and no holder"},
	{xdDeleting, "", "snapshots deleted (deletionPolicy Delete) or kept (Retain)"},
}}
