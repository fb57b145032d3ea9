package placement_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/xdrive-io/xdrive/internal/instances"
	"github.com/xdrive-io/xdrive/internal/placement"
	"github.com/xdrive-io/xdrive/test/fakeec2"
)

// market: t3.large in a, b, c; m5.large in a, c; m4.large (Xen) in a.
func market() instances.Market {
	return instances.Market{
		Region: "us-east-1",
		Zones: map[string][]string{
			"t3.large": {"us-east-1a", "us-east-1b", "us-east-1c"},
			"m5.large": {"us-east-1a", "us-east-1c"},
			"m4.large": {"us-east-1a"},
		},
		Types: map[string]instances.TypeInfo{
			"t3.large": {Arch: "x86_64"}, "m5.large": {Arch: "x86_64"}, "m4.large": {Arch: "x86_64", NoNVMe: true},
		},
		SpotPrices: map[string]string{
			"t3.large/us-east-1a": "0.030", "t3.large/us-east-1b": "0.025", "t3.large/us-east-1c": "0.040",
			"m5.large/us-east-1a": "0.028", "m5.large/us-east-1c": "0.050", "m4.large/us-east-1a": "0.001",
		},
		SubnetZones: map[string]string{"subnet-a": "us-east-1a", "subnet-c": "us-east-1c"},
	}
}

