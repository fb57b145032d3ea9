package harness

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
)

// NewDrive returns an XDrive in the harness namespace.
func (h *Harness) NewDrive(name string, sizeGiB int32) *v1alpha1.XDrive {
	return &v1alpha1.XDrive{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.Namespace, Name: name},
		Spec:       v1alpha1.XDriveSpec{SizeGiB: sizeGiB},
	}
}

// NewWorkstation returns a spot Workstation on the drive, in the given zones.
func (h *Harness) NewWorkstation(name, drive string, types []string, zones ...string) *v1alpha1.Workstation {
	return &v1alpha1.Workstation{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.Namespace, Name: name},
		Spec: v1alpha1.WorkstationSpec{
			DriveRef: v1alpha1.DriveReference{Name: drive}, InstanceTypes: types, AvailabilityZones: zones,
		},
	}
}

// Create creates objects, failing the test on error.
func (h *Harness) Create(objs ...interface {
	GetName() string
}) {
	h.T.Helper()
	for _, o := range objs {
		var err error
		switch v := o.(type) {
		case *v1alpha1.XDrive:
			err = h.Client.Create(context.Background(), v)
		case *v1alpha1.Workstation:
			err = h.Client.Create(context.Background(), v)
		default:
			err = fmt.Errorf("unsupported object %T", o)
		}
		if err != nil {
			h.T.Fatalf("creating %s: %v", o.GetName(), err)
		}
	}
}

// Drive reads an XDrive straight from the API server.
func (h *Harness) Drive(name string) *v1alpha1.XDrive {
	h.T.Helper()
	xd := &v1alpha1.XDrive{}
	if err := h.Client.Get(context.Background(), types.NamespacedName{Namespace: h.Namespace, Name: name}, xd); err != nil {
		h.T.Fatalf("getting XDrive %s: %v", name, err)
	}
	return xd
}

// Workstation reads a Workstation straight from the API server.
func (h *Harness) Workstation(name string) *v1alpha1.Workstation {
	h.T.Helper()
	ws := &v1alpha1.Workstation{}
	if err := h.Client.Get(context.Background(), types.NamespacedName{Namespace: h.Namespace, Name: name}, ws); err != nil {
		h.T.Fatalf("getting Workstation %s: %v", name, err)
	}
	return ws
}

// UpdateWorkstation applies change to the Workstation's spec, retrying on conflicts.
func (h *Harness) UpdateWorkstation(name string, change func(*v1alpha1.Workstation)) {
	h.T.Helper()
	for range 10 {
		ws := h.Workstation(name)
		change(ws)
		if err := h.Client.Update(context.Background(), ws); err == nil {
			return
		}
	}
	h.T.Fatalf("updating Workstation %s kept conflicting", name)
}

// ReadyReason returns the status and reason of the Ready condition.
func ReadyReason(conds []metav1.Condition) (metav1.ConditionStatus, string) {
	c := meta.FindStatusCondition(conds, v1alpha1.ConditionReady)
	if c == nil {
		return "", ""
	}
	return c.Status, c.Reason
}

// DriveState waits for the drive's Ready reason to equal state.
func (h *Harness) DriveState(name, state string) func() (bool, string) {
	return func() (bool, string) {
		xd := h.Drive(name)
		_, reason := ReadyReason(xd.Status.Conditions)
		return reason == state, fmt.Sprintf("drive %s is %q: %+v", name, reason, xd.Status)
	}
}

// WorkstationReady waits for the Workstation's Ready to be True.
func (h *Harness) WorkstationReady(name string) func() (bool, string) {
	return func() (bool, string) {
		ws := h.Workstation(name)
		status, reason := ReadyReason(ws.Status.Conditions)
		return status == metav1.ConditionTrue, fmt.Sprintf("workstation %s Ready=%s/%s: %v", name, status, reason, ws.Status.Conditions)
	}
}

// Instances lists the cluster's instances in moto that are not terminated.
func (h *Harness) Instances() []ec2types.Instance {
	h.T.Helper()
	out, err := h.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		cloud.TagFilter(cloud.TagCluster, h.Cluster),
		cloud.Filter("instance-state-name", "pending", "running", "stopping", "stopped", "shutting-down"),
	}})
	if err != nil {
		h.T.Fatalf("describing instances: %v", err)
	}
	var list []ec2types.Instance
	for _, r := range out.Reservations {
		list = append(list, r.Instances...)
	}
	return list
}

// Volumes lists the cluster's volumes in moto.
func (h *Harness) Volumes() []ec2types.Volume {
	h.T.Helper()
	out, err := h.EC2.DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{
		cloud.TagFilter(cloud.TagCluster, h.Cluster),
	}})
	if err != nil {
		h.T.Fatalf("describing volumes: %v", err)
	}
	return out.Volumes
}

// Snapshots lists the cluster's snapshots in moto.
func (h *Harness) Snapshots() []ec2types.Snapshot {
	h.T.Helper()
	out, err := h.EC2.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"}, Filters: []ec2types.Filter{cloud.TagFilter(cloud.TagCluster, h.Cluster)},
	})
	if err != nil {
		h.T.Fatalf("describing snapshots: %v", err)
	}
	return out.Snapshots
}

// Volume returns one volume by ID, straight from moto.
func (h *Harness) Volume(id string) (ec2types.Volume, bool) {
	h.T.Helper()
	out, err := h.EC2.DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{
		Filters: []ec2types.Filter{cloud.Filter("volume-id", id)},
	})
	if err != nil {
		h.T.Fatalf("describing volume %s: %v", id, err)
	}
	if len(out.Volumes) == 0 {
		return ec2types.Volume{}, false
	}
	return out.Volumes[0], true
}
