package faultproxy_test

import (
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/test/moto"
)

func countInstances(t *testing.T, client *ec2.Client) int {
	t.Helper()
	out, err := client.DescribeInstances(ctx(t), &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range out.Reservations {
		n += len(r.Instances)
	}
	return n
}

func TestRunInstancesClientToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := e.runInput(t, ec2types.InstanceTypeT3Micro, "launch-1")
	var ids []string
	for range 2 {
		out, err := e.ec2.RunInstances(ctx(t), in)
		if err != nil {
			t.Fatalf("RunInstances: %v", err)
		}
		ids = append(ids, aws.ToString(out.Instances[0].InstanceId))
	}
	if ids[0] != ids[1] {
		t.Errorf("same ClientToken gave instances %v", ids)
	}
	if n := countInstances(t, e.ec2); n != 1 {
		t.Errorf("moto holds %d instances, want 1", n)
	}

	_, err := e.ec2.RunInstances(ctx(t), e.runInput(t, ec2types.InstanceTypeT3Small, "launch-1"), noRetry)
	if cloud.Classify(err) != cloud.KindIdempotencyMismatch {
		t.Errorf("same token, other type: got %v, want IdempotentParameterMismatch", err)
	}

	concurrent := e.runInput(t, ec2types.InstanceTypeT3Micro, "launch-2")
	launched := make(chan string, 4)
	var wg sync.WaitGroup
	for range cap(launched) {
		wg.Go(func() {
			out, err := e.ec2.RunInstances(ctx(t), concurrent)
			if err != nil {
				t.Errorf("concurrent RunInstances: %v", err)
				launched <- ""
				return
			}
			launched <- aws.ToString(out.Instances[0].InstanceId)
		})
	}
	wg.Wait()
	close(launched)
	distinct := map[string]bool{}
	for id := range launched {
		distinct[id] = true
	}
	if len(distinct) != 1 || countInstances(t, e.ec2) != 2 {
		t.Errorf("concurrent launches with one token gave %v", distinct)
	}

	other := ec2.NewFromConfig(moto.Config(e.proxy.URL(), moto.NewAccount()))
	if _, err := other.RunInstances(ctx(t), in); err != nil {
		t.Fatalf("same token in another account: %v", err)
	}
	if n := countInstances(t, other); n != 1 {
		t.Errorf("other account holds %d instances, want 1", n)
	}
}

func TestCreateVolumeClientToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first, second := e.createVolume(t, "volume-1"), e.createVolume(t, "volume-1")
	if aws.ToString(first.VolumeId) != aws.ToString(second.VolumeId) {
		t.Errorf("same ClientToken gave volumes %s and %s", aws.ToString(first.VolumeId), aws.ToString(second.VolumeId))
	}
	out, err := e.ec2.DescribeVolumes(ctx(t), &ec2.DescribeVolumesInput{})
	if err != nil || len(out.Volumes) != 1 {
		t.Errorf("DescribeVolumes: %v, %d volumes, want 1", err, len(out.Volumes))
	}
	_, err = e.ec2.CreateVolume(ctx(t), &ec2.CreateVolumeInput{
		AvailabilityZone: aws.String(zone), Size: aws.Int32(20), ClientToken: aws.String("volume-1"),
	}, noRetry)
	if cloud.ErrorCode(err) != "IdempotentParameterMismatch" {
		t.Errorf("same token, other size: got %v", err)
	}
}
