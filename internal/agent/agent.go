// Package agent talks to the instance side of a Workstation: the bootstrap's
// xdrive-ctl command, reached over SSH with a pinned host key.
package agent

import (
	"context"

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
}

// Status is what `xdrive-ctl status` reports.
type Status = bootstrap.Status

// Agent runs the instance-side commands.
type Agent interface {
	// Status reports the drive and the containers.
	Status(ctx context.Context, t Target) (Status, error)
	// Release commits the containers, stops Docker, syncs and unmounts the drive.
	Release(ctx context.Context, t Target) error
}

// Runner runs one command on a target.
type Runner interface {
	Run(ctx context.Context, t Target, command string) ([]byte, error)
}

// Commands are the instance-side commands run over SSH.
const (
	StatusCommand  = bootstrap.CtlPath + " status"
	ReleaseCommand = bootstrap.CtlPath + " release"
)

// Remote is the Agent that runs xdrive-ctl through a Runner.
type Remote struct{ Runner Runner }

// Status runs `xdrive-ctl status` and parses its JSON.
func (r Remote) Status(ctx context.Context, t Target) (Status, error) {
	out, err := r.Runner.Run(ctx, t, StatusCommand)
	if err != nil {
		return Status{}, err
	}
	return bootstrap.ParseStatus(out)
}

// Release runs `xdrive-ctl release`.
func (r Remote) Release(ctx context.Context, t Target) error {
	_, err := r.Runner.Run(ctx, t, ReleaseCommand)
	return err
}
