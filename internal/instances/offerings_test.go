package instances_test

import (
	"testing"

	"github.com/xdrive-io/xdrive/internal/instances"
)

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
