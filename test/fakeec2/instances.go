package fakeec2

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/internal/cloud"
)

// Instance states, as EC2 names them.
const (
	StatePending      = "pending"
	StateRunning      = "running"
	StateShuttingDown = "shutting-down"
	StateTerminated   = "terminated"
)

var stateCodes = map[string]int32{StatePending: 0, StateRunning: 16, StateShuttingDown: 32, StateTerminated: 48}

// State reasons of a terminating instance.
const (
	ReasonUserShutdown    = "Client.UserInitiatedShutdown"
	ReasonSpotTermination = "Server.SpotInstanceTermination"
)

// ImageSnapshotID is the snapshot every image's root volume is made from:
// public, owned by no cluster.
const ImageSnapshotID = "snap-0a1a1a1a1a1a1a1a1"

// RootDevice is where every instance's root volume (8 GiB, deleted on termination) is mapped.
const RootDevice = "/dev/xvda"

const rootVolumeGiB = 8

type instance struct {
	id, reservationID, typ, zone, subnetID, imageID, keyName, clientToken string
	spot                                                                  bool
	state, reason                                                         string
	launchTime                                                            time.Time
	tags                                                                  map[string]string
	groups                                                                []string
	ordinal                                                               int64 // for made-up IP addresses
	forgotten                                                             bool
}

type launchRecord struct {
	fingerprint [sha256.Size]byte
	instanceIDs []string
}

// launchPlan is a validated RunInstances request.
type launchPlan struct {
	typ            InstanceType
	zone, subnetID string
	spot           bool
	count          int
	devices        []deviceSpec
	groups         []string
}

type deviceSpec struct {
	device              string
	deleteOnTermination bool
	volume              volumeSpec
}

func capacityKey(instanceType, zone string, spot bool) string {
	return fmt.Sprintf("%s/%s/%t", instanceType, zone, spot)
}

// RunInstances launches instances in state pending, with a volume per EBS
// block device mapping (and a root volume), attached in the instance's zone.
func (f *Fake) RunInstances(ctx context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	return call(ctx, f, "RunInstances", func() (*ec2.RunInstancesOutput, error) { return f.runInstances(in) })
}

func (f *Fake) runInstances(in *ec2.RunInstancesInput) (*ec2.RunInstancesOutput, error) {
	token := aws.ToString(in.ClientToken)
	if len(token) > 64 {
		return nil, apiError(codeInvalidValue, "ClientToken is longer than 64 characters")
	}
	fingerprint := launchFingerprint(in)
	if rec, ok := f.tokens[token]; ok && token != "" {
		if rec.fingerprint != fingerprint {
			return nil, apiError(codeTokenMismatch, "The client token %s was used with different parameters", token)
		}
		return f.runOutput(rec.instanceIDs), nil
	}
	plan, err := f.planLaunch(in)
	if err != nil {
		return nil, err
	}
	reservation := f.newID("r")
	var ids []string
	for range plan.count {
		id := f.launch(plan, in, reservation, token).id
		if f.opts.NewInstanceLag != nil {
			f.hidden[id] = hiding{calls: f.opts.NewInstanceLag(), until: f.now().Add(listingLag)}
		}
		ids = append(ids, id)
	}
	if token != "" {
		f.tokens[token] = launchRecord{fingerprint: fingerprint, instanceIDs: ids}
	}
	return f.runOutput(ids), nil
}

// launchFingerprint identifies a request's parameters, for ClientToken
// checks: a hash, so that a fleet's tokens don't keep its user data.
func launchFingerprint(in *ec2.RunInstancesInput) [sha256.Size]byte {
	c := *in
	c.ClientToken, c.DryRun = nil, nil
	b, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("fakeec2: encoding RunInstancesInput: %v", err))
	}
	return sha256.Sum256(b)
}

func (f *Fake) runOutput(ids []string) *ec2.RunInstancesOutput {
	out := &ec2.RunInstancesOutput{OwnerId: aws.String(f.opts.OwnerID)}
	for _, id := range ids {
		i := f.instances.byID[id]
		out.ReservationId = aws.String(i.reservationID)
		out.Instances = append(out.Instances, f.describeInstance(i))
	}
	return out
}

