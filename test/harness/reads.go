package harness

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/cloud"
)

// Key is the ns/name tag value of an object in the stack's namespace.
func (s *Stack) Key(name string) string { return cloud.ObjectKey(s.Namespace, name) }

// NewDrive returns an XDrive in the stack's namespace.
func (s *Stack) NewDrive(name string, sizeGiB int32) *v1alpha1.XDrive {
	return &v1alpha1.XDrive{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: name},
		Spec:       v1alpha1.XDriveSpec{SizeGiB: sizeGiB},
	}
}

// NewWorkstation returns a spot Workstation on the drive, in the given zones.
func (s *Stack) NewWorkstation(name, drive string, types []string, zones ...string) *v1alpha1.Workstation {
	return &v1alpha1.Workstation{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: name},
		Spec: v1alpha1.WorkstationSpec{
			DriveRef: v1alpha1.DriveReference{Name: drive}, InstanceTypes: types, AvailabilityZones: zones,
		},
	}
}

// Create creates objects, in the stack's namespace unless they name one.
func (s *Stack) Create(ctx context.Context, objs ...client.Object) error {
	for _, o := range objs {
		if o.GetNamespace() == "" {
			o.SetNamespace(s.Namespace)
		}
		if err := s.Client.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// Delete deletes an object of the stack's namespace; one already gone is fine.
func (s *Stack) Delete(ctx context.Context, obj client.Object) error {
	obj.SetNamespace(s.Namespace)
	if err := s.Client.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %T %s: %w", obj, obj.GetName(), err)
	}
	return nil
}

// Exists reads an object of the stack's namespace into obj, and reports
// whether it is still stored.
func (s *Stack) Exists(ctx context.Context, obj client.Object, name string) (bool, error) {
	err := s.Client.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: name}, obj)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("getting %T %s: %w", obj, name, err)
	}
	return true, nil
}

// Drive reads an XDrive straight from the API server.
func (s *Stack) Drive(ctx context.Context, name string) (*v1alpha1.XDrive, error) {
	return get(ctx, s, name, &v1alpha1.XDrive{})
}

// Workstation reads a Workstation straight from the API server.
func (s *Stack) Workstation(ctx context.Context, name string) (*v1alpha1.Workstation, error) {
	return get(ctx, s, name, &v1alpha1.Workstation{})
}

func get[T client.Object](ctx context.Context, s *Stack, name string, obj T) (T, error) {
	if err := s.Client.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: name}, obj); err != nil {
		return obj, fmt.Errorf("getting %T %s: %w", obj, name, err)
	}
	return obj, nil
}

// UpdateWorkstation applies change to the Workstation, retrying on conflicts.
func (s *Stack) UpdateWorkstation(ctx context.Context, name string, change func(*v1alpha1.Workstation)) error {
	for range 20 {
		ws, err := s.Workstation(ctx, name)
		if err != nil {
			return err
		}
		change(ws)
		err = s.Client.Update(ctx, ws)
		if err == nil || !apierrors.IsConflict(err) {
			return err
		}
	}
	return fmt.Errorf("updating Workstation %s kept conflicting", name)
}

// Events lists the Events recorded about the object of the given kind and name.
func (s *Stack) Events(ctx context.Context, kind, name string) ([]eventsv1.Event, error) {
	var list eventsv1.EventList
	if err := s.Client.List(ctx, &list, client.InNamespace(s.Namespace)); err != nil {
		return nil, fmt.Errorf("listing events: %w", err)
	}
	return slices.DeleteFunc(list.Items, func(e eventsv1.Event) bool {
		return e.Regarding.Kind != kind || e.Regarding.Name != name
	}), nil
}

// AllInstances lists every instance of the cluster that moto knows, terminated ones included.
func (s *Stack) AllInstances(ctx context.Context) ([]ec2types.Instance, error) {
	return s.describeInstances(ctx)
}

// Instances lists the cluster's instances that are not terminated.
func (s *Stack) Instances(ctx context.Context) ([]ec2types.Instance, error) {
	return s.describeInstances(ctx, cloud.Filter("instance-state-name", "pending", "running", "stopping", "stopped", "shutting-down"))
}

// WorkstationInstances lists every instance, in any state, tagged for the Workstation.
func (s *Stack) WorkstationInstances(ctx context.Context, name string) ([]ec2types.Instance, error) {
	return s.describeInstances(ctx, cloud.TagFilter(cloud.TagWorkstation, s.Key(name)))
}

// Instance returns one instance of the cluster by ID, straight from moto.
func (s *Stack) Instance(ctx context.Context, id string) (ec2types.Instance, bool, error) {
	return first(s.describeInstances(ctx, cloud.Filter("instance-id", id)))
}

// describeInstances lists the cluster's instances matching the filters, in any state.
func (s *Stack) describeInstances(ctx context.Context, filters ...ec2types.Filter) ([]ec2types.Instance, error) {
	filters = append(filters, cloud.TagFilter(cloud.TagCluster, s.Cluster))
	var list []ec2types.Instance
	p := ec2.NewDescribeInstancesPaginator(s.EC2, &ec2.DescribeInstancesInput{Filters: filters})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describing instances: %w", err)
		}
		for _, r := range page.Reservations {
			list = append(list, r.Instances...)
		}
	}
	return list, nil
}

