package placement

import (
	"strings"
	"testing"

	"github.com/xdrive-io/xdrive/internal/instances"
)

func option(region, price string) RegionOption {
	return RegionOption{Region: region, Choice: Choice{Offering: instances.Offering{Spot: true, Type: "g5.xlarge", Zone: region + "a", Price: price}}}
}

func noOffering(region string) RegionOption {
	return RegionOption{Region: region, Choice: Choice{Reason: "No listed instance type is offered in this region"}}
}

// TestPickRegion: the drive's region wins unless another saves more over
// the horizon than the move costs (transfer and wait); a move under way is
// kept while its region has an offering; without an offering in the
// drive's region, the cheapest with the move counted.
func TestPickRegion(t *testing.T) {
	// 100 GiB: $2.00 to copy, 10+12.5 minutes of waiting.
	drive := DriveMove{From: "us-east-1", SizeGiB: 100, HorizonHours: 8}
	cases := []struct {
		name    string
		options []RegionOption
		move    func(*DriveMove)
		want    string
		why     string
	}{
		{"only the drive's region", []RegionOption{option("us-east-1", "0.50")}, nil, "us-east-1", "the drive's"},
		{"saving below the copy's cost", []RegionOption{option("us-east-1", "0.50"), option("us-west-2", "0.30")}, nil,
			"us-east-1", "no other region saves more"}, // saves 1.60 < 2.00 + 0.1875
		{"saving above the copy's cost", []RegionOption{option("us-east-1", "0.90"), option("us-west-2", "0.30")}, nil,
			"us-west-2", "saves $4.80"}, // 4.80 > 2.00 + 0.3375
		{"the longer horizon pays for the move", []RegionOption{option("us-east-1", "0.50"), option("us-west-2", "0.30")},
			func(m *DriveMove) { m.HorizonHours = 24 }, "us-west-2", "saves $4.80"},
		{"a blank drive moves for free", []RegionOption{option("us-east-1", "0.50"), option("us-west-2", "0.49")},
			func(m *DriveMove) { m.Blank = true }, "us-west-2", "saves"},
		{"the best of several", []RegionOption{option("us-east-1", "0.90"), option("us-west-2", "0.30"), option("eu-west-1", "0.20")}, nil,
			"eu-west-1", "eu-west-1"},
		{"a move under way is kept", []RegionOption{option("us-east-1", "0.20"), option("us-west-2", "0.30")},
			func(m *DriveMove) { m.Under = "us-west-2" }, "us-west-2", "being copied"},
		{"a move under way without an offering is not", []RegionOption{option("us-east-1", "0.20"), noOffering("us-west-2")},
			func(m *DriveMove) { m.Under = "us-west-2" }, "us-east-1", "the drive's"},
		{"no offering in the drive's region", []RegionOption{noOffering("us-east-1"), option("us-west-2", "0.40"), option("eu-west-1", "0.35")}, nil,
			"eu-west-1", "has no usable offering"},
		{"an unpriced offering in the drive's region stays", []RegionOption{option("us-east-1", ""), option("us-west-2", "0.01")}, nil,
			"us-east-1", "the drive's"},
		{"the drive's region left out", []RegionOption{option("us-west-2", "0.40")}, nil, "us-west-2", "is not among the Workstation's regions"},
		{"no offering anywhere", []RegionOption{noOffering("us-east-1"), noOffering("us-west-2")}, nil, "", "us-west-2: No listed"},
	}
	for _, c := range cases {
		m := drive
		if c.move != nil {
			c.move(&m)
		}
		got, why := PickRegion(c.options, m)
		if got.Region != c.want || !strings.Contains(why, c.why) {
			t.Errorf("%s: picked %q (%s), want %q saying %q", c.name, got.Region, why, c.want, c.why)
		}
	}
}
