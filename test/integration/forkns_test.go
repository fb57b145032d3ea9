package integration_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/operator"
	testenv "github.com/xdrive-io/xdrive/test/envtest"
	"github.com/xdrive-io/xdrive/test/harness"
)

// crossFork is the cross-namespace part of TestForkIsIndependent: the drive
// "cross" of a second namespace forks the test's "gold", held by the
// Workstation "x" of a class that selects that namespace only.
type crossFork struct {
	t     *testing.T
	h     *harness.Harness
	ns    string // the fork's namespace; gold is in h.Namespace
	class string
}

// startCrossFork makes the second namespace and starts the manager with a
// cache of both, as the binary's covers every namespace.
func startCrossFork(t *testing.T, h *harness.Harness) *crossFork {
	c := &crossFork{t: t, h: h, ns: testenv.CreateNamespace(t, h.Client)}
	h.StartManager(harness.ManagerConfig{Options: ctrl.Options{
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   operator.CacheOptions(h.Namespace, c.ns),
	}})
	return c
}

// create makes the fork of gold, its Workstation, and a class without allowForkFrom.
func (c *crossFork) create() {
	cls := newClass(c.h, "fork", map[string]string{corev1.LabelMetadataName: c.ns})
	c.class = cls.Name
	xd := c.h.NewDrive("cross", 10)
	xd.Namespace, xd.Spec.SnapshotRetention = c.ns, 1
	xd.Spec.Source = &v1alpha1.DriveSource{XDrive: &v1alpha1.ForkSource{Name: "gold", Namespace: c.h.Namespace}}
	w := c.h.NewWorkstation("x", "cross", []string{"t3.large"}, "us-east-1a")
	w.Namespace, w.Spec.ClassName = c.ns, cls.Name
	c.h.Create(cls, xd, w)
}

func (c *crossFork) drive() *v1alpha1.XDrive {
	xd := &v1alpha1.XDrive{}
	if err := c.h.Client.Get(context.Background(), types.NamespacedName{Namespace: c.ns, Name: "cross"}, xd); err != nil {
		c.t.Fatal(err)
	}
	return xd
}

func (c *crossFork) workstation() *v1alpha1.Workstation {
	w := &v1alpha1.Workstation{}
	if err := c.h.Client.Get(context.Background(), types.NamespacedName{Namespace: c.ns, Name: "x"}, w); err != nil {
		c.t.Fatal(err)
	}
	return w
}

// refused checks that x is refused with ForkNotAllowed, in its condition and
// an Event, launches nothing, and that no volume comes from gold's snapshot.
func (c *crossFork) refused(goldSnap string) {
	c.t.Helper()
	c.h.Eventually(converge, "x refused: its class has no allowForkFrom", func() (bool, string) {
		cond := harness.Condition(c.workstation().Status.Conditions, v1alpha1.ConditionClassAllowed)
		return cond.Status == metav1.ConditionFalse && cond.Reason == v1alpha1.ReasonForkNotAllowed &&
			strings.Contains(cond.Message, c.h.Namespace) && strings.Contains(cond.Message, goldSnap), fmt.Sprintf("%+v", cond)
	})
	var events eventsv1.EventList
	if err := c.h.Client.List(context.Background(), &events, client.InNamespace(c.ns)); err != nil {
		c.t.Fatal(err)
	}
	found := false
	for _, e := range events.Items {
		found = found || (e.Regarding.Name == "x" && e.Reason == v1alpha1.ReasonForkNotAllowed)
	}
	if !found {
		c.t.Errorf("no %s Event about Workstation %s/x", v1alpha1.ReasonForkNotAllowed, c.ns)
	}
	if w := c.workstation(); w.Status.Phase != v1alpha1.WorkstationPhasePending || w.Status.InstanceID != "" {
		c.t.Errorf("refused Workstation %s/x is %s with instance %q, want Pending with none", c.ns, w.Status.Phase, w.Status.InstanceID)
	}
	for _, vol := range c.h.Volumes() {
		if aws.ToString(vol.SnapshotId) == goldSnap || tagMap(vol.Tags)[cloud.TagDrive] == cloud.ObjectKey(c.ns, "cross") {
			c.t.Errorf("volume %s (tags %v) is created from gold's snapshot %s while the fork is refused", aws.ToString(vol.VolumeId), tagMap(vol.Tags), goldSnap)
		}
	}
}

// allow lets the class fork drives of gold's namespace.
func (c *crossFork) allow() {
	updateClass(c.t, c.h, c.class, func(cls *v1alpha1.WorkstationClass) {
		cls.Spec.AllowForkFrom = &v1alpha1.ForkPolicy{NamespaceSelector: &metav1.LabelSelector{
			MatchLabels: map[string]string{corev1.LabelMetadataName: c.h.Namespace}}}
	})
}

// launched waits for x to be Ready on a volume restored from gold's snapshot.
func (c *crossFork) launched(goldSnap string) {
	c.t.Helper()
	c.h.Eventually(converge, "x Ready once the class allows forks from gold's namespace", func() (bool, string) {
		cond := harness.Condition(c.workstation().Status.Conditions, v1alpha1.ConditionReady)
		return cond.Status == metav1.ConditionTrue, fmt.Sprintf("%+v", cond)
	})
	id := c.drive().Status.VolumeID
	if vol, _ := c.h.Volume(id); aws.ToString(vol.SnapshotId) != goldSnap {
		c.t.Fatalf("the cross-namespace fork's volume %s is created from %q, want gold's snapshot %s", id, aws.ToString(vol.SnapshotId), goldSnap)
	}
}

// stop stops x.
func (c *crossFork) stop() {
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		w := c.workstation()
		w.Spec.State = v1alpha1.WorkstationStateStopped
		return c.h.Client.Update(context.Background(), w)
	}); err != nil {
		c.t.Fatal(err)
	}
}

// independent waits for the fork's own snapshot and checks that it keeps
// only its own, and that gold keeps its snapshot.
func (c *crossFork) independent(goldSnap string) {
	c.t.Helper()
	var own string
	c.h.Eventually(converge, "cross archived with its own snapshot", func() (bool, string) {
		st := c.drive().Status
		own = st.LatestSnapshotID
		return st.Phase == v1alpha1.XDrivePhaseArchived && own != "" && own != goldSnap, fmt.Sprintf("%+v", st)
	})
	var mine []string
	for _, sn := range c.h.Snapshots() {
		if tagMap(sn.Tags)[cloud.TagDrive] == cloud.ObjectKey(c.ns, "cross") {
			mine = append(mine, aws.ToString(sn.SnapshotId))
		}
	}
	if len(mine) != 1 || mine[0] != own {
		c.t.Errorf("cross's snapshots %v, want only its own %s", mine, own)
	}
	if snaps := harness.SnapshotIDs(c.h.DriveSnapshots("gold")); len(snaps) != 1 || snaps[0] != goldSnap {
		c.t.Errorf("gold's snapshots %v after its cross-namespace fork pruned to 1, want %s untouched", snaps, goldSnap)
	}
}