func (f *Fake) planLaunch(in *ec2.RunInstancesInput) (launchPlan, error) {
	var p launchPlan
	minCount, maxCount := aws.ToInt32(in.MinCount), aws.ToInt32(in.MaxCount)
	if minCount < 1 || maxCount < minCount {
		return p, apiError(codeInvalidValue, "MinCount %d and MaxCount %d are invalid", minCount, maxCount)
	}
	p.count = int(maxCount)
	image := aws.ToString(in.ImageId)
	if image == "" {
		return p, apiError(codeMissingParameter, "The request must contain the parameter ImageId")
	}
	if !f.knownImage(image) {
		return p, apiError(codeAMINotFound, "The image id '[%s]' does not exist", image)
	}
	var ok bool
	if p.typ, ok = f.typesByName[string(in.InstanceType)]; !ok {
		return p, apiError(codeInvalidValue, "Invalid value '%s' for InstanceType.", in.InstanceType)
	}
	var err error
	if p.zone, p.subnetID, err = f.launchZone(in); err != nil {
		return p, err
	}
	if f.notOffered[p.typ.Name+"/"+p.zone] {
		return p, apiError(codeUnsupported, "Your requested instance type (%s) is not supported in your requested Availability Zone (%s).", p.typ.Name, p.zone)
	}
	p.spot = in.InstanceMarketOptions != nil && in.InstanceMarketOptions.MarketType == ec2types.MarketTypeSpot
	if f.noCapacity[capacityKey(p.typ.Name, p.zone, p.spot)] {
		return p, apiError(codeNoCapacity, "We currently do not have sufficient %s capacity in the Availability Zone you requested (%s).", p.typ.Name, p.zone)
	}
	p.groups = slices.Clone(in.SecurityGroupIds)
	if len(in.NetworkInterfaces) > 0 {
		p.groups = append(p.groups, in.NetworkInterfaces[0].Groups...)
	}
	if len(p.groups) == 0 {
		p.groups = []string{DefaultGroupID}
	}
	if err := f.checkGroups(p.groups); err != nil {
		return p, err
	}
	p.devices, err = f.planDevices(in.BlockDeviceMappings)
	return p, err
}

func (f *Fake) knownImage(id string) bool {
	for _, ami := range f.opts.Parameters {
		if ami == id {
			return true
		}
	}
	return false
}

// launchZone finds the zone from the subnet or the placement; the first zone if neither is given.
func (f *Fake) launchZone(in *ec2.RunInstancesInput) (zone, subnet string, err error) {
	subnet = aws.ToString(in.SubnetId)
	if len(in.NetworkInterfaces) > 0 && in.NetworkInterfaces[0].SubnetId != nil {
		subnet = aws.ToString(in.NetworkInterfaces[0].SubnetId)
	}
	if in.Placement != nil {
		zone = aws.ToString(in.Placement.AvailabilityZone)
	}
	if subnet != "" {
		subnetZone := f.subnetZone(subnet)
		if subnetZone == "" {
			return "", "", apiError(codeSubnetNotFound, "The subnet ID '%s' does not exist", subnet)
		}
		if zone != "" && zone != subnetZone {
			return "", "", apiError(codeInvalidValue, "Subnet %s is in %s, not in %s", subnet, subnetZone, zone)
		}
		zone = subnetZone
	}
	if zone == "" {
		zone = f.opts.Zones[0]
	}
	if !slices.Contains(f.opts.Zones, zone) {
		return "", "", apiError(codeInvalidValue, "Invalid availability zone: [%s]", zone)
	}
	if subnet == "" {
		subnet = f.opts.Subnets[zone]
	}
	return zone, subnet, nil
}

func (f *Fake) subnetZone(subnet string) string {
	for zone, s := range f.opts.Subnets {
		if s == subnet {
			return zone
		}
	}
	return ""
}

var volumeTypes = []ec2types.VolumeType{"gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"}

