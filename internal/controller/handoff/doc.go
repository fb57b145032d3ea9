// Package handoff is the one place where a controller reads the other
// kind's status: every question the XDrive controller asks about the
// Workstation holding its lease, and every question the Workstation
// controller asks about its XDrive, is a named function here. The drive's
// wake-up predicate on Workstation changes is built beside them, from the
// same fields (HolderView). TestNoCrossReads keeps it so.
package handoff
