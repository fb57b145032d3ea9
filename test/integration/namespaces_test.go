package integration_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/operator"
	testenv "github.com/xdrive-io/xdrive/test/envtest"
	"github.com/xdrive-io/xdrive/test/harness"
)

// TestDrivesStayInTheirNamespace: two namespaces each have an XDrive "home"
// and a Workstation on it, under one operator. Every restore and prune stays
// in its own namespace, and a drive of one namespace cannot be restored from
// the other's snapshots, by snapshotID or by Name tag.
func TestDrivesStayInTheirNamespace(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	nsA, nsB := h.Namespace, testenv.CreateNamespace(t, h.Client)
	h.StartManager(harness.ManagerConfig{Options: ctrl.Options{
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   cache.Options{DefaultNamespaces: map[string]cache.Config{nsA: {}, nsB: {}}, ByObject: operator.CacheOptions().ByObject},
	}})
	for _, ns := range []string{nsA, nsB} {
		xd := h.NewDrive("home", 10)
		xd.Namespace, xd.Spec.SnapshotRetention = ns, 1
		w := h.NewWorkstation("dev", "home", []string{"t3.large"}, "us-east-1a")
		w.Namespace = ns
		h.Create(xd, w)
	}
	drive := func(ns, name string) *v1alpha1.XDrive {
		xd := &v1alpha1.XDrive{}
		if err := h.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, xd); err != nil {
			t.Fatal(err)
		}
		return xd
	}
	setState := func(state v1alpha1.WorkstationState) {
		for _, ns := range []string{nsA, nsB} {
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				w := &v1alpha1.Workstation{}
				if err := h.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "dev"}, w); err != nil {
					return err
				}
				w.Spec.State = state
				return h.Client.Update(context.Background(), w)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	attached := func() {
		h.Eventually(2*converge, "both drives attached", func() (bool, string) {
			a, b := drive(nsA, "home"), drive(nsB, "home")
			return a.Status.Phase == v1alpha1.XDrivePhaseAttached && b.Status.Phase == v1alpha1.XDrivePhaseAttached,
				fmt.Sprintf("%s/home %s, %s/home %s", nsA, a.Status.Phase, nsB, b.Status.Phase)
		})
	}
	// archived waits for both drives to be archived with a snapshot other than before.
	archived := func(before map[string]string) map[string]string {
		out := map[string]string{}
		h.Eventually(2*converge, "both drives archived with a new snapshot", func() (bool, string) {
			for _, ns := range []string{nsA, nsB} {
				xd := drive(ns, "home")
				if xd.Status.Phase != v1alpha1.XDrivePhaseArchived || xd.Status.LatestSnapshotID == "" || xd.Status.LatestSnapshotID == before[ns] {
					return false, fmt.Sprintf("%s/home %s latest %q", ns, xd.Status.Phase, xd.Status.LatestSnapshotID)
				}
				out[ns] = xd.Status.LatestSnapshotID
			}
			return true, ""
		})
		return out
	}
	snapshot := func(id string) (ec2types.Snapshot, bool) {
		out, err := h.EC2.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{
			Filters: []ec2types.Filter{{Name: aws.String("snapshot-id"), Values: []string{id}}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Snapshots) == 0 {
			return ec2types.Snapshot{}, false
		}
		return out.Snapshots[0], true
	}
	// ownSnapshot checks that a snapshot is tagged for ns/home of this installation.
	ownSnapshot := func(ns, id string) {
		t.Helper()
		sn, ok := snapshot(id)
		if !ok {
			t.Fatalf("snapshot %s of %s/home is gone", id, ns)
		}
		tags := tagMap(sn.Tags)
		if tags[cloud.TagDrive] != cloud.ObjectKey(ns, "home") || tags[cloud.TagCluster] != h.Cluster || tags[cloud.TagName] != "home" {
			t.Fatalf("snapshot %s restored or kept for %s/home has tags %v", id, ns, tags)
		}
	}

	attached()
	setState(v1alpha1.WorkstationStateStopped)
	first := archived(nil)
	if first[nsA] == first[nsB] {
		t.Fatalf("both drives archived into one snapshot %s", first[nsA])
	}

	// Restores: each drive's next volume comes from its own snapshot, though both carry Name=home.
	setState(v1alpha1.WorkstationStateRunning)
	attached()
	for _, ns := range []string{nsA, nsB} {
		vol, ok := h.Volume(drive(ns, "home").Status.VolumeID)
		if !ok {
			t.Fatalf("volume of %s/home not found", ns)
		}
		if got := aws.ToString(vol.SnapshotId); got != first[ns] {
			t.Fatalf("%s/home was restored from %s, want its own snapshot %s", ns, got, first[ns])
		}
		ownSnapshot(ns, first[ns])
	}

	// Prunes: retention 1 deletes each drive's first snapshot, and only that.
	setState(v1alpha1.WorkstationStateStopped)
	second := archived(first)
	h.Eventually(converge, "first snapshots pruned", func() (bool, string) {
		_, a := snapshot(first[nsA])
		_, b := snapshot(first[nsB])
		return !a && !b, fmt.Sprintf("first snapshots still there: %s %t, %s %t", first[nsA], a, first[nsB], b)
	})
	for _, ns := range []string{nsA, nsB} {
		ownSnapshot(ns, second[ns])
	}

	// Cross-namespace restores: namespace B names A's snapshot, by ID and by Name tag.
	byID := h.NewDrive("steal-id", 10)
	byID.Namespace = nsB
	byID.Spec.Source = &v1alpha1.DriveSource{SnapshotID: second[nsA]}
	byName := h.NewDrive("steal-name", 10)
	byName.Namespace = nsB
	byName.Spec.Source = &v1alpha1.DriveSource{NameTag: "home"}
	thief := h.NewWorkstation("thief", "steal-id", []string{"t3.large"}, "us-east-1a")
	thief.Namespace = nsB
	h.Create(byID, byName, thief)
	for name, reason := range map[string]string{"steal-id": v1alpha1.ReasonForeignSnapshot, "steal-name": v1alpha1.ReasonSourceNotFound} {
		h.Eventually(converge, name+" refused", func() (bool, string) {
			xd := drive(nsB, name)
			c := harness.Condition(xd.Status.Conditions, v1alpha1.ConditionVolumeReady)
			return c.Status == "False" && c.Reason == reason && xd.Status.RestoreSnapshotID == "",
				fmt.Sprintf("%s: phase %s, VolumeReady %s/%s %q, restore %q", name, xd.Status.Phase, c.Status, c.Reason, c.Message, xd.Status.RestoreSnapshotID)
		})
	}
	thiefWS := &v1alpha1.Workstation{}
	if err := h.Client.Get(context.Background(), client.ObjectKeyFromObject(thief), thiefWS); err != nil {
		t.Fatal(err)
	}
	if thiefWS.Status.InstanceID != "" || thiefWS.Status.Phase != v1alpha1.WorkstationPhasePending {
		t.Fatalf("workstation on a foreign snapshot: phase %s, instance %q", thiefWS.Status.Phase, thiefWS.Status.InstanceID)
	}
	out, err := h.EC2.DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{
		Filters: []ec2types.Filter{{Name: aws.String("snapshot-id"), Values: []string{second[nsA]}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Volumes) != 0 {
		t.Fatalf("volumes restored from %s/home's snapshot %s: %d", nsA, second[nsA], len(out.Volumes))
	}
}

// TestUntaggedSnapshotsForbidden: a class with allowUntaggedSnapshots: false
// refuses to restore a drive from a snapshot made outside xdrive.
func TestUntaggedSnapshotsForbidden(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	vol, err := h.EC2.CreateVolume(context.Background(), &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(8)})
	if err != nil {
		t.Fatal(err)
	}
	legacy := legacySnapshot(t, h, aws.ToString(vol.VolumeId), "legacy")
	cls := newClass(h, "tagged-only", nil)
	cls.Spec.AllowUntaggedSnapshots = aws.Bool(false)
	h.Create(cls)
	h.Start()
	xd := h.NewDrive("data", 10)
	xd.Spec.Source = &v1alpha1.DriveSource{NameTag: "legacy"}
	w := h.NewWorkstation("box", "data", []string{"t3.large"}, "us-east-1a")
	w.Spec.ClassName = cls.Name
	h.Create(xd, w)
	h.Eventually(converge, "untagged restore refused", classAllowed(h, "box", "False", v1alpha1.ReasonClassViolation, legacy, "allowUntaggedSnapshots"))
	// A launch this manager recorded and never ran is dropped at once, even
	// one recorded in its first second (status.launch.recordedBy): Ready shows
	// the refusal without looking for the launch's instance first.
	lookup := ""
	h.Eventually(converge, "Ready shows the refusal", func() (bool, string) {
		st := h.Workstation("box").Status
		c := harness.Condition(st.Conditions, v1alpha1.ConditionReady)
		if st.UnconfirmedLaunch != nil || c.Reason == v1alpha1.ReasonConfirmingLaunch {
			lookup = fmt.Sprintf("status.unconfirmedLaunch %+v, Ready=%s/%s %q", st.UnconfirmedLaunch, c.Status, c.Reason, c.Message)
			return true, lookup
		}
		return c.Reason == v1alpha1.ReasonClassViolation, fmt.Sprintf("Ready=%s/%s %q", c.Status, c.Reason, c.Message)
	})
	if lookup != "" {
		t.Fatalf("the refused launch, never run, is looked for as unconfirmed: %s", lookup)
	}
	refusedAndIdle(t, h, "box", v1alpha1.ReasonClassViolation)

	// The default class allows them: the same drive is adopted.
	h.UpdateWorkstation("box", func(w *v1alpha1.Workstation) { w.Spec.ClassName = "" })
	// Under load (the suite with -race beside other work) the first launch
	// was dropped after its RunInstances was called (seen at -race, load 5): its instance
	// is then looked for (status.unconfirmedLaunch, 3 minutes) first.
	h.Eventually(converge+4*time.Minute, "Ready with the default class", h.WorkstationReady("box"))
	if got, _ := h.Volume(h.Drive("data").Status.VolumeID); aws.ToString(got.SnapshotId) != legacy {
		t.Fatalf("drive restored from %s, want the legacy snapshot %s", aws.ToString(got.SnapshotId), legacy)
	}
}

// TestRecreatedDriveStartsBlank: an XDrive deleted with deletionPolicy Retain
// keeps its snapshots, and a new XDrive of the same name (a namespace name may
// be reused by another tenant) neither restores nor prunes them, nor adopts
// one by ID.
func TestRecreatedDriveStartsBlank(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.Start()
	xd := h.NewDrive("home", 10)
	xd.Spec.SnapshotRetention = 1
	h.Create(xd, h.NewWorkstation("dev", "home", []string{"t3.large"}, "us-east-1a"))
	h.Eventually(converge, "Ready", h.WorkstationReady("dev"))
	h.SetState("dev", v1alpha1.WorkstationStateStopped)
	h.Eventually(converge, "stopped", h.WorkstationPhase("dev", v1alpha1.WorkstationPhaseStopped))
	h.Eventually(converge, "archived with a snapshot", func() (bool, string) {
		d := h.Drive("home")
		return d.Status.Phase == v1alpha1.XDrivePhaseArchived && d.Status.LatestSnapshotID != "", fmt.Sprintf("%+v", d.Status)
	})
	old := h.Drive("home").Status.LatestSnapshotID
	h.Delete(&v1alpha1.Workstation{ObjectMeta: objectMeta("dev")})
	h.Delete(&v1alpha1.XDrive{ObjectMeta: objectMeta("home")})
	h.Eventually(converge, "drive gone", func() (bool, string) { return !h.Exists(&v1alpha1.XDrive{}, "home"), "exists" })
	// envtest runs no garbage collector: the SSH Secret the deleted Workstation
	// controlled goes as Kubernetes would take it; the new Workstation never uses it.
	h.Eventually(converge, "dev gone", func() (bool, string) { return !h.Exists(&v1alpha1.Workstation{}, "dev"), "exists" })
	h.Delete(&corev1.Secret{ObjectMeta: objectMeta(v1alpha1.SSHSecretName("dev"))})

	again := h.NewDrive("home", 10)
	again.Spec.SnapshotRetention = 1
	h.Create(again, h.NewWorkstation("dev", "home", []string{"t3.large"}, "us-east-1a"))
	h.Eventually(converge, "Ready again", h.WorkstationReady("dev"))
	vol, ok := h.Volume(h.Drive("home").Status.VolumeID)
	if !ok || aws.ToString(vol.SnapshotId) != "" {
		t.Fatalf("the new drive's volume %s was restored from %q, want blank", h.Drive("home").Status.VolumeID, aws.ToString(vol.SnapshotId))
	}
	h.SetState("dev", v1alpha1.WorkstationStateStopped)
	h.Eventually(converge, "archived again", func() (bool, string) {
		d := h.Drive("home")
		return d.Status.Phase == v1alpha1.XDrivePhaseArchived && d.Status.LatestSnapshotID != "" && d.Status.LatestSnapshotID != old,
			fmt.Sprintf("%+v", d.Status)
	})
	out, err := h.EC2.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{
		Filters: []ec2types.Filter{{Name: aws.String("snapshot-id"), Values: []string{old}}}})
	if err != nil || len(out.Snapshots) != 1 {
		t.Fatalf("the retained snapshot %s of the earlier drive: %d found (%v), want it kept (retention prunes only the drive's own)", old, len(out.Snapshots), err)
	}

	// A third XDrive home names the first one's snapshot: refused, it is another drive's.
	h.Delete(&v1alpha1.Workstation{ObjectMeta: objectMeta("dev")})
	h.Delete(&v1alpha1.XDrive{ObjectMeta: objectMeta("home")})
	h.Eventually(converge, "drive gone again", func() (bool, string) { return !h.Exists(&v1alpha1.XDrive{}, "home"), "exists" })
	third := h.NewDrive("home", 10)
	third.Spec.Source = &v1alpha1.DriveSource{SnapshotID: old}
	h.Create(third)
	h.Eventually(converge, "adopting the earlier drive's snapshot refused", func() (bool, string) {
		c := harness.Condition(h.Drive("home").Status.Conditions, v1alpha1.ConditionVolumeReady)
		return c.Status == "False" && c.Reason == v1alpha1.ReasonForeignSnapshot, fmt.Sprintf("%+v", c)
	})
}

