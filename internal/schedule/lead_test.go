package schedule

import (
	"strings"
	"testing"
	"time"
)

// TestLead: the time to Ready (measured, else 5 minutes) plus the drive's
// load (measured and scaled to its size, else its size at its rate), plus
// 10% and 40 s, rounded up to the second.
func TestLead(t *testing.T) {
	cases := []struct {
		name  string
		drive Drive
		m     Measured
		want  time.Duration
		words []string
	}{
		{"nothing measured, a blank drive", Drive{}, Measured{}, 370 * time.Second, []string{"default", "blank"}},
		{"measured Ready, a blank drive", Drive{}, Measured{Ready: 100 * time.Second}, 150 * time.Second, []string{"measured"}},
		// 300 GiB at 300 MiB/s: 1024 s; with Ready's 300 s, 1324 s; +10%: 1456.4 s; +40 s, rounded up.
		{"300 GiB at a provisioned 300 MiB/s", Drive{SizeGiB: 300, InitializationRateMiBps: 300}, Measured{},
			1497 * time.Second, []string{"300 GiB at 300 MiB/s", "provisioned"}},
		// 100 GiB prewarmed at 60 MiB/s: 1707 s (rounded up); with 60 s Ready, 1767 s; +10% 1943.7 s; +40 s, rounded up.
		{"prewarm, nothing measured", Drive{SizeGiB: 100, Prewarm: true}, Measured{Ready: time.Minute},
			1984 * time.Second, []string{"prewarm"}},
		{"lazy loading", Drive{SizeGiB: 10}, Measured{Ready: time.Minute}, 0, []string{"lazy"}},
		// A 200 GiB load measured at 400 s after Ready: 800 s for 400 GiB; with 60 s, 860 s; +10% 946 s; +40 s.
		{"a measured load, scaled", Drive{SizeGiB: 400, Prewarm: true}, Measured{Ready: time.Minute, Load: 400 * time.Second, LoadedGiB: 200},
			986 * time.Second, []string{"measured: 6m40s for 200 GiB"}},
		{"capped", Drive{SizeGiB: 16384}, Measured{}, MaxLead, nil},
	}
	for _, c := range cases {
		got, basis := Lead(c.drive, c.m)
		if c.want != 0 && got != c.want {
			t.Errorf("%s: lead %s, want %s (%s)", c.name, got, c.want, basis)
		}
		if got%time.Second != 0 || got < Margin {
			t.Errorf("%s: lead %s is not whole seconds above the margin", c.name, got)
		}
		for _, w := range c.words {
			if !strings.Contains(basis, w) {
				t.Errorf("%s: basis %q lacks %q", c.name, basis, w)
			}
		}
	}
}

// TestLeadCoversTheEstimate: whatever the drive, the lead is at least the
// time to Ready and the load it estimated.
func TestLeadCoversTheEstimate(t *testing.T) {
	for _, size := range []int32{0, 1, 50, 300, 1000} {
		for _, ready := range []time.Duration{0, 30 * time.Second, 10 * time.Minute} {
			lead, _ := Lead(Drive{SizeGiB: size, InitializationRateMiBps: 100}, Measured{Ready: ready})
			r := ready
			if r == 0 {
				r = DefaultReady
			}
			load := time.Duration(size) * 1024 * time.Second / 100
			if lead < min(r+load, MaxLead) {
				t.Errorf("size %d, Ready %s: lead %s below %s", size, ready, lead, r+load)
			}
		}
	}
}
