package instances

import "strconv"

// InZoneWithin returns the first candidate in zone when it costs at most
// tolerancePercent more than the first candidate overall (candidates come
// cheapest first). Without prices (an on-demand type of unknown price) it must be of a type the user
// prefers at least as much as the first candidate's.
func InZoneWithin(candidates []Offering, zone string, tolerancePercent int32) (Offering, bool) {
	if len(candidates) == 0 || zone == "" {
		return Offering{}, false
	}
	best := candidates[0]
	for _, o := range candidates {
		if o.Zone != zone {
			continue
		}
		p, errP := strconv.ParseFloat(o.Price, 64)
		b, errB := strconv.ParseFloat(best.Price, 64)
		if errP != nil || errB != nil {
			return o, o.Rank <= best.Rank
		}
		return o, p <= b*(1+float64(tolerancePercent)/100)
	}
	return Offering{}, false
}
