package pricing

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awspricing "github.com/aws/aws-sdk-go-v2/service/pricing"
	"github.com/aws/aws-sdk-go-v2/service/pricing/types"

	"github.com/xdrive-io/xdrive/internal/cloud"
)

// APIRegion is where the Pricing API answers for the commercial regions
// (it has endpoints in us-east-1, eu-central-1 and ap-south-1 only).
const APIRegion = "us-east-1"

// FetchOnDemand asks the Pricing API for the on-demand hourly Linux price of
// every instance type of region, as Karpenter does: GetProducts of
// AmazonEC2, filtered to shared-tenancy Linux without software or
// reservations, every page.
func FetchOnDemand(ctx context.Context, api cloud.PricingAPI, region string) (map[string]string, error) {
	filter := func(field, value string) types.Filter {
		return types.Filter{Type: types.FilterTypeTermMatch, Field: aws.String(field), Value: aws.String(value)}
	}
	in := &awspricing.GetProductsInput{
		ServiceCode:   aws.String("AmazonEC2"),
		FormatVersion: aws.String("aws_v1"),
		Filters: []types.Filter{
			filter("regionCode", region),
			filter("productFamily", "Compute Instance"),
			filter("operatingSystem", "Linux"),
			filter("tenancy", "Shared"),
			filter("preInstalledSw", "NA"),
			filter("capacitystatus", "Used"),
		},
	}
	var items []string
	pages := awspricing.NewGetProductsPaginator(api, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("getting EC2 prices of %s from the Pricing API: %w", region, err)
		}
		items = append(items, page.PriceList...)
	}
	out, err := ParsePriceList(region, items)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the Pricing API has no on-demand Linux prices for %s", region)
	}
	return out, nil
}
