package workstation

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/controller/common"
)

// TestNamespaceWakesForks: a namespace's label change wakes its own
// Workstations and those of other namespaces whose drive forks a drive of
// it (a class's allowForkFrom selects the source's namespace by its labels),
// and no other.
func TestNamespaceWakesForks(t *testing.T) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{v1alpha1.AddToScheme, corev1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	ws := func(ns, name, drive string) *v1alpha1.Workstation {
		return &v1alpha1.Workstation{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: v1alpha1.WorkstationSpec{DriveRef: v1alpha1.DriveReference{Name: drive}}}
	}
	drive := func(ns, name string, src *v1alpha1.ForkSource) *v1alpha1.XDrive {
		xd := &v1alpha1.XDrive{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if src != nil {
			xd.Spec.Source = &v1alpha1.DriveSource{XDrive: src}
		}
		return xd
	}
	objs := []client.Object{
		drive("gold", "home", nil), ws("gold", "g", "home"),
		drive("team", "cross", &v1alpha1.ForkSource{Name: "home", Namespace: "gold"}), ws("team", "x", "cross"),
		drive("team", "local", &v1alpha1.ForkSource{Name: "cross"}), ws("team", "y", "local"),
		drive("lab", "other", &v1alpha1.ForkSource{Name: "home", Namespace: "elsewhere"}), ws("lab", "z", "other"),
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithIndex(&v1alpha1.Workstation{}, common.DriveRefIndex, common.WorkstationDrive).Build()
	r := &Reconciler{Client: c}
	var woken []string
	for _, req := range r.workstationsOfNamespace(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "gold"}}) {
		woken = append(woken, req.String())
	}
	slices.Sort(woken)
	if want := []string{"gold/g", "team/x"}; !slices.Equal(woken, want) {
		t.Fatalf("gold's label change woke %v, want %v", woken, want)
	}
}
