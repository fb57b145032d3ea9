package cloud

import (
	"strings"
	"testing"
)

func TestCheckRegion(t *testing.T) {
	for _, r := range []string{"us-east-1", "eu-west-1", "ap-southeast-7", "us-gov-west-1", "cn-north-1"} {
		if err := CheckRegion(r); err != nil {
			t.Errorf("CheckRegion(%q) = %v, want nil", r, err)
		}
	}
	for region, want := range map[string]string{
		"":           "no AWS region is set",
		"us-east1":   `"us-east1" is not a known region`,
		"us-east-1a": `its region is "us-east-1"`,
		"mars-1":     "set AWS_REGION to one of",
	} {
		err := CheckRegion(region)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckRegion(%q) = %v, want an error containing %q", region, err, want)
		}
	}
}
