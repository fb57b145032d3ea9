package plugin

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cost"
)

func (o *Options) statusCmd() *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:               "status NAME",
		Short:             "Show a Workstation: phase, instance, drive, snapshot, price, cost, idle time, endpoints",
		Example:           "  kubectl xdrive status dev\n  kubectl xdrive status dev --watch",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.workstationArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			last := ""
			for {
				ws, err := o.workstation(ctx, args[0])
				if err != nil {
					return err
				}
				var b bytes.Buffer
				if err := o.status(&b, ws, o.drive(ctx, ws)); err != nil {
					return err
				}
				if !watch {
					_, err = o.Stdout.Write(b.Bytes())
					return err
				}
				// Watching, the status is printed again when it changes, ages aside.
				if key := progress(ws, o.drive(ctx, ws)) + strings.Join(endpointURLs(ws), " "); key != last {
					if last != "" {
						_, _ = fmt.Fprintln(o.Stdout)
					}
					_, _ = fmt.Fprintf(o.Stdout, "--- %s\n", o.Now().UTC().Format(time.RFC3339))
					_, _ = o.Stdout.Write(b.Bytes())
					last = key
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(o.Poll):
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print the status again each time it changes, until interrupted")
	return cmd
}

func endpointURLs(ws *v1alpha1.Workstation) []string {
	var urls []string
	for _, e := range ws.Status.Endpoints {
		urls = append(urls, e.URL)
	}
	return urls
}

// ago renders the time since t as kubectl does (duration.HumanDuration).
func ago(now, t time.Time) string { return duration.HumanDuration(now.Sub(t)) }

// scheduleLine says what the schedule wants now and what comes next; "" without a schedule.
func scheduleLine(sc *v1alpha1.ScheduleStatus, now time.Time) string {
	if sc == nil || sc.Window == "" {
		return ""
	}
	at := func(t *metav1.Time) string {
		if t == nil {
			return "-"
		}
		if t.After(now) {
			return fmt.Sprintf("%s (in %s)", t.UTC().Format(time.RFC3339), duration.HumanDuration(t.Sub(now)))
		}
		return t.UTC().Format(time.RFC3339)
	}
	switch sc.Window {
	case v1alpha1.ScheduleWindowOpen:
		return "open until " + at(sc.NextStop)
	case v1alpha1.ScheduleWindowResumed:
		return "started by hand outside its window, until " + at(sc.NextStop)
	}
	next := "closed; next start " + at(sc.NextStart)
	if sc.LaunchAt != nil {
		next += fmt.Sprintf(", launching %ds ahead, at %s", sc.LeadSeconds, at(sc.LaunchAt))
		if sc.Basis != "" {
			next += " (" + sc.Basis + ")"
		}
	}
	return next
}

// launchCost is the current launch's cost so far, and whether it is known.
func launchCost(ws *v1alpha1.Workstation, now time.Time) (float64, bool) {
	price, err := strconv.ParseFloat(ws.Status.PricePerHour, 64)
	if err != nil || ws.Status.LaunchTime == nil || ws.Status.InstanceID == "" {
		return 0, false
	}
	return price * now.Sub(ws.Status.LaunchTime.Time).Hours(), true
}

// lifetimeCost is the Workstation's cost over its life (status.cost): its
// instances' time x price over every launch, and its drive's storage, estimated.
func lifetimeCost(ws *v1alpha1.Workstation, xd *v1alpha1.XDrive, now time.Time) string {
	instances := cost.InstanceUSD(&ws.Status, now)
	n := cost.Launches(&ws.Status)
	text := fmt.Sprintf("%s over %d launch%s", cost.Format(instances), n, plural(n, "", "es"))
	if xd == nil {
		return text + " (instances; the drive's storage is not known)"
	}
	volume, snapshots := cost.DriveUSD(&xd.Status, now)
	return fmt.Sprintf("%s in all: instances %s, drive storage about %s (volume %s, snapshots %s, estimated)",
		cost.Format(cost.Sum(instances, volume, snapshots)), text, cost.Format(cost.Sum(volume, snapshots)),
		cost.Format(volume), cost.Format(snapshots))
}

func plural(n int32, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// status prints a readable summary of a Workstation and its drive (nil if unreadable).
func (o *Options) status(out io.Writer, ws *v1alpha1.Workstation, xd *v1alpha1.XDrive) error {
	now := o.Now()
	st := ws.Status
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
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
			since = ", launched " + ago(now, st.LaunchTime.Time) + " ago"
		}
		line("Instance", "%s %s %s in %s%s", st.InstanceID, orDash(st.InstanceType), orDash(string(st.CapacityType)), orDash(st.AvailabilityZone), since)
	}
	if xd == nil {
		line("Drive", "%s: cannot be read", ws.Spec.DriveRef.Name)
	} else {
		d := fmt.Sprintf("%s: %s, %d GiB", xd.Name, orDash(string(xd.Status.Phase)), xd.Spec.SizeGiB)
		if xd.Status.VolumeID != "" {
			d += ", volume " + xd.Status.VolumeID
		}
		if in := xd.Status.Initialization; in != nil && in.Percent != nil && *in.Percent < 100 {
			d += ", initializing " + bar(*in.Percent)
		}
		if r := xd.Status.Region; r != "" {
			d += ", in " + r
		}
		if m := xd.Status.Move; m != nil && m.Region != xd.Status.Region {
			d += fmt.Sprintf("; moving to %s (copying %s%s)", m.Region, m.SourceSnapshotID, progressText(m))
		}
		line("Drive", "%s", d)
		snap := "none yet"
		if xd.Status.LatestSnapshotID != "" {
			snap = xd.Status.LatestSnapshotID
			if t := xd.Status.LatestSnapshotTime; t != nil {
				snap += ", " + ago(now, t.Time) + " old"
			}
		}
		if p := xd.Status.PendingSnapshot; p != nil {
			snap += fmt.Sprintf("; %s pending for %s", p.ID, ago(now, p.StartTime.Time))
			if p.Progress != "" && p.CompletionTime == nil {
				snap += ", " + p.Progress
			}
		}
		line("Snapshot", "%s", snap)
	}
	if cost, ok := launchCost(ws, now); ok {
		kind := "on-demand list price"
		if st.SpotPrice != "" {
			kind = "spot price at launch"
		}
		line("Price", "$%s/h (%s); this launch $%.4f so far (price x %s)", st.PricePerHour, kind, cost, ago(now, st.LaunchTime.Time))
	} else if st.InstanceID != "" {
		line("Price", "- (not known: an on-demand type without a list price)")
	}
	line("Cost", "%s", lifetimeCost(ws, xd, now))
	if idle := st.Idle; idle != nil {
		switch {
		case idle.StopTime != nil:
			line("Idle", "stopped for idleness %s ago (no activity since %s); kubectl xdrive start %s resumes it",
				ago(now, idle.StopTime.Time), idle.LastActivityTime.UTC().Format(time.RFC3339), ws.Name)
		default:
			line("Idle", "%s since the last activity (%s)", ago(now, idle.LastActivityTime.Time), idle.LastActivitySignal)
		}
	}
	if sc := scheduleLine(st.Schedule, now); sc != "" {
		line("Schedule", "%s", sc)
	}
	if b := budgetColumn(st.Budget, now); b != "-" {
		line("Budget", "%s", b)
	}
	if ps := st.PreStop; ps != nil && len(ps.Hooks) > 0 {
		var hooks []string
		for _, h := range ps.Hooks {
			secs := int32(0)
			if h.DurationSeconds != nil {
				secs = *h.DurationSeconds
			}
			hooks = append(hooks, fmt.Sprintf("%s %s in %ds", h.Container, h.Outcome, secs))
		}
		line("PreStop", "%s, at the stop of %s %s ago", strings.Join(hooks, ", "), ps.InstanceID, ago(now, ps.Time.Time))
	}
	for i, e := range st.Endpoints {
		k := ""
		if i == 0 {
			k = "Endpoints:"
		}
		_, _ = fmt.Fprintf(w, "%s\t%s %s\n", k, e.Name, e.URL)
	}
	if hasAccess(ws) {
		line("SSH", "kubectl xdrive ssh %s -n %s, or ssh %s (kubectl xdrive ssh-config)", ws.Name, ws.Namespace, alias(ws))
	}
	return w.Flush()
}

