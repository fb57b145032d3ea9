package metrics_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/xdrive-io/xdrive/internal/metrics"
	"github.com/xdrive-io/xdrive/test/moto"
)

func TestMain(m *testing.M) { moto.Main(m) }

// TestCountCalls counts real SDK calls against moto by action and error code.
func TestCountCalls(t *testing.T) {
	srv := moto.Shared(t)
	cfg := moto.Config(srv.URL, moto.NewAccount())
	cfg.APIOptions = append(cfg.APIOptions, metrics.CountCalls)
	client := ec2.NewFromConfig(cfg)
	okBefore := testutil.ToFloat64(metrics.AWSCalls.WithLabelValues("EC2", "DescribeVolumes", ""))
	errBefore := testutil.ToFloat64(metrics.AWSCalls.WithLabelValues("EC2", "DeleteVolume", "InvalidVolume.NotFound"))

	for range 2 {
		if _, err := client.DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.DeleteVolume(context.Background(), &ec2.DeleteVolumeInput{VolumeId: aws.String("vol-0123456789abcdef0")}); err == nil {
		t.Fatal("deleting a missing volume succeeded")
	}
	if got := testutil.ToFloat64(metrics.AWSCalls.WithLabelValues("EC2", "DescribeVolumes", "")) - okBefore; got != 2 {
		t.Errorf("DescribeVolumes counted %v times, want 2", got)
	}
	if got := testutil.ToFloat64(metrics.AWSCalls.WithLabelValues("EC2", "DeleteVolume", "InvalidVolume.NotFound")) - errBefore; got != 1 {
		t.Errorf("failed DeleteVolume counted %v times, want 1", got)
	}
}
