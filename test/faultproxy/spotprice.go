package faultproxy

import (
	"bytes"
	"net/url"
	"path"
	"slices"
	"sort"
	"strings"
	"time"
)

const spotPriceSetPath = "DescribeSpotPriceHistoryResponse/spotPriceHistorySet"

// coveredProducts are the product descriptions a configured spot price covers.
var coveredProducts = []string{"Linux/UNIX", "Linux/UNIX (Amazon VPC)"}

type spotKey struct{ instanceType, zone string }

// SetSpotPrice makes DescribeSpotPriceHistory report price (e.g. "0.4512")
// for Linux/UNIX instanceType in zone, instead of moto's fake price.
func (p *Proxy) SetSpotPrice(instanceType, zone, price string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.spotPrices[spotKey{instanceType, zone}] = price
}

// spotQuery is what a DescribeSpotPriceHistory call asks for; empty lists match all.
type spotQuery struct{ types, zones, products []string }

func newSpotQuery(form url.Values) spotQuery {
	var zones []string
	if z := form.Get("AvailabilityZone"); z != "" {
		zones = []string{z}
	}
	return spotQuery{
		types:    append(listParam(form, "InstanceType"), filterValues(form, "instance-type")...),
		zones:    append(zones, filterValues(form, "availability-zone")...),
		products: append(listParam(form, "ProductDescription"), filterValues(form, "product-description")...),
	}
}

// coveredProducts returns the covered products the query asks for.
func (q spotQuery) coveredProducts() []string {
	if len(q.products) == 0 {
		return coveredProducts[:1]
	}
	var out []string
	for _, p := range coveredProducts {
		if matchesAny(q.products, p) {
			out = append(out, p)
		}
	}
	return out
}

func (q spotQuery) wants(k spotKey) bool {
	return (len(q.types) == 0 || matchesAny(q.types, k.instanceType)) &&
		(len(q.zones) == 0 || matchesAny(q.zones, k.zone))
}

// matchesAny reports whether value matches a pattern; EC2 filters allow * and ?.
func matchesAny(patterns []string, value string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool {
		ok, _ := path.Match(p, value)
		return ok || p == value
	})
}

// rewriteSpotPrices replaces moto's items for configured (type, zone) pairs
// with the configured prices, for the pairs and products the call asks for.
func rewriteSpotPrices(prices map[spotKey]string, form url.Values, doc []byte, now time.Time) []byte {
	if len(prices) == 0 {
		return doc
	}
	sets, err := findItems(doc, spotPriceSetPath)
	if err != nil || len(sets) != 1 {
		return doc
	}
	items, err := findItems(doc, spotPriceSetPath+"/item")
	if err != nil {
		return doc
	}
	var b bytes.Buffer
	b.WriteString("<spotPriceHistorySet>")
	for _, it := range items {
		if _, configured := prices[spotKey{it.field("instanceType"), it.field("availabilityZone")}]; !configured {
			b.Write(doc[it.start:it.end])
		}
	}
	keys := make([]spotKey, 0, len(prices))
	for k := range prices {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].zone+" "+keys[i].instanceType < keys[j].zone+" "+keys[j].instanceType
	})
	q := newSpotQuery(form)
	stamp := now.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05.000Z")
	for _, k := range keys {
		if !q.wants(k) {
			continue
		}
		for _, product := range q.coveredProducts() {
			b.WriteString("<item>" + leafXML("availabilityZone", k.zone) + leafXML("instanceType", k.instanceType) +
				leafXML("productDescription", product) + leafXML("spotPrice", prices[k]) +
				leafXML("timestamp", stamp) + "</item>")
		}
	}
	b.WriteString("</spotPriceHistorySet>")
	return applyEdits(doc, []edit{{sets[0].start, sets[0].end, b.String()}})
}

// listParam returns the values of a query-protocol list: Name.1, Name.2, ...
func listParam(form url.Values, name string) []string {
	var out []string
	for k, vs := range form {
		if rest, ok := strings.CutPrefix(k, name+"."); ok && isIndex(rest) {
			out = append(out, vs...)
		}
	}
	return out
}

// filterValues returns the values of every Filter.N named name.
func filterValues(form url.Values, name string) []string {
	var out []string
	for k, vs := range form {
		rest, ok := strings.CutPrefix(k, "Filter.")
		n, field, _ := strings.Cut(rest, ".")
		if ok && field == "Name" && isIndex(n) && slices.Contains(vs, name) {
			out = append(out, listParam(form, "Filter."+n+".Value")...)
		}
	}
	return out
}

func isIndex(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}