// TestPlan is placement as a table: offerings × class × the drive's
// released volume → the choice, and the reason its Event shows.
func TestPlan(t *testing.T) {
	types := []string{"m4.large", "t3.large", "m5.large"}
	avoid := func(keys ...string) func(instances.Offering) bool {
		return func(o instances.Offering) bool { return slices.Contains(keys, o.Key()) }
	}
	for _, c := range []struct {
		name     string
		req      placement.Request
		want     string // the chosen offering's key; "" for none
		reattach bool
		declined string
		reason   []string // fragments of the reason
		unpriced bool     // a region without on-demand list prices
	}{
		{name: "the cheapest spot offering; Xen types never",
			req:  placement.Request{Types: types, Spot: true},
			want: "Spot/t3.large/us-east-1b", reason: []string{"Spot/t3.large/us-east-1b at $0.025/h, the cheapest of 5 spot offerings"}},
		{name: "zones limit",
			req:  placement.Request{Types: types, Spot: true, Zones: []string{"us-east-1c"}},
			want: "Spot/t3.large/us-east-1c", reason: []string{"the cheapest of 2"}},
		{name: "the class's subnets limit zones and name the subnet",
			req:  placement.Request{Types: types, Spot: true, SubnetIDs: []string{"subnet-c", "subnet-a"}},
			want: "Spot/m5.large/us-east-1a", reason: []string{"the cheapest of 4"}},
		{name: "avoided offerings are skipped",
			req:  placement.Request{Types: types, Spot: true, Avoid: avoid("Spot/t3.large/us-east-1b")},
			want: "Spot/m5.large/us-east-1a"},
		{name: "the spot cap",
			req:  placement.Request{Types: types, Spot: true, MaxSpotPrice: "0.027"},
			want: "Spot/t3.large/us-east-1b", reason: []string{"the cheapest of 1 spot"}},
		{name: "nothing under the cap, no fallback: none, and why",
			req:    placement.Request{Types: types, Spot: true, MaxSpotPrice: "0.01", Avoid: avoid("Spot/m5.large/us-east-1a")},
			reason: []string{"None of 6 offerings", "1 of types whose EBS volumes are not NVMe", "1 avoided", "4 above the price limit"}},
		{name: "nothing under the cap: on demand, the most preferred type",
			req:  placement.Request{Types: types, Spot: true, MaxSpotPrice: "0.01", OnDemandFallback: true},
			want: "OnDemand/t3.large/us-east-1a", reason: []string{"the most preferred of 5 on-demand offerings", "on demand, as no spot offering is usable"}},
		{name: "on demand under a cap: unknown prices are refused",
			req: placement.Request{Types: []string{"t3.large", "m5.large"}, MaxOnDemandPrice: "0.09",
				OnDemandPrices: map[string]string{"m5.large": "0.085"}},
			want: "OnDemand/t3.large/us-east-1a", reason: []string{"at $0.0832/h"}},
		{name: "no type offered",
			req:    placement.Request{Types: []string{"p5.48xlarge"}, Spot: true},
			reason: []string{"No listed instance type is offered in this region"}},
		{name: "the volume's zone within the tolerance: reattach",
			req:  placement.Request{Types: types, Spot: true, Volume: placement.Volume{ID: "vol-1", Zone: "us-east-1a"}, TolerancePercent: 20},
			want: "Spot/m5.large/us-east-1a", reattach: true,
			reason: []string{"in the zone of volume vol-1, which it reattaches: within 20% of the cheapest, Spot/t3.large/us-east-1b at $0.025/h"}},
		{name: "the volume's zone is the cheapest",
			req:  placement.Request{Types: types, Spot: true, Volume: placement.Volume{ID: "vol-1", Zone: "us-east-1b"}},
			want: "Spot/t3.large/us-east-1b", reattach: true, reason: []string{"the cheapest of 5 offerings, is in the zone of volume vol-1"}},
		{name: "the volume's zone beyond the tolerance: declined",
			req:  placement.Request{Types: types, Spot: true, Volume: placement.Volume{ID: "vol-1", Zone: "us-east-1c"}, TolerancePercent: 20},
			want: "Spot/t3.large/us-east-1b", declined: "vol-1", reason: []string{"volume vol-1 in us-east-1c is not reattached"}},
		{name: "the volume's zone not offered: declined",
			req:  placement.Request{Types: types, Spot: true, Zones: []string{"us-east-1a"}, Volume: placement.Volume{ID: "vol-1", Zone: "us-east-1b"}},
			want: "Spot/m5.large/us-east-1a", declined: "vol-1"},
		{name: "on demand: the volume's zone with the most preferred type",
			req:  placement.Request{Types: types, Volume: placement.Volume{ID: "vol-1", Zone: "us-east-1b"}},
			want: "OnDemand/t3.large/us-east-1b", reattach: true},
		{name: "on demand, priced: the volume's zone with a cheaper, less preferred type",
			req:  placement.Request{Types: []string{"m5.large", "t3.large"}, Volume: placement.Volume{ID: "vol-1", Zone: "us-east-1b"}},
			want: "OnDemand/t3.large/us-east-1b", reattach: true},
		{name: "on demand, unpriced: the volume's zone has only a less preferred type",
			req:  placement.Request{Types: []string{"m5.large", "t3.large"}, Volume: placement.Volume{ID: "vol-1", Zone: "us-east-1b"}, TolerancePercent: 100},
			want: "OnDemand/m5.large/us-east-1a", declined: "vol-1", unpriced: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := market()
			if c.unpriced {
				m.Region = "nowhere-1"
			}
			got := placement.Plan(c.req, m)
			if chosen := got.Offering.Key(); got.Found() != (c.want != "") || got.Found() && chosen != c.want {
				t.Errorf("chose %q, want %q (%s)", chosen, c.want, got.Reason)
			}
			if got.Reattach != c.reattach || got.Declined != c.declined {
				t.Errorf("reattach %t declined %q, want %t %q (%s)", got.Reattach, got.Declined, c.reattach, c.declined, got.Reason)
			}
			for _, f := range c.reason {
				if !strings.Contains(got.Reason, f) {
					t.Errorf("reason %q lacks %q", got.Reason, f)
				}
			}
			if o := got.Offering; got.Found() && len(c.req.SubnetIDs) > 0 && market().SubnetZones[o.SubnetID] != o.Zone {
				t.Errorf("offering %s in subnet %q of zone %q", o.Key(), o.SubnetID, market().SubnetZones[o.SubnetID])
			}
		})
	}
}

