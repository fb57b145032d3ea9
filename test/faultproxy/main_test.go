package faultproxy_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/xdrive-io/xdrive/test/faultproxy"
	"github.com/xdrive-io/xdrive/test/moto"
)

func TestMain(m *testing.M) { moto.Main(m) }

const zone = moto.Region + "a"

// env is one test's proxy in front of the shared moto, and clients for its own account.
type env struct {
	proxy   *faultproxy.Proxy
	cfg     aws.Config
	ec2     *ec2.Client
	account string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	server := moto.Shared(t)
	p, err := faultproxy.New(server.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	account := moto.NewAccount()
	cfg := moto.Config(p.URL(), account)
	return &env{proxy: p, cfg: cfg, ec2: ec2.NewFromConfig(cfg), account: account}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// noRetry makes a call give up after its first attempt.
func noRetry(o *ec2.Options) { o.RetryMaxAttempts = 1 }

// ami returns moto's current Amazon Linux 2023 image, as the operator looks it up.
func (e *env) ami(t *testing.T) string {
	t.Helper()
	out, err := ssm.NewFromConfig(e.cfg).GetParameter(ctx(t), &ssm.GetParameterInput{
		Name: aws.String("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"),
	})
	if err != nil {
		t.Fatalf("GetParameter: %v", err)
	}
	return aws.ToString(out.Parameter.Value)
}

func (e *env) runInput(t *testing.T, instanceType ec2types.InstanceType, token string) *ec2.RunInstancesInput {
	return &ec2.RunInstancesInput{
		ImageId:      aws.String(e.ami(t)),
		InstanceType: instanceType,
		MinCount:     aws.Int32(1),
		MaxCount:     aws.Int32(1),
		Placement:    &ec2types.Placement{AvailabilityZone: aws.String(zone)},
		InstanceMarketOptions: &ec2types.InstanceMarketOptionsRequest{
			MarketType: ec2types.MarketTypeSpot,
		},
		ClientToken: aws.String(token),
	}
}

func (e *env) launch(t *testing.T) string {
	t.Helper()
	out, err := e.ec2.RunInstances(ctx(t), e.runInput(t, ec2types.InstanceTypeT3Micro, ""))
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	return aws.ToString(out.Instances[0].InstanceId)
}

func (e *env) instanceState(t *testing.T, id string) ec2types.InstanceState {
	t.Helper()
	out, err := e.ec2.DescribeInstances(ctx(t), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatalf("DescribeInstances: %v", err)
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			return *i.State
		}
	}
	t.Fatalf("instance %s not described", id)
	return ec2types.InstanceState{}
}

func (e *env) createVolume(t *testing.T, token string) *ec2.CreateVolumeOutput {
	t.Helper()
	out, err := e.ec2.CreateVolume(ctx(t), &ec2.CreateVolumeInput{
		AvailabilityZone: aws.String(zone), Size: aws.Int32(10), ClientToken: aws.String(token),
	})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	return out
}

func (e *env) volumeState(t *testing.T, id string) ec2types.VolumeState {
	t.Helper()
	out, err := e.ec2.DescribeVolumes(ctx(t), &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
	if err != nil || len(out.Volumes) != 1 {
		t.Fatalf("DescribeVolumes: %v", err)
	}
	return out.Volumes[0].State
}

func (e *env) createSnapshot(t *testing.T) *ec2.CreateSnapshotOutput {
	t.Helper()
	vol := e.createVolume(t, "")
	out, err := e.ec2.CreateSnapshot(ctx(t), &ec2.CreateSnapshotInput{VolumeId: vol.VolumeId})
	if err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	return out
}

func (e *env) snapshot(t *testing.T, id string) ec2types.Snapshot {
	t.Helper()
	out, err := e.ec2.DescribeSnapshots(ctx(t), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
	if err != nil || len(out.Snapshots) != 1 {
		t.Fatalf("DescribeSnapshots: %v", err)
	}
	return out.Snapshots[0]
}
