package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConditionReady is the root condition of both kinds, computed from the others.
const ConditionReady = "Ready"

// XDrive condition types.
const (
	// ConditionBound is True while a Workstation holds the drive.
	ConditionBound = "Bound"
	// ConditionVolumeReady is True when the drive is at rest: archived, or attached.
	ConditionVolumeReady = "VolumeReady"
	// ConditionSnapshotsHealthy is False when the last snapshot failed.
	ConditionSnapshotsHealthy = "SnapshotsHealthy"
	// ConditionResizing is True while a ModifyVolume is in progress.
	ConditionResizing = "Resizing"
	// ConditionDeletionBlocked is True while deletion waits for the drive to be released.
	ConditionDeletionBlocked = "DeletionBlocked"
	// ConditionHydrated is False while the live volume loads its blocks from its snapshot. Not part of Ready.
	ConditionHydrated = "Hydrated"
)

// ConditionClassAllowed is False when the Workstation's class refuses it; nothing is then launched.
const ConditionClassAllowed = "ClassAllowed"

// Workstation condition types.
const (
	ConditionLaunched          = "Launched"
	ConditionRunning           = "Running"
	ConditionDriveAttached     = "DriveAttached"
	ConditionDriveMounted      = "DriveMounted"
	ConditionContainersRunning = "ContainersRunning"
	// ConditionInterrupted is True from a spot interruption notice until the relaunch.
	ConditionInterrupted = "Interrupted"
	// ConditionContainersPreserved is False when the instance could not keep
	// every container's changes (a failed commit or flatten on a spec change)
	// or Docker keeps data off the drive. It is not part of Ready.
	ConditionContainersPreserved = "ContainersPreserved"
)

// XDriveDependents are the conditions XDrive's Ready is computed from.
var XDriveDependents = []string{ConditionVolumeReady, ConditionSnapshotsHealthy}

// WorkstationDependents are the conditions Workstation's Ready is computed from.
// ClassAllowed comes last, so that Ready's message stays the launch's.
var WorkstationDependents = []string{
	ConditionLaunched, ConditionRunning, ConditionDriveAttached, ConditionDriveMounted, ConditionContainersRunning,
	ConditionClassAllowed,
}

// Reasons. XDrive's Ready reason is its state: Archived, Restoring, Attached, Snapshotting.
const (
	ReasonReconciling     = "Reconciling"
	ReasonArchived        = "Archived"
	ReasonRestoring       = "Restoring"
	ReasonAttached        = "Attached"
	ReasonSnapshotting    = "Snapshotting"
	ReasonDeletingVolume  = "DeletingVolume"
	ReasonBound           = "Bound"
	ReasonUnbound         = "Unbound"
	ReasonDriveInUse      = "DriveInUse"
	ReasonSnapshotFailed  = "SnapshotFailed"
	ReasonSnapshotsOK     = "SnapshotsCompleted"
	ReasonSourceNotFound  = "SourceNotFound"
	ReasonResizing        = "Resizing"
	ReasonResized         = "Resized"
	ReasonAWSError        = "AWSError"
	ReasonDriveNotFound   = "DriveNotFound"
	ReasonWaitingForDrive = "WaitingForDrive"
	ReasonStopped         = "Stopped"
	ReasonStopping        = "Stopping"
	ReasonLaunching       = "Launching"
	// ReasonConfirmingLaunch: a dropped launch's instance is looked for before the next.
	ReasonConfirmingLaunch   = "ConfirmingLaunch"
	ReasonNoCapacity         = "NoCapacity"
	ReasonInstancePending    = "InstancePending"
	ReasonInstanceRunning    = "InstanceRunning"
	ReasonInstanceGone       = "InstanceGone"
	ReasonSpotInterrupted    = "SpotInterrupted"
	ReasonRebalancing        = "Rebalancing"
	ReasonSSHUnreachable     = "SSHUnreachable"
	ReasonMounted            = "Mounted"
	ReasonNotMounted         = "NotMounted"
	ReasonVolumeMismatch     = "VolumeMismatch"
	ReasonContainersUp       = "ContainersUp"
	ReasonNoContainers       = "NoContainers"
	ReasonContainersDown     = "ContainersDown"
	ReasonContainersStarting = "ContainersStarting"
	ReasonReady              = "Ready"
	ReasonCrashConsistent    = "CrashConsistent"
	ReasonInvalidSpec        = "InvalidSpec"
	ReasonPending            = "Pending"
	ReasonDetaching          = "Detaching"
	ReasonSnapshotMissing    = "SnapshotMissing"
	ReasonRestoreMissing     = "RestoreSnapshotMissing"
	ReasonVolumeLost         = "VolumeLost"
	ReasonPreserved          = "Preserved"
	ReasonCarryOverFailed    = "CarryOverFailed"
	ReasonStoreOffDrive      = "StoreOffDrive"
	// ReasonIdleStopped: stopped by spec.idleStop; spec.state is still Running.
	ReasonIdleStopped = "IdleStopped"
	// ReasonIdleStopSoon (an Event): the idle stop comes in 5 minutes.
	ReasonIdleStopSoon = "IdleStopSoon"
	// ReasonIdleNoticeFailed (an Event): the warning did not reach the
	// instance (its wall message and /run/xdrive/notice); the stop is unchanged.
	ReasonIdleNoticeFailed = "IdleNoticeFailed"
	// ReasonIdleStopExtended (an Event): `xdrive-ctl extend` on the instance postponed the stop.
	ReasonIdleStopExtended = "IdleStopExtended"
	ReasonResumed          = "Resumed"
	// ReasonBudgetExceeded: stopped by the class's monthly budget until the
	// month turns or the limit is raised; spec.state is still Running.
	ReasonBudgetExceeded = "BudgetExceeded"
	// ReasonBudgetWarning (an Event): 80% of the class's monthly budget is spent.
	ReasonBudgetWarning = "BudgetWarning"
	// ReasonBudgetRestored (an Event): a budget stop ended (the limit was raised or removed, or the month turned).
	ReasonBudgetRestored = "BudgetRestored"
	// ReasonCappedByClass (an XDrive Event): a release applied the lease's
	// bounds (holder.bounds) over keepVolumeForMinutes or snapshotRetention.
	ReasonCappedByClass = "CappedByClass"
)

