package instances

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"golang.org/x/sync/singleflight"

	"github.com/xdrive-io/xdrive/internal/cloud"
)

// Offering is an instance type in a zone, bought one way.
type Offering struct {
	Type     string
	Zone     string
	Spot     bool
	SubnetID string
	// Price is the latest spot price, or the on-demand price, in USD per
	// hour; empty for an on-demand type whose price is unknown.
	Price string
	// Rank is the type's position in the user's preference list.
	Rank int
}

// Key names the offering, as kept in a Workstation's avoid list.
func (o Offering) Key() string {
	capacity := "OnDemand"
	if o.Spot {
		capacity = "Spot"
	}
	return capacity + "/" + o.Type + "/" + o.Zone
}

// TypeInfo is what the operator needs to know of an instance type.
type TypeInfo struct {
	Arch string // x86_64 or arm64
	GPUs int32
	// NoNVMe marks a type whose EBS volumes are not NVMe devices (Xen types
	// such as t2, m4, p3 show /dev/xvd*): the bootstrap finds the drive by
	// its NVMe serial, so placement skips these types.
	NoNVMe bool
}

// Catalog answers placement questions from cached EC2 lookups, shared by every Workstation.
type Catalog struct {
	api cloud.OfferingsAPI
	ssm cloud.SSMAPI
	ttl time.Duration
	now func() time.Time

	// flight shares a miss among the callers asking at once; mu guards
	// the maps only, never an EC2 call.
	flight   singleflight.Group
	mu       sync.Mutex
	zones    map[string]cached[[]string] // type -> zones offering it
	types    map[string]cached[TypeInfo]
	prices   map[string]cached[string]               // type/zone -> spot price
	subnets  map[string]cached[string]               // subnet -> zone
	images   map[string]cached[string]               // SSM parameter -> AMI
	roots    map[string]*ec2types.BlockDeviceMapping // AMI -> its root mapping to launch with (images never change)
	priceTTL time.Duration
	// Region prices on-demand offerings from the list prices (OnDemandPrice).
	Region string
}

type cached[T any] struct {
	value T
	at    time.Time
}

// NewCatalog returns a catalog whose answers live for ttl (spot prices for 5 minutes).
func NewCatalog(api cloud.OfferingsAPI, ssmAPI cloud.SSMAPI, ttl time.Duration) *Catalog {
	return &Catalog{
		api: api, ssm: ssmAPI, ttl: ttl, priceTTL: 5 * time.Minute, now: time.Now,
		zones: map[string]cached[[]string]{}, types: map[string]cached[TypeInfo]{},
		prices: map[string]cached[string]{}, subnets: map[string]cached[string]{}, images: map[string]cached[string]{},
		roots: map[string]*ec2types.BlockDeviceMapping{},
	}
}

func fresh[T any](m map[string]cached[T], key string, ttl time.Duration, now time.Time) (T, bool) {
	c, ok := m[key]
	if !ok || now.Sub(c.at) > ttl {
		var zero T
		return zero, false
	}
	return c.value, true
}

// Market is what EC2 says of some instance types: where each is offered,
// what it is, and its spot prices. Placement (internal/placement) decides
// from it; the catalog only looks things up.
type Market struct {
	// Zones are the zones offering each type, sorted.
	Zones map[string][]string
	Types map[string]TypeInfo
	// SpotPrices are the latest spot prices by Offering key's type/zone
	// ("t3.large/us-east-1a"), USD per hour; only when asked for.
	SpotPrices map[string]string
	// SubnetZones are the zones of the subnets asked about.
	SubnetZones map[string]string
	// Region prices on-demand types (OnDemandPrice).
	Region string
}

// Market looks up the offerings of types, with spot prices if spot, and the
// zones of subnets. Answers come from the cache where fresh; misses for the
// same keys at once share one EC2 call, and hold no lock while it runs.
func (c *Catalog) Market(ctx context.Context, types, subnets []string, spot bool) (Market, error) {
	m := Market{Region: c.Region}
	var err error
	if m.SubnetZones, err = c.subnetZones(ctx, subnets); err != nil {
		return Market{}, err
	}
	if m.Zones, err = c.offeredZones(ctx, types); err != nil {
		return Market{}, err
	}
	offered := slices.DeleteFunc(slices.Clone(types), func(t string) bool { return len(m.Zones[t]) == 0 })
	if m.Types, err = c.typeInfos(ctx, offered); err != nil {
		return Market{}, err
	}
	if spot {
		if m.SpotPrices, err = c.spotPrices(ctx, m.Zones, offered); err != nil {
			return Market{}, err
		}
	}
	return m, nil
}

