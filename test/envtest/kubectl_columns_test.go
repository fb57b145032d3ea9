package testenv

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

func ready(status metav1.ConditionStatus, reason string) []metav1.Condition {
	return []metav1.Condition{{
		Type: v1alpha1.ConditionReady, Status: status, Reason: reason, Message: "set by the test",
		ObservedGeneration: 1, LastTransitionTime: metav1.Now(),
	}}
}

// TestKubectlPrinterColumns writes the status of an XDrive and a Workstation
// as the controllers do at each step of a launch and a stop, and checks the
// columns of `kubectl get xdrives,workstations` as a user sees them.
func TestKubectlPrinterColumns(t *testing.T) {
	e := sharedEnv(t)
	ns := CreateNamespace(t, e.Client)
	k := e.Kubectl(t, ns)
	ctx := testCtx(t)
	xd := &v1alpha1.XDrive{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "home"},
		Spec:       v1alpha1.XDriveSpec{SizeGiB: 100},
	}
	ws := &v1alpha1.Workstation{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dev"},
		Spec: v1alpha1.WorkstationSpec{
			DriveRef:      v1alpha1.DriveReference{Name: "home"},
			InstanceTypes: []string{"g5.xlarge", "t3.large"},
		},
	}
	for _, o := range []client.Object{xd, ws} {
		if err := e.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	holder := &v1alpha1.DriveHolder{Name: "dev", UID: string(ws.UID)}
	const (
		zone  = "us-east-1a"
		vol   = "vol-0a1b2c3d4e5f60718"
		inst  = "i-0123456789abcdef0"
		snap1 = "snap-0123456789abcdef0"
		snap2 = "snap-0fedcba9876543210"
		ip    = "203.0.113.7" // TEST-NET-3: never dialled, only printed
	)
	xdColumns := []string{"NAME", "PHASE", "SIZE", "WORKSTATION", "READY", "ZONE", "VOLUME", "INITIALIZED", "SNAPSHOT", "AGE"}                               // -o wide
	wsColumns := []string{"NAME", "PHASE", "$/H", "IDLE", "READY", "STATUS", "SPENT", "CLASS", "DRIVE", "TYPE", "CAPACITY", "ZONE", "IP", "ENDPOINT", "AGE"} // -o wide

	for _, step := range []struct {
		name           string
		xd             v1alpha1.XDriveStatus
		ws             v1alpha1.WorkstationStatus
		wantXD, wantWS []string // the columns between NAME and AGE
	}{
		{
			name: "launching from the first snapshot",
			xd: v1alpha1.XDriveStatus{
				ObservedGeneration: 1, Phase: v1alpha1.XDrivePhaseRestoring, Holder: holder,
				VolumeID: vol, AvailabilityZone: zone, AttachedTo: inst, RestoreSnapshotID: snap1,
				LatestSnapshotID: snap1, SnapshotCount: 1, SizeGiB: 100,
				Conditions: ready(metav1.ConditionFalse, v1alpha1.ReasonRestoring),
			},
			ws: v1alpha1.WorkstationStatus{
				Class: &v1alpha1.ResolvedClass{Name: "standard"}, ObservedGeneration: 1, Phase: v1alpha1.WorkstationPhaseLaunching, Launches: 1,
				InstanceID: inst, InstanceType: "g5.xlarge", CapacityType: v1alpha1.CapacityTypeSpot, AvailabilityZone: zone,
				Conditions: ready(metav1.ConditionFalse, v1alpha1.ReasonLaunching),
			},
			wantXD: []string{"Restoring", "100", "dev", "False", zone, vol, "", snap1},
			wantWS: []string{"Launching", "", "", "False", "Launching", "", "standard", "home", "g5.xlarge", "Spot", zone, "", ""},
		},
		{
			name: "running",
			xd: v1alpha1.XDriveStatus{
				ObservedGeneration: 1, Phase: v1alpha1.XDrivePhaseAttached, Holder: holder,
				VolumeID: vol, AvailabilityZone: zone, AttachedTo: inst,
				LatestSnapshotID: snap1, SnapshotCount: 1, SizeGiB: 100,
				Conditions: ready(metav1.ConditionTrue, v1alpha1.ReasonAttached),
			},
			ws: v1alpha1.WorkstationStatus{
				Class: &v1alpha1.ResolvedClass{Name: "standard"}, ObservedGeneration: 1, Phase: v1alpha1.WorkstationPhaseRunning, Launches: 1,
				InstanceID: inst, InstanceType: "g5.xlarge", CapacityType: v1alpha1.CapacityTypeSpot, AvailabilityZone: zone,
				PrivateIP: "10.0.0.5", PublicIP: ip, PricePerHour: "0.0208",
				Idle: &v1alpha1.IdleState{InstanceID: inst, LastActivityTime: metav1.NewTime(time.Now().Add(-15 * time.Minute)),
					LastActivitySignal: v1alpha1.IdleSignalSSH},
				Endpoints:  []v1alpha1.Endpoint{{Name: "ssh", URL: "ssh://root@" + ip + ":22"}, {Name: "jupyter", URL: "http://" + ip + ":8888"}},
				Conditions: ready(metav1.ConditionTrue, v1alpha1.ReasonReady),
			},
			wantXD: []string{"Attached", "100", "dev", "True", zone, vol, "", snap1},
			wantWS: []string{"Running", "0.0208", "15m", "True", "Ready", "", "standard", "home", "g5.xlarge", "Spot", zone, ip, "ssh://root@" + ip + ":22"},
		},
		{
			name: "hydrating after a restore",
			xd: v1alpha1.XDriveStatus{
				ObservedGeneration: 1, Phase: v1alpha1.XDrivePhaseAttached, Holder: holder,
				VolumeID: vol, AvailabilityZone: zone, AttachedTo: inst,
				LatestSnapshotID: snap1, SnapshotCount: 1, SizeGiB: 100,
				Initialization: &v1alpha1.VolumeInitialization{VolumeID: vol, Percent: ptr.To[int32](45), Type: "provisioned-rate"},
				Conditions:     ready(metav1.ConditionTrue, v1alpha1.ReasonAttached),
			},
			ws: v1alpha1.WorkstationStatus{
				Class: &v1alpha1.ResolvedClass{Name: "standard"}, ObservedGeneration: 1, Phase: v1alpha1.WorkstationPhaseRunning, Launches: 1,
				InstanceID: inst, InstanceType: "g5.xlarge", CapacityType: v1alpha1.CapacityTypeSpot, AvailabilityZone: zone,
				PrivateIP: "10.0.0.5", PublicIP: ip,
				Conditions: ready(metav1.ConditionTrue, v1alpha1.ReasonReady),
			},
			wantXD: []string{"Attached", "100", "dev", "True", zone, vol, "45", snap1},
			wantWS: []string{"Running", "", "", "True", "Ready", "", "standard", "home", "g5.xlarge", "Spot", zone, ip, ""},
		},
		{
			name: "prewarming after a restore",
			xd: v1alpha1.XDriveStatus{
				ObservedGeneration: 1, Phase: v1alpha1.XDrivePhaseAttached, Holder: holder,
				VolumeID: vol, AvailabilityZone: zone, AttachedTo: inst,
				LatestSnapshotID: snap1, SnapshotCount: 1, SizeGiB: 100,
				Initialization: &v1alpha1.VolumeInitialization{VolumeID: vol, Percent: ptr.To[int32](62), Type: v1alpha1.InitializationTypePrewarm},
				Conditions:     ready(metav1.ConditionTrue, v1alpha1.ReasonAttached),
			},
			ws: v1alpha1.WorkstationStatus{
				Class: &v1alpha1.ResolvedClass{Name: "standard"}, ObservedGeneration: 1, Phase: v1alpha1.WorkstationPhaseRunning, Launches: 1,
				InstanceID: inst, InstanceType: "g5.xlarge", CapacityType: v1alpha1.CapacityTypeSpot, AvailabilityZone: zone,
				PrivateIP: "10.0.0.5", PublicIP: ip,
				DrivePrewarm: &v1alpha1.DrivePrewarm{VolumeID: vol, Percent: ptr.To[int32](62)},
				Conditions:   ready(metav1.ConditionTrue, v1alpha1.ReasonReady),
			},
			wantXD: []string{"Attached", "100", "dev", "True", zone, vol, "62", snap1},
			wantWS: []string{"Running", "", "", "True", "Ready", "", "standard", "home", "g5.xlarge", "Spot", zone, ip, ""},
		},
		{
			name: "snapshotting after a flushed stop",
			xd: v1alpha1.XDriveStatus{
				ObservedGeneration: 1, Phase: v1alpha1.XDrivePhaseSnapshotting, Holder: holder,
				VolumeID: vol, AvailabilityZone: zone, AttachedTo: inst,
				PendingSnapshot:  &v1alpha1.PendingSnapshot{ID: snap2, VolumeID: vol, StartTime: metav1.Now(), Consistency: v1alpha1.ConsistencyFlushed},
				LatestSnapshotID: snap1, SnapshotCount: 1, SizeGiB: 100,
				Conditions: ready(metav1.ConditionFalse, v1alpha1.ReasonSnapshotting),
			},
			ws: v1alpha1.WorkstationStatus{
				Class: &v1alpha1.ResolvedClass{Name: "standard"}, ObservedGeneration: 1, Phase: v1alpha1.WorkstationPhaseTerminating, Launches: 1,
				InstanceID: inst, InstanceType: "g5.xlarge", CapacityType: v1alpha1.CapacityTypeSpot, AvailabilityZone: zone,
				PrivateIP: "10.0.0.5", PublicIP: ip,
				Conditions: ready(metav1.ConditionFalse, v1alpha1.ReasonStopping),
			},
			wantXD: []string{"Snapshotting", "100", "dev", "False", zone, vol, "", snap1},
			wantWS: []string{"Terminating", "", "", "False", "Stopping", "", "standard", "home", "g5.xlarge", "Spot", zone, ip, ""},
		},
		{
			name: "stopped and archived",
			xd: v1alpha1.XDriveStatus{
				ObservedGeneration: 1, Phase: v1alpha1.XDrivePhaseArchived, // the Workstation gave the lease back
				RestoreSnapshotID: snap2, LatestSnapshotID: snap2, SnapshotCount: 2, SizeGiB: 100,
				Conditions: ready(metav1.ConditionTrue, v1alpha1.ReasonArchived),
			},
			ws: v1alpha1.WorkstationStatus{
				Class: &v1alpha1.ResolvedClass{Name: "standard"}, ObservedGeneration: 1, Phase: v1alpha1.WorkstationPhaseStopped, Launches: 1,
				Cost:       &v1alpha1.WorkstationCost{InstanceUSD: "1.25", Launches: 1, LastCountedInstanceID: inst},
				Conditions: ready(metav1.ConditionFalse, v1alpha1.ReasonStopped),
			},
			wantXD: []string{"Archived", "100", "", "True", "", "", "", snap2},
			wantWS: []string{"Stopped", "", "", "False", "Stopped", "1.25", "standard", "home", "", "", "", "", ""},
		},
	} {
		t.Run(step.name, func(t *testing.T) {
			ctx := testCtx(t)
			for _, o := range []client.Object{xd, ws} {
				if err := e.Client.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
					t.Fatal(err)
				}
			}
			xd.Status, ws.Status = step.xd, step.ws
			for _, o := range []client.Object{xd, ws} {
				if err := e.Client.Status().Update(ctx, o); err != nil {
					t.Fatalf("writing the status of %s: %v", o.GetName(), err)
				}
			}

			tables, out := k.Get(t, "xdrives,workstations", "-o", "wide")
			if len(tables) != 2 {
				t.Fatalf("kubectl get xdrives,workstations printed %d tables, want 2:\n%s", len(tables), out)
			}
			ExpectRow(t, tables[0], xdColumns, append([]string{"xdrive.xdrive.io/home"}, step.wantXD...))
			ExpectRow(t, tables[1], wsColumns, append([]string{"workstation.xdrive.io/dev"}, step.wantWS...))
			t.Logf("kubectl get xdrives,workstations -o wide:\n%s", out)

			// Without -o wide: the phase, $/H and IDLE.
			tables, out = k.Get(t, "xdrives,workstations")
			if len(tables) != 2 {
				t.Fatalf("kubectl get xdrives,workstations printed %d tables, want 2:\n%s", len(tables), out)
			}
			ExpectRow(t, tables[0], []string{"NAME", "PHASE", "SIZE", "WORKSTATION", "AGE"}, append([]string{"xdrive.xdrive.io/home"}, step.wantXD[:3]...))
			ExpectRow(t, tables[1], []string{"NAME", "PHASE", "$/H", "IDLE", "AGE"}, append([]string{"workstation.xdrive.io/dev"}, step.wantWS[:3]...))
		})
	}
}