// ReasonRetrying is set, with status Unknown, when a call that is not AWS's
// failed (the Kubernetes API, say); the operator retries. AWS failures set
// ReasonAWSError.
const ReasonRetrying = "Retrying"

// Reasons of ClassAllowed, and ForeignSnapshot of an XDrive's VolumeReady too.
const (
	ReasonClassAllowed        = "ClassAllowed"
	ReasonClassNotFound       = "ClassNotFound"
	ReasonNoDefaultClass      = "NoDefaultClass"
	ReasonNamespaceNotAllowed = "NamespaceNotAllowed"
	ReasonClassViolation      = "ClassViolation"
	ReasonForeignSnapshot     = "ForeignSnapshot"
	// ReasonForkNotAllowed: the drive would be restored from a snapshot of an
	// XDrive in another namespace, and the class's allowForkFrom does not select it.
	ReasonForkNotAllowed  = "ForkNotAllowed"
	ReasonKept            = "Kept"
	ReasonRolledBack      = "RolledBack"
	ReasonRollbackRefused = "RollbackRefused"
	// ReasonMoving: the drive's restore snapshot is being copied to the region its Workstation launches in.
	ReasonMoving = "Moving"
	// ReasonMoved: the drive moved to another region (or stopped moving).
	ReasonMoved = "Moved"
	// ReasonMoveFailed: a copy to another region failed or vanished; it is begun again.
	ReasonMoveFailed = "MoveFailed"
	// ReasonMoveRefused: the drive does not move (a rollback in effect, or a region the operator does not serve).
	ReasonMoveRefused    = "MoveRefused"
	ReasonReattached     = "Reattached"
	ReasonReattachFailed = "ReattachFailed"
	ReasonInitializing   = "Initializing"
	ReasonInitialized    = "Initialized"
)

// SetCondition sets one condition, stamped with the generation it was computed for.
func SetCondition(conds *[]metav1.Condition, generation int64, condType string, status metav1.ConditionStatus, reason, message string) bool {
	return meta.SetStatusCondition(conds, metav1.Condition{
		Type:               condType,
		Status:             status,
		ObservedGeneration: generation,
		Reason:             reason,
		Message:            message,
		// At the API server's precision, so a status read back compares equal.
		LastTransitionTime: metav1.Now().Rfc3339Copy(),
	})
}

// InitConditions marks every missing dependent as Unknown, as on a first visit.
func InitConditions(conds *[]metav1.Condition, generation int64, dependents []string) {
	for _, t := range append([]string{ConditionReady}, dependents...) {
		if meta.FindStatusCondition(*conds, t) == nil {
			SetCondition(conds, generation, t, metav1.ConditionUnknown, ReasonReconciling, "Reconciliation has started")
		}
	}
}

// SetReady computes Ready from the dependents. Ready is True only when every
// dependent is True at this generation; its reason is then trueReason, or the
// first dependent's reason if trueReason is empty. Otherwise Ready copies the
// first False dependent, or else the first one that is Unknown, stale or missing.
func SetReady(conds *[]metav1.Condition, generation int64, trueReason string, dependents []string) {
	var firstFalse, firstUnknown *metav1.Condition
	for _, t := range dependents {
		c := meta.FindStatusCondition(*conds, t)
		switch {
		case c == nil || c.ObservedGeneration != generation || c.Status == metav1.ConditionUnknown:
			if firstUnknown == nil {
				firstUnknown = staleOrMissing(c, t)
			}
		case c.Status == metav1.ConditionFalse && firstFalse == nil:
			firstFalse = c
		}
	}
	switch {
	case firstFalse != nil:
		SetCondition(conds, generation, ConditionReady, metav1.ConditionFalse, firstFalse.Reason, firstFalse.Message)
	case firstUnknown != nil:
		SetCondition(conds, generation, ConditionReady, metav1.ConditionUnknown, firstUnknown.Reason, firstUnknown.Message)
	default:
		reason, message := trueReason, ""
		if len(dependents) > 0 {
			first := meta.FindStatusCondition(*conds, dependents[0])
			message = first.Message
			if reason == "" {
				reason = first.Reason
			}
		}
		if reason == "" {
			reason = ReasonReady
		}
		SetCondition(conds, generation, ConditionReady, metav1.ConditionTrue, reason, message)
	}
}

// ReadyReason returns the status and reason of the Ready condition.
func ReadyReason(conds []metav1.Condition) (metav1.ConditionStatus, string) {
	if c := meta.FindStatusCondition(conds, ConditionReady); c != nil {
		return c.Status, c.Reason
	}
	return metav1.ConditionUnknown, ""
}

func staleOrMissing(c *metav1.Condition, condType string) *metav1.Condition {
	switch {
	case c == nil:
		return &metav1.Condition{Reason: ReasonReconciling, Message: condType + " has not been observed yet"}
	case c.Status != metav1.ConditionUnknown:
		return &metav1.Condition{Reason: ReasonReconciling, Message: condType + " has not been observed for this generation yet"}
	default:
		return c
	}
}
