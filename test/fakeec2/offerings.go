package fakeec2

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

const linuxProduct = "Linux/UNIX"

// SetCapacity makes RunInstances of the type in the zone (spot or on-demand)
// fail with InsufficientInstanceCapacity while available is false.
func (f *Fake) SetCapacity(instanceType, zone string, spot, available bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	setFlag(f.noCapacity, capacityKey(instanceType, zone, spot), !available)
}

// SetOffered adds or removes the type in the zone from the offerings;
// RunInstances of an unoffered pair fails with Unsupported.
func (f *Fake) SetOffered(instanceType, zone string, offered bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	setFlag(f.notOffered, instanceType+"/"+zone, !offered)
}

// SetSpotPrice sets the spot price of the type in the zone, in USD per hour.
func (f *Fake) SetSpotPrice(instanceType, zone, price string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.spotPrices[instanceType+"/"+zone] = price
}

func setFlag(m map[string]bool, key string, on bool) {
	if on {
		m[key] = true
	} else {
		delete(m, key)
	}
}

// offering is an instance type at a location (a zone, or the region).
type offering struct {
	typ      InstanceType
	location string
}

// offerings lists every offered type/zone pair, by type then zone.
func (f *Fake) offerings() []*offering {
	var out []*offering
	for _, t := range f.opts.InstanceTypes {
		for _, z := range f.opts.Zones {
			if !f.notOffered[t.Name+"/"+z] {
				out = append(out, &offering{typ: t, location: z})
			}
		}
	}
	return out
}

func (f *Fake) spotPrice(o *offering) string {
	if p, ok := f.spotPrices[o.typ.Name+"/"+o.location]; ok {
		return p
	}
	return fmt.Sprintf("%.6f", o.typ.SpotPrice+0.001*float64(slices.Index(f.opts.Zones, o.location)))
}

func (f *Fake) region() string { return f.opts.Region }

var instanceTypeSchema = schema[InstanceType]{fields: map[string]func(*InstanceType) []string{
	"instance-type":                         func(t *InstanceType) []string { return one(t.Name) },
	"processor-info.supported-architecture": func(t *InstanceType) []string { return one(t.Arch) },
}}

// DescribeInstanceTypes describes the configured types; an unknown named type fails.
func (f *Fake) DescribeInstanceTypes(ctx context.Context, in *ec2.DescribeInstanceTypesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error) {
	return call(ctx, f, "DescribeInstanceTypes", func() (*ec2.DescribeInstanceTypesOutput, error) {
		var list []*InstanceType
		for _, t := range f.opts.InstanceTypes {
			list = append(list, &t)
		}
		if len(in.InstanceTypes) > 0 {
			var err error
			names := make([]string, len(in.InstanceTypes))
			for n, t := range in.InstanceTypes {
				names[n] = string(t)
			}
			if list, err = pick(list, func(t *InstanceType) string { return t.Name }, names, codeInvalidInstanceType); err != nil {
				return nil, err
			}
		}
		list, err := instanceTypeSchema.filter(list, in.Filters)
		if err != nil {
			return nil, err
		}
		out := &ec2.DescribeInstanceTypesOutput{InstanceTypes: []ec2types.InstanceTypeInfo{}}
		for _, t := range list {
			info := ec2types.InstanceTypeInfo{
				InstanceType:          ec2types.InstanceType(t.Name),
				ProcessorInfo:         &ec2types.ProcessorInfo{SupportedArchitectures: []ec2types.ArchitectureType{ec2types.ArchitectureType(t.Arch)}},
				SupportedUsageClasses: []ec2types.UsageClassType{ec2types.UsageClassTypeOnDemand, ec2types.UsageClassTypeSpot},
				CurrentGeneration:     aws.Bool(true),
				EbsInfo:               &ec2types.EbsInfo{NvmeSupport: ec2types.EbsNvmeSupportRequired},
			}
			if t.NoNVMe {
				info.EbsInfo.NvmeSupport = ec2types.EbsNvmeSupportUnsupported
			}
			if t.GPUs > 0 {
				info.GpuInfo = &ec2types.GpuInfo{Gpus: []ec2types.GpuDeviceInfo{{
					Count: aws.Int32(t.GPUs), Manufacturer: aws.String("NVIDIA"), Name: aws.String("GPU"),
				}}}
			}
			out.InstanceTypes = append(out.InstanceTypes, info)
		}
		return out, nil
	})
}