// TestCandidatesOrder: spot by price, then preference; on demand by preference.
func TestCandidatesOrder(t *testing.T) {
	keys := func(list []instances.Offering) (out []string) {
		for _, o := range list {
			out = append(out, o.Key())
		}
		return out
	}
	req := placement.Request{Types: []string{"t3.large", "m5.large"}}
	spot, _ := placement.Candidates(req, market(), true)
	want := []string{"Spot/t3.large/us-east-1b", "Spot/m5.large/us-east-1a", "Spot/t3.large/us-east-1a", "Spot/t3.large/us-east-1c", "Spot/m5.large/us-east-1c"}
	if !slices.Equal(keys(spot), want) {
		t.Errorf("spot %v, want %v", keys(spot), want)
	}
	onDemand, _ := placement.Candidates(req, market(), false)
	want = []string{"OnDemand/t3.large/us-east-1a", "OnDemand/t3.large/us-east-1b", "OnDemand/t3.large/us-east-1c", "OnDemand/m5.large/us-east-1a", "OnDemand/m5.large/us-east-1c"}
	if !slices.Equal(keys(onDemand), want) {
		t.Errorf("on demand %v, want %v", keys(onDemand), want)
	}
}

// TestPlaceOnFakeEC2: the catalog's lookups feed the plan (Xen types out,
// list prices under an on-demand cap).
func TestPlaceOnFakeEC2(t *testing.T) {
	fake := fakeec2.New(fakeec2.Options{InstanceTypes: []fakeec2.InstanceType{
		{Name: "m4.large", Arch: "x86_64", SpotPrice: 0.001, NoNVMe: true},
		{Name: "t3.large", Arch: "x86_64", SpotPrice: 0.025},
		{Name: "g5.xlarge", Arch: "x86_64", GPUs: 1, SpotPrice: 0.4},
	}})
	c := instances.NewCatalog(fake, fake, time.Hour)
	c.Region = "us-east-1"
	for _, spot := range []bool{true, false} {
		got, err := placement.Place(context.Background(), c, placement.Request{Types: []string{"m4.large", "t3.large"}, Spot: spot})
		if err != nil || got.Offering.Type != "t3.large" {
			t.Errorf("spot=%t: %+v, %v; want t3.large (m4.large has no NVMe EBS)", spot, got, err)
		}
	}
	got, err := placement.Place(context.Background(), c, placement.Request{Types: []string{"g5.xlarge", "t3.large"}, MaxOnDemandPrice: "0.6"})
	if err != nil || got.Offering.Type != "t3.large" {
		t.Errorf("on demand under $0.6/h: %+v, %v; want t3.large (g5.xlarge lists above)", got, err)
	}
}

// blockingOfferings holds DescribeInstanceTypeOfferings for g5.xlarge until released.
type blockingOfferings struct {
	*fakeec2.Fake
	release  chan struct{}
	g5, rest atomic.Int32
}

func (b *blockingOfferings) DescribeInstanceTypeOfferings(ctx context.Context, in *ec2.DescribeInstanceTypeOfferingsInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstanceTypeOfferingsOutput, error) {
	for _, f := range in.Filters {
		if slices.Contains(f.Values, "g5.xlarge") {
			b.g5.Add(1)
			<-b.release
			return b.Fake.DescribeInstanceTypeOfferings(ctx, in, opts...)
		}
	}
	b.rest.Add(1)
	return b.Fake.DescribeInstanceTypeOfferings(ctx, in, opts...)
}

// TestMissesHoldNoLock: while one lookup waits on EC2, another type's is
// answered; callers missing the same types at once share one call.
func TestMissesHoldNoLock(t *testing.T) {
	fake := fakeec2.New(fakeec2.Options{})
	api := &blockingOfferings{Fake: fake, release: make(chan struct{})}
	c := instances.NewCatalog(api, fake, time.Hour)
	ctx := context.Background()
	var wg sync.WaitGroup
	started := make(chan struct{}, 3)
	errs := make(chan error, 3)
	for range 3 {
		wg.Go(func() {
			started <- struct{}{}
			_, err := c.Market(ctx, []string{"g5.xlarge"}, nil, false)
			errs <- err
		})
	}
	for range 3 {
		<-started
	}
	for api.g5.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if _, err := c.Market(ctx, []string{"t3.large"}, nil, true); err != nil {
		t.Fatalf("another type's lookup while g5.xlarge's waits: %v", err)
	}
	time.Sleep(time.Second) // not a timing under test: the three callers are parked in the shared call by now
	close(api.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if g5, rest := api.g5.Load(), api.rest.Load(); g5 != 1 || rest != 1 {
		t.Errorf("DescribeInstanceTypeOfferings: %d calls for 3 callers of g5.xlarge at once, %d for t3.large; want 1 and 1", g5, rest)
	}
}
