// Package pricing reads EC2's on-demand prices from AWS's public price list:
// the bulk offer files, one per region (the generator of the committed
// table, `make prices`), and the Pricing API's GetProducts (the manager, at
// run time). Both describe a product and its terms in the same JSON shape.
package pricing

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
)

// product is what the price list says of one SKU; only the fields that pick
// a plain on-demand Linux instance are read.
type product struct {
	SKU           string `json:"sku"`
	ProductFamily string `json:"productFamily"`
	Attributes    struct {
		InstanceType    string `json:"instanceType"`
		RegionCode      string `json:"regionCode"`
		OperatingSystem string `json:"operatingSystem"`
		Tenancy         string `json:"tenancy"`
		PreInstalledSw  string `json:"preInstalledSw"`
		CapacityStatus  string `json:"capacitystatus"`
		LicenseModel    string `json:"licenseModel"`
	} `json:"attributes"`
}

// term is one offer term of a SKU: its price dimensions.
type term struct {
	PriceDimensions map[string]struct {
		Unit         string            `json:"unit"`
		PricePerUnit map[string]string `json:"pricePerUnit"`
	} `json:"priceDimensions"`
}

// linuxOnDemand reports whether p is an instance hour of shared-tenancy
// Linux, with no software and no capacity reservation: the price xdrive pays.
func (p product) linuxOnDemand() bool {
	a := p.Attributes
	return p.ProductFamily == "Compute Instance" && a.InstanceType != "" &&
		a.OperatingSystem == "Linux" && a.Tenancy == "Shared" && a.PreInstalledSw == "NA" &&
		a.CapacityStatus == "Used" && (a.LicenseModel == "" || a.LicenseModel == "No License required")
}

// hourlyUSD is the term's price per instance hour, normalised ("0.0104"); ok
// is false for a term without one, or a zero price.
func (t term) hourlyUSD() (string, bool) {
	for _, d := range t.PriceDimensions {
		if d.Unit != "Hrs" {
			continue
		}
		usd, ok := d.PricePerUnit["USD"]
		if !ok {
			continue
		}
		if !validPrice(usd) {
			continue
		}
		return normalise(usd), true
	}
	return "", false
}

// validPrice reports whether p is a positive decimal price.
func validPrice(p string) bool {
	v, err := strconv.ParseFloat(p, 64)
	return err == nil && v > 0 && strings.Trim(p, "0123456789.") == ""
}

// normalise drops the trailing zeros of a decimal price: 0.0104000000 is 0.0104.
func normalise(price string) string {
	if strings.Contains(price, ".") {
		price = strings.TrimRight(strings.TrimRight(price, "0"), ".")
	}
	return price
}

// prices collects instance type → price, keeping the lowest when the list
// has two SKUs for one type (it should not).
type prices map[string]string

func (ps prices) add(instanceType, price string) {
	if old, ok := ps[instanceType]; ok {
		a, _ := strconv.ParseFloat(old, 64)
		b, _ := strconv.ParseFloat(price, 64)
		if a <= b {
			return
		}
	}
	ps[instanceType] = price
}

// ParseOffer reads a region's bulk offer file of AmazonEC2 (the
// currentVersionUrl of region_index.json) and returns the on-demand hourly
// Linux price of each instance type, in USD, as the file writes it. The
// file is hundreds of MB: it is read as a stream, keeping only the plain
// Linux products and their on-demand terms.
func ParseOffer(r io.Reader) (region string, out map[string]string, err error) {
	dec := json.NewDecoder(r)
	wanted := map[string]product{}        // SKU → product
	terms := map[string]map[string]term{} // SKU → its on-demand terms
	offerCode, productsRead := "", false
	err = eachMember(dec, func(key string) error {
		switch key {
		case "offerCode":
			return dec.Decode(&offerCode)
		case "products":
			productsRead = true
			return eachMember(dec, func(sku string) error {
				var p product
				if err := dec.Decode(&p); err != nil {
					return err
				}
				if p.linuxOnDemand() {
					wanted[sku] = p
				}
				return nil
			})
		case "terms":
			return eachMember(dec, func(kind string) error {
				if kind != "OnDemand" {
					return skip(dec)
				}
				return eachMember(dec, func(sku string) error {
					// AWS's files list the products first; terms read before them are all kept.
					if _, ok := wanted[sku]; !ok && productsRead {
						return skip(dec)
					}
					var t map[string]term
					if err := dec.Decode(&t); err != nil {
						return err
					}
					terms[sku] = t
					return nil
				})
			})
		default:
			return skip(dec)
		}
	})
	if err != nil {
		return "", nil, fmt.Errorf("decoding the offer file: %w", err)
	}
	if offerCode != "AmazonEC2" {
		return "", nil, fmt.Errorf("the offer file is of %q, not AmazonEC2", offerCode)
	}
	found := prices{}
	for sku, p := range wanted {
		if region == "" {
			region = p.Attributes.RegionCode
		} else if p.Attributes.RegionCode != "" && p.Attributes.RegionCode != region {
			return "", nil, fmt.Errorf("the offer file mixes regions %s and %s", region, p.Attributes.RegionCode)
		}
		for _, t := range terms[sku] {
			if price, ok := t.hourlyUSD(); ok {
				found.add(p.Attributes.InstanceType, price)
			}
		}
	}
	return region, maps.Clone(found), nil
}

// eachMember calls f with each key of the JSON object the decoder is at;
// f must consume the key's value.
func eachMember(dec *json.Decoder, f func(key string) error) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("want an object, got %v", tok)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("want a key, got %v", tok)
		}
		if err := f(key); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	_, err = dec.Token() // the closing brace
	return err
}

// skip consumes the value the decoder is at.
func skip(dec *json.Decoder) error {
	var v json.RawMessage
	return dec.Decode(&v)
}

// ParsePriceList reads the items of GetProducts' PriceList (each a JSON
// document of one product and its terms) and returns the on-demand hourly
// Linux price of each instance type of region.
func ParsePriceList(region string, items []string) (map[string]string, error) {
	found := prices{}
	for _, item := range items {
		var doc struct {
			Product product `json:"product"`
			Terms   struct {
				OnDemand map[string]term `json:"OnDemand"`
			} `json:"terms"`
		}
		if err := json.Unmarshal([]byte(item), &doc); err != nil {
			return nil, fmt.Errorf("decoding a price list item: %w", err)
		}
		if !doc.Product.linuxOnDemand() || doc.Product.Attributes.RegionCode != region {
			continue
		}
		for _, t := range doc.Terms.OnDemand {
			if price, ok := t.hourlyUSD(); ok {
				found.add(doc.Product.Attributes.InstanceType, price)
			}
		}
	}
	return maps.Clone(found), nil
}
