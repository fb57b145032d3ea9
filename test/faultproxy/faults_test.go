package faultproxy_test

import (
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/test/faultproxy"
)

func TestThrottledCallIsRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rule := e.proxy.Inject(faultproxy.Rule{Action: "DescribeInstances", Times: 1, Fault: faultproxy.Throttle()})

	if _, err := e.ec2.DescribeInstances(ctx(t), &ec2.DescribeInstancesInput{}); err != nil {
		t.Fatalf("DescribeInstances after one throttle: %v", err)
	}
	if got := e.proxy.Count("DescribeInstances"); got != 2 {
		t.Errorf("DescribeInstances count = %d, want 2 (throttled + retry)", got)
	}
	if rule.Fired() != 1 {
		t.Errorf("rule fired %d times, want 1", rule.Fired())
	}
	if e.proxy.Total() != 2 || e.proxy.Counts()["DescribeInstances"] != 2 {
		t.Errorf("Total = %d, Counts = %v", e.proxy.Total(), e.proxy.Counts())
	}
	e.proxy.ResetCounts()
	if e.proxy.Total() != 0 {
		t.Errorf("Total after ResetCounts = %d", e.proxy.Total())
	}
}

func TestFaultKinds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ssmClient := ssm.NewFromConfig(e.cfg, func(o *ssm.Options) { o.RetryMaxAttempts = 1 })
	sqsClient := sqs.NewFromConfig(e.cfg, func(o *sqs.Options) { o.RetryMaxAttempts = 1 })
	ec2Call := func(action string) func() error {
		return func() error {
			var err error
			switch action {
			case "DescribeInstances":
				_, err = e.ec2.DescribeInstances(ctx(t), &ec2.DescribeInstancesInput{}, noRetry)
			case "DescribeVolumes":
				_, err = e.ec2.DescribeVolumes(ctx(t), &ec2.DescribeVolumesInput{}, noRetry)
			case "DescribeSnapshots":
				_, err = e.ec2.DescribeSnapshots(ctx(t), &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}}, noRetry)
			case "CreateTags":
				_, err = e.ec2.CreateTags(ctx(t), &ec2.CreateTagsInput{Resources: []string{"vol-0123456789abcdef0"},
					Tags: []ec2types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}, noRetry)
			}
			return err
		}
	}
	cases := []struct {
		name   string
		action string
		fault  faultproxy.Fault
		call   func() error
		kind   cloud.ErrorKind
		code   string
	}{
		{"throttle", "DescribeInstances", faultproxy.Throttle(), ec2Call("DescribeInstances"), cloud.KindThrottled, "RequestLimitExceeded"},
		{"server error", "DescribeVolumes", faultproxy.ServerError(), ec2Call("DescribeVolumes"), cloud.KindServerError, "InternalError"},
		{"capacity", "DescribeInstances", faultproxy.InsufficientCapacity(), ec2Call("DescribeInstances"), cloud.KindNoCapacity, "InsufficientInstanceCapacity"},
		{"custom", "DescribeVolumes", faultproxy.APIError(http.StatusBadRequest, "IncorrectState", "busy"), ec2Call("DescribeVolumes"), cloud.KindIncorrectState, "IncorrectState"},
		{"instance not found", "DescribeInstances", faultproxy.NotFoundYet(), ec2Call("DescribeInstances"), cloud.KindNotFound, "InvalidInstanceID.NotFound"},
		{"volume not found", "DescribeVolumes", faultproxy.NotFoundYet(), ec2Call("DescribeVolumes"), cloud.KindNotFound, "InvalidVolume.NotFound"},
		{"snapshot not found", "DescribeSnapshots", faultproxy.NotFoundYet(), ec2Call("DescribeSnapshots"), cloud.KindNotFound, "InvalidSnapshot.NotFound"},
		{"tagged resource not found", "CreateTags", faultproxy.NotFoundYet(), ec2Call("CreateTags"), cloud.KindNotFound, "InvalidVolume.NotFound"},
		{"ssm not found", "GetParameter", faultproxy.NotFoundYet(), func() error {
			_, err := ssmClient.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String("/aws/service/x")})
			return err
		}, cloud.KindNotFound, "ParameterNotFound"},
		{"sqs throttle", "GetQueueUrl", faultproxy.APIError(http.StatusBadRequest, "RequestThrottled", "slow down"), func() error {
			_, err := sqsClient.GetQueueUrl(ctx(t), &sqs.GetQueueUrlInput{QueueName: aws.String("q")})
			return err
		}, cloud.KindThrottled, "RequestThrottled"},
	}
	for _, tc := range cases {
		e.proxy.ClearRules()
		e.proxy.ResetCounts()
		e.proxy.Inject(faultproxy.Rule{Action: tc.action, Fault: tc.fault})
		err := tc.call()
		if kind := cloud.Classify(err); kind != tc.kind || cloud.ErrorCode(err) != tc.code {
			t.Errorf("%s: got %v (%s), want %v (%s)", tc.name, kind, cloud.ErrorCode(err), tc.kind, tc.code)
		}
		if n := e.proxy.Count(tc.action); n != 1 {
			t.Errorf("%s: %s count = %d, want 1", tc.name, tc.action, n)
		}
	}
}

