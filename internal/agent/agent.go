// Package agent is the one interface between the controllers and an
// instance: the bootstrap's xdrive-ctl command, run over SSH with a pinned
// host key. Agent is what the controllers call; SSH is its implementation,
// built on internal/sshx. Tests that need no instance use a fake Agent
// (test/harness.FakeAgent); tests that need one simulate it
// (test/instancesim) and use SSH.
package agent

import (
	"context"
	"regexp"

	"github.com/xdrive-io/xdrive/internal/bootstrap"
)

// Target is how to reach one instance.
type Target struct {
	// Address is the instance's IP; the SSH resolver may map it elsewhere.
	Address string
	// HostKey is the instance's pinned host public key, authorized_keys format.
	HostKey string
	// ClientKey is the operator's private key for this Workstation, OpenSSH PEM.
	ClientKey []byte
	// DriveVolumeID, once known, is passed with every status call: the
	// instance's boot waits for it to find the drive by its NVMe serial.
	DriveVolumeID string
	// Idle, when set, asks the status call for the activity signals.
	Idle *bootstrap.IdleCheck
	// Notice is what a notify call tells the instance's users.
	Notice *bootstrap.Notice
	// Release is the kind and deadline a release call passes on: its
	// preStop hooks get what the deadline leaves after the flush.
	Release bootstrap.Release
}

// Status is what `xdrive-ctl status` reports.
type Status = bootstrap.Status

// Agent runs the instance-side commands.
type Agent interface {
	// Status reports the drive and the containers.
	Status(ctx context.Context, t Target) (Status, error)
	// Release stops the containers and Docker, syncs and unmounts the drive,
	// and reports the status after it: whether a spot notice came first.
	Release(ctx context.Context, t Target) (Status, error)
	// Notify tells the instance's users of t.Notice: a wall message, and
	// /run/xdrive/notice for programs.
	Notify(ctx context.Context, t Target) error
}

// Commands are the instance-side commands run over SSH.
const (
	StatusCommand  = bootstrap.CtlPath + " status"
	ReleaseCommand = bootstrap.CtlPath + " release"
)

// StatusCommandFor is the status command for a target: with the drive's
// volume ID when known, and then the idle check if asked. The ID is checked
// and the idle check is base64, so both are safe in a command line.
func StatusCommandFor(t Target) string {
	if volumeIDRE.MatchString(t.DriveVolumeID) {
		cmd := StatusCommand + " --drive " + t.DriveVolumeID
		if t.Idle != nil {
			cmd += t.Idle.StatusArgs()
		}
		return cmd
	}
	return StatusCommand
}

var volumeIDRE = regexp.MustCompile(`^vol-[0-9a-f]{8,17}$`)
