package plugin

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cost"
)

func (o *Options) costCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "cost",
		Short: "Sum what Workstations cost, by namespace and Workstation: this month and over their life",
		Long: `Sum what Workstations cost, from their status.cost (docs/cost.md), by
namespace and Workstation: their instances this calendar month (UTC, what a
class's budget counts) and over their life, and their drives' storage over
their life (estimated). A namespace's total counts each of its XDrives once.
BUDGET shows where a Workstation stands against its class's monthly budget.`,
		Example: "  kubectl xdrive cost\n  kubectl xdrive cost -A",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var opts []client.ListOption
			if !all {
				opts = append(opts, client.InNamespace(o.Namespace))
			}
			var list v1alpha1.WorkstationList
			if err := o.Client.List(cmd.Context(), &list, opts...); err != nil {
				return fmt.Errorf("listing Workstations: %w", err)
			}
			var drives v1alpha1.XDriveList
			if err := o.Client.List(cmd.Context(), &drives, opts...); err != nil {
				return fmt.Errorf("listing XDrives: %w", err)
			}
			if len(list.Items) == 0 && len(drives.Items) == 0 {
				_, err := fmt.Fprintf(o.Stderr, "No Workstations in %s.\n", o.Namespace)
				return err
			}
			// The classes keep what deleted Workstations spent; a user who may not read them sees the live ones.
			var classes v1alpha1.WorkstationClassList
			if err := o.Client.List(cmd.Context(), &classes); err != nil && !apierrors.IsForbidden(err) {
				return fmt.Errorf("listing WorkstationClasses: %w", err)
			}
			return o.costTable(list.Items, drives.Items, classes.Items)
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "sum the Workstations of every namespace")
	return cmd
}

// costTable prints a row per Workstation, a total per namespace, and a total of all when there are several namespaces.
func (o *Options) costTable(items []v1alpha1.Workstation, drives []v1alpha1.XDrive, classes []v1alpha1.WorkstationClass) error {
	now := o.Now()
	slices.SortFunc(items, func(a, b v1alpha1.Workstation) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	driveUSD := map[string]string{}
	namespaces := []string{}
	for i := range drives {
		d := &drives[i]
		volume, snapshots := cost.DriveUSD(&d.Status, now)
		driveUSD[d.Namespace+"/"+d.Name] = cost.Sum(volume, snapshots)
		namespaces = append(namespaces, d.Namespace)
	}
	for _, ws := range items {
		namespaces = append(namespaces, ws.Namespace)
	}
	slices.Sort(namespaces)
	namespaces = slices.Compact(namespaces)

	w := tabwriter.NewWriter(o.Stdout, 0, 4, 3, ' ', 0)
	_, _ = fmt.Fprintln(w, "NAMESPACE\tWORKSTATION\tCLASS\tMONTH\tINSTANCES\tDRIVE\tTOTAL\tBUDGET")
	var allMonth, allLife, allDrives []string
	for _, ns := range namespaces {
		var month, life, nsDrives []string
		for i := range items {
			ws := &items[i]
			if ws.Namespace != ns {
				continue
			}
			m, l := cost.MonthUSD(&ws.Status, now), cost.InstanceUSD(&ws.Status, now)
			d, hasDrive := driveUSD[ns+"/"+ws.Spec.DriveRef.Name]
			driveCol := "-"
			if hasDrive {
				driveCol = cost.Format(d)
			}
			class := "-"
			if ws.Status.Class != nil {
				class = ws.Status.Class.Name
			}
			_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ns, ws.Name, class, cost.Format(m), cost.Format(l), driveCol,
				cost.Format(cost.Sum(l, d)), budgetColumn(ws.Status.Budget, now))
			month, life = append(month, m), append(life, l)
		}
		for _, cls := range classes {
			if cls.Status == nil {
				continue
			}
			for _, r := range cls.Status.RetiredSpend {
				if r.Namespace == ns && r.Month.Time.Equal(cost.MonthStart(now)) {
					// Deleted Workstations' earlier months are not kept: their life's cost is not shown.
					_, _ = fmt.Fprintf(w, "%s\t(deleted)\t%s\t%s\t-\t-\t-\t-\n", ns, cls.Name, cost.Format(r.InstanceUSD))
					month = append(month, r.InstanceUSD)
				}
			}
		}
		for key, d := range driveUSD {
			if strings.HasPrefix(key, ns+"/") {
				nsDrives = append(nsDrives, d)
			}
		}
		_, _ = fmt.Fprintf(w, "%s\t(total)\t\t%s\t%s\t%s\t%s\t\n", ns, cost.Format(cost.Sum(month...)), cost.Format(cost.Sum(life...)),
			cost.Format(cost.Sum(nsDrives...)), cost.Format(cost.Sum(append(slices.Clone(life), nsDrives...)...)))
		allMonth, allLife, allDrives = append(allMonth, month...), append(allLife, life...), append(allDrives, nsDrives...)
	}
	if len(namespaces) > 1 {
		_, _ = fmt.Fprintf(w, "(all)\t\t\t%s\t%s\t%s\t%s\t\n", cost.Format(cost.Sum(allMonth...)), cost.Format(cost.Sum(allLife...)),
			cost.Format(cost.Sum(allDrives...)), cost.Format(cost.Sum(append(slices.Clone(allLife), allDrives...)...)))
	}
	return w.Flush()
}

// budgetColumn says where a Workstation stands against its class's budget this month.
func budgetColumn(b *v1alpha1.BudgetState, now time.Time) string {
	switch {
	case b == nil || !b.Month.Time.Equal(cost.MonthStart(now)):
		return "-"
	case b.ExceededTime != nil && b.StoppedUntil != nil:
		return fmt.Sprintf("stopped until %s (%s limit %s)", b.StoppedUntil.UTC().Format("2006-01-02"), strings.ToLower(string(b.Scope)), cost.Format(b.LimitUSD))
	case b.WarningTime != nil:
		return fmt.Sprintf("warned: %s of %s (%s)", cost.Format(b.SpentUSD), cost.Format(b.LimitUSD), strings.ToLower(string(b.Scope)))
	}
	return "-"
}
