// Package placement decides where a Workstation's instance runs: which
// instance type, zone, subnet and capacity type, and whether the drive's
// released volume is reattached rather than restored. Plan is a pure
// function of the request and of what EC2 offers (instances.Market); the
// Planner looks the market up through the shared catalog.
package placement

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/xdrive-io/xdrive/internal/instances"
)

// Request is everything a placement depends on besides the market.
type Request struct {
	// Types are the instance types, most preferred first.
	Types []string
	// Zones limits the zones; empty: every zone that offers a type.
	Zones []string
	// SubnetIDs are the class's subnets; empty: the zone's default subnet.
	SubnetIDs []string
	Spot      bool
	// OnDemandFallback places on demand when no spot offering is left.
	OnDemandFallback bool
	// MaxSpotPrice caps the spot price; MaxOnDemandPrice the on-demand one,
	// under which a type of unknown price is refused.
	MaxSpotPrice, MaxOnDemandPrice string
	// OnDemandPrices are the class's own prices, over the list prices.
	OnDemandPrices map[string]string
	// Avoid skips offerings that failed lately (interruptions, no capacity).
	Avoid func(instances.Offering) bool
	// Volume is the drive's released volume, which a launch in its zone
	// reattaches; zero when there is none to reuse.
	Volume Volume
	// TolerancePercent is how much more an offering in the volume's zone may
	// cost than the cheapest and still win.
	TolerancePercent int32
}

// Volume is a volume a launch may reattach.
type Volume struct{ ID, Zone string }

// Choice is a placement decision.
type Choice struct {
	// Offering is the chosen offering; zero when none is usable (Reason says why).
	Offering instances.Offering
	// Reattach: the launch reattaches Request.Volume.
	Reattach bool
	// Declined is Request.Volume's ID when it is not reattached because a
	// cheaper offering elsewhere wins.
	Declined string
	// Candidates is how many offerings were usable.
	Candidates int
	// Cheapest is the first usable offering (on demand, the most
	// preferred), which a reattach is weighed against.
	Cheapest instances.Offering
	// Reason says why, in a sentence for an Event.
	Reason string
}

// Found reports whether an offering was chosen.
func (c Choice) Found() bool { return c.Offering.Type != "" }

// Plan chooses an offering: the cheapest spot offering (ties by the user's
// preference), or on demand the most preferred; one in the zone of the
// reusable volume wins when it costs at most the tolerance more; on demand
// when no spot offering is left and the fallback is allowed.
func Plan(req Request, m instances.Market) Choice {
	list, short := Candidates(req, m, req.Spot)
	onDemandFallback := false
	if len(list) == 0 && req.Spot && req.OnDemandFallback {
		list, _ = Candidates(req, m, false)
		onDemandFallback = true
	}
	if len(list) == 0 {
		return Choice{Reason: short.String()}
	}
	c := Choice{Candidates: len(list), Cheapest: list[0], Offering: list[0]}
	if v := req.Volume; v.ID != "" {
		if o, ok := inZoneWithin(list, v.Zone, req.TolerancePercent); ok {
			c.Offering, c.Reattach = o, true
		} else {
			c.Declined = v.ID
		}
	}
	c.Reason = c.reason(req, onDemandFallback)
	return c
}

func (c Choice) reason(req Request, onDemandFallback bool) string {
	o := c.Offering
	var b strings.Builder
	switch {
	case c.Reattach && o.Key() == c.Cheapest.Key():
		fmt.Fprintf(&b, "%s, the cheapest of %d offerings, is in the zone of volume %s, which it reattaches", o.Key(), c.Candidates, req.Volume.ID)
	case c.Reattach:
		best := "the cheapest"
		if !o.Spot {
			best = "the most preferred"
		}
		fmt.Fprintf(&b, "%s%s is in the zone of volume %s, which it reattaches: within %d%% of %s, %s%s",
			o.Key(), price(o), req.Volume.ID, req.TolerancePercent, best, c.Cheapest.Key(), price(c.Cheapest))
	case o.Spot:
		fmt.Fprintf(&b, "%s%s, the cheapest of %d spot offerings", o.Key(), price(o), c.Candidates)
	default:
		fmt.Fprintf(&b, "%s%s, the most preferred of %d on-demand offerings", o.Key(), price(o), c.Candidates)
	}
	if c.Declined != "" {
		fmt.Fprintf(&b, "; volume %s in %s is not reattached: it is cheaper beyond the %d%% tolerance", c.Declined, req.Volume.Zone, req.TolerancePercent)
	}
	if onDemandFallback {
		b.WriteString("; on demand, as no spot offering is usable")
	}
	return b.String()
}

