package pricing_test

import (
	"maps"
	"os"
	"slices"
	"testing"

	"github.com/xdrive-io/xdrive/internal/pricing"
)

// TestParseDataset keeps the on-demand Linux prices of the asked regions:
// not Windows, dedicated, reserved, zero or unpriced ones; a region with no
// price is reported missing.
func TestParseDataset(t *testing.T) {
	f, err := os.Open("testdata/instances-dataset.json")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	got, missing, err := pricing.ParseDataset(f, []string{"us-east-1", "eu-west-1", "sa-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		"us-east-1": {"t3.large": "0.0832", "g5.xlarge": "1.006"},
		"eu-west-1": {"t3.large": "0.0912", "m7i.large": "0.112"},
	}
	if !maps.EqualFunc(got, want, maps.Equal) {
		t.Errorf("prices = %v, want %v", got, want)
	}
	if !slices.Equal(missing, []string{"sa-east-1"}) {
		t.Errorf("missing = %v, want [sa-east-1]", missing)
	}
}

// TestCommittedTable: the committed table loads, prices every region of the
// sample class's examples, and says where its prices come from.
func TestCommittedTable(t *testing.T) {
	b, err := os.ReadFile("../instances/ondemand_prices.json")
	if err != nil {
		t.Fatal(err)
	}
	table, err := pricing.LoadTable(b)
	if err != nil {
		t.Fatal(err)
	}
	if table.Source == "" {
		t.Error("the table does not say where its prices come from")
	}
	for _, region := range []string{"us-east-1", "eu-west-1", "ap-northeast-1"} {
		if _, ok := table.Regions[region]["t3.large"]; !ok {
			t.Errorf("the table has no on-demand price of t3.large in %s", region)
		}
	}
}
