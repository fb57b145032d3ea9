package instances_test

import (
	"context"
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
