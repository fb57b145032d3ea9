package pricing

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
)

// DatasetModule is a Go module that publishes, as data, the instances.json of
// ec2instances.info (Vantage): every instance type with its prices by region.
// `make prices PRICES_SOURCE=dataset` reads it from the Go module cache where
// AWS's bulk price list cannot be reached. The prices in it are AWS's public
// on-demand list prices, as that site copies them from the bulk price list.
const DatasetModule = "github.com/cristim/ec2-instances-info"

// DatasetLicense is the notice under which ec2instances.info's data is
// published (MIT), which the generated table carries.
const DatasetLicense = `Prices taken from the data of ec2instances.info, under its MIT license:
Copyright (c) 2013 Garret Heaton (powdahound.com)
Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated documentation files (the "Software"), to deal in the Software without restriction, including without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is furnished to do so, subject to the following conditions:
The above copyright notice and this permission notice shall be included in all copies or substantial portions of the Software.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.`

// datasetEntry is what the table needs of one instance type in instances.json.
type datasetEntry struct {
	InstanceType string `json:"instance_type"`
	Pricing      map[string]struct {
		Linux *struct {
			OnDemand json.RawMessage `json:"ondemand"`
		} `json:"linux"`
	} `json:"pricing"`
}

// ParseDataset reads ec2instances.info's instances.json and returns the
// on-demand Linux (shared tenancy) hourly price of each instance type in each
// of regions that it prices, and the regions it has no price for. A price
// that is absent, zero or not a decimal string is left out.
func ParseDataset(r io.Reader, regions []string) (byRegion map[string]map[string]string, missing []string, err error) {
	var entries []datasetEntry
	if err := json.NewDecoder(r).Decode(&entries); err != nil {
		return nil, nil, fmt.Errorf("decoding the instances dataset: %w", err)
	}
	found := map[string]prices{}
	for _, e := range entries {
		for region, p := range e.Pricing {
			if !slices.Contains(regions, region) || p.Linux == nil || e.InstanceType == "" {
				continue
			}
			var usd string
			if json.Unmarshal(p.Linux.OnDemand, &usd) != nil || !validPrice(usd) {
				continue
			}
			if found[region] == nil {
				found[region] = prices{}
			}
			found[region].add(e.InstanceType, normalise(usd))
		}
	}
	byRegion = map[string]map[string]string{}
	for _, region := range regions {
		if len(found[region]) == 0 {
			missing = append(missing, region)
			continue
		}
		byRegion[region] = found[region]
	}
	return byRegion, missing, nil
}
