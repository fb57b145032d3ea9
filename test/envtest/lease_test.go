package testenv

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// TestLeaseBoundsValidation: the API server keeps the class's bounds that
// the Workstation controller writes into a drive's lease, and rejects
// bounds no class could have.
func TestLeaseBoundsValidation(t *testing.T) {
	e := sharedEnv(t)
	ns := CreateNamespace(t, e.Client)
	ctx := testCtx(t)
	xd := &v1alpha1.XDrive{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "home"}, Spec: v1alpha1.XDriveSpec{SizeGiB: 10}}
	if err := e.Client.Create(ctx, xd); err != nil {
		t.Fatal(err)
	}
	valid := v1alpha1.DriveBounds{ClassName: "standard", MaxKeepVolumeForMinutes: ptr.To[int32](0), MaxSnapshotRetention: 3}
	xd.Status.Holder = &v1alpha1.DriveHolder{Name: "dev", UID: "0b6f0c3e-1d2a-4c7b-9e8f-123456789abc", Bounds: &valid}
	if err := e.Client.Status().Update(ctx, xd); err != nil {
		t.Fatalf("writing a lease with bounds %+v: %v", valid, err)
	}
	got := &v1alpha1.XDrive{}
	if err := e.Client.Get(ctx, client.ObjectKeyFromObject(xd), got); err != nil {
		t.Fatal(err)
	}
	if b := got.Status.Bounds(); b == nil || !equality.Semantic.DeepEqual(*b, valid) {
		t.Fatalf("lease bounds read back %+v, want %+v (a maximum warm period of 0 kept)", b, valid)
	}

	for name, c := range map[string]struct {
		bounds v1alpha1.DriveBounds
		want   []string
	}{
		"no class":                {v1alpha1.DriveBounds{MaxSnapshotRetention: 3}, []string{"status.holder.bounds.className", "Required value"}},
		"negative warm period":    {v1alpha1.DriveBounds{ClassName: "standard", MaxKeepVolumeForMinutes: ptr.To[int32](-1)}, []string{"status.holder.bounds.maxKeepVolumeForMinutes", "greater than or equal to 0"}},
		"warm period over a week": {v1alpha1.DriveBounds{ClassName: "standard", MaxKeepVolumeForMinutes: ptr.To[int32](10081)}, []string{"status.holder.bounds.maxKeepVolumeForMinutes", "less than or equal to 10080"}},
		"negative retention":      {v1alpha1.DriveBounds{ClassName: "standard", MaxSnapshotRetention: -1}, []string{"status.holder.bounds.maxSnapshotRetention", "greater than or equal to 1"}},
	} {
		t.Run(name, func(t *testing.T) {
			bad := got.DeepCopy()
			bad.Status.Holder.Bounds = &c.bounds
			err := e.Client.Status().Update(ctx, bad)
			if err == nil {
				t.Fatalf("bounds %+v accepted", c.bounds)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
