package cloud

import (
	"fmt"
	"slices"
	"strings"
)

// Partitions are the regions of each AWS partition, as the AWS SDK for Go
// v2 (v1.48, internal/endpoints/awsrulesfn/partitions.json) lists them.
var Partitions = map[string][]string{
	"aws": {
		"af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
		"ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
		"ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ca-central-1", "ca-west-1",
		"eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3",
		"il-central-1", "me-central-1", "me-south-1", "me-west-1", "mx-central-1", "sa-east-1", "sa-west-1",
		"us-east-1", "us-east-2", "us-west-1", "us-west-2",
	},
	"aws-cn":     {"cn-north-1", "cn-northwest-1"},
	"aws-eusc":   {"eusc-de-east-1"},
	"aws-iso":    {"us-iso-east-1", "us-iso-west-1"},
	"aws-iso-b":  {"us-isob-east-1", "us-isob-west-1"},
	"aws-iso-e":  {"eu-isoe-west-1"},
	"aws-iso-f":  {"us-isof-east-1", "us-isof-south-1"},
	"aws-us-gov": {"us-gov-east-1", "us-gov-west-1"},
}

// CommercialRegions are the regions of the aws partition.
func CommercialRegions() []string { return slices.Clone(Partitions["aws"]) }

// CheckRegion refuses an empty region, and one no partition has (a typo
// such as "us-east1", or an availability zone such as "us-east-1a").
func CheckRegion(region string) error {
	if region == "" {
		return fmt.Errorf("no AWS region is set: set AWS_REGION in the manager's environment " +
			"(kustomize: region in config/default/settings.yaml, or make build-installer REGION=...; the Helm chart: --set region=...)")
	}
	for _, regions := range Partitions {
		if slices.Contains(regions, region) {
			return nil
		}
	}
	hint := ""
	if trimmed := strings.TrimRight(region, "abcdefghijklmnopqrstuvwxyz"); trimmed != region && trimmed != "" {
		if CheckRegion(trimmed) == nil {
			hint = fmt.Sprintf(" (%q is an availability zone; its region is %q)", region, trimmed)
		}
	}
	return fmt.Errorf("AWS region %q is not a known region%s: set AWS_REGION to one of %s",
		region, hint, strings.Join(CommercialRegions(), ", ")+", or a GovCloud, China, sovereign or isolated region")
}
