package pricing

import (
	"encoding/json"
	"fmt"
)

// Table is the committed table of on-demand prices
// (internal/instances/ondemand_prices.json), which `make prices` writes from
// the bulk offer files.
type Table struct {
	// Source says where the prices come from, and when they were published.
	Source string `json:"source"`
	// License is the notice the source's data is published under, if it asks for one.
	License string `json:"license,omitempty"`
	// Regions maps a region to its instance types' hourly USD prices.
	Regions map[string]map[string]string `json:"regions"`
}

// LoadTable decodes a table and checks that every price is a positive decimal.
func LoadTable(b []byte) (Table, error) {
	var t Table
	if err := json.Unmarshal(b, &t); err != nil {
		return Table{}, fmt.Errorf("decoding the price table: %w", err)
	}
	for region, types := range t.Regions {
		for it, p := range types {
			if !validPrice(p) || normalise(p) != p {
				return Table{}, fmt.Errorf("the price table gives %s in %s the price %q", it, region, p)
			}
		}
	}
	return t, nil
}

// Marshal writes the table as the committed file: sorted keys, one price a line.
func (t Table) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
