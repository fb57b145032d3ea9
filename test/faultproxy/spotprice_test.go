package faultproxy_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

type offering struct{ instanceType, zone string }

func spotPrices(t *testing.T, e *env, in *ec2.DescribeSpotPriceHistoryInput) map[offering]ec2types.SpotPrice {
	t.Helper()
	out, err := e.ec2.DescribeSpotPriceHistory(ctx(t), in)
	if err != nil {
		t.Fatalf("DescribeSpotPriceHistory: %v", err)
	}
	prices := map[offering]ec2types.SpotPrice{}
	for _, p := range out.SpotPriceHistory {
		k := offering{string(p.InstanceType), aws.ToString(p.AvailabilityZone)}
		if _, dup := prices[k]; dup {
			t.Errorf("%v reported twice", k)
		}
		prices[k] = p
	}
	return prices
}

func TestSpotPrices(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	configured := map[offering]string{
		{"g5.xlarge", "us-east-1a"}: "0.4512",
		{"g5.xlarge", "us-east-1e"}: "0.5230", // a zone moto does not list
		{"t3.micro", "us-east-1b"}:  "0.0031",
	}
	for k, price := range configured {
		e.proxy.SetSpotPrice(k.instanceType, k.zone, price)
	}
	isConfigured := func(p ec2types.SpotPrice) bool {
		for _, price := range configured {
			if aws.ToString(p.SpotPrice) == price {
				return true
			}
		}
		return false
	}

	got := spotPrices(t, e, &ec2.DescribeSpotPriceHistoryInput{
		InstanceTypes:       []ec2types.InstanceType{"g5.xlarge"},
		ProductDescriptions: []string{"Linux/UNIX"},
	})
	for k, price := range configured {
		p, ok := got[k]
		if k.instanceType != "g5.xlarge" {
			if ok {
				t.Errorf("unrequested type reported: %v", k)
			}
			continue
		}
		if !ok || aws.ToString(p.SpotPrice) != price || p.ProductDescription != "Linux/UNIX" {
			t.Errorf("%v: got %+v, want price %s for Linux/UNIX", k, p, price)
		}
		if ts := aws.ToTime(p.Timestamp); time.Since(ts) > time.Hour {
			t.Errorf("%v: stale timestamp %v", k, ts)
		}
	}
	passthrough := got[offering{"g5.xlarge", "us-east-1c"}]
	if passthrough.SpotPrice == nil || isConfigured(passthrough) {
		t.Errorf("unconfigured pair should come from moto, got %+v", passthrough)
	}

	got = spotPrices(t, e, &ec2.DescribeSpotPriceHistoryInput{
		InstanceTypes: []ec2types.InstanceType{"g5.xlarge", "t3.micro"},
		Filters:       []ec2types.Filter{{Name: aws.String("availability-zone"), Values: []string{"us-east-1b"}}},
	})
	if len(got) != 2 || aws.ToString(got[offering{"t3.micro", "us-east-1b"}].SpotPrice) != "0.0031" ||
		isConfigured(got[offering{"g5.xlarge", "us-east-1b"}]) {
		t.Errorf("zone us-east-1b: got %v", got)
	}

	got = spotPrices(t, e, &ec2.DescribeSpotPriceHistoryInput{
		InstanceTypes:       []ec2types.InstanceType{"g5.xlarge"},
		AvailabilityZone:    aws.String("us-east-1a"),
		ProductDescriptions: []string{"Windows"},
	})
	for k, p := range got {
		if isConfigured(p) {
			t.Errorf("Linux price reported for Windows: %v %+v", k, p)
		}
	}
}
