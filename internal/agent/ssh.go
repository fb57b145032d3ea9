package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/sshx"
)

// SSH is the Agent of the operator: it runs xdrive-ctl on the instance over
// SSH (internal/sshx), logging in with the Target's client key and pinning
// its host key. The zero value dials each instance's address on port 22
// with sshx's default retries.
type SSH struct {
	// Resolver maps instance addresses to what is dialed; tests and the demo
	// point every instance at a loopback sshd (test/instancesim).
	Resolver sshx.Resolver
	// Retry bounds the retries of connection-level failures.
	Retry sshx.RetryPolicy
}

var _ Agent = SSH{}

// Status runs `xdrive-ctl status` and parses its JSON.
func (s SSH) Status(ctx context.Context, t Target) (Status, error) {
	out, err := s.run(ctx, t, StatusCommandFor(t))
	if err != nil {
		return Status{}, err
	}
	return bootstrap.ParseStatus(out)
}

// Release runs `xdrive-ctl release` with t.Release's kind and deadline. It
// prints the preStop hooks' outcomes, and spot-notice when the instance's
// watcher saw one.
func (s SSH) Release(ctx context.Context, t Target) (Status, error) {
	args, err := t.Release.Args()
	if err != nil {
		return Status{}, fmt.Errorf("release: %w", err)
	}
	out, err := s.run(ctx, t, ReleaseCommand+args)
	if err != nil {
		return Status{}, err
	}
	return bootstrap.ParseRelease(out), nil
}

// Notify runs `xdrive-ctl notify` with t.Notice.
func (s SSH) Notify(ctx context.Context, t Target) error {
	if t.Notice == nil {
		return errors.New("notify: no notice to send")
	}
	args, err := t.Notice.NotifyArgs()
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	_, err = s.run(ctx, t, bootstrap.CtlPath+args)
	return err
}

// run connects to the target and runs one command; see sshx.Client.Run for
// what is retried.
func (s SSH) run(ctx context.Context, t Target, command string) ([]byte, error) {
	c, err := sshx.New(sshx.Config{PrivateKeyPEM: t.ClientKey, HostKey: t.HostKey, Resolver: s.Resolver, Retry: s.Retry})
	if err != nil {
		return nil, err
	}
	return c.Run(ctx, t.Address, command)
}
