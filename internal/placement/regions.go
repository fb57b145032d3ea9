package placement

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// RegionOption is the placement chosen within one region.
type RegionOption struct {
	Region string
	Choice Choice
}

// DriveMove is what a launch outside the drive's region costs: the drive's
// restore snapshot is copied there first.
type DriveMove struct {
	// From is the drive's region.
	From string
	// SizeGiB is the drive's size; a copy transfers it (incremental after the first).
	SizeGiB int32
	// Blank says the drive holds nothing yet: it moves without a copy.
	Blank bool
	// HorizonHours is how many hours of running a move must pay back.
	HorizonHours int32
	// Under is the region a move is already under way to; it is kept while it has an offering.
	Under string
}

// CopyPricePerGiB is what copying a snapshot to another region costs per
// GiB: the inter-region data transfer of the commercial regions, USD.
const CopyPricePerGiB = 0.02

// CopyMinutes estimates how long a copy of a drive of that size takes
// (EBS copies across regions at roughly 100-200 MiB/s after a start-up of
// minutes): the wait a move adds before the launch.
func CopyMinutes(sizeGiB int32) float64 { return 10 + float64(sizeGiB)/8 }

// moveCost is a move's price in USD: the transfer, and the copy's wait
// priced at the hourly rate the user would pay meanwhile.
func (m DriveMove) moveCost(waitRate float64) (transfer, wait float64) {
	if m.Blank {
		return 0, 0
	}
	return float64(m.SizeGiB) * CopyPricePerGiB, CopyMinutes(m.SizeGiB) / 60 * waitRate
}

// PickRegion chooses among the regions' placements: the drive's region,
// unless another region's saving over the horizon pays for the move; the
// region a move is under way to while it has an offering; else the
// cheapest with the move counted. The reason says why, for the Event.
func PickRegion(options []RegionOption, m DriveMove) (RegionOption, string) {
	var usable []RegionOption
	var none []string
	for _, o := range options {
		if o.Choice.Found() {
			usable = append(usable, o)
		} else {
			none = append(none, fmt.Sprintf("%s: %s", o.Region, o.Choice.Reason))
		}
	}
	if len(usable) == 0 {
		return RegionOption{}, strings.Join(none, "; ")
	}
	for _, o := range usable {
		if o.Region == m.Under && m.Under != m.From {
			return o, fmt.Sprintf("region %s, where the drive is being copied", o.Region)
		}
	}
	home := -1
	for i, o := range usable {
		if o.Region == m.From {
			home = i
		}
	}
	hours := float64(max(m.HorizonHours, 1))
	if home >= 0 {
		best, bestNet := usable[home], 0.0
		base, ok := hourly(best.Choice)
		if !ok || len(usable) == 1 {
			return best, fmt.Sprintf("region %s, the drive's", m.From)
		}
		why := ""
		for _, o := range usable {
			p, ok := hourly(o.Choice)
			if o.Region == m.From || !ok {
				continue
			}
			transfer, wait := m.moveCost(base)
			net := (base-p)*hours - transfer - wait
			if net > bestNet {
				best, bestNet = o, net
				why = fmt.Sprintf("region %s at $%.4f/h saves $%.2f over %g h against the drive's region %s at $%.4f/h, more than the move costs ($%.2f to copy %d GiB, $%.2f for about %.0f minutes of copying)",
					o.Region, p, (base-p)*hours, hours, m.From, base, transfer, m.SizeGiB, wait, CopyMinutes(m.SizeGiB))
			}
		}
		if why == "" {
			return best, fmt.Sprintf("region %s, the drive's: no other region saves more than moving the drive costs over %g h", m.From, hours)
		}
		return best, why
	}
	best, bestTotal := usable[0], -1.0
	for _, o := range usable {
		p, ok := hourly(o.Choice)
		if !ok {
			continue
		}
		transfer, wait := m.moveCost(p)
		if total := p*hours + transfer + wait; bestTotal < 0 || total < bestTotal {
			best, bestTotal = o, total
		}
	}
	why := "has no usable offering"
	if !slices.ContainsFunc(options, func(o RegionOption) bool { return o.Region == m.From }) {
		why = "is not among the Workstation's regions"
	}
	return best, fmt.Sprintf("region %s, the cheapest with the drive's move counted: the drive's region %s %s", best.Region, m.From, why)
}

// hourly is the chosen offering's price per hour, if known.
func hourly(c Choice) (float64, bool) {
	p, err := strconv.ParseFloat(c.Offering.Price, 64)
	return p, err == nil
}
