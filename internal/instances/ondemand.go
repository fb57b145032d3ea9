package instances

import (
	_ "embed"
	"strconv"
	"sync"

	"github.com/xdrive-io/xdrive/internal/pricing"
)

// listPricesJSON is the committed table of on-demand Linux prices by region
// and instance type (make prices writes it from AWS's bulk price list).
//
//go:embed ondemand_prices.json
var listPricesJSON []byte

// listPrices is that table, the fallback of the Pricing API's prices.
var listPrices = func() pricing.Table {
	t, err := pricing.LoadTable(listPricesJSON)
	if err != nil {
		panic("internal/instances/ondemand_prices.json: " + err.Error()) // a broken commit, caught by every test
	}
	return t
}()

// livePrices are the prices the Pricing API gave the manager, by region.
var livePrices struct {
	sync.RWMutex
	regions map[string]map[string]string
}

// SetOnDemandPrices records the Pricing API's prices of a region; they take
// precedence over the committed table, which still prices the types they lack.
func SetOnDemandPrices(region string, prices map[string]string) {
	livePrices.Lock()
	defer livePrices.Unlock()
	if livePrices.regions == nil {
		livePrices.regions = map[string]map[string]string{}
	}
	livePrices.regions[region] = prices
}

// OnDemandPrice is an instance type's on-demand price in the region: the
// class's own price if it sets one, else the Pricing API's, else the
// committed table's; ok is false if none knows it (a price cap then refuses
// the type, and an admin can add it to the class's onDemandPrices).
func OnDemandPrice(region, instanceType string, classPrices map[string]string) (price string, ok bool) {
	if p, ok := classPrices[instanceType]; ok {
		return p, true
	}
	livePrices.RLock()
	p, ok := livePrices.regions[region][instanceType]
	livePrices.RUnlock()
	if ok {
		return p, true
	}
	p, ok = listPrices.Regions[region][instanceType]
	return p, ok
}

// PriceAbove reports whether a price is above a limit; an empty limit is no limit.
func PriceAbove(price, limit string) bool {
	return limit != "" && ParsePrice(price) > ParsePrice(limit)
}

// ParsePrice reads a decimal USD price: 0 if empty, and above any real price
// if malformed, so that a bad price never wins.
func ParsePrice(p string) float64 {
	if p == "" {
		return 0
	}
	f, err := strconv.ParseFloat(p, 64)
	if err != nil {
		return 1e9
	}
	return f
}
