package schedule

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Defaults of the lead's estimate, conservative: a lead too long costs a
// few minutes of instance time, one too short makes the user wait.
const (
	// DefaultReady is a launch's time to Ready when none was measured:
	// placement, RunInstances, boot, the bootstrap, the containers' images.
	DefaultReady = 5 * time.Minute
	// DefaultPrewarmMiBps is the instance's read of every block (spec.prewarm)
	// when none was measured: below what a gp3 volume's baseline of 125 MiB/s gives.
	DefaultPrewarmMiBps = 60
	// DefaultLazyMiBps is how fast a restored volume loads with neither a
	// provisioned rate nor a prewarm: only the blocks read load, so the
	// estimate is a guess, kept low.
	DefaultLazyMiBps = 20
	// Margin is added to every lead, besides MarginPercent of the estimate,
	// for the requeue and the reads of the drive's progress: the aim is
	// Ready and Hydrated within a minute before the start.
	Margin = 40 * time.Second
	// MarginPercent is the estimate's share added to the lead, for a launch
	// slower than the last one measured.
	MarginPercent = 10
	// MaxLead caps the lead.
	MaxLead = 12 * time.Hour
)

// Drive is what the lead needs to know of the Workstation's drive.
type Drive struct {
	// SizeGiB is the volume a launch restores; 0 when it is created blank.
	SizeGiB int32
	// InitializationRateMiBps is the provisioned rate of the restore; 0 if none.
	InitializationRateMiBps int32
	// Prewarm says the instance reads every block once.
	Prewarm bool
}

// Measured is what the operator measured of the last launch.
type Measured struct {
	// Ready is from the instance's launch to its containers running; 0 if not measured.
	Ready time.Duration
	// Load is from Ready to a restored drive fully loaded, and LoadedGiB
	// that drive's size; LoadedGiB is 0 if nothing was measured.
	Load      time.Duration
	LoadedGiB int32
}

// Lead estimates how long before a start a launch must begin for the
// Workstation to be Ready, its drive fully loaded, at the start: the time
// to Ready (measured, else DefaultReady) plus the time to load the drive
// after it (measured, scaled to the drive's size, else its size at the
// provisioned rate, the prewarm's default rate or the lazy guess), plus
// MarginPercent and Margin, rounded up to the second. basis says how, for people.
func Lead(d Drive, m Measured) (lead time.Duration, basis string) {
	var parts []string
	ready := DefaultReady
	if m.Ready > 0 {
		ready = m.Ready
		parts = append(parts, "Ready "+m.Ready.Round(time.Second).String()+" after launch (measured)")
	} else {
		parts = append(parts, "Ready "+ready.String()+" after launch (default: nothing measured yet)")
	}
	var load time.Duration
	switch {
	case d.SizeGiB <= 0:
		parts = append(parts, "a blank drive: nothing to load")
	case m.LoadedGiB > 0:
		load = scale(m.Load, d.SizeGiB, m.LoadedGiB)
		parts = append(parts, fmt.Sprintf("%d GiB loaded %s after Ready (measured: %s for %d GiB)", d.SizeGiB, load.Round(time.Second), m.Load, m.LoadedGiB))
	default:
		rate, how := rateOf(d)
		load = time.Duration(math.Ceil(float64(d.SizeGiB)*1024/float64(rate))) * time.Second
		parts = append(parts, fmt.Sprintf("%d GiB at %d MiB/s (%s): %s", d.SizeGiB, rate, how, load))
	}
	est := ready + load
	lead = est + est*MarginPercent/100 + Margin
	lead = min((lead + time.Second - 1).Truncate(time.Second), MaxLead)
	parts = append(parts, fmt.Sprintf("+%d%% and %s margin", MarginPercent, Margin))
	return lead, strings.Join(parts, "; ")
}

// rateOf is how fast the drive's restore loads, and where the rate comes from.
func rateOf(d Drive) (int64, string) {
	switch {
	case d.InitializationRateMiBps > 0:
		return int64(d.InitializationRateMiBps), "the provisioned initialization rate"
	case d.Prewarm:
		return DefaultPrewarmMiBps, "prewarm, default rate"
	}
	return DefaultLazyMiBps, "lazy loading, a low guess"
}

// scale is d for size GiB, measured on measuredGiB.
func scale(d time.Duration, size, measuredGiB int32) time.Duration {
	return time.Duration(float64(d) * float64(size) / float64(measuredGiB))
}