// shared runs fetch once for callers asking the same key at once.
func shared[T any](c *Catalog, kind string, keys []string, fetch func() (T, error)) (T, error) {
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	v, err, _ := c.flight.Do(kind+"\x00"+strings.Join(sorted, "\x00"), func() (any, error) { return fetch() })
	if err != nil {
		var zero T
		return zero, err
	}
	return v.(T), nil
}

func (c *Catalog) offeredZones(ctx context.Context, types []string) (map[string][]string, error) {
	out := map[string][]string{}
	var missing []string
	c.mu.Lock()
	for _, t := range types {
		if z, ok := fresh(c.zones, t, c.ttl, c.now()); ok {
			out[t] = z
		} else {
			missing = append(missing, t)
		}
	}
	c.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	found, err := shared(c, "offerings", missing, func() (map[string][]string, error) {
		found := map[string][]string{}
		p := ec2.NewDescribeInstanceTypeOfferingsPaginator(c.api, &ec2.DescribeInstanceTypeOfferingsInput{
			LocationType: ec2types.LocationTypeAvailabilityZone,
			Filters:      []ec2types.Filter{cloud.Filter("instance-type", missing...)},
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("describing instance type offerings: %w", err)
			}
			for _, o := range page.InstanceTypeOfferings {
				t := string(o.InstanceType)
				found[t] = append(found[t], aws.ToString(o.Location))
			}
		}
		for _, zones := range found {
			slices.Sort(zones)
		}
		return found, nil
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range missing {
		zones := found[t]
		c.zones[t] = cached[[]string]{value: zones, at: c.now()}
		out[t] = zones
	}
	return out, nil
}

// spotPrices are the latest spot prices of the types in the zones offering them.
func (c *Catalog) spotPrices(ctx context.Context, zones map[string][]string, types []string) (map[string]string, error) {
	out := map[string]string{}
	var needTypes []string
	c.mu.Lock()
	for _, t := range types {
		for _, z := range zones[t] {
			if p, ok := fresh(c.prices, t+"/"+z, c.priceTTL, c.now()); ok {
				out[t+"/"+z] = p
			} else if !slices.Contains(needTypes, t) {
				needTypes = append(needTypes, t)
			}
		}
	}
	c.mu.Unlock()
	if len(needTypes) == 0 {
		return out, nil
	}
	latest, err := shared(c, "spot", needTypes, func() (map[string]ec2types.SpotPrice, error) {
		latest := map[string]ec2types.SpotPrice{}
		p := ec2.NewDescribeSpotPriceHistoryPaginator(c.api, &ec2.DescribeSpotPriceHistoryInput{
			InstanceTypes:       toInstanceTypes(needTypes),
			ProductDescriptions: []string{"Linux/UNIX"},
			StartTime:           aws.Time(c.now()),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("describing spot prices: %w", err)
			}
			for _, sp := range page.SpotPriceHistory {
				k := string(sp.InstanceType) + "/" + aws.ToString(sp.AvailabilityZone)
				if old, ok := latest[k]; !ok || aws.ToTime(sp.Timestamp).After(aws.ToTime(old.Timestamp)) {
					latest[k] = sp
				}
			}
		}
		return latest, nil
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, sp := range latest {
		c.prices[k] = cached[string]{value: aws.ToString(sp.SpotPrice), at: c.now()}
	}
	for _, t := range needTypes {
		for _, z := range zones[t] {
			if p, ok := c.prices[t+"/"+z]; ok {
				out[t+"/"+z] = p.value
			}
		}
	}
	return out, nil
}

func toInstanceTypes(types []string) []ec2types.InstanceType {
	out := make([]ec2types.InstanceType, len(types))
	for i, t := range types {
		out[i] = ec2types.InstanceType(t)
	}
	return out
}

func (c *Catalog) subnetZones(ctx context.Context, subnets []string) (map[string]string, error) {
	out := map[string]string{}
	var missing []string
	c.mu.Lock()
	for _, s := range subnets {
		if z, ok := fresh(c.subnets, s, c.ttl, c.now()); ok {
			out[s] = z
		} else {
			missing = append(missing, s)
		}
	}
	c.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	res, err := shared(c, "subnets", missing, func() (*ec2.DescribeSubnetsOutput, error) {
		res, err := c.api.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: missing})
		if err != nil {
			return nil, fmt.Errorf("describing subnets %v: %w", missing, err)
		}
		return res, nil
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range res.Subnets {
		id, z := aws.ToString(s.SubnetId), aws.ToString(s.AvailabilityZone)
		c.subnets[id] = cached[string]{value: z, at: c.now()}
		out[id] = z
	}
	return out, nil
}

// Type returns the architecture, GPU count and EBS kind of an instance type.
func (c *Catalog) Type(ctx context.Context, instanceType string) (TypeInfo, error) {
	infos, err := c.typeInfos(ctx, []string{instanceType})
	if err != nil {
		return TypeInfo{}, err
	}
	info, ok := infos[instanceType]
	if !ok {
		return TypeInfo{}, fmt.Errorf("instance type %s is not offered in this region", instanceType)
	}
	return info, nil
}

// typeInfos describes instance types, those not cached in one call.
func (c *Catalog) typeInfos(ctx context.Context, types []string) (map[string]TypeInfo, error) {
	out := map[string]TypeInfo{}
	var missing []ec2types.InstanceType
	c.mu.Lock()
	for _, t := range types {
		if info, ok := fresh(c.types, t, c.ttl, c.now()); ok {
			out[t] = info
		} else if !slices.Contains(missing, ec2types.InstanceType(t)) {
			missing = append(missing, ec2types.InstanceType(t))
		}
	}
	c.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	names := make([]string, len(missing))
	for i, t := range missing {
		names[i] = string(t)
	}
	res, err := shared(c, "types", names, func() (*ec2.DescribeInstanceTypesOutput, error) {
		res, err := c.api.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: missing})
		if err != nil {
			return nil, fmt.Errorf("describing instance types %v: %w", missing, err)
		}
		return res, nil
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, it := range res.InstanceTypes {
		info := TypeInfo{Arch: "x86_64"}
		if it.ProcessorInfo != nil && slices.Contains(it.ProcessorInfo.SupportedArchitectures, ec2types.ArchitectureTypeArm64) {
			info.Arch = "arm64"
		}
		if it.GpuInfo != nil {
			for _, g := range it.GpuInfo.Gpus {
				info.GPUs += aws.ToInt32(g.Count)
			}
		}
		info.NoNVMe = it.EbsInfo != nil && it.EbsInfo.NvmeSupport == ec2types.EbsNvmeSupportUnsupported
		c.types[string(it.InstanceType)] = cached[TypeInfo]{value: info, at: c.now()}
		out[string(it.InstanceType)] = info
	}
	return out, nil
}

// Image resolves an SSM parameter to an AMI ID.
func (c *Catalog) Image(ctx context.Context, parameter string) (string, error) {
	c.mu.Lock()
	ami, ok := fresh(c.images, parameter, c.ttl, c.now())
	c.mu.Unlock()
	if ok {
		return ami, nil
	}
	ami, err := shared(c, "image", []string{parameter}, func() (string, error) {
		res, err := c.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(parameter)})
		if err != nil {
			return "", fmt.Errorf("reading SSM parameter %s: %w", parameter, err)
		}
		return aws.ToString(res.Parameter.Value), nil
	})
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.images[parameter] = cached[string]{value: ami, at: c.now()}
	c.mu.Unlock()
	return ami, nil
}

// RootMapping is the mapping a launch of the image passes so that its root
// volume, which carries the drive's tags, ends with the instance: nil when
// the image's own mapping already deletes it on termination. It is the
// image's root mapping with DeleteOnTermination set, snapshot and size
// included, as the image has them.
func (c *Catalog) RootMapping(ctx context.Context, imageID string) (*ec2types.BlockDeviceMapping, error) {
	c.mu.Lock()
	m, ok := c.roots[imageID]
	c.mu.Unlock()
	if ok {
		return m, nil
	}
	m, err := shared(c, "root", []string{imageID}, func() (*ec2types.BlockDeviceMapping, error) {
		res, err := c.api.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{imageID}})
		if err != nil {
			return nil, fmt.Errorf("describing image %s: %w", imageID, err)
		}
		if len(res.Images) != 1 {
			return nil, fmt.Errorf("describing image %s: %d images found", imageID, len(res.Images))
		}
		return rootOverride(res.Images[0]), nil
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.roots[imageID] = m
	c.mu.Unlock()
	return m, nil
}

func rootOverride(img ec2types.Image) *ec2types.BlockDeviceMapping {
	root := aws.ToString(img.RootDeviceName)
	for _, bdm := range img.BlockDeviceMappings {
		if aws.ToString(bdm.DeviceName) != root || bdm.Ebs == nil {
			continue
		}
		if aws.ToBool(bdm.Ebs.DeleteOnTermination) {
			return nil
		}
		return &ec2types.BlockDeviceMapping{DeviceName: aws.String(root), Ebs: &ec2types.EbsBlockDevice{
			DeleteOnTermination: aws.Bool(true), SnapshotId: bdm.Ebs.SnapshotId,
			VolumeSize: bdm.Ebs.VolumeSize, VolumeType: bdm.Ebs.VolumeType,
		}}
	}
	return nil // instance store, or no mapping of the root: nothing outlives the instance
}
