package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// printer writes the demo's output: progress lines with the elapsed time,
// instance and event lines, and the kubectl-style tables. In interactive
// mode it uses colours and redraws a table in place when nothing was
// printed after it.
type printer struct {
	mu          sync.Mutex
	w           io.Writer
	start       time.Time
	interactive bool

	width int // terminal columns; 0: unknown, so tables are never redrawn

	lastTable  string // the table without its AGE column
	tableLines int    // terminal rows of the table printed last, if it is the last output
}

const (
	bold   = "\033[1m"
	dim    = "\033[2m"
	green  = "\033[32m"
	red    = "\033[31m"
	yellow = "\033[33m"
	cyan   = "\033[36m"
	reset  = "\033[0m"
)

func (p *printer) c(code, s string) string {
	if !p.interactive {
		return s
	}
	return code + s + reset
}

func (p *printer) stamp() string {
	return fmt.Sprintf("[%6.1fs]", time.Since(p.start).Seconds())
}

func (p *printer) write(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tableLines = 0
	_, _ = io.WriteString(p.w, s)
}

// Raw prints text as it is.
func (p *printer) Raw(format string, args ...any) { p.write(fmt.Sprintf(format, args...)) }

// Step starts a step of the walkthrough.
func (p *printer) Step(id, title string) {
	p.write("\n" + p.c(bold+cyan, fmt.Sprintf("%s step %s: %s", p.stamp(), id, title)) + "\n")
}

// Progress reports what happened within a step.
func (p *printer) Progress(format string, args ...any) {
	p.write(p.stamp() + " " + fmt.Sprintf(format, args...) + "\n")
}

// Done ends a step.
func (p *printer) Done(format string, args ...any) {
	p.write(p.c(green, p.stamp()+" done: "+fmt.Sprintf(format, args...)) + "\n")
}

// Alert reports something the user did, such as an interrupt.
func (p *printer) Alert(format string, args ...any) {
	p.write(p.c(bold+yellow, p.stamp()+" "+fmt.Sprintf(format, args...)) + "\n")
}

// Fail reports a failure.
func (p *printer) Fail(format string, args ...any) {
	p.write(p.c(red, p.stamp()+" FAILED: "+fmt.Sprintf(format, args...)) + "\n")
}

// Note prints a side remark.
func (p *printer) Note(format string, args ...any) {
	p.write(p.c(dim, p.stamp()+"   "+fmt.Sprintf(format, args...)) + "\n")
}

// Instance prints what the simulated instance did.
func (p *printer) Instance(id, format string, args ...any) {
	p.write(p.c(yellow, fmt.Sprintf("%s   instance %s | %s", p.stamp(), id, fmt.Sprintf(format, args...))) + "\n")
}

// Event prints a Kubernetes Event the operator recorded.
func (p *printer) Event(e eventsv1.Event) {
	kind := "event"
	if e.Type == "Warning" {
		kind = p.c(red, "warning")
	}
	p.write(fmt.Sprintf("%s   %s %s/%s %s: %s\n", p.stamp(), kind, e.Regarding.Kind, e.Regarding.Name, p.c(bold, e.Reason), e.Note))
}

// Table prints the tables if they changed (the AGE column aside).
func (p *printer) Table(key, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if key == p.lastTable {
		return
	}
	p.lastTable = key
	if p.interactive && p.tableLines > 0 {
		fmt.Fprintf(p.w, "\033[%dA\033[J", p.tableLines)
	}
	out := "\n" + text + "\n"
	_, _ = io.WriteString(p.w, out)
	p.tableLines = 0
	if p.width > 0 {
		// Lines wider than the terminal wrap; count the rows they take.
		for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			p.tableLines += 1 + max(len(l)-1, 0)/p.width
		}
	}
}

// view renders `kubectl get xdrives,workstations` for the demo namespace and
// prints the Events the operator records, until ctx ends.
type view struct {
	c    client.Client
	ns   string
	out  *printer
	seen map[string]bool
}

func (v *view) Run(ctx context.Context) {
	v.seen = map[string]bool{}
	for {
		v.Refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(400 * time.Millisecond):
		}
	}
}

// Refresh prints new Events and the tables, if they changed.
func (v *view) Refresh(ctx context.Context) {
	var events eventsv1.EventList
	if err := v.c.List(ctx, &events, client.InNamespace(v.ns)); err == nil {
		sort.SliceStable(events.Items, func(i, j int) bool {
			return eventTime(events.Items[i]).Before(eventTime(events.Items[j]))
		})
		for _, e := range events.Items {
			if !v.seen[string(e.UID)] {
				v.seen[string(e.UID)] = true
				v.out.Event(e)
			}
		}
	}
	key, text, err := v.tables(ctx)
	if err == nil {
		v.out.Table(key, text)
	}
}

func eventTime(e eventsv1.Event) time.Time {
	if !e.EventTime.IsZero() {
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// tables returns the tables with and without the AGE column.
func (v *view) tables(ctx context.Context) (string, string, error) {
	var drives v1alpha1.XDriveList
	var stations v1alpha1.WorkstationList
	if err := v.c.List(ctx, &drives, client.InNamespace(v.ns)); err != nil {
		return "", "", err
	}
	if err := v.c.List(ctx, &stations, client.InNamespace(v.ns)); err != nil {
		return "", "", err
	}
	var rowsD, rowsW [][]string
	for _, d := range drives.Items {
		status, reason := v1alpha1.ReadyReason(d.Status.Conditions)
		rowsD = append(rowsD, []string{"xdrive.xdrive.io/" + d.Name, string(status), reason, strconv.Itoa(int(d.Spec.SizeGiB)),
			d.Status.AvailabilityZone, d.Status.VolumeID, d.Status.LatestSnapshotID, d.Status.HolderName(), age(d.CreationTimestamp)})
	}
	for _, w := range stations.Items {
		status, reason := v1alpha1.ReadyReason(w.Status.Conditions)
		rowsW = append(rowsW, []string{"workstation.xdrive.io/" + w.Name, string(status), reason, w.Spec.DriveRef.Name,
			w.Status.InstanceType, string(w.Status.CapacityType), w.Status.AvailabilityZone, w.Status.PublicIP, age(w.CreationTimestamp)})
	}
	if len(rowsD) == 0 && len(rowsW) == 0 {
		text := "No resources found in " + v.ns + " namespace."
		return text, text, nil
	}
	var key, text strings.Builder
	for i, t := range []struct {
		head []string
		rows [][]string
	}{
		{[]string{"NAME", "READY", "STATUS", "SIZE", "ZONE", "VOLUME", "SNAPSHOT", "WORKSTATION", "AGE"}, rowsD},
		{[]string{"NAME", "READY", "STATUS", "DRIVE", "TYPE", "CAPACITY", "ZONE", "IP", "AGE"}, rowsW},
	} {
		if len(t.rows) == 0 {
			continue
		}
		if i > 0 && len(rowsD) > 0 {
			text.WriteString("\n")
		}
		text.WriteString(render(t.head, t.rows))
		for _, r := range t.rows {
			key.WriteString(strings.Join(r[:len(r)-1], "|") + "\n")
		}
	}
	return key.String(), strings.TrimRight(text.String(), "\n"), nil
}

func render(head []string, rows [][]string) string {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	_ = tw.Flush()
	return b.String()
}

func age(t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(t.Time))
}
