package integration_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"k8s.io/client-go/util/retry"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/plugin"
	"github.com/xdrive-io/xdrive/test/harness"
)

// TestRollbackKeepsNewerSnapshots: kubectl xdrive rollback, while the
// Workstation is stopped, makes the next restore an older snapshot; every
// newer one is kept, even under a retention that would prune it, until the
// next snapshot completes. A rollback while the Workstation runs is refused,
// by the plugin and by the operator.
func TestRollbackKeepsNewerSnapshots(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.Start()
	home := h.NewDrive("home", 10)
	home.Spec.SnapshotRetention = 3
	h.Create(home, h.NewWorkstation("dev", "home", []string{"t3.large"}, "us-east-1a"))
	var taken []string // oldest first
	for range 3 {
		h.SetState("dev", v1alpha1.WorkstationStateRunning)
		h.Eventually(converge, "dev Ready", h.WorkstationReady("dev"))
		h.SetState("dev", v1alpha1.WorkstationStateStopped)
		h.Eventually(converge, "home archived with a new snapshot", func() (bool, string) {
			st := h.Drive("home").Status
			return st.Phase == v1alpha1.XDrivePhaseArchived && st.LatestSnapshotID != "" && !slices.Contains(taken, st.LatestSnapshotID) &&
				h.Workstation("dev").Status.Phase == v1alpha1.WorkstationPhaseStopped, fmt.Sprintf("%+v", st)
		})
		taken = append(taken, h.Drive("home").Status.LatestSnapshotID)
	}
	first, second, newest := taken[0], taken[1], taken[2]
	if got := snapshotIDs(h.Drive("home").Status.Snapshots); !slices.Equal(got, []string{newest, second, first}) {
		t.Fatalf("status.snapshots %v, want [%s %s %s]", got, newest, second, first)
	}

	kubectlXDrive := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), converge)
		defer cancel()
		err := plugin.Run(ctx, plugin.Options{Client: h.Client, Namespace: h.Namespace, Stdout: &out, Stderr: &errOut, Poll: 100 * time.Millisecond}, args)
		return out.String() + errOut.String(), err
	}
	if out, err := kubectlXDrive("rollback", "home", "--to", first, "--wait"); err != nil {
		t.Fatalf("kubectl xdrive rollback: %v\n%s", err, out)
	}
	st := h.Drive("home").Status
	if st.Rollback == nil || st.Rollback.SnapshotID != first || st.RestoreSnapshotID != first || st.LatestSnapshotID != newest {
		t.Fatalf("after the rollback: rollback %+v, restore %s, latest %s; want %s, %s, %s", st.Rollback, st.RestoreSnapshotID, st.LatestSnapshotID, first, first, newest)
	}
	if ok, detail := h.FindEvent("XDrive", "home", v1alpha1.ReasonRolledBack, first); !ok {
		t.Errorf("no RolledBack Event naming %s: %s", first, detail)
	}
	out, err := kubectlXDrive("snapshots", "home")
	if err != nil || !strings.Contains(out, "Rollback in effect") || !strings.Contains(out, first) || !strings.Contains(out, second) {
		t.Errorf("kubectl xdrive snapshots: %v\n%s", err, out)
	}

	// A retention of 1 while the rollback is in effect prunes none: not the
	// middle one either, which is neither the newest nor the restore.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		xd := h.Drive("home")
		xd.Spec.SnapshotRetention = 1
		return h.Client.Update(context.Background(), xd)
	}); err != nil {
		t.Fatal(err)
	}
	h.Eventually(converge, "the retention change seen", func() (bool, string) {
		xd := h.Drive("home")
		return xd.Status.ObservedGeneration == xd.Generation, fmt.Sprintf("observed %d of %d", xd.Status.ObservedGeneration, xd.Generation)
	})
	if got := harness.SnapshotIDs(h.DriveSnapshots("home")); len(got) != 3 {
		t.Fatalf("snapshots under the rollback with retention 1: %v, want all of %v", got, taken)
	}

	h.SetState("dev", v1alpha1.WorkstationStateRunning)
	h.Eventually(converge, "dev Ready on the rolled-back drive", h.WorkstationReady("dev"))
	if vol, _ := h.Volume(h.Drive("home").Status.VolumeID); aws.ToString(vol.SnapshotId) != first {
		t.Fatalf("the volume is restored from %q, want the rollback's %s", aws.ToString(vol.SnapshotId), first)
	}
	if out, err := kubectlXDrive("rollback", "home", "--to", second); err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Errorf("rollback while dev runs: %v, want refused (stop it first)\n%s", err, out)
	}
	// Past the plugin, the operator refuses it too, and nothing changes.
	patchAnnotation(t, h, v1alpha1.RollbackAnnotation, second+"@"+time.Now().UTC().Add(time.Hour).Format(time.RFC3339))
	h.Eventually(converge, "the running drive's rollback refused", func() (bool, string) {
		return h.FindEvent("XDrive", "home", v1alpha1.ReasonRollbackRefused, second, "in use")
	})
	if rb := h.Drive("home").Status.Rollback; rb == nil || rb.SnapshotID != first {
		t.Fatalf("rollback %+v after a refused request, want still %s", rb, first)
	}

	h.SetState("dev", v1alpha1.WorkstationStateStopped)
	h.Eventually(converge, "the rollback ended by the next snapshot", func() (bool, string) {
		st := h.Drive("home").Status
		return st.Phase == v1alpha1.XDrivePhaseArchived && st.Rollback == nil && !slices.Contains(taken, st.LatestSnapshotID),
			fmt.Sprintf("%+v", st)
	})
	third := h.Drive("home").Status.LatestSnapshotID
	h.Eventually(converge, "retention 1 applies again", func() (bool, string) {
		got := harness.SnapshotIDs(h.DriveSnapshots("home"))
		return slices.Equal(got, []string{third}), fmt.Sprintf("snapshots %v, want [%s]", got, third)
	})
}

func snapshotIDs(list []v1alpha1.DriveSnapshot) []string {
	var ids []string
	for _, sn := range list {
		ids = append(ids, sn.ID)
	}
	return ids
}

func patchAnnotation(t *testing.T, h *harness.Harness, key, value string) {
	t.Helper()
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		xd := h.Drive("home")
		if xd.Annotations == nil {
			xd.Annotations = map[string]string{}
		}
		xd.Annotations[key] = value
		return h.Client.Update(context.Background(), xd)
	}); err != nil {
		t.Fatal(err)
	}
}