// Volumes lists the cluster's drive volumes in moto: an instance's root
// volume, which a launch tags alike and which ends with the instance, is
// left out.
func (s *Stack) Volumes(ctx context.Context) ([]ec2types.Volume, error) {
	list, err := s.describeVolumes(ctx, cloud.TagFilter(cloud.TagCluster, s.Cluster))
	return slices.DeleteFunc(list, func(v ec2types.Volume) bool {
		return slices.ContainsFunc(v.Attachments, func(a ec2types.VolumeAttachment) bool {
			return aws.ToString(a.Device) != bootstrap.DriveDevice
		})
	}), err
}

// Volume returns one volume by ID, straight from moto.
func (s *Stack) Volume(ctx context.Context, id string) (ec2types.Volume, bool, error) {
	return first(s.describeVolumes(ctx, cloud.Filter("volume-id", id)))
}

func (s *Stack) describeVolumes(ctx context.Context, filters ...ec2types.Filter) ([]ec2types.Volume, error) {
	out, err := s.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: filters})
	if err != nil {
		return nil, fmt.Errorf("describing volumes: %w", err)
	}
	return out.Volumes, nil
}

// Snapshots lists the cluster's snapshots in moto.
func (s *Stack) Snapshots(ctx context.Context) ([]ec2types.Snapshot, error) {
	return s.describeSnapshots(ctx)
}

// DriveSnapshots lists the snapshots tagged for the drive, in any state.
func (s *Stack) DriveSnapshots(ctx context.Context, name string) ([]ec2types.Snapshot, error) {
	return s.describeSnapshots(ctx, cloud.TagFilter(cloud.TagDrive, s.Key(name)))
}

// Snapshot returns one of the cluster's snapshots by ID, straight from moto.
func (s *Stack) Snapshot(ctx context.Context, id string) (ec2types.Snapshot, bool, error) {
	return first(s.describeSnapshots(ctx, cloud.Filter("snapshot-id", id)))
}

// describeSnapshots lists the cluster's snapshots matching the filters.
func (s *Stack) describeSnapshots(ctx context.Context, filters ...ec2types.Filter) ([]ec2types.Snapshot, error) {
	out, err := s.EC2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"}, Filters: append(filters, cloud.TagFilter(cloud.TagCluster, s.Cluster)),
	})
	if err != nil {
		return nil, fmt.Errorf("describing snapshots: %w", err)
	}
	return out.Snapshots, nil
}

// first returns the first element of a list, if any.
func first[T any](list []T, err error) (T, bool, error) {
	var zero T
	if err != nil || len(list) == 0 {
		return zero, false, err
	}
	return list[0], true, nil
}

// OfferedZones returns the zones where moto offers an instance type, sorted.
func (s *Stack) OfferedZones(ctx context.Context, instanceType string) ([]string, error) {
	return OfferedZonesOf(ctx, s.EC2, instanceType)
}

// OfferedZonesOf returns the zones where an EC2 client's region offers an instance type, sorted.
func OfferedZonesOf(ctx context.Context, api *ec2.Client, instanceType string) ([]string, error) {
	out, err := api.DescribeInstanceTypeOfferings(ctx, &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: ec2types.LocationTypeAvailabilityZone,
		Filters:      []ec2types.Filter{cloud.Filter("instance-type", instanceType)},
	})
	if err != nil {
		return nil, fmt.Errorf("describing offerings of %s: %w", instanceType, err)
	}
	var zones []string
	for _, o := range out.InstanceTypeOfferings {
		zones = append(zones, aws.ToString(o.Location))
	}
	slices.Sort(zones)
	return zones, nil
}

// SnapshotIDs returns the IDs of snapshots, sorted.
func SnapshotIDs(list []ec2types.Snapshot) []string {
	return ids(list, func(s ec2types.Snapshot) *string { return s.SnapshotId })
}

// InstanceIDs returns the IDs of instances, sorted.
func InstanceIDs(list []ec2types.Instance) []string {
	return ids(list, func(i ec2types.Instance) *string { return i.InstanceId })
}

// VolumeIDs returns the IDs of volumes, sorted.
func VolumeIDs(list []ec2types.Volume) []string {
	return ids(list, func(v ec2types.Volume) *string { return v.VolumeId })
}

func ids[T any](list []T, id func(T) *string) []string {
	out := make([]string, 0, len(list))
	for _, x := range list {
		out = append(out, aws.ToString(id(x)))
	}
	slices.Sort(out)
	return out
}

// Live drops the terminated instances from a list.
func Live(list []ec2types.Instance) []ec2types.Instance {
	return slices.DeleteFunc(list, func(i ec2types.Instance) bool {
		return i.State != nil && i.State.Name == ec2types.InstanceStateNameTerminated
	})
}