func (o *Options) listCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the namespace's Workstations: phase, type, $/h, cost over their life, idle time",
		Long: `List the Workstations of the namespace (-A: of every namespace) with their
phase, instance type, price per hour, their cost over their life (status.cost:
the instance time x price of every launch, plus their drive's storage,
estimated), the time since the last activity, and age.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var list v1alpha1.WorkstationList
			var opts []client.ListOption
			if !all {
				opts = append(opts, client.InNamespace(o.Namespace))
			}
			if err := o.Client.List(cmd.Context(), &list, opts...); err != nil {
				return fmt.Errorf("listing Workstations: %w", err)
			}
			slices.SortFunc(list.Items, func(a, b v1alpha1.Workstation) int {
				return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
			})
			if len(list.Items) == 0 {
				_, err := fmt.Fprintf(o.Stderr, "No Workstations in %s.\n", o.Namespace)
				return err
			}
			var drives v1alpha1.XDriveList
			if err := o.Client.List(cmd.Context(), &drives, opts...); err != nil {
				drives.Items = nil // the drives' storage is then left out
			}
			return o.list(list.Items, drives.Items, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list the Workstations of every namespace")
	return cmd
}

func (o *Options) list(items []v1alpha1.Workstation, drives []v1alpha1.XDrive, allNamespaces bool) error {
	now := o.Now()
	w := tabwriter.NewWriter(o.Stdout, 0, 4, 3, ' ', 0)
	header := "NAME\tPHASE\tTYPE\t$/H\tCOST\tIDLE\tAGE"
	if allNamespaces {
		header = "NAMESPACE\t" + header
	}
	_, _ = fmt.Fprintln(w, header)
	for i := range items {
		ws := &items[i]
		st := ws.Status
		price := "-"
		if _, ok := launchCost(ws, now); ok {
			price = "$" + st.PricePerHour
		}
		spent := cost.InstanceUSD(&st, now)
		if i := slices.IndexFunc(drives, func(d v1alpha1.XDrive) bool {
			return d.Namespace == ws.Namespace && d.Name == ws.Spec.DriveRef.Name
		}); i >= 0 {
			volume, snapshots := cost.DriveUSD(&drives[i].Status, now)
			spent = cost.Sum(spent, volume, snapshots)
		}
		idle := "-"
		if st.Idle != nil {
			if st.Idle.StopTime != nil {
				idle = "stopped " + ago(now, st.Idle.StopTime.Time) + " ago"
			} else if st.Phase == v1alpha1.WorkstationPhaseRunning {
				idle = ago(now, st.Idle.LastActivityTime.Time)
			}
		}
		row := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", ws.Name, orDash(string(st.Phase)), orDash(st.InstanceType), price, cost.Format(spent), idle,
			ago(now, ws.CreationTimestamp.Time))
		if allNamespaces {
			row = ws.Namespace + "\t" + row
		}
		_, _ = fmt.Fprintln(w, row)
	}
	return w.Flush()
}

func (o *Options) logsCmd() *cobra.Command {
	var f sessionFlags
	var follow bool
	var lines int
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Show the journal of the instance's boot and of xdrive's services, over the pinned ssh",
		Long: `Show the journal of the current boot for cloud-init's user-data (the first
