package agent

import (
	"context"

	"github.com/xdrive-io/xdrive/internal/sshx"
)

// SSHRunner runs commands over SSH, pinning each target's host key.
type SSHRunner struct {
	// Resolver maps instance addresses to what is dialed; tests and the demo
	// point every instance at 127.0.0.1.
	Resolver sshx.Resolver
	Retry    sshx.RetryPolicy
}

// Run connects to the target and runs the command.
func (r SSHRunner) Run(ctx context.Context, t Target, command string) ([]byte, error) {
	c, err := sshx.New(sshx.Config{PrivateKeyPEM: t.ClientKey, HostKey: t.HostKey, Resolver: r.Resolver, Retry: r.Retry})
	if err != nil {
		return nil, err
	}
	return c.Run(ctx, t.Address, command)
}
