package harness

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
)

// Condition returns the condition of type t, or a zero condition (Status "") when absent.
func Condition(conds []metav1.Condition, t string) metav1.Condition {
	if c := meta.FindStatusCondition(conds, t); c != nil {
		return *c
	}
	return metav1.Condition{Type: t}
}

// Key is the ns/name tag value of an object in the harness namespace.
func (h *Harness) Key(name string) string { return cloud.ObjectKey(h.Namespace, name) }

// Consistently fails the test if cond stops holding at any check within d.
func (h *Harness) Consistently(d time.Duration, what string, cond func() (bool, string)) {
	h.T.Helper()
	deadline := time.Now().Add(d)
	for {
		if ok, detail := cond(); !ok {
			h.T.Fatalf("%s stopped holding: %s", what, detail)
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// SetState sets a Workstation's spec.state.
func (h *Harness) SetState(name string, state v1alpha1.WorkstationState) {
	h.T.Helper()
	h.UpdateWorkstation(name, func(ws *v1alpha1.Workstation) { ws.Spec.State = state })
}

// Delete deletes an object of the harness namespace by kind and name.
func (h *Harness) Delete(obj client.Object) {
	h.T.Helper()
	obj.SetNamespace(h.Namespace)
	if err := h.Client.Delete(context.Background(), obj); err != nil && !apierrors.IsNotFound(err) {
		h.T.Fatalf("deleting %T %s: %v", obj, obj.GetName(), err)
	}
}

// Exists reports whether an object of the harness namespace is still stored.
func (h *Harness) Exists(obj client.Object, name string) bool {
	h.T.Helper()
	err := h.Client.Get(context.Background(), types.NamespacedName{Namespace: h.Namespace, Name: name}, obj)
	if err != nil && !apierrors.IsNotFound(err) {
		h.T.Fatalf("getting %T %s: %v", obj, name, err)
	}
	return err == nil
}

// describeInstances lists the cluster's instances matching the filters, in any state.
func (h *Harness) describeInstances(filters ...ec2types.Filter) []ec2types.Instance {
	h.T.Helper()
	filters = append(filters, cloud.TagFilter(cloud.TagCluster, h.Cluster))
	var list []ec2types.Instance
	p := ec2.NewDescribeInstancesPaginator(h.EC2, &ec2.DescribeInstancesInput{Filters: filters})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			h.T.Fatalf("describing instances: %v", err)
		}
		for _, r := range page.Reservations {
			list = append(list, r.Instances...)
		}
	}
	return list
}

// AllInstances lists every instance of the cluster that moto knows, terminated ones included.
func (h *Harness) AllInstances() []ec2types.Instance { return h.describeInstances() }

// WorkstationInstances lists every instance, in any state, tagged for the Workstation.
func (h *Harness) WorkstationInstances(name string) []ec2types.Instance {
	return h.describeInstances(cloud.TagFilter(cloud.TagWorkstation, h.Key(name)))
}

// LiveWorkstationInstances lists the Workstation's instances that are not terminated.
func (h *Harness) LiveWorkstationInstances(name string) []ec2types.Instance {
	return slices.DeleteFunc(h.WorkstationInstances(name), func(i ec2types.Instance) bool {
		return i.State != nil && i.State.Name == ec2types.InstanceStateNameTerminated
	})
}

// Instance returns one instance by ID, straight from moto.
func (h *Harness) Instance(id string) (ec2types.Instance, bool) {
	h.T.Helper()
	list := h.describeInstances(cloud.Filter("instance-id", id))
	if len(list) == 0 {
		return ec2types.Instance{}, false
	}
	return list[0], true
}

// DriveSnapshots lists the snapshots tagged for the drive, in any state.
func (h *Harness) DriveSnapshots(name string) []ec2types.Snapshot {
	h.T.Helper()
	out, err := h.EC2.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters: []ec2types.Filter{
			cloud.TagFilter(cloud.TagCluster, h.Cluster), cloud.TagFilter(cloud.TagDrive, h.Key(name)),
		},
	})
	if err != nil {
		h.T.Fatalf("describing snapshots: %v", err)
	}
	return out.Snapshots
}

// SnapshotIDs returns the IDs of snapshots, sorted.
func SnapshotIDs(list []ec2types.Snapshot) []string {
	ids := make([]string, 0, len(list))
	for _, s := range list {
		ids = append(ids, aws.ToString(s.SnapshotId))
	}
	slices.Sort(ids)
	return ids
}

// InstanceIDs returns the IDs of instances, sorted.
func InstanceIDs(list []ec2types.Instance) []string {
	ids := make([]string, 0, len(list))
	for _, i := range list {
		ids = append(ids, aws.ToString(i.InstanceId))
	}
	slices.Sort(ids)
	return ids
}

// VolumeIDs returns the IDs of volumes, sorted.
func VolumeIDs(list []ec2types.Volume) []string {
	ids := make([]string, 0, len(list))
	for _, v := range list {
		ids = append(ids, aws.ToString(v.VolumeId))
	}
	slices.Sort(ids)
	return ids
}

// OfferedZones returns the zones where moto offers an instance type.
func (h *Harness) OfferedZones(instanceType string) []string {
	h.T.Helper()
	out, err := h.EC2.DescribeInstanceTypeOfferings(context.Background(), &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: ec2types.LocationTypeAvailabilityZone,
		Filters:      []ec2types.Filter{cloud.Filter("instance-type", instanceType)},
	})
	if err != nil {
		h.T.Fatalf("describing offerings of %s: %v", instanceType, err)
	}
	var zones []string
	for _, o := range out.InstanceTypeOfferings {
		zones = append(zones, aws.ToString(o.Location))
	}
	slices.Sort(zones)
	return zones
}

// Events lists the Events recorded about the object named name of the given kind.
func (h *Harness) Events(kind, name string) []eventsv1.Event {
	h.T.Helper()
	var list eventsv1.EventList
	if err := h.Client.List(context.Background(), &list, client.InNamespace(h.Namespace)); err != nil {
		h.T.Fatalf("listing events: %v", err)
	}
	return slices.DeleteFunc(list.Items, func(e eventsv1.Event) bool {
		return e.Regarding.Kind != kind || e.Regarding.Name != name
	})
}

// FindEvent reports whether there is, and describes of the first Event about the object whose
// reason equals reason and whose note contains every one of words.
func (h *Harness) FindEvent(kind, name, reason string, words ...string) (bool, string) {
	h.T.Helper()
	var seen []string
	for _, e := range h.Events(kind, name) {
		seen = append(seen, e.Reason+": "+e.Note)
		if e.Reason != reason {
			continue
		}
		all := true
		for _, w := range words {
			all = all && strings.Contains(e.Note, w)
		}
		if all {
			return true, e.Reason + ": " + e.Note
		}
	}
	return false, fmt.Sprintf("events of %s %s: %q", kind, name, seen)
}

// SetAWSAttempts sets how many attempts the operator's AWS clients make per
// call (1: the SDK never retries, so every fault reaches the controllers).
// It takes effect at the next Start.
func (h *Harness) SetAWSAttempts(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.awsCfg.RetryMaxAttempts = n
}