var offeringSchema = schema[offering]{fields: map[string]func(*offering) []string{
	"instance-type": func(o *offering) []string { return one(o.typ.Name) },
	"location":      func(o *offering) []string { return one(o.location) },
}}

// DescribeInstanceTypeOfferings lists the offered types per zone, or per region.
func (f *Fake) DescribeInstanceTypeOfferings(ctx context.Context, in *ec2.DescribeInstanceTypeOfferingsInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceTypeOfferingsOutput, error) {
	return call(ctx, f, "DescribeInstanceTypeOfferings", func() (*ec2.DescribeInstanceTypeOfferingsOutput, error) {
		list := f.offerings()
		switch in.LocationType {
		case ec2types.LocationTypeAvailabilityZone:
		case "", ec2types.LocationTypeRegion:
			var perRegion []*offering
			for _, o := range list {
				if !slices.ContainsFunc(perRegion, func(r *offering) bool { return r.typ.Name == o.typ.Name }) {
					perRegion = append(perRegion, &offering{typ: o.typ, location: f.region()})
				}
			}
			list = perRegion
		default:
			return nil, apiError(codeInvalidValue, "LocationType %s is not supported by the fake", in.LocationType)
		}
		list, err := offeringSchema.filter(list, in.Filters)
		if err != nil {
			return nil, err
		}
		locationType := in.LocationType
		if locationType == "" {
			locationType = ec2types.LocationTypeRegion
		}
		out := &ec2.DescribeInstanceTypeOfferingsOutput{InstanceTypeOfferings: []ec2types.InstanceTypeOffering{}}
		for _, o := range list {
			out.InstanceTypeOfferings = append(out.InstanceTypeOfferings, ec2types.InstanceTypeOffering{
				InstanceType: ec2types.InstanceType(o.typ.Name), Location: aws.String(o.location), LocationType: locationType,
			})
		}
		return out, nil
	})
}

var spotPriceSchema = schema[offering]{fields: map[string]func(*offering) []string{
	"instance-type":       func(o *offering) []string { return one(o.typ.Name) },
	"availability-zone":   func(o *offering) []string { return one(o.location) },
	"product-description": func(*offering) []string { return one(linuxProduct) },
}}

// DescribeSpotPriceHistory returns the current price of each offered type/zone, stamped now.
func (f *Fake) DescribeSpotPriceHistory(ctx context.Context, in *ec2.DescribeSpotPriceHistoryInput, _ ...func(*ec2.Options)) (*ec2.DescribeSpotPriceHistoryOutput, error) {
	return call(ctx, f, "DescribeSpotPriceHistory", func() (*ec2.DescribeSpotPriceHistoryOutput, error) {
		list, err := spotPriceSchema.filter(f.offerings(), in.Filters)
		if err != nil {
			return nil, err
		}
		out := &ec2.DescribeSpotPriceHistoryOutput{SpotPriceHistory: []ec2types.SpotPrice{}}
		if len(in.ProductDescriptions) > 0 && !slices.Contains(in.ProductDescriptions, linuxProduct) {
			return out, nil
		}
		for _, o := range list {
			if len(in.InstanceTypes) > 0 && !slices.Contains(in.InstanceTypes, ec2types.InstanceType(o.typ.Name)) ||
				in.AvailabilityZone != nil && *in.AvailabilityZone != o.location {
				continue
			}
			out.SpotPriceHistory = append(out.SpotPriceHistory, ec2types.SpotPrice{
				InstanceType: ec2types.InstanceType(o.typ.Name), AvailabilityZone: aws.String(o.location),
				ProductDescription: ec2types.RIProductDescription(linuxProduct), SpotPrice: aws.String(f.spotPrice(o)),
				Timestamp: aws.Time(f.now()),
			})
		}
		return out, nil
	})
}

