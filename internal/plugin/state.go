package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cost"
)

type waitFlags struct {
	wait    bool
	timeout time.Duration
}

func (f *waitFlags) add(cmd *cobra.Command, what string) {
	cmd.Flags().BoolVarP(&f.wait, "wait", "w", false, "wait until the Workstation is "+what+", showing its progress")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 30*time.Minute, "how long --wait waits")
}

func (o *Options) startCmd() *cobra.Command {
	var f waitFlags
	cmd := &cobra.Command{
		Use:   "start NAME",
		Short: "Start a Workstation: spec.state=Running, and resume it if it was stopped for idleness",
		Long: `Set spec.state=Running and the xdrive.io/resume annotation, which also resumes
a Workstation that the idle auto-stop stopped. With --wait, show the launch's
progress (phases, the drive's restore and initialization) until it is Ready.`,
		Example:           "  kubectl xdrive start dev --wait",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.workstationArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := o.setState(ctx, args[0], v1alpha1.WorkstationStateRunning); err != nil {
				return err
			}
			if !f.wait {
				return nil
			}
			ctx, cancel := context.WithTimeout(ctx, f.timeout)
			defer cancel()
			_, err := o.waitFor(ctx, args[0], o.Stdout, running)
			return err
		},
	}
	f.add(cmd, "Ready")
	return cmd
}

func (o *Options) stopCmd() *cobra.Command {
	var f waitFlags
	cmd := &cobra.Command{
		Use:   "stop NAME",
		Short: "Stop a Workstation: its drive is flushed and snapshotted, the instance ends",
		Long: `Set spec.state=Stopped: the containers stop, the drive is flushed and
snapshotted, and the instance ends; the Workstation and its drive stay.
With --wait, show the progress until the Workstation is Stopped and the
drive's snapshot has completed.`,
		Example:           "  kubectl xdrive stop dev --wait",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.workstationArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := o.setState(ctx, args[0], v1alpha1.WorkstationStateStopped); err != nil {
				return err
			}
			if !f.wait {
				return nil
			}
			ctx, cancel := context.WithTimeout(ctx, f.timeout)
			defer cancel()
			_, err := o.waitFor(ctx, args[0], o.Stdout, stopped)
			return err
		},
	}
	f.add(cmd, "Stopped")
	return cmd
}

// setState patches spec.state; start also sets the resume annotation, which
// resumes a Workstation stopped for idleness while spec.state stays Running.
func (o *Options) setState(ctx context.Context, name string, state v1alpha1.WorkstationState) error {
	patch := map[string]any{"spec": map[string]any{"state": state}}
	if state == v1alpha1.WorkstationStateRunning {
		patch["metadata"] = map[string]any{"annotations": map[string]string{v1alpha1.ResumeAnnotation: o.Now().UTC().Format(time.RFC3339)}}
	}
	raw, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	ws := &v1alpha1.Workstation{}
	ws.Namespace, ws.Name = o.Namespace, name
	if err := o.Client.Patch(ctx, ws, client.RawPatch(types.MergePatchType, raw)); err != nil {
		return fmt.Errorf("patching Workstation %s/%s: %w", o.Namespace, name, err)
	}
	_, err = fmt.Fprintf(o.Stdout, "Workstation %s: spec.state=%s\n", ws.Name, ws.Spec.State)
	return err
}

// startAndWait starts a Workstation and waits until ssh can reach it; progress goes to w.
func (o *Options) startAndWait(ctx context.Context, name string, w io.Writer) (*v1alpha1.Workstation, error) {
	saved := o.Stdout
	o.Stdout = w
	err := o.setState(ctx, name, v1alpha1.WorkstationStateRunning)
	o.Stdout = saved
	if err != nil {
		return nil, err
	}
	return o.waitFor(ctx, name, w, running)
}

// done says whether a wait is over, or failed.
type done func(ws *v1alpha1.Workstation, xd *v1alpha1.XDrive) (bool, error)