// TestForgedRestoreSnapshotRefused: someone who can write an XDrive's status
// points its restore snapshot at another drive's; the Workstation controller
// looks at the snapshot before the launch and refuses it.
func TestForgedRestoreSnapshotRefused(t *testing.T) {
	h := harness.New(t, harness.Config{Env: requireEnv(t)})
	h.Start()
	h.Create(h.NewDrive("home", 10), h.NewWorkstation("dev", "home", []string{"t3.large"}, "us-east-1a"), h.NewDrive("other", 10))
	h.Eventually(converge, "Ready", h.WorkstationReady("dev"))
	h.SetState("dev", v1alpha1.WorkstationStateStopped)
	h.Eventually(converge, "home archived with a snapshot", func() (bool, string) {
		d := h.Drive("home")
		return d.Status.Phase == v1alpha1.XDrivePhaseArchived && d.Status.LatestSnapshotID != "", fmt.Sprintf("%+v", d.Status)
	})
	h.Eventually(converge, "other archived blank", h.DrivePhase("other", v1alpha1.XDrivePhaseArchived))
	stolen := h.Drive("home").Status.LatestSnapshotID

	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		xd := h.Drive("other")
		xd.Status.RestoreSnapshotID = stolen
		return h.Client.Status().Update(context.Background(), xd)
	})
	if err != nil {
		t.Fatal(err)
	}
	h.Create(h.NewWorkstation("thief", "other", []string{"t3.large"}, "us-east-1a"))
	h.Eventually(converge, "foreign restore refused", classAllowed(h, "thief", "False", v1alpha1.ReasonForeignSnapshot, stolen))
	refusedAndIdle(t, h, "thief", v1alpha1.ReasonForeignSnapshot)
}
