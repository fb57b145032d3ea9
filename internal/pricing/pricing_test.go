package pricing_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awspricing "github.com/aws/aws-sdk-go-v2/service/pricing"

	"github.com/xdrive-io/xdrive/internal/pricing"
)

// fixtureServer serves testdata as the bulk price list does: the region
// index, and each region's offer file at the path the index names.
func fixtureServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := ""
		switch {
		case r.URL.Path == "/offers/v1.0/aws/AmazonEC2/current/region_index.json":
			name = "region_index.json"
		case strings.HasPrefix(r.URL.Path, "/offers/v1.0/aws/AmazonEC2/20261201000000/"):
			name = "offer-" + strings.Split(r.URL.Path, "/")[6] + ".json"
		}
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if name == "" || err != nil {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// want are the fixture's plain on-demand Linux prices: not Windows, RHEL or
// SUSE, dedicated tenancy, SQL, a capacity reservation, a reserved term, a
// zero price or a price per something other than hours.
var want = map[string]map[string]string{
	"us-east-1": {"t3.large": "0.0832", "m7i.large": "0.1008", "g5.xlarge": "1.006"},
	"eu-west-1": {"t3.large": "0.0912", "m7i.large": "0.112", "g5.xlarge": "1.123"},
}

func TestGenerate(t *testing.T) {
	srv := fixtureServer(t)
	index := srv.URL + "/offers/v1.0/aws/AmazonEC2/current/region_index.json"
	table, err := pricing.Generate(context.Background(), srv.Client(), index, []string{"us-east-1", "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	for region, prices := range want {
		if !maps.Equal(table.Regions[region], prices) {
			t.Errorf("%s: %v, want %v", region, table.Regions[region], prices)
		}
	}
	if !strings.Contains(table.Source, "2026-12-01") {
		t.Errorf("source %q does not say when the list was published", table.Source)
	}
	// What it writes, the committed table reads.
	b, err := table.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := pricing.LoadTable(b)
	if err != nil || !maps.EqualFunc(back.Regions, table.Regions, maps.Equal) {
		t.Errorf("the written table reads back as %v, %v", back.Regions, err)
	}

	// A region the index lacks fails the whole run.
	if _, err := pricing.Generate(context.Background(), srv.Client(), index, []string{"us-east-1", "ap-southeast-7"}); err == nil ||
		!strings.Contains(err.Error(), "no offer file for ap-southeast-7") {
		t.Errorf("a region without an offer file: %v", err)
	}
}

// items turns an offer file into GetProducts' PriceList: one JSON document
// per product, with its terms keyed by offer term code.
func items(t *testing.T, region string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "offer-"+region+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var offer struct {
		Products map[string]json.RawMessage                       `json:"products"`
		Terms    map[string]map[string]map[string]json.RawMessage `json:"terms"`
	}
	if err := json.Unmarshal(b, &offer); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, sku := range slices.Sorted(maps.Keys(offer.Products)) {
		doc := map[string]any{"product": offer.Products[sku], "serviceCode": "AmazonEC2",
			"terms": map[string]any{"OnDemand": offer.Terms["OnDemand"][sku], "Reserved": offer.Terms["Reserved"][sku]}}
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// pages is a Pricing API that answers GetProducts from a list, two items a page.
type pages struct {
	items []string
	calls int
	in    []*awspricing.GetProductsInput
}

func (p *pages) GetProducts(_ context.Context, in *awspricing.GetProductsInput, _ ...func(*awspricing.Options)) (*awspricing.GetProductsOutput, error) {
	p.calls++
	p.in = append(p.in, in)
	start := 0
	if in.NextToken != nil {
		start = len(*in.NextToken)
	}
	end := min(start+2, len(p.items))
	out := &awspricing.GetProductsOutput{PriceList: p.items[start:end]}
	if end < len(p.items) {
		out.NextToken = aws.String(strings.Repeat("x", end))
	}
	return out, nil
}

func TestFetchOnDemand(t *testing.T) {
	api := &pages{items: items(t, "eu-west-1")}
	got, err := pricing.FetchOnDemand(context.Background(), api, "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want["eu-west-1"]) {
		t.Errorf("prices %v, want %v", got, want["eu-west-1"])
	}
	if api.calls != 2 {
		t.Errorf("%d GetProducts calls for 4 items, 2 a page; want 2", api.calls)
	}
	var filters []string
	for _, f := range api.in[0].Filters {
		filters = append(filters, aws.ToString(f.Field)+"="+aws.ToString(f.Value))
	}
	if aws.ToString(api.in[0].ServiceCode) != "AmazonEC2" || !slices.Contains(filters, "regionCode=eu-west-1") || !slices.Contains(filters, "operatingSystem=Linux") {
		t.Errorf("GetProducts asked for %s with %v", aws.ToString(api.in[0].ServiceCode), filters)
	}
	// Items of another region are not this region's prices.
	if got, err := pricing.FetchOnDemand(context.Background(), &pages{items: items(t, "us-east-1")}, "eu-west-1"); err == nil {
		t.Errorf("us-east-1's items priced eu-west-1: %v", got)
	}
}

func TestLoadTableRefusesBadPrices(t *testing.T) {
	for _, bad := range []string{`"0"`, `"-1"`, `"0.10"`, `"1e3"`, `"abc"`} {
		if _, err := pricing.LoadTable([]byte(`{"regions":{"us-east-1":{"t3.large":` + bad + `}}}`)); err == nil {
			t.Errorf("the price %s passed", bad)
		}
	}
}

// TestParseOfferAnyOrder: the offer file's members may come in any order,
// and what is not a plain on-demand Linux hour is left out.
func TestParseOfferAnyOrder(t *testing.T) {
	const offer = `{"terms":{"Reserved":{"A":{}},"OnDemand":{
	  "A":{"A.T":{"priceDimensions":{"A.T.D":{"unit":"Hrs","pricePerUnit":{"USD":"0.5000000000"}}}}},
	  "B":{"B.T":{"priceDimensions":{"B.T.D":{"unit":"Hrs","pricePerUnit":{"USD":"0.9000000000"}}}}}}},
	 "products":{
	  "A":{"sku":"A","productFamily":"Compute Instance","attributes":{"instanceType":"m7i.xlarge","regionCode":"sa-east-1",
	    "operatingSystem":"Linux","tenancy":"Shared","preInstalledSw":"NA","capacitystatus":"Used"}},
	  "B":{"sku":"B","productFamily":"Compute Instance","attributes":{"instanceType":"m7i.xlarge","regionCode":"sa-east-1",
	    "operatingSystem":"Windows","tenancy":"Shared","preInstalledSw":"NA","capacitystatus":"Used"}}},
	 "offerCode":"AmazonEC2","formatVersion":"v1.0"}`
	region, prices, err := pricing.ParseOffer(strings.NewReader(offer))
	if err != nil || region != "sa-east-1" || !maps.Equal(prices, map[string]string{"m7i.xlarge": "0.5"}) {
		t.Errorf("ParseOffer = %s, %v, %v", region, prices, err)
	}
	if _, _, err := pricing.ParseOffer(strings.NewReader(`{"offerCode":"AmazonS3","products":{}}`)); err == nil {
		t.Error("an S3 offer file passed")
	}
}
