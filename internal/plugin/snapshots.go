package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// xdrive reads a drive of the namespace.
func (o *Options) xdrive(ctx context.Context, name string) (*v1alpha1.XDrive, error) {
	xd := &v1alpha1.XDrive{}
	if err := o.Client.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: name}, xd); err != nil {
		return nil, fmt.Errorf("reading XDrive %s/%s: %w", o.Namespace, name, err)
	}
	return xd, nil
}

func (o *Options) snapshotsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "snapshots XDRIVE",
		Short: "List a drive's snapshots: when, size, consistency; which one the next restore uses",
		Long: `List the completed snapshots of an XDrive, newest first, as the operator last
listed them (status.snapshots): when each was taken, the volume's size, and
its consistency (Flushed: the drive was unmounted first; Crash: as after a
power cut). NEXT marks the one the next restore uses; a rollback in effect
is shown above the table.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			xd, err := o.xdrive(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return o.snapshots(xd)
		},
	}
}

func (o *Options) snapshots(xd *v1alpha1.XDrive) error {
	st := xd.Status
	now := o.Now()
	if rb := st.Rollback; rb != nil {
		_, _ = fmt.Fprintf(o.Stdout, "Rollback in effect (requested %s ago): the next restore is %s; the newer snapshots are kept until the next snapshot completes.\n\n",
			ago(now, rb.RequestTime.Time), rb.SnapshotID)
	}
	if len(st.Snapshots) == 0 {
		_, err := fmt.Fprintf(o.Stderr, "XDrive %s has no completed snapshot.\n", xd.Name)
		return err
	}
	if m := st.Move; m != nil && m.Region != st.Region {
		_, _ = fmt.Fprintf(o.Stdout, "Moving to region %s: copying %s there%s; the drive stays in %s until the copy completes.\n\n",
			m.Region, m.SourceSnapshotID, progressText(m), orDash(st.Region))
	}
	w := tabwriter.NewWriter(o.Stdout, 0, 4, 3, ' ', 0)
	_, _ = fmt.Fprintln(w, "SNAPSHOT\tREGION\tTAKEN\tAGE\tSIZE\tCONSISTENCY\tNEXT")
	for _, e := range st.Elsewhere {
		if e.LatestSnapshotID == "" {
			continue
		}
		taken, age := "-", "-"
		if t := e.LatestSnapshotTime; t != nil {
			taken, age = t.UTC().Format(time.RFC3339), ago(now, t.Time)
		}
		_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.LatestSnapshotID, e.Region+fmt.Sprintf(" (left; %d kept)", e.SnapshotCount),
			taken, age, "-", "-", "")
	}
	for _, sn := range st.Snapshots {
		next := ""
		if sn.ID == st.RestoreSnapshotID {
			next = "*"
		}
		size := "-"
		if sn.SizeGiB > 0 {
			size = fmt.Sprintf("%dGi", sn.SizeGiB)
		}
		_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", sn.ID, orDash(st.Region), sn.StartTime.UTC().Format(time.RFC3339), ago(now, sn.StartTime.Time),
			size, orDash(string(sn.Consistency)), next)
	}
	return w.Flush()
}

func (o *Options) rollbackCmd() *cobra.Command {
	var to string
	var wait bool
	cmd := &cobra.Command{
		Use:   "rollback XDRIVE --to SNAPSHOT",
		Short: "Make a drive's next restore one of its older snapshots (its Workstation stopped)",
		Long: `Roll a drive back: its next restore is the snapshot given (one of its own,
completed; see kubectl xdrive snapshots), for example to undo a bad install
or a deleted folder. Allowed while the Workstation holding the drive is
stopped. No snapshot is deleted: every newer one is kept, whatever the
retention, until the next snapshot of the drive completes (after the next
run on the rolled-back drive), so a rollback can itself be rolled forward.
It sets the annotation ` + v1alpha1.RollbackAnnotation + `; the operator records the
rollback in status.rollback and an Event.`,
		Example: `  kubectl xdrive snapshots home
  kubectl xdrive rollback home --to snap-0123456789abcdef0 --wait
  kubectl xdrive start dev`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.rollback(cmd.Context(), args[0], to, wait)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the snapshot the next restore uses (required)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the operator has taken the rollback")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func (o *Options) rollback(ctx context.Context, name, to string, wait bool) error {
	xd, err := o.xdrive(ctx, name)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(xd.Status.Snapshots, func(sn v1alpha1.DriveSnapshot) bool { return sn.ID == to }) {
		return fmt.Errorf("%s is not a completed snapshot of XDrive %s (kubectl xdrive snapshots %s lists them)", to, name, name)
	}
	if h := xd.Status.Holder; h != nil {
		ws, err := o.workstation(ctx, h.Name)
		if err == nil && ws.Status.Phase != v1alpha1.WorkstationPhaseStopped && ws.Status.Phase != "" {
			return fmt.Errorf("XDrive %s is held by Workstation %s, which is %s; stop it first (kubectl xdrive stop %s --wait)", name, h.Name, ws.Status.Phase, h.Name)
		}
	}
	at := o.Now().UTC().Truncate(time.Second)
	if last := xd.Status.LastRollbackRequest; last != nil && !at.After(last.Time) {
		at = last.Add(time.Second)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		v1alpha1.RollbackAnnotation: to + "@" + at.Format(time.RFC3339)}}})
	if err != nil {
		return err
	}
	if err := o.Client.Patch(ctx, xd, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("patching XDrive %s/%s: %w", o.Namespace, name, err)
	}
	_, _ = fmt.Fprintf(o.Stdout, "XDrive %s: rollback to %s requested\n", name, to)
	if !wait {
		return nil
	}
	return o.waitRollback(ctx, name, to, at)
}

// waitRollback waits until the operator has acted on the request at: taken, or refused.
func (o *Options) waitRollback(ctx context.Context, name, to string, at time.Time) error {
	tick := time.NewTicker(o.Poll)
	defer tick.Stop()
	for {
		xd, err := o.xdrive(ctx, name)
		if err != nil {
			return err
		}
		st := xd.Status
		if last := st.LastRollbackRequest; last != nil && !last.Time.Before(at) {
			if rb := st.Rollback; rb != nil && rb.SnapshotID == to && rb.RequestTime.Time.Equal(last.Time) {
				_, err := fmt.Fprintf(o.Stdout, "XDrive %s: the next restore is %s\n", name, to)
				return err
			}
			return fmt.Errorf("the operator refused the rollback of XDrive %s to %s: kubectl get events --field-selector involvedObject.name=%s says why", name, to, name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func progressText(m *v1alpha1.DriveMove) string {
	switch {
	case m.Failure != "":
		return " (the last copy failed: " + m.Failure + ")"
	case m.Progress != "":
		return " (" + m.Progress + ")"
	}
	return ""
}