bootstrap), xdrive-bootstrap, xdrive-watch and Docker, over the pinned ssh
(sudo for the default user).`,
		Example:           "  kubectl xdrive logs dev\n  kubectl xdrive logs dev -f --tail 50",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.workstationArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return o.sshTo(ctx, args[0], f, func(ws *v1alpha1.Workstation, host string) []string {
				return []string{host, journalCommand(o.user(ctx, ws, f.operatorKey, f.user), follow, lines)}
			})
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new entries")
	cmd.Flags().IntVar(&lines, "tail", -1, "the last N entries only; all if negative")
	return cmd
}

// journalUnits are the instance's units that xdrive runs or starts.
var journalUnits = []string{"cloud-final.service", "xdrive-bootstrap.service", "xdrive-watch.service", "docker.service"}

// journalCommand is the remote command of logs.
func journalCommand(user string, follow bool, lines int) string {
	args := []string{"journalctl", "--boot", "--no-pager", "--output=short-iso"}
	for _, u := range journalUnits {
		args = append(args, "--unit="+u)
	}
	if follow {
		args = append(args, "--follow")
	}
	if lines >= 0 {
		args = append(args, "--lines="+strconv.Itoa(lines))
	}
	if user != "root" {
		args = append([]string{"sudo", "-n"}, args...)
	}
	return strings.Join(args, " ")
}

func (o *Options) openCmd() *cobra.Command {
	var f sessionFlags
	var local int
	var vscode bool
	cmd := &cobra.Command{
		Use:   "open NAME [PORT|CONTAINER]",
		Short: "Open a declared port through a port-forward, or the drive in VS Code",
		Long: `Forward a port that a container of the Workstation declares (spec.containers
ports; the first if none is named) to 127.0.0.1, and print its URL; it runs
until interrupted. With --vscode, open the drive's mount path in VS Code
through the ssh alias (kubectl xdrive ssh-config) instead.`,
		Example:           "  kubectl xdrive open dev\n  kubectl xdrive open dev jupyter\n  kubectl xdrive open dev --vscode",
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: o.workstationArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			ws, err := o.workstation(ctx, args[0])
			if err != nil {
				return err
			}
			if vscode {
				c := exec.CommandContext(ctx, "code", "--remote", "ssh-remote+"+alias(ws), orDefault(ws.Spec.MountPath, "/v1"))
				c.Stdout, c.Stderr = o.Stdout, o.Stderr
				return c.Run()
			}
			want := ""
			if len(args) == 2 {
				want = args[1]
			}
			port, err := declaredPort(ws, want)
			if err != nil {
				return err
			}
			lp := strconv.Itoa(local)
			if local == 0 {
				if lp, err = freePort(strconv.Itoa(int(port))); err != nil {
					return err
				}
			}
			return o.forward(ctx, ws.Name, strconv.Itoa(int(port)), lp, f, nil, "http://127.0.0.1:"+lp+"/")
		},
	}
	f.add(cmd)
	cmd.Flags().IntVar(&local, "local-port", 0, "the local port; the same as the remote one if free, else any")
	cmd.Flags().BoolVar(&vscode, "vscode", false, "open the drive in VS Code (code --remote ssh-remote+NAME.NAMESPACE.xdrive)")
	return cmd
}

// declaredPort finds the host port of a TCP port the Workstation's
// containers declare: by number or container name; the first if want is empty.
func declaredPort(ws *v1alpha1.Workstation, want string) (int32, error) {
	var declared []string
	for _, c := range ws.Spec.Containers {
		for _, p := range c.Ports {
			if p.Protocol != "" && !strings.EqualFold(p.Protocol, "tcp") {
				continue
			}
			host := p.HostPort
			if host == 0 {
				host = p.ContainerPort
			}
			n := strconv.Itoa(int(host))
			if want == "" || want == c.Name || want == n || want == strconv.Itoa(int(p.ContainerPort)) {
				return host, nil
			}
			declared = append(declared, c.Name+":"+n)
		}
	}
	if len(declared) == 0 {
		return 0, fmt.Errorf("workstation %s declares no TCP port in spec.containers; use kubectl xdrive port-forward", ws.Name)
	}
	return 0, fmt.Errorf("workstation %s declares no port %q; it declares %s", ws.Name, want, strings.Join(declared, ", "))
}

// freePort is port if 127.0.0.1 has it free, else a free one.
func freePort(port string) (string, error) {
	for _, p := range []string{port, "0"} {
		l, err := net.Listen("tcp", "127.0.0.1:"+p)
		if err != nil {
			continue
		}
		_, got, _ := net.SplitHostPort(l.Addr().String())
		_ = l.Close()
		return got, nil
	}
	return "", fmt.Errorf("no free local port")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