type subnet struct{ id, zone string }

var subnetSchema = schema[subnet]{fields: map[string]func(*subnet) []string{
	"subnet-id":         func(s *subnet) []string { return one(s.id) },
	"availability-zone": func(s *subnet) []string { return one(s.zone) },
	"default-for-az":    func(*subnet) []string { return one("true") },
}}

// DescribeSubnets lists each zone's default subnet.
func (f *Fake) DescribeSubnets(ctx context.Context, in *ec2.DescribeSubnetsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	return call(ctx, f, "DescribeSubnets", func() (*ec2.DescribeSubnetsOutput, error) {
		var list []*subnet
		for _, z := range f.opts.Zones {
			if id := f.opts.Subnets[z]; id != "" {
				list = append(list, &subnet{id: id, zone: z})
			}
		}
		var err error
		if len(in.SubnetIds) > 0 {
			if list, err = pick(list, func(s *subnet) string { return s.id }, in.SubnetIds, codeSubnetNotFound); err != nil {
				return nil, err
			}
		}
		if list, err = subnetSchema.filter(list, in.Filters); err != nil {
			return nil, err
		}
		out := &ec2.DescribeSubnetsOutput{Subnets: []ec2types.Subnet{}}
		for _, s := range list {
			out.Subnets = append(out.Subnets, ec2types.Subnet{
				SubnetId: aws.String(s.id), AvailabilityZone: aws.String(s.zone), DefaultForAz: aws.Bool(true),
				MapPublicIpOnLaunch: aws.Bool(true), State: ec2types.SubnetStateAvailable,
				VpcId: aws.String("vpc-00000000000000001"), CidrBlock: aws.String(fmt.Sprintf("172.31.%d.0/20", slices.Index(f.opts.Zones, s.zone)*16)),
				OwnerId: aws.String(f.opts.OwnerID),
			})
		}
		return out, nil
	})
}

// GetParameter returns a configured SSM parameter, or ParameterNotFound.
func (f *Fake) GetParameter(ctx context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	return call(ctx, f, "GetParameter", func() (*ssm.GetParameterOutput, error) {
		name := aws.ToString(in.Name)
		value, ok := f.opts.Parameters[name]
		if !ok {
			return nil, &ssmtypes.ParameterNotFound{Message: aws.String("Parameter " + name + " not found.")}
		}
		return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{
			Name: aws.String(name), Value: aws.String(value), Type: ssmtypes.ParameterTypeString,
			DataType: aws.String("text"), Version: 1,
		}}, nil
	})
}

// DescribeImages describes the images RunInstances accepts: each has one
// root mapping at RootDevice, from ImageSnapshotID, deleted on termination
// unless Options.KeepRootVolumes.
func (f *Fake) DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	return call(ctx, f, "DescribeImages", func() (*ec2.DescribeImagesOutput, error) {
		out := &ec2.DescribeImagesOutput{Images: []ec2types.Image{}}
		for _, id := range in.ImageIds {
			if !f.knownImage(id) {
				return nil, apiError(codeAMINotFound, "The image id '[%s]' does not exist", id)
			}
			out.Images = append(out.Images, ec2types.Image{
				ImageId: aws.String(id), State: ec2types.ImageStateAvailable, OwnerId: aws.String(f.opts.OwnerID),
				RootDeviceName: aws.String(RootDevice), RootDeviceType: ec2types.DeviceTypeEbs,
				BlockDeviceMappings: []ec2types.BlockDeviceMapping{{DeviceName: aws.String(RootDevice), Ebs: &ec2types.EbsBlockDevice{
					SnapshotId: aws.String(ImageSnapshotID), VolumeSize: aws.Int32(rootVolumeGiB), VolumeType: ec2types.VolumeTypeGp3,
					DeleteOnTermination: aws.Bool(!f.opts.KeepRootVolumes),
				}}},
			})
		}
		return out, nil
	})
}
