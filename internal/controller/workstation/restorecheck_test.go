package workstation

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/drives"
)

// volumesAPI names DriveVolumes for embedding: its other methods are not called here.
type volumesAPI interface{ DriveVolumes }

// restoreSnapshots knows snapshots by ID and owns each by its drive tag.
type restoreSnapshots struct {
	volumesAPI
	snaps map[string]drives.Snapshot
}

func (r restoreSnapshots) Snapshot(_ context.Context, id string) (drives.Snapshot, bool, error) {
	sn, ok := r.snaps[id]
	return sn, ok, nil
}

func (restoreSnapshots) Foreign(sn drives.Snapshot, drive, uid string) bool {
	return sn.Tags[cloud.TagDrive] != drive || sn.Tags[cloud.TagDriveUID] != uid
}

// TestCheckRestore: a launch's restore snapshot is checked on a free drive
// as on one the Workstation holds (it may take the lease and launch in the
// same reconcile); another drive's snapshot is refused; a drive another
// Workstation holds is that one's to check.
func TestCheckRestore(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	r := &Reconciler{Client: fake.NewClientBuilder().WithScheme(scheme).Build(), Volumes: restoreSnapshots{snaps: map[string]drives.Snapshot{
		"snap-own":     {ID: "snap-own", Tags: map[string]string{cloud.TagDrive: "lab/home", cloud.TagDriveUID: "uid-home"}},
		"snap-foreign": {ID: "snap-foreign", Tags: map[string]string{cloud.TagDrive: "other/secret", cloud.TagDriveUID: "uid-secret"}},
	}}}
	cls := &v1alpha1.WorkstationClass{ObjectMeta: metav1.ObjectMeta{Name: "gpu"}}
	for _, c := range []struct {
		name, holder, restore string
		refused               bool
	}{
		{"a free drive, its own snapshot", "", "snap-own", false},
		{"a free drive, another drive's snapshot", "", "snap-foreign", true},
		{"held by this Workstation, another drive's snapshot", "uid-dev", "snap-foreign", true},
		{"held by another Workstation: its check", "uid-other", "snap-foreign", false},
	} {
		ws := &v1alpha1.Workstation{ObjectMeta: metav1.ObjectMeta{Namespace: "lab", Name: "dev", UID: "uid-dev", Generation: 1}}
		ws.Spec.State = v1alpha1.WorkstationStateRunning
		xd := &v1alpha1.XDrive{ObjectMeta: metav1.ObjectMeta{Namespace: "lab", Name: "home", UID: "uid-home"}}
		xd.Status.Phase, xd.Status.RestoreSnapshotID = v1alpha1.XDrivePhaseArchived, c.restore
		if c.holder != "" {
			xd.Status.Holder = &v1alpha1.DriveHolder{Name: "x", UID: c.holder}
		}
		s := &scope{r: r, ws: ws, st: &ws.Status, key: "lab/dev"}
		ref, err := s.admission().checkRestore(context.Background(), xd, cls)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if (ref != nil) != c.refused || ref != nil && ref.reason != v1alpha1.ReasonForeignSnapshot {
			t.Errorf("%s: refusal %+v, want refused %v (ForeignSnapshot)", c.name, ref, c.refused)
		}
	}
}
