package instances_test

import (
	"context"
	"slices"
	"testing"

	"github.com/xdrive-io/xdrive/internal/instances"
	"github.com/xdrive-io/xdrive/test/fakeec2"
)

func TestCandidatesSkipXenTypes(t *testing.T) {
	fake := fakeec2.New(fakeec2.Options{InstanceTypes: []fakeec2.InstanceType{
		{Name: "m4.large", Arch: "x86_64", SpotPrice: 0.001, NoNVMe: true},
		{Name: "t3.large", Arch: "x86_64", SpotPrice: 0.025},
	}})
	c := instances.NewCatalog(fake, fake, 0)
	for _, spot := range []bool{true, false} {
		got, err := c.Candidates(context.Background(), instances.PlacementRequest{Types: []string{"m4.large", "t3.large"}, Spot: spot})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			t.Fatalf("spot=%t: no candidates", spot)
		}
		for _, o := range got {
			if o.Type != "t3.large" {
				t.Errorf("spot=%t: candidate %s; m4.large has no NVMe EBS", spot, o.Key())
			}
		}
	}
	info, err := c.Type(context.Background(), "m4.large")
	if err != nil || !info.NoNVMe {
		t.Errorf("Type(m4.large) = %+v, %v", info, err)
	}
}

func TestCandidatesOnDemandCap(t *testing.T) {
	fake := fakeec2.New(fakeec2.Options{})
	c := instances.NewCatalog(fake, fake, 0)
	c.Region = "us-east-1"
	types := []string{"g5.xlarge", "g4dn.xlarge", "t3.large", "m5.large"}
	for name, tc := range map[string]struct {
		limit  string
		prices map[string]string
		want   []string // types, in order of preference
	}{
		"no cap: every type, priced where known": {"", nil, types},
		"cap between list prices":                {"0.6", nil, []string{"g4dn.xlarge", "t3.large", "m5.large"}},
		"cap equal to a price":                   {"0.096", nil, []string{"t3.large", "m5.large"}},
		"the class's price wins":                 {"0.6", map[string]string{"g5.xlarge": "0.5"}, []string{"g5.xlarge", "g4dn.xlarge", "t3.large", "m5.large"}},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := c.Candidates(context.Background(), instances.PlacementRequest{
				Types: types, Zones: []string{"us-east-1a"}, MaxOnDemandPrice: tc.limit, OnDemandPrices: tc.prices})
			if err != nil {
				t.Fatal(err)
			}
			var gotTypes []string
			for _, o := range got {
				gotTypes = append(gotTypes, o.Type)
				want, _ := instances.OnDemandPrice("us-east-1", o.Type, tc.prices)
				if o.Price != want || o.Spot {
					t.Errorf("%s: price %q spot %t, want %q on demand", o.Key(), o.Price, o.Spot, want)
				}
			}
			if !slices.Equal(gotTypes, tc.want) {
				t.Errorf("candidates %v, want %v", gotTypes, tc.want)
			}
		})
	}
	got, err := c.Candidates(context.Background(), instances.PlacementRequest{Types: []string{"t3.large"}, Zones: []string{"us-east-1a"}})
	if err != nil || len(got) != 1 {
		t.Fatalf("candidates %v, %v", got, err)
	}
	c.Region = "us-gov-west-1" // the committed table has commercial regions only
	got, err = c.Candidates(context.Background(), instances.PlacementRequest{Types: []string{"t3.large"}, Zones: []string{"us-east-1a"}, MaxOnDemandPrice: "9"})
	if err != nil || len(got) != 0 {
		t.Errorf("a region without list prices: candidates %v, %v; want none under a cap (unknown price)", got, err)
	}
}

// TestOnDemandPricePrecedence: the class's price, then the Pricing API's,
// then the committed table's.
func TestOnDemandPricePrecedence(t *testing.T) {
	const region = "us-gov-east-1" // not in the table (commercial regions only), and no other test sets its live prices
	if p, ok := instances.OnDemandPrice("us-east-1", "t3.large", nil); !ok || p != "0.0832" {
		t.Errorf("the table's t3.large in us-east-1: %q, %v", p, ok)
	}
	if _, ok := instances.OnDemandPrice(region, "t3.large", nil); ok {
		t.Fatalf("the committed table prices %s; pick another region for this test", region)
	}
	instances.SetOnDemandPrices(region, map[string]string{"t3.large": "0.1", "m7i.large": "0.12"})
	t.Cleanup(func() { instances.SetOnDemandPrices(region, nil) })
	if p, ok := instances.OnDemandPrice(region, "t3.large", nil); !ok || p != "0.1" {
		t.Errorf("the Pricing API's t3.large: %q, %v", p, ok)
	}
	if p, ok := instances.OnDemandPrice(region, "t3.large", map[string]string{"t3.large": "0.05"}); !ok || p != "0.05" {
		t.Errorf("the class's t3.large: %q, %v", p, ok)
	}
	if _, ok := instances.OnDemandPrice(region, "g5.xlarge", nil); ok {
		t.Error("a type neither the API nor the table prices has a price")
	}
}
