package plugin

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// setState patches spec.state; start also sets the resume annotation, which
// resumes a Workstation stopped for idleness while spec.state stays Running.
func (o Options) setState(ctx context.Context, cmd string, args []string) error {
	pos, _, err := parse(flag.NewFlagSet(cmd, flag.ContinueOnError), args)
	if err != nil || len(pos) != 1 {
		return usageError("kubectl xdrive "+cmd+" NAME", err)
	}
	patch := map[string]any{"spec": map[string]any{"state": v1alpha1.WorkstationStateStopped}}
	if cmd == "start" {
		patch = map[string]any{
			"metadata": map[string]any{"annotations": map[string]string{v1alpha1.ResumeAnnotation: o.Now().UTC().Format(time.RFC3339)}},
			"spec":     map[string]any{"state": v1alpha1.WorkstationStateRunning},
		}
	}
	raw, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	ws := &v1alpha1.Workstation{}
	ws.Namespace, ws.Name = o.Namespace, pos[0]
	if err := o.Client.Patch(ctx, ws, client.RawPatch(types.MergePatchType, raw)); err != nil {
		return fmt.Errorf("patching Workstation %s/%s: %w", o.Namespace, pos[0], err)
	}
	_, err = fmt.Fprintf(o.Stdout, "Workstation %s: spec.state=%s\n", ws.Name, ws.Spec.State)
	return err
}

// status prints a readable summary of a Workstation and its drive.
func (o Options) status(ctx context.Context, args []string) error {
	pos, _, err := parse(flag.NewFlagSet("status", flag.ContinueOnError), args)
	if err != nil || len(pos) != 1 {
		return usageError("kubectl xdrive status NAME", err)
	}
	ws, err := o.workstation(ctx, pos[0])
	if err != nil {
		return err
	}
	now := o.Now()
	st := ws.Status
	w := tabwriter.NewWriter(o.Stdout, 0, 4, 2, ' ', 0)
	line := func(k, format string, a ...any) { _, _ = fmt.Fprintf(w, "%s:\t%s\n", k, fmt.Sprintf(format, a...)) }
	line("Workstation", "%s/%s (spec.state %s)", ws.Namespace, ws.Name, orDash(string(ws.Spec.State)))
	phase := orDash(string(st.Phase))
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady); c != nil {
		phase += fmt.Sprintf(", Ready=%s (%s): %s", c.Status, c.Reason, c.Message)
	}
	line("Phase", "%s", phase)
	if st.InstanceID != "" {
		since := ""
		if st.LaunchTime != nil {
			since = ", launched " + age(now, st.LaunchTime.Time) + " ago"
		}
		line("Instance", "%s %s %s in %s%s", st.InstanceID, orDash(st.InstanceType), orDash(string(st.CapacityType)), orDash(st.AvailabilityZone), since)
	}
	xd := &v1alpha1.XDrive{}
	if err := o.Client.Get(ctx, types.NamespacedName{Namespace: ws.Namespace, Name: ws.Spec.DriveRef.Name}, xd); err != nil {
		line("Drive", "%s: %v", ws.Spec.DriveRef.Name, err)
	} else {
		line("Drive", "%s: %s, %d GiB%s", xd.Name, orDash(string(xd.Status.Phase)), xd.Spec.SizeGiB, prefixed(", volume ", xd.Status.VolumeID))
		snap := "none yet"
		if xd.Status.LatestSnapshotID != "" {
			snap = xd.Status.LatestSnapshotID
			if t := xd.Status.LatestSnapshotTime; t != nil {
				snap += ", " + age(now, t.Time) + " old"
			}
		}
		line("Snapshot", "%s", snap)
	}
	if price, err := strconv.ParseFloat(st.PricePerHour, 64); err == nil && st.LaunchTime != nil {
		kind := "on-demand list price"
		if st.SpotPrice != "" {
			kind = "spot price at launch"
		}
		line("Price", "$%s/h (%s)", st.PricePerHour, kind)
		line("Cost", "$%.4f so far on %s (price x %s)", price*now.Sub(st.LaunchTime.Time).Hours(), st.InstanceID, age(now, st.LaunchTime.Time))
	} else if st.InstanceID != "" {
		line("Price", "- (not known: an on-demand type without a list price)")
	}
	if idle := st.Idle; idle != nil {
		switch {
		case idle.StopTime != nil:
			line("Idle", "stopped for idleness %s ago (no activity since %s); kubectl xdrive start %s resumes it",
				age(now, idle.StopTime.Time), idle.LastActivityTime.UTC().Format(time.RFC3339), ws.Name)
		default:
			line("Idle", "%s since the last activity (%s)", age(now, idle.LastActivityTime.Time), idle.LastActivitySignal)
		}
	}
	for i, e := range st.Endpoints {
		k := ""
		if i == 0 {
			k = "Endpoints"
		}
		_, _ = fmt.Fprintf(w, "%s\t%s %s\n", suffix(k, ":"), e.Name, e.URL)
	}
	return w.Flush()
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

func suffix(s, x string) string {
	if s == "" {
		return ""
	}
	return s + x
}

// age renders a duration as people read it: 42s, 5m, 3h12m, 2d4h.
func age(now, t time.Time) string {
	d := now.Sub(t).Round(time.Second)
	switch {
	case d < time.Minute:
		return d.String()
	case d < 48*time.Hour:
		return strings.TrimSuffix(d.Truncate(time.Minute).String(), "0s")
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}