// planDevices checks the EBS mappings and adds the root volume unless it is mapped.
func (f *Fake) planDevices(mappings []ec2types.BlockDeviceMapping) ([]deviceSpec, error) {
	var out []deviceSpec
	for _, m := range mappings {
		if m.Ebs == nil {
			continue // NoDevice or instance store
		}
		d := deviceSpec{device: aws.ToString(m.DeviceName), deleteOnTermination: m.Ebs.DeleteOnTermination == nil || *m.Ebs.DeleteOnTermination}
		if d.device == "" {
			return nil, apiError(codeMissingParameter, "A block device mapping has no DeviceName")
		}
		if slices.ContainsFunc(out, func(o deviceSpec) bool { return o.device == d.device }) {
			return nil, apiError(codeInvalidValue, "The device %s is mapped twice", d.device)
		}
		var err error
		if d.volume, err = f.planVolume(m.Ebs); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	if !slices.ContainsFunc(out, func(d deviceSpec) bool { return d.device == RootDevice }) {
		root := deviceSpec{device: RootDevice, deleteOnTermination: !f.opts.KeepRootVolumes,
			volume: volumeSpec{size: rootVolumeGiB, volumeType: "gp3", snap: f.snapshots.byID[ImageSnapshotID]}}
		out = append([]deviceSpec{root}, out...)
	}
	return out, nil
}

func (f *Fake) planVolume(ebs *ec2types.EbsBlockDevice) (volumeSpec, error) {
	v := volumeSpec{
		size: aws.ToInt32(ebs.VolumeSize), volumeType: string(ebs.VolumeType), iops: ebs.Iops, throughput: ebs.Throughput,
		encrypted: aws.ToBool(ebs.Encrypted), kmsKeyID: aws.ToString(ebs.KmsKeyId), initRate: ebs.VolumeInitializationRate,
	}
	if v.volumeType == "" {
		v.volumeType = "gp2"
	}
	if !slices.Contains(volumeTypes, ec2types.VolumeType(v.volumeType)) {
		return v, apiError(codeInvalidValue, "Invalid value '%s' for volumeType", v.volumeType)
	}
	if id := aws.ToString(ebs.SnapshotId); id != "" {
		s := f.snapshots.byID[id]
		if s == nil || s.deleted {
			return v, apiError(codeSnapshotNotFound, "The snapshot '%s' does not exist.", id)
		}
		if s.state != SnapshotCompleted {
			return v, apiError(codeIncorrectState, "Snapshot '%s' is not 'completed'; it is '%s'", id, s.state)
		}
		v.snap = s
		v.encrypted = v.encrypted || s.encrypted
		if ebs.VolumeSize == nil {
			v.size = s.size
		}
		if v.size < s.size {
			return v, apiError(codeInvalidValue, "Volume of %d GiB is smaller than snapshot '%s' (%d GiB)", v.size, id, s.size)
		}
	} else if ebs.VolumeSize == nil {
		return v, apiError(codeMissingParameter, "The request must contain the parameter size or snapshotId")
	}
	if v.size < 1 {
		return v, apiError(codeInvalidValue, "Invalid volume size %d", v.size)
	}
	if r := v.initRate; r != nil {
		if v.snap == nil {
			return v, apiError(codeInvalidCombination, "VolumeInitializationRate needs a SnapshotId")
		}
		if *r < 100 || *r > 300 {
			return v, apiError(codeInvalidValue, "VolumeInitializationRate %d is not within 100-300", *r)
		}
	}
	return v, nil
}

func (f *Fake) launch(p launchPlan, in *ec2.RunInstancesInput, reservation, token string) *instance {
	i := &instance{
		id: f.newID("i"), reservationID: reservation, typ: p.typ.Name, zone: p.zone, subnetID: p.subnetID,
		imageID: aws.ToString(in.ImageId), keyName: aws.ToString(in.KeyName), clientToken: token, spot: p.spot,
		state: StatePending, launchTime: f.now(), tags: tagsFor(in.TagSpecifications, ec2types.ResourceTypeInstance),
		groups: p.groups,
	}
	i.ordinal = f.lastID
	f.instances.add(i.id, i)
	volumeTags := tagsFor(in.TagSpecifications, ec2types.ResourceTypeVolume)
	for _, d := range p.devices {
		v := f.createVolume(d.volume, p.zone, volumeTags)
		v.attachedTo, v.device, v.deleteOnTermination, v.attachTime = i.id, d.device, d.deleteOnTermination, i.launchTime
		if d.device == RootDevice {
			v.initialized = true // an image's blocks are warm
		}
	}
	return i
}

// tagsFor collects the tags specified for one resource type.
func tagsFor(specs []ec2types.TagSpecification, rt ec2types.ResourceType) map[string]string {
	out := map[string]string{}
	for _, s := range specs {
		if s.ResourceType == rt {
			maps.Copy(out, cloud.TagMap(s.Tags))
		}
	}
	return out
}

func (f *Fake) describeInstance(i *instance) ec2types.Instance {
	out := ec2types.Instance{
		InstanceId:     aws.String(i.id),
		ImageId:        aws.String(i.imageID),
		InstanceType:   ec2types.InstanceType(i.typ),
		Architecture:   ec2types.ArchitectureValues(f.typesByName[i.typ].Arch),
		LaunchTime:     aws.Time(i.launchTime),
		Placement:      &ec2types.Placement{AvailabilityZone: aws.String(i.zone), Tenancy: ec2types.TenancyDefault},
		State:          &ec2types.InstanceState{Name: ec2types.InstanceStateName(i.state), Code: aws.Int32(stateCodes[i.state])},
		Tags:           cloud.Tags(i.tags),
		RootDeviceName: aws.String(RootDevice),
		RootDeviceType: ec2types.DeviceTypeEbs,
		AmiLaunchIndex: aws.Int32(0),
	}
	if i.clientToken != "" {
		out.ClientToken = aws.String(i.clientToken)
	}
	if i.keyName != "" {
		out.KeyName = aws.String(i.keyName)
	}
	if i.state != StateTerminated {
		out.SubnetId = aws.String(i.subnetID)
		out.VpcId = aws.String("vpc-00000000000000001")
		// Private addresses are made up; public ones are in the benchmarking range, which routes nowhere.
		out.PrivateIpAddress = aws.String(fmt.Sprintf("10.0.%d.%d", i.ordinal/250%250, i.ordinal%250+1))
	}
	if i.state == StateRunning || i.state == StateShuttingDown {
		out.PublicIpAddress = aws.String(publicIP(i.ordinal))
	}
	if i.spot {
		out.InstanceLifecycle = ec2types.InstanceLifecycleTypeSpot
		out.SpotInstanceRequestId = aws.String(fmt.Sprintf("sir-%017x", i.ordinal))
	}
	if i.reason != "" {
		out.StateReason = &ec2types.StateReason{Code: aws.String(i.reason), Message: aws.String(i.reason)}
		out.StateTransitionReason = aws.String(i.reason)
	}
	for _, v := range f.attachedTo(i.id) {
		out.BlockDeviceMappings = append(out.BlockDeviceMappings, ec2types.InstanceBlockDeviceMapping{
			DeviceName: aws.String(v.device),
			Ebs: &ec2types.EbsInstanceBlockDevice{
				VolumeId: aws.String(v.id), Status: ec2types.AttachmentStatusAttached,
				AttachTime: aws.Time(v.attachTime), DeleteOnTermination: aws.Bool(v.deleteOnTermination),
			},
		})
	}
	return out
}

// attachedTo returns the volumes attached to an instance, by device name.
func (f *Fake) attachedTo(instanceID string) []*volume {
	var out []*volume
	for _, v := range f.volumes.order {
		if v.attachedTo == instanceID {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b *volume) int { return cmp.Compare(a.device, b.device) })
	return out
}

var instanceSchema = schema[instance]{
	fields: map[string]func(*instance) []string{
		"instance-id":         func(i *instance) []string { return one(i.id) },
		"instance-state-name": func(i *instance) []string { return one(i.state) },
		"instance-state-code": func(i *instance) []string { return one(fmt.Sprint(stateCodes[i.state])) },
		"availability-zone":   func(i *instance) []string { return one(i.zone) },
		"instance-type":       func(i *instance) []string { return one(i.typ) },
		"image-id":            func(i *instance) []string { return one(i.imageID) },
		"subnet-id":           func(i *instance) []string { return one(i.subnetID) },
		"reservation-id":      func(i *instance) []string { return one(i.reservationID) },
		"client-token":        func(i *instance) []string { return one(i.clientToken) },
		"instance-lifecycle": func(i *instance) []string {
			if i.spot {
				return one("spot")
			}
			return nil
		},
	},
	tags: func(i *instance) map[string]string { return i.tags },
}

// DescribeInstances lists instances, terminated ones included until Forget.
// Hidden instances are left out of answers that do not name them by InstanceIds.
func (f *Fake) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return call(ctx, f, "DescribeInstances", func() (*ec2.DescribeInstancesOutput, error) {
		if err := checkMaxResults(in.MaxResults, in.InstanceIds, 5, 1000); err != nil {
			return nil, err
		}
		list, err := f.listedInstances(in.InstanceIds)
		if err != nil {
			return nil, err
		}
		if list, err = instanceSchema.filter(list, in.Filters); err != nil {
			return nil, err
		}
		out := &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{}}
		byReservation := map[string]int{}
		for _, i := range list {
			if h := f.hidden[i.id]; h.calls > 0 && f.now().Before(h.until) && !slices.Contains(in.InstanceIds, i.id) {
				h.calls--
				f.hidden[i.id] = h
				continue
			}
			n, ok := byReservation[i.reservationID]
			if !ok {
				n = len(out.Reservations)
				byReservation[i.reservationID] = n
				out.Reservations = append(out.Reservations, ec2types.Reservation{
					ReservationId: aws.String(i.reservationID), OwnerId: aws.String(f.opts.OwnerID),
				})
			}
			out.Reservations[n].Instances = append(out.Reservations[n].Instances, f.describeInstance(i))
		}
		return out, nil
	})
}

