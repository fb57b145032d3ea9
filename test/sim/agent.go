package sim

import (
	"context"
	"errors"
	"time"

	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/test/fakeec2"
)

// Agent plays the instance side: the bootstrap mounts the drive once the
// instance runs, `release` flushes and unmounts it, and the instance's own
// watcher may release it on a notice. Only a mounted drive takes writes.
type Agent struct {
	w        *World
	mounted  map[string]bool
	released map[string]bool
	self     map[string]bool
	// busy instances have a user logged in: the idle auto-stop's ssh signal is active.
	busy map[string]bool
	// FailRate is the chance that an SSH call fails.
	FailRate float64
	// shutDown are the instances whose shutdown has written its last data.
	shutDown map[string]bool
}

// NewAgent returns the instance side of a world.
func NewAgent(w *World) *Agent {
	return &Agent{w: w, mounted: map[string]bool{}, released: map[string]bool{}, self: map[string]bool{}, busy: map[string]bool{}, shutDown: map[string]bool{}}
}

var errUnreachable = errors.New("ssh: connection refused (simulated)")

func (a *Agent) at(addr string) (fakeec2.InstanceView, bool) {
	for _, i := range a.w.allInstances() {
		if i.PublicIP == addr && i.State == fakeec2.StateRunning {
			return i, true
		}
	}
	return fakeec2.InstanceView{}, false
}

// Status reports the drive as the bootstrap would.
func (a *Agent) Status(_ context.Context, t agent.Target) (agent.Status, error) {
	i, ok := a.at(t.Address)
	if !ok || a.w.Rng.Float64() < a.FailRate {
		return agent.Status{}, errUnreachable
	}
	st := agent.Status{Phase: bootstrap.PhaseReady, Containers: map[string]string{}, Released: a.released[i.ID], SpotNotice: a.self[i.ID]}
	if st.SpotNotice {
		a.w.noticeSeen(i.ID)
	}
	if a.Mounted(i.ID) {
		st.Mounted, st.VolumeID = true, a.driveVolume(i.ID)
	}
	if t.Idle != nil {
		ssh := bootstrap.SignalIdle
		if a.busy[i.ID] {
			ssh = bootstrap.SignalActive
		}
		st.Activity = []bootstrap.Signal{{Name: "ssh", State: ssh}, {Name: "cpu", State: bootstrap.SignalIdle}}
	}
	return st, nil
}

// SetBusy logs a user in on an instance, or out.
func (a *Agent) SetBusy(id string, busy bool) {
	a.busy[id] = busy
	a.w.logf("instance %s: user logged in: %t", id, busy)
}

// Release flushes and unmounts the drive.
func (a *Agent) Release(_ context.Context, t agent.Target) (agent.Status, error) {
	i, ok := a.at(t.Address)
	if !ok || a.w.Rng.Float64() < a.FailRate {
		return agent.Status{}, errUnreachable
	}
	a.release(i.ID)
	a.w.logf("  instance %s: drive flushed and unmounted", i.ID)
	if a.self[i.ID] {
		a.w.noticeSeen(i.ID)
	}
	return agent.Status{Phase: bootstrap.PhaseReleased, Released: true, SpotNotice: a.self[i.ID]}, nil
}

// Notify tells the instance's users of a coming stop; nothing reads it.
func (a *Agent) Notify(_ context.Context, t agent.Target) error {
	i, ok := a.at(t.Address)
	if !ok || t.Notice == nil {
		return errUnreachable
	}
	a.w.logf("  instance %s: users told of the %s at %s", i.ID, t.Notice.Kind, t.Notice.Deadline.UTC().Format(time.RFC3339))
	return nil
}

func (a *Agent) release(id string) {
	a.mounted[id] = false
	a.released[id] = true
}

// SelfRelease is the instance's own watcher releasing the drive on an IMDS notice.
func (a *Agent) SelfRelease(id string) bool {
	if !a.Mounted(id) {
		return false
	}
	a.release(id)
	a.self[id] = true
	a.w.logf("instance %s: its watcher released the drive", id)
	return true
}

// ShutdownWrites is an unflushed instance going down: whatever the user's
// programs had not written yet reaches the drive as the instance shuts down
// (docker stop, the page cache, the unmount). A flushed or released drive
// has nothing left to write.
func (a *Agent) ShutdownWrites() {
	for _, i := range a.w.allInstances() {
		if i.State != fakeec2.StateShuttingDown || a.shutDown[i.ID] || !a.Mounted(i.ID) {
			continue
		}
		a.shutDown[i.ID] = true
		if n, err := a.w.fakeOf(i.ID).Write(a.driveVolume(i.ID)); err == nil {
			a.w.logf("instance %s: its shutdown writes %d", i.ID, n)
		}
	}
}

// Boot mounts the drive on every running instance that has it attached and has not released it.
func (a *Agent) Boot() {
	for _, i := range a.w.allInstances() {
		if i.State == fakeec2.StateRunning && !a.released[i.ID] && !a.mounted[i.ID] && a.driveVolume(i.ID) != "" {
			a.mounted[i.ID] = true
			a.w.logf("instance %s: bootstrap mounted %s", i.ID, a.driveVolume(i.ID))
		}
	}
}

// Mounted reports whether the instance has the drive mounted and can write to it.
func (a *Agent) Mounted(id string) bool {
	if !a.mounted[id] || a.released[id] {
		return false
	}
	for _, i := range a.w.allInstances() {
		if i.ID == id {
			return i.State == fakeec2.StatePending || i.State == fakeec2.StateRunning || i.State == fakeec2.StateShuttingDown
		}
	}
	return false
}

// driveVolume is the volume the instance has at the drive's device.
func (a *Agent) driveVolume(id string) string {
	for _, v := range a.w.allVolumes() {
		if !v.Deleted && v.Attachment != nil && v.Attachment.InstanceID == id && v.Attachment.Device == bootstrap.DriveDevice {
			return v.ID
		}
	}
	return ""
}