// running: Ready, with the host key of the current instance published.
func running(ws *v1alpha1.Workstation, _ *v1alpha1.XDrive) (bool, error) {
	ready := meta.FindStatusCondition(ws.Status.Conditions, v1alpha1.ConditionReady)
	if ws.Spec.State == v1alpha1.WorkstationStateStopped {
		return false, fmt.Errorf("workstation %s was set to Stopped while starting", ws.Name)
	}
	if b := ws.Status.Budget; b != nil && b.ExceededTime != nil && b.StoppedUntil != nil && ws.Status.Phase == v1alpha1.WorkstationPhaseStopped {
		return false, fmt.Errorf("workstation %s is stopped by its class's monthly budget (%s limit %s, %s spent) until %s; an admin can raise the limit (kubectl xdrive cost)",
			ws.Name, strings.ToLower(string(b.Scope)), cost.Format(b.LimitUSD), cost.Format(b.SpentUSD), b.StoppedUntil.UTC().Format(time.RFC3339))
	}
	return ready != nil && ready.Status == metav1.ConditionTrue && ready.ObservedGeneration == ws.Generation && hasAccess(ws), nil
}

// stopped: the Workstation is Stopped and the drive holds no pending snapshot.
func stopped(ws *v1alpha1.Workstation, xd *v1alpha1.XDrive) (bool, error) {
	if ws.Spec.State == v1alpha1.WorkstationStateRunning && ws.Status.Phase != v1alpha1.WorkstationPhaseStopped {
		return false, fmt.Errorf("workstation %s was set to Running while stopping", ws.Name)
	}
	return ws.Status.Phase == v1alpha1.WorkstationPhaseStopped && ws.Status.ObservedGeneration == ws.Generation &&
		(xd == nil || xd.Status.PendingSnapshot == nil || xd.Status.PendingSnapshot.CompletionTime != nil), nil
}

// waitFor reads the Workstation and its drive every Poll until done,
// printing a line to w each time what it shows changes.
func (o *Options) waitFor(ctx context.Context, name string, w io.Writer, until done) (*v1alpha1.Workstation, error) {
	start := o.Now()
	last := ""
	for {
		ws, err := o.workstation(ctx, name)
		if err != nil {
			return nil, err
		}
		xd := o.drive(ctx, ws)
		if line := progress(ws, xd); line != last {
			_, _ = fmt.Fprintf(w, "%6s  %s\n", duration.HumanDuration(o.Now().Sub(start)), line)
			last = line
		}
		ok, err := until(ws, xd)
		if err != nil || ok {
			return ws, err
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("waiting for Workstation %s: gave up after %s (it goes on; kubectl xdrive status %s --watch)",
					name, duration.HumanDuration(o.Now().Sub(start)), name)
			}
			return nil, ctx.Err()
		case <-time.After(o.Poll):
		}
	}
}

// drive is the Workstation's XDrive, or nil if it cannot be read.
func (o *Options) drive(ctx context.Context, ws *v1alpha1.Workstation) *v1alpha1.XDrive {
	xd := &v1alpha1.XDrive{}
	if err := o.Client.Get(ctx, types.NamespacedName{Namespace: ws.Namespace, Name: ws.Spec.DriveRef.Name}, xd); err != nil {
		return nil
	}
	return xd
}

// progress is one line: the phase and why, the drive's phase, its snapshot
// and initialization. It changes only when one of them does.
func progress(ws *v1alpha1.Workstation, xd *v1alpha1.XDrive) string {
	parts := []string{"Workstation " + orDash(string(ws.Status.Phase))}
	if c := meta.FindStatusCondition(ws.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		parts[0] += fmt.Sprintf(" (%s: %s)", c.Reason, c.Message)
	}
	if ws.Status.InstanceID != "" {
		parts = append(parts, "instance "+ws.Status.InstanceID)
	}
	if xd != nil {
		d := "drive " + xd.Name + " " + orDash(string(xd.Status.Phase))
		if p := xd.Status.PendingSnapshot; p != nil {
			d += fmt.Sprintf(", snapshot %s pending since %s", p.ID, p.StartTime.UTC().Format("15:04:05"))
			if pct, err := strconv.Atoi(strings.TrimSuffix(p.Progress, "%")); err == nil && p.CompletionTime == nil {
				d += " " + bar(int32(pct))
			}
		}
		if in := xd.Status.Initialization; in != nil && in.Percent != nil && *in.Percent < 100 {
			d += ", initializing " + bar(*in.Percent)
		}
		parts = append(parts, d)
	}
	if pw := ws.Status.DrivePrewarm; pw != nil && pw.Percent != nil && *pw.Percent < 100 {
		parts = append(parts, "prewarm "+bar(*pw.Percent))
	}
	return strings.Join(parts, "; ")
}

// bar draws a percentage as [#####.....] 50%.
func bar(percent int32) string {
	p := int(min(max(percent, 0), 100))
	return "[" + strings.Repeat("#", p/10) + strings.Repeat(".", 10-p/10) + fmt.Sprintf("] %d%%", p)
}
