package main

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// demoIdleMinute is how long a minute of spec.idleStop lasts in the demo.
const demoIdleMinute = 200 * time.Millisecond

// demoIdleAfter is the demo's idle window: 2 s at demoIdleMinute.
const demoIdleAfter = 10 * time.Minute

// loginSession is a line of `who` on the simulated instance.
const loginSession = "researcher pts/0        2026-11-30 09:00 (10.0.0.9)\n"

// idleStop: a login session keeps the Workstation running past its idle
// window; once the user logs out, it is stopped like a Stop (flush,
// snapshot) with spec.state still Running, and the resume annotation
// relaunches it on the same drive.
func (sc *scenario) idleStop(ctx context.Context, _ *v1alpha1.XDrive, _ *v1alpha1.Workstation) error {
	window := time.Duration(float64(demoIdleAfter) * float64(demoIdleMinute) / float64(time.Minute))
	sc.out.Step("idle", fmt.Sprintf("idle auto-stop (spec.idleStop.after: %s; the demo runs the operator with --idle-minute=%s, so %s)",
		demoIdleAfter, demoIdleMinute, window))
	start := time.Now()
	w0, _, err := sc.get(ctx)
	if err != nil {
		return err
	}
	inst := w0.Status.InstanceID
	h, ok := sc.inst.Instance(inst)
	if !ok {
		return fmt.Errorf("no simulated instance %s", inst)
	}
	if ok, err := h.SetLogin(loginSession); err != nil {
		return fmt.Errorf("showing a login session on %s: %w", inst, err)
	} else if !ok {
		return fmt.Errorf("instance %s cannot show a login session", inst)
	}
	sc.out.Progress("a user is logged in on %s over SSH (the instance's `who` lists: %q)", inst, loginSession[:len(loginSession)-1])
	if err := sc.updateWS(ctx, func(w *v1alpha1.Workstation) {
		w.Spec.IdleStop = &v1alpha1.IdleStop{After: &metav1.Duration{Duration: demoIdleAfter}}
	}); err != nil {
		return err
	}
	var idle v1alpha1.IdleState
	err = sc.waitFor(ctx, "activity seen past two idle windows, the Workstation still running", func() (bool, string, error) {
		w, _, err := sc.get(ctx)
		if err != nil || w.Status.Idle == nil {
			return false, "no status.idle yet", err
		}
		idle = *w.Status.Idle
		return w.Status.Phase == v1alpha1.WorkstationPhaseRunning && idle.LastActivitySignal == v1alpha1.IdleSignalSSH &&
				idle.LastActivityTime.After(start.Add(2*window)),
			fmt.Sprintf("phase %s, last activity %s by %s", w.Status.Phase, idle.LastActivityTime.UTC().Format(time.TimeOnly), idle.LastActivitySignal), nil
	})
	if err != nil {
		return err
	}
	sc.out.Progress("still running after %s: status.idle.lastActivitySignal=%s (%s)", since(start), idle.LastActivitySignal, idle.LastActivityDetail)

	if _, err := h.SetLogin(""); err != nil {
		return err
	}
	sc.out.Progress("the user logs out; nothing else runs (load 0.02, no GPU, no declared ports)")
	var d *v1alpha1.XDrive
	err = sc.waitFor(ctx, "the Workstation stopped for idleness and its drive archived", func() (bool, string, error) {
		w, x, err := sc.get(ctx)
		if err != nil {
			return false, "", err
		}
		d = x
		_, wr := v1alpha1.ReadyReason(w.Status.Conditions)
		return wr == v1alpha1.ReasonIdleStopped && w.Spec.State == v1alpha1.WorkstationStateRunning && w.Status.InstanceID == "" &&
				sc.driveReason(x) == v1alpha1.ReasonArchived && x.Status.VolumeID == "",
			fmt.Sprintf("workstation %s, drive %s", wr, sc.driveReason(x)), nil
	})
	if err != nil {
		return err
	}
	consistency, err := sc.consistency(ctx, d.Status.LatestSnapshotID, inst)
	if err != nil {
		return err
	}
	sc.out.Progress("stopped for idleness: snapshot %s (%s); spec.state is still Running, so Git and Argo CD see no drift", d.Status.LatestSnapshotID, consistency)

	resume := time.Now().UTC().Format(time.RFC3339)
	if err := sc.updateWS(ctx, func(w *v1alpha1.Workstation) {
		if w.Annotations == nil {
			w.Annotations = map[string]string{}
		}
		w.Annotations[v1alpha1.ResumeAnnotation] = resume
		w.Spec.IdleStop = nil // so that step e starts from a running Workstation
	}); err != nil {
		return err
	}
	sc.out.Progress("resume: annotation %s=%s (kubectl annotate; not in Git); the demo also drops idleStop for the next step", v1alpha1.ResumeAnnotation, resume)
	w, _, err := sc.waitReady(ctx, inst)
	if err != nil {
		return err
	}
	if err := sc.checkNotes(ctx, w); err != nil {
		return err
	}
	sc.out.Done("idle in %s: a session kept %s running; idle, it stopped with a flushed snapshot; resumed on %s in %s",
		since(start), inst, w.Status.InstanceID, w.Status.AvailabilityZone)
	return nil
}