// listedInstances returns the instances EC2 still lists, or those named by ids.
func (f *Fake) listedInstances(ids []string) ([]*instance, error) {
	list := slices.DeleteFunc(slices.Clone(f.instances.order), func(i *instance) bool { return i.forgotten })
	if len(ids) == 0 {
		return list, nil
	}
	return pick(list, func(i *instance) string { return i.id }, ids, codeInstanceNotFound)
}

// TerminateInstances moves pending and running instances to shutting-down.
func (f *Fake) TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, _ ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	return call(ctx, f, "TerminateInstances", func() (*ec2.TerminateInstancesOutput, error) {
		if len(in.InstanceIds) == 0 {
			return nil, apiError(codeMissingParameter, "The request must contain the parameter InstanceId")
		}
		list, err := f.listedInstances(in.InstanceIds)
		if err != nil {
			return nil, err
		}
		out := &ec2.TerminateInstancesOutput{}
		for _, i := range list {
			f.audit("TerminateInstances", i.id, i.tags)
			previous := i.state
			f.shutDown(i, ReasonUserShutdown)
			out.TerminatingInstances = append(out.TerminatingInstances, ec2types.InstanceStateChange{
				InstanceId:    aws.String(i.id),
				PreviousState: &ec2types.InstanceState{Name: ec2types.InstanceStateName(previous), Code: aws.Int32(stateCodes[previous])},
				CurrentState:  &ec2types.InstanceState{Name: ec2types.InstanceStateName(i.state), Code: aws.Int32(stateCodes[i.state])},
			})
		}
		return out, nil
	})
}

// shutDown starts terminating a pending or running instance.
func (f *Fake) shutDown(i *instance, reason string) {
	if i.state == StatePending || i.state == StateRunning {
		i.state, i.reason = StateShuttingDown, reason
	}
}

// terminate ends a shutting-down instance: its volumes are deleted or detached.
func (f *Fake) terminate(i *instance) {
	i.state = StateTerminated
	for _, v := range f.attachedTo(i.id) {
		if v.deleteOnTermination {
			v.deleted = true
		}
		v.attachedTo, v.device, v.deleteOnTermination, v.attachTime = "", "", false, time.Time{}
	}
}

// publicIP is an instance's made-up public address, unique per instance.
func publicIP(ordinal int64) string {
	return fmt.Sprintf("198.18.%d.%d", ordinal/250%250, ordinal%250+1)
}
