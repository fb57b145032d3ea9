package pricing

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// BulkIndexURL is AWS's index of the AmazonEC2 offer files, one per region.
const BulkIndexURL = "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/region_index.json"

// Generate reads the bulk price list's region index at indexURL and the
// offer file of each of regions, and returns the table of their on-demand
// prices. Every region must be in the index: a table that silently misses
// one would leave that region's on-demand types unpriced.
func Generate(ctx context.Context, client *http.Client, indexURL string, regions []string) (Table, error) {
	base, err := url.Parse(indexURL)
	if err != nil {
		return Table{}, fmt.Errorf("parsing the index URL: %w", err)
	}
	var index struct {
		PublicationDate string `json:"publicationDate"`
		Regions         map[string]struct {
			RegionCode        string `json:"regionCode"`
			CurrentVersionURL string `json:"currentVersionUrl"`
		} `json:"regions"`
	}
	if err := getJSON(ctx, client, indexURL, func(r io.Reader) error { return json.NewDecoder(r).Decode(&index) }); err != nil {
		return Table{}, err
	}
	t := Table{
		Source:  "AWS's bulk price list (AmazonEC2 offer files, region index published " + index.PublicationDate + "), by make prices",
		Regions: map[string]map[string]string{},
	}
	for _, region := range regions {
		entry, ok := index.Regions[region]
		if !ok || entry.CurrentVersionURL == "" {
			return Table{}, fmt.Errorf("the price list's region index has no offer file for %s", region)
		}
		ref, err := url.Parse(entry.CurrentVersionURL)
		if err != nil {
			return Table{}, fmt.Errorf("parsing the offer URL of %s: %w", region, err)
		}
		var got string
		var prices map[string]string
		if err := getJSON(ctx, client, base.ResolveReference(ref).String(), func(r io.Reader) error {
			got, prices, err = ParseOffer(r)
			return err
		}); err != nil {
			return Table{}, fmt.Errorf("reading the offer file of %s: %w", region, err)
		}
		if got != region || len(prices) == 0 {
			return Table{}, fmt.Errorf("the offer file of %s holds %d prices of region %q", region, len(prices), got)
		}
		t.Regions[region] = prices
	}
	return t, nil
}

func getJSON(ctx context.Context, client *http.Client, u string, decode func(io.Reader) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("getting %s: %w", u, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("getting %s: %s: %s", u, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := decode(resp.Body); err != nil {
		return fmt.Errorf("reading %s: %w", u, err)
	}
	return nil
}