func price(o instances.Offering) string {
	if o.Price == "" {
		return ""
	}
	return " at $" + o.Price + "/h"
}

// Shortfall counts why offerings of the requested types were left out.
type Shortfall struct {
	Offered, NoNVMe, OtherZone, NoSubnet, Avoided, Unpriced, OverCap int
}

func (s Shortfall) String() string {
	if s.Offered == 0 {
		return "No listed instance type is offered in this region"
	}
	var why []string
	for _, p := range []struct {
		n    int
		what string
	}{
		{s.NoNVMe, "of types whose EBS volumes are not NVMe"},
		{s.OtherZone, "outside the allowed zones"},
		{s.NoSubnet, "in zones without a class subnet"},
		{s.Avoided, "avoided after interruptions or capacity errors"},
		{s.Unpriced, "without a known price"},
		{s.OverCap, "above the price limit"},
	} {
		if p.n > 0 {
			why = append(why, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	return fmt.Sprintf("None of %d offerings of the listed instance types is usable: %s", s.Offered, strings.Join(why, ", "))
}

// Candidates are the usable offerings, bought spot or on demand: spot ones
// cheapest first, then by preference; on-demand ones by preference. The
// shortfall says why the others were left out.
func Candidates(req Request, m instances.Market, spot bool) ([]instances.Offering, Shortfall) {
	var out []instances.Offering
	var short Shortfall
	for rank, t := range req.Types {
		for _, z := range m.Zones[t] {
			short.Offered++
			o := instances.Offering{Type: t, Zone: z, Spot: spot, Rank: rank}
			switch {
			case m.Types[t].NoNVMe:
				short.NoNVMe++
				continue
			case len(req.Zones) > 0 && !slices.Contains(req.Zones, z):
				short.OtherZone++
				continue
			}
			if len(req.SubnetIDs) > 0 {
				if o.SubnetID = subnetIn(m.SubnetZones, req.SubnetIDs, z); o.SubnetID == "" {
					short.NoSubnet++
					continue
				}
			}
			if req.Avoid != nil && req.Avoid(o) {
				short.Avoided++
				continue
			}
			if spot {
				o.Price = m.SpotPrices[t+"/"+z]
				if o.Price == "" {
					short.Unpriced++
					continue
				}
				if instances.PriceAbove(o.Price, req.MaxSpotPrice) {
					short.OverCap++
					continue
				}
			} else {
				o.Price, _ = instances.OnDemandPrice(m.Region, t, req.OnDemandPrices)
				if req.MaxOnDemandPrice != "" && o.Price == "" {
					short.Unpriced++
					continue
				}
				if instances.PriceAbove(o.Price, req.MaxOnDemandPrice) {
					short.OverCap++
					continue
				}
			}
			out = append(out, o)
		}
	}
	slices.SortStableFunc(out, func(a, b instances.Offering) int {
		if pa, pb := instances.ParsePrice(a.Price), instances.ParsePrice(b.Price); spot && pa != pb {
			if pa < pb {
				return -1
			}
			return 1
		}
		return a.Rank - b.Rank
	})
	return out, short
}

func subnetIn(zoneOf map[string]string, subnets []string, zone string) string {
	for _, s := range subnets {
		if zoneOf[s] == zone {
			return s
		}
	}
	return ""
}

// inZoneWithin returns the first candidate in zone when it costs at most
// tolerancePercent more than the first candidate overall (candidates come
// cheapest first). Without prices (an on-demand type of unknown price) it
// must be of a type the user prefers at least as much as the first's.
func inZoneWithin(candidates []instances.Offering, zone string, tolerancePercent int32) (instances.Offering, bool) {
	if len(candidates) == 0 || zone == "" {
		return instances.Offering{}, false
	}
	best := candidates[0]
	for _, o := range candidates {
		if o.Zone != zone {
			continue
		}
		if o.Price == "" || best.Price == "" {
			return o, o.Rank <= best.Rank
		}
		return o, instances.ParsePrice(o.Price) <= instances.ParsePrice(best.Price)*(1+float64(tolerancePercent)/100)
	}
	return instances.Offering{}, false
}

// Catalog is the shared, cached view of EC2's offerings.
type Catalog interface {
	Market(ctx context.Context, types, subnets []string, spot bool) (instances.Market, error)
}

// Place looks the market up and plans.
func Place(ctx context.Context, c Catalog, req Request) (Choice, error) {
	m, err := c.Market(ctx, req.Types, req.SubnetIDs, req.Spot)
	if err != nil {
		return Choice{}, fmt.Errorf("look up the offerings of %v: %w", req.Types, err)
	}
	return Plan(req, m), nil
}
