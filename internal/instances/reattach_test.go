package instances

import "testing"

func TestInZoneWithin(t *testing.T) {
	spot := []Offering{
		{Type: "t3.large", Zone: "us-east-1a", Spot: true, Price: "0.100"},
		{Type: "t3.large", Zone: "us-east-1b", Spot: true, Price: "0.115"},
		{Type: "m5.large", Zone: "us-east-1c", Spot: true, Price: "0.130", Rank: 1},
	}
	onDemand := []Offering{{Type: "t3.large", Zone: "us-east-1a"}, {Type: "m5.large", Zone: "us-east-1c", Rank: 1}, {Type: "t3.large", Zone: "us-east-1b"}}
	cases := []struct {
		name      string
		list      []Offering
		zone      string
		tolerance int32
		want      string
		ok        bool
	}{
		{"cheapest is in the zone", spot, "us-east-1a", 0, "us-east-1a", true},
		{"15% dearer within 20%", spot, "us-east-1b", 20, "us-east-1b", true},
		{"15% dearer beyond 10%", spot, "us-east-1b", 10, "us-east-1b", false},
		{"30% dearer beyond 20%", spot, "us-east-1c", 20, "us-east-1c", false},
		{"zone not offered", spot, "us-east-1d", 100, "", false},
		{"on-demand, same type", onDemand, "us-east-1b", 0, "us-east-1b", true},
		{"on-demand, a less preferred type", onDemand, "us-east-1c", 100, "us-east-1c", false},
		{"no candidates", nil, "us-east-1a", 20, "", false},
	}
	for _, c := range cases {
		got, ok := InZoneWithin(c.list, c.zone, c.tolerance)
		if ok != c.ok || got.Zone != c.want {
			t.Errorf("%s: got %q %t, want %q %t", c.name, got.Zone, ok, c.want, c.ok)
		}
	}
}
