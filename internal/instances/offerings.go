package instances

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

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

// PlacementRequest is what a Workstation asks of placement.
type PlacementRequest struct {
	Types     []string
	Zones     []string // empty: every zone that offers a type
	SubnetIDs []string // empty: the zone's default subnet
	Spot      bool
	// MaxPrice caps the spot price.
	MaxPrice string
	// MaxOnDemandPrice caps the on-demand price; a type of unknown price is refused under a cap.
	MaxOnDemandPrice string
	// OnDemandPrices are the class's own on-demand prices, over the list prices.
	OnDemandPrices map[string]string
	Avoid          func(Offering) bool
}

// Candidates returns the usable offerings under the price caps. Spot
// offerings are ordered by price, then preference; on-demand ones by preference.
func (c *Catalog) Candidates(ctx context.Context, req PlacementRequest) ([]Offering, error) {
	zoneOf, err := c.subnetZones(ctx, req.SubnetIDs)
	if err != nil {
		return nil, err
	}
	offered, err := c.offeredZones(ctx, req.Types)
	if err != nil {
		return nil, err
	}
	infos, err := c.typeInfos(ctx, slices.DeleteFunc(slices.Clone(req.Types), func(t string) bool { return len(offered[t]) == 0 }))
	if err != nil {
		return nil, err
	}
	var out []Offering
	for rank, t := range req.Types {
		if infos[t].NoNVMe {
			continue
		}
		for _, z := range offered[t] {
			if len(req.Zones) > 0 && !slices.Contains(req.Zones, z) {
				continue
			}
			o := Offering{Type: t, Zone: z, Spot: req.Spot, Rank: rank}
			if len(req.SubnetIDs) > 0 {
				if o.SubnetID = subnetIn(zoneOf, req.SubnetIDs, z); o.SubnetID == "" {
					continue
				}
			}
			if req.Avoid != nil && req.Avoid(o) {
				continue
			}
			out = append(out, o)
		}
	}
	if req.Spot {
		if err := c.price(ctx, out); err != nil {
			return nil, err
		}
		out = slices.DeleteFunc(out, func(o Offering) bool { return o.Price == "" || PriceAbove(o.Price, req.MaxPrice) })
	} else {
		for i, o := range out {
			out[i].Price, _ = OnDemandPrice(c.Region, o.Type, req.OnDemandPrices)
		}
		out = slices.DeleteFunc(out, func(o Offering) bool {
			return req.MaxOnDemandPrice != "" && (o.Price == "" || PriceAbove(o.Price, req.MaxOnDemandPrice))
		})
	}
	slices.SortStableFunc(out, func(a, b Offering) int {
		if pa, pb := parsePrice(a.Price), parsePrice(b.Price); req.Spot && pa != pb {
			if pa < pb {
				return -1
			}
			return 1
		}
		return a.Rank - b.Rank
	})
	return out, nil
}

func subnetIn(zoneOf map[string]string, subnets []string, zone string) string {
	for _, s := range subnets {
		if zoneOf[s] == zone {
			return s
		}
	}
	return ""
}

func parsePrice(p string) float64 {
	if p == "" {
		return 0
	}
	f, err := strconv.ParseFloat(p, 64)
	if err != nil {
		return 1e9
	}
	return f
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
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range missing {
		zones := found[t]
		slices.Sort(zones)
		c.zones[t] = cached[[]string]{value: zones, at: c.now()}
		out[t] = zones
	}
	return out, nil
}

func (c *Catalog) price(ctx context.Context, offerings []Offering) error {
	var needTypes []string
	c.mu.Lock()
	for i, o := range offerings {
		if p, ok := fresh(c.prices, o.Type+"/"+o.Zone, c.priceTTL, c.now()); ok {
			offerings[i].Price = p
		} else if !slices.Contains(needTypes, o.Type) {
			needTypes = append(needTypes, o.Type)
		}
	}
	c.mu.Unlock()
	if len(needTypes) == 0 {
		return nil
	}
	latest := map[string]ec2types.SpotPrice{}
	p := ec2.NewDescribeSpotPriceHistoryPaginator(c.api, &ec2.DescribeSpotPriceHistoryInput{
		InstanceTypes:       toInstanceTypes(needTypes),
		ProductDescriptions: []string{"Linux/UNIX"},
		StartTime:           aws.Time(c.now()),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("describing spot prices: %w", err)
		}
		for _, sp := range page.SpotPriceHistory {
			k := string(sp.InstanceType) + "/" + aws.ToString(sp.AvailabilityZone)
			if old, ok := latest[k]; !ok || aws.ToTime(sp.Timestamp).After(aws.ToTime(old.Timestamp)) {
				latest[k] = sp
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, sp := range latest {
		c.prices[k] = cached[string]{value: aws.ToString(sp.SpotPrice), at: c.now()}
	}
	for i, o := range offerings {
		if o.Price == "" {
			offerings[i].Price = c.prices[o.Type+"/"+o.Zone].value
		}
	}
	return nil
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
	res, err := c.api.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: missing})
	if err != nil {
		return nil, fmt.Errorf("describing subnets: %w", err)
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
	res, err := c.api.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: missing})
	if err != nil {
		return nil, fmt.Errorf("describing instance types %v: %w", missing, err)
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
	res, err := c.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(parameter)})
	if err != nil {
		return "", fmt.Errorf("reading SSM parameter %s: %w", parameter, err)
	}
	ami = aws.ToString(res.Parameter.Value)
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
	res, err := c.api.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{imageID}})
	if err != nil {
		return nil, fmt.Errorf("describing image %s: %w", imageID, err)
	}
	if len(res.Images) != 1 {
		return nil, fmt.Errorf("describing image %s: %d images found", imageID, len(res.Images))
	}
	m = rootOverride(res.Images[0])
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
