package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/xdrive-io/xdrive/internal/plugin"
	"github.com/xdrive-io/xdrive/test/instancesim"
	"github.com/xdrive-io/xdrive/test/instancevm"
)

// instanceSide plays the EC2 instances: simulated (test/instancesim,
// --instances=sim) or real VMs (test/instancevm, --instances=vm).
type instanceSide interface {
	Resolve(ctx context.Context, addr string) (string, error)
	Notice(instanceID string) error
	Instance(id string) (host, bool)
	Launched() []string
	Running() []string
	Failed() error
	Kill()
}

// host is one instance, as the user works on it.
type host interface {
	ReadDrive(ctx context.Context, mountPath, name string) (string, error)
	AppendDrive(ctx context.Context, mountPath, name, line string) error
	Docker(ctx context.Context, args ...string) (string, error)
	// Released: the instance released (flushed and unmounted) its drive.
	Released() bool
	// SSHCommands counts the operator's commands; ok is false where they are not counted.
	SSHCommands() (status, release int, ok bool)
	// SetLogin shows (or, with "", ends) a login session to the idle signals; ok is false where it cannot.
	SetLogin(who string) (ok bool, err error)
}

type simSide struct{ *instancesim.Sim }

func (s simSide) Notice(id string) error { s.Sim.Notice(id); return nil }

func (s simSide) Instance(id string) (host, bool) {
	h, ok := s.Sim.Instance(id)
	if !ok {
		return nil, false
	}
	return simHost{h}, true
}

type simHost struct{ *instancesim.Instance }

func (h simHost) ReadDrive(_ context.Context, mountPath, name string) (string, error) {
	return h.Instance.ReadDrive(mountPath, name)
}

func (h simHost) AppendDrive(_ context.Context, mountPath, name, line string) error {
	return h.Instance.AppendDrive(mountPath, name, line)
}

func (h simHost) SSHCommands() (int, int, bool) {
	s, r := h.Instance.SSHCommands()
	return s, r, true
}

func (h simHost) SetLogin(who string) (bool, error) { return true, h.SetShimState("who", who) }

// vmSide runs each instance as a real VM. The user's commands on a VM go
// the way a user's do: `kubectl xdrive ssh WORKSTATION --operator-key`, with
// the address map to the VM's forwarded sshd.
type vmSide struct {
	*instancevm.Fleet
	opts func() plugin.Options // the plugin's client and namespace
	ws   string                // the Workstation, set once the scenario knows it
}

func (s *vmSide) Instance(id string) (host, bool) {
	v, ok := s.VM(id)
	if !ok {
		return nil, false
	}
	return vmHost{side: *s, vm: v}, true
}

type vmHost struct {
	side vmSide
	vm   *instancevm.FleetVM
}

// run runs a shell command on the VM as root, through kubectl xdrive ssh.
func (h vmHost) run(ctx context.Context, cmd string) (string, error) {
	loopback, err := h.side.Resolve(ctx, h.vm.Address)
	if err != nil {
		return "", err
	}
	var out, errOut bytes.Buffer
	o := h.side.opts()
	o.Stdout, o.Stderr = &out, &errOut
	o.AddressMap = map[string]string{h.vm.Address: loopback}
	if err := plugin.Run(ctx, o, []string{"ssh", h.side.ws, "--operator-key", "--", cmd}); err != nil {
		return out.String(), fmt.Errorf("on %s: %q: %w: %s", h.vm.ID, cmd, err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

func (h vmHost) ReadDrive(ctx context.Context, mountPath, name string) (string, error) {
	return h.run(ctx, "mountpoint -q "+shq(mountPath)+" && cat "+shq(mountPath+"/"+name))
}

func (h vmHost) AppendDrive(ctx context.Context, mountPath, name, line string) error {
	_, err := h.run(ctx, "mountpoint -q "+shq(mountPath)+" && echo "+shq(line)+" >>"+shq(mountPath+"/"+name)+" && sync")
	return err
}

func (h vmHost) Docker(ctx context.Context, args ...string) (string, error) {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shq(a)
	}
	return h.run(ctx, "docker "+strings.Join(q, " "))
}

func (h vmHost) Released() bool { return h.vm.Released() }

func (h vmHost) SSHCommands() (int, int, bool) { return 0, 0, false }

func (h vmHost) SetLogin(string) (bool, error) { return false, nil }

// shq quotes s for a POSIX shell.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
