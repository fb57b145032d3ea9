package testenv_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/operator"
	testenv "github.com/xdrive-io/xdrive/test/envtest"
	"github.com/xdrive-io/xdrive/test/harness"
	"github.com/xdrive-io/xdrive/test/moto"
)

// TestKubectlLifecycle runs the operator against moto (test/harness) through
// a launch and a stop, and after each reads `kubectl get xdrives,workstations`
// as a user would. It needs moto_server: without it the test is skipped, or
// failed when CI=true.
func TestKubectlLifecycle(t *testing.T) {
	testenv.KubectlPath(t)
	srv, err := moto.Start()
	if err != nil {
		if testenv.InCI() {
			t.Fatalf("moto is required in CI: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	t.Cleanup(srv.Stop)
	ctrl.SetLogger(logr.Discard())
	env := testenv.StartEnv(t)
	ns := testenv.CreateNamespace(t, env.Client)
	st, err := harness.NewStack(harness.StackConfig{
		Env: env, Namespace: ns, MotoURL: srv.URL,
		Options: operator.Options{Agent: harness.NewFakeAgent()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := harness.EnsureDefaultClass(context.Background(), env.Client); err != nil {
		t.Fatal(err)
	}
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := st.Create(ctx, st.NewDrive("home", 20), st.NewWorkstation("dev", "home", []string{"t3.large"}, "us-east-1a")); err != nil {
		t.Fatal(err)
	}
	k := env.Kubectl(t, ns)
	xdColumns := []string{"NAME", "PHASE", "SIZE", "WORKSTATION", "READY", "ZONE", "VOLUME", "INITIALIZED", "SNAPSHOT", "AGE"}                               // -o wide
	wsColumns := []string{"NAME", "PHASE", "$/H", "IDLE", "READY", "STATUS", "SPENT", "CLASS", "DRIVE", "TYPE", "CAPACITY", "ZONE", "IP", "ENDPOINT", "AGE"} // -o wide

	// wait polls until the drive and the Workstation are in the given phases.
	wait := func(what string, dp v1alpha1.XDrivePhase, wp v1alpha1.WorkstationPhase, wsReady bool) (*v1alpha1.XDrive, *v1alpha1.Workstation) {
		t.Helper()
		var xd *v1alpha1.XDrive
		var ws *v1alpha1.Workstation
		err := harness.Poll(ctx, 200*time.Millisecond, time.Minute, what, func() (bool, string, error) {
			var err error
			if xd, err = st.Drive(ctx, "home"); err != nil {
				return false, "", err
			}
			if ws, err = st.Workstation(ctx, "dev"); err != nil {
				return false, "", err
			}
			_, dr := v1alpha1.ReadyReason(xd.Status.Conditions)
			wr, _ := v1alpha1.ReadyReason(ws.Status.Conditions)
			ok := xd.Status.Phase == dp && dr == string(dp) && ws.Status.Phase == wp && (wr == "True") == wsReady
			return ok, fmt.Sprintf("drive %s (Ready reason %s), workstation %s (Ready %s)", xd.Status.Phase, dr, ws.Status.Phase, wr), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return xd, ws
	}

	xd, ws := wait("launched", v1alpha1.XDrivePhaseAttached, v1alpha1.WorkstationPhaseRunning, true)
	if xd.Status.VolumeID == "" || ws.Status.PublicIP == "" {
		t.Fatalf("after launch: drive volume %q, workstation IP %q", xd.Status.VolumeID, ws.Status.PublicIP)
	}
	tables, out := k.Get(t, "xdrives,workstations", "-o", "wide")
	t.Logf("after launch:\n%s", out)
	if len(tables) != 2 {
		t.Fatalf("kubectl get xdrives,workstations printed %d tables, want 2", len(tables))
	}
	testenv.ExpectRow(t, tables[0], xdColumns, []string{"xdrive.xdrive.io/home", "Attached", "20", "dev", "True", "us-east-1a", xd.Status.VolumeID, "", ""})
	testenv.ExpectRow(t, tables[1], wsColumns, []string{"workstation.xdrive.io/dev", "Running", ws.Status.PricePerHour, "", "True", "Ready", spent(ws), harness.DefaultClass, "home", "t3.large", "Spot", "us-east-1a", ws.Status.PublicIP, "ssh://root@" + ws.Status.PublicIP + ":22"})

	if err := st.UpdateWorkstation(ctx, "dev", func(w *v1alpha1.Workstation) { w.Spec.State = v1alpha1.WorkstationStateStopped }); err != nil {
		t.Fatal(err)
	}
	// Once the Workstation is Stopped it has given the drive's lease back.
	xd, ws = wait("stopped", v1alpha1.XDrivePhaseArchived, v1alpha1.WorkstationPhaseStopped, false)
	if xd.Status.LatestSnapshotID == "" || xd.Status.Holder != nil {
		t.Fatalf("archived drive: snapshot %q, holder %+v", xd.Status.LatestSnapshotID, xd.Status.Holder)
	}
	tables, out = k.Get(t, "xdrives,workstations", "-o", "wide")
	t.Logf("after stop:\n%s", out)
	if len(tables) != 2 {
		t.Fatalf("kubectl get xdrives,workstations printed %d tables, want 2", len(tables))
	}
	testenv.ExpectRow(t, tables[0], xdColumns, []string{"xdrive.xdrive.io/home", "Archived", "20", "", "True", "", "", "", xd.Status.LatestSnapshotID})
	testenv.ExpectRow(t, tables[1], wsColumns, []string{"workstation.xdrive.io/dev", "Stopped", "", "", "False", "Stopped", spent(ws), harness.DefaultClass, "home", "", "", "", "", ""})
}

// spent is the SPENT column: the instance cost counted so far (status.cost.instanceUSD).
func spent(ws *v1alpha1.Workstation) string {
	if ws.Status.Cost == nil {
		return ""
	}
	return ws.Status.Cost.InstanceUSD
}
