package instances

// listPrices are on-demand Linux list prices in USD per hour, by region and
// instance type, as AWS published them (2024–2025). EC2 has no API for them
// (the Pricing API is a separate service), so a class may set its own
// onDemandPricesPerHour, which take precedence; a type priced by neither is
// unknown, and a price cap refuses it.
var listPrices = map[string]map[string]string{
	"us-east-1": usEast1,
	"us-east-2": usEast1, // the same list prices for these families
	"us-west-2": usEast1,
}

var usEast1 = map[string]string{
	"t3.micro": "0.0104", "t3.small": "0.0208", "t3.medium": "0.0416", "t3.large": "0.0832",
	"t3.xlarge": "0.1664", "t3.2xlarge": "0.3328",
	"t3a.medium": "0.0376", "t3a.large": "0.0752", "t3a.xlarge": "0.1504", "t3a.2xlarge": "0.3008",
	"m5.large": "0.096", "m5.xlarge": "0.192", "m5.2xlarge": "0.384", "m5.4xlarge": "0.768", "m5.8xlarge": "1.536",
	"m7i.large": "0.1008", "m7i.xlarge": "0.2016", "m7i.2xlarge": "0.4032", "m7i.4xlarge": "0.8064",
	"m6i.large": "0.096", "m6i.xlarge": "0.192", "m6i.2xlarge": "0.384", "m6i.4xlarge": "0.768",
	"c5.large": "0.085", "c5.xlarge": "0.17", "c5.2xlarge": "0.34", "c5.4xlarge": "0.68",
	"c6i.large": "0.085", "c6i.xlarge": "0.17", "c6i.2xlarge": "0.34", "c6i.4xlarge": "0.68",
	"r5.large": "0.126", "r5.xlarge": "0.252", "r5.2xlarge": "0.504",
	"g4dn.xlarge": "0.526", "g4dn.2xlarge": "0.752", "g4dn.4xlarge": "1.204", "g4dn.8xlarge": "2.176",
	"g4dn.12xlarge": "3.912", "g4dn.16xlarge": "4.352",
	"g5.xlarge": "1.006", "g5.2xlarge": "1.212", "g5.4xlarge": "1.624", "g5.8xlarge": "2.448",
	"g5.12xlarge": "5.672", "g5.16xlarge": "4.096", "g5.24xlarge": "8.144", "g5.48xlarge": "16.288",
	"g6.xlarge": "0.8048", "g6.2xlarge": "0.9776", "g6.4xlarge": "1.3232", "g6.8xlarge": "2.0144",
	"p3.2xlarge": "3.06", "p3.8xlarge": "12.24", "p3.16xlarge": "24.48",
}

// OnDemandPrice is an instance type's on-demand price in the region: the
// class's own price if it sets one, else the list price; ok is false if neither knows it.
func OnDemandPrice(region, instanceType string, classPrices map[string]string) (price string, ok bool) {
	if p, ok := classPrices[instanceType]; ok {
		return p, true
	}
	p, ok := listPrices[region][instanceType]
	return p, ok
}

// PriceAbove reports whether a price is above a limit; an empty limit is no limit.
func PriceAbove(price, limit string) bool {
	return limit != "" && parsePrice(price) > parsePrice(limit)
}