func TestRuleMatchesParameters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rule := e.proxy.Inject(faultproxy.Rule{
		Action: "RunInstances",
		Match:  func(f url.Values) bool { return f.Get("InstanceType") == "g5.xlarge" },
		Fault:  faultproxy.InsufficientCapacity(),
	})
	_, err := e.ec2.RunInstances(ctx(t), e.runInput(t, ec2types.InstanceTypeG5Xlarge, ""), noRetry)
	if cloud.Classify(err) != cloud.KindNoCapacity {
		t.Errorf("g5.xlarge: got %v, want NoCapacity", err)
	}
	if _, err := e.ec2.RunInstances(ctx(t), e.runInput(t, ec2types.InstanceTypeT3Micro, ""), noRetry); err != nil {
		t.Errorf("t3.micro: %v", err)
	}
	if rule.Fired() != 1 {
		t.Errorf("rule fired %d times, want 1", rule.Fired())
	}
	rule.Remove()
	if _, err := e.ec2.RunInstances(ctx(t), e.runInput(t, ec2types.InstanceTypeG5Xlarge, ""), noRetry); err != nil {
		t.Errorf("g5.xlarge after Remove: %v", err)
	}
}

func TestAnyEC2ActionRule(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rule := e.proxy.Inject(faultproxy.Rule{Fault: faultproxy.ServerError()})
	_, err := e.ec2.DescribeVolumes(ctx(t), &ec2.DescribeVolumesInput{}, noRetry)
	if cloud.Classify(err) != cloud.KindServerError {
		t.Errorf("EC2 call: got %v, want ServerError", err)
	}
	ssmClient := ssm.NewFromConfig(e.cfg, func(o *ssm.Options) { o.RetryMaxAttempts = 1 })
	_, err = ssmClient.GetParameter(ctx(t), &ssm.GetParameterInput{Name: aws.String("/missing")})
	if cloud.ErrorCode(err) != "ParameterNotFound" {
		t.Errorf("SSM call should reach moto untouched, got %v", err)
	}
	if rule.Fired() != 1 {
		t.Errorf("rule fired %d times, want 1", rule.Fired())
	}
}

func TestLatencyRule(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rule := e.proxy.Inject(faultproxy.Rule{Action: "DescribeVolumes", Times: 1, Fault: faultproxy.Latency(50 * time.Millisecond)})
	if _, err := e.ec2.DescribeVolumes(ctx(t), &ec2.DescribeVolumesInput{}, noRetry); err != nil {
		t.Fatalf("DescribeVolumes with latency: %v", err)
	}
	if rule.Fired() != 1 || e.proxy.Count("DescribeVolumes") != 1 {
		t.Errorf("fired %d, count %d; want 1 and 1", rule.Fired(), e.proxy.Count("DescribeVolumes"))
	}
}

// outcomes runs n calls through a rule that fires with probability 0.5.
func outcomes(t *testing.T, e *env, seed uint64, n int) []bool {
	t.Helper()
	e.proxy.ClearRules()
	e.proxy.Seed(seed)
	e.proxy.Inject(faultproxy.Rule{Action: "DescribeAvailabilityZones", Probability: 0.5, Fault: faultproxy.Throttle()})
	var failed []bool
	for range n {
		_, err := e.ec2.DescribeAvailabilityZones(ctx(t), &ec2.DescribeAvailabilityZonesInput{}, noRetry)
		if err != nil && cloud.Classify(err) != cloud.KindThrottled {
			t.Fatalf("unexpected error: %v", err)
		}
		failed = append(failed, err != nil)
	}
	return failed
}

func TestProbabilityIsReproducible(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first := outcomes(t, e, 42, 24)
	again := outcomes(t, e, 42, 24)
	if !slices.Equal(first, again) {
		t.Errorf("same seed, different outcomes:\n%v\n%v", first, again)
	}
	if !slices.Contains(first, true) || !slices.Contains(first, false) {
		t.Errorf("probability 0.5 gave a one-sided run: %v", first)
	}
	if other := outcomes(t, e, 7, 24); slices.Equal(first, other) {
		t.Errorf("different seeds gave the same outcomes: %v", first)
	}
}

func TestOnCallHook(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var (
		mu      sync.Mutex
		volumes []string
	)
	e.proxy.OnCall(func(action string, form url.Values) {
		if action == "CreateSnapshot" {
			mu.Lock()
			defer mu.Unlock()
			volumes = append(volumes, form.Get("VolumeId"))
		}
	})
	snap := e.createSnapshot(t)
	e.proxy.OnCall(nil)
	mu.Lock()
	defer mu.Unlock()
	if len(volumes) != 1 || volumes[0] != aws.ToString(snap.VolumeId) {
		t.Errorf("hook saw CreateSnapshot for %v, want [%s]", volumes, aws.ToString(snap.VolumeId))
	}
}
