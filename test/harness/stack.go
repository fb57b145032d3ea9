package harness

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/xdrive-io/xdrive/internal/operator"
	testenv "github.com/xdrive-io/xdrive/test/envtest"
	"github.com/xdrive-io/xdrive/test/faultproxy"
	"github.com/xdrive-io/xdrive/test/instancesim"
	"github.com/xdrive-io/xdrive/test/moto"
)

// Stack is one operator and what it runs against: a namespace of a real API
// server (envtest), its own moto account behind a fault proxy and,
// optionally, simulated instances. Its methods return errors, so that a
// plain program (the demo) can use it; Harness adapts it to tests.
type Stack struct {
	// Client reads and writes the API server directly, not through a cache.
	Client    client.Client
	Namespace string
	// Proxy is the fault proxy between the operator and moto.
	Proxy *faultproxy.Proxy
	// EC2 talks to moto directly (not through the proxy), for checks.
	EC2 *ec2.Client
	// Account is the stack's moto account; Cluster its ownership tag value.
	Account, Cluster string
	// Options are passed to operator.Setup by Start.
	Options operator.Options
	// Sim simulates the instances when StackConfig.Instances asks for it.
	Sim *instancesim.Sim

	cfg     *rest.Config
	aws     operator.AWS
	regions []string
	// requests counts the manager's API server requests.
	requests requestCounter
	awsCfg   aws.Config
	direct   aws.Config
	mu       sync.Mutex
	cancel   context.CancelFunc
	stopped  chan error
}

// StackConfig configures a stack.
type StackConfig struct {
	// Env is the control plane, and Namespace a namespace of it. Required.
	Env       *testenv.Env
	Namespace string
	// MotoURL is moto_server's; the stack uses a fresh account of it. Required.
	MotoURL string
	// ClusterPrefix starts the cluster name, followed by the account; default "test-".
	ClusterPrefix string
	// Options are passed to operator.Setup; the cluster is filled in, and
	// zero fields get the short intervals and timeouts that tests want.
	// With Instances and no Agent, the operator uses the real SSH agent.
	Options operator.Options
	// AWS, when set, replaces those of the operator's AWS clients (moto
	// through the proxy) that it sets, for example EC2 with the in-process
	// fake of the benchmarks.
	AWS func(cluster string) operator.AWS
	// Regions are the operator's regions besides moto.Region, each with its
	// own clients (moto through the proxy).
	Regions []string
	// Instances, when set, simulates the cluster's instances
	// (test/instancesim; its EC2, Elsewhere (Regions) and Cluster are filled in) and points
	// Options.SSHResolver at them.
	Instances *instancesim.Options
}

// NewStack starts the fault proxy and the instance simulator. The manager
// starts with Start; Close stops everything.
func NewStack(sc StackConfig) (*Stack, error) {
	if sc.Env == nil || sc.Namespace == "" || sc.MotoURL == "" {
		return nil, errors.New("harness: StackConfig needs Env, Namespace and MotoURL")
	}
	proxy, err := faultproxy.New(sc.MotoURL)
	if err != nil {
		return nil, err
	}
	if sc.ClusterPrefix == "" {
		sc.ClusterPrefix = "test-"
	}
	account := moto.NewAccount()
	s := &Stack{
		Client: sc.Env.Client, Namespace: sc.Namespace, Proxy: proxy,
		Account: account, Cluster: sc.ClusterPrefix + account, cfg: rest.CopyConfig(sc.Env.Config),
		awsCfg: moto.Config(proxy.URL(), account), direct: moto.Config(sc.MotoURL, account),
	}
	s.cfg.QPS, s.cfg.Burst = 500, 1000
	s.awsCfg.RetryMaxAttempts = 8
	s.awsCfg.HTTPClient = &http.Client{Transport: moto.AccountTransport(account, nil), Timeout: time.Minute}
	s.EC2 = ec2.NewFromConfig(s.direct)
	s.Options = testOptions(sc.Options)
	s.Options.Cluster = s.Cluster
	if sc.AWS != nil {
		s.aws = sc.AWS(s.Cluster)
	}
	s.regions = sc.Regions
	if sc.Instances != nil {
		simOpts := *sc.Instances
		simOpts.EC2, simOpts.Cluster = s.EC2, s.Cluster
		for _, r := range sc.Regions {
			if simOpts.Elsewhere == nil {
				simOpts.Elsewhere = map[string]instancesim.EC2API{}
			}
			simOpts.Elsewhere[r] = s.EC2In(r)
		}
		if s.Sim, err = instancesim.Start(simOpts); err != nil {
			_ = s.Close()
			return nil, err
		}
		s.Options.SSHResolver = s.Sim.Resolve
	}
	return s, nil
}

// testOptions fills in what tests leave out.
func testOptions(o operator.Options) operator.Options {
	if o.UserData == nil {
		o.UserData = operator.UserData
	}
	if o.PollInterval == 0 {
		o.PollInterval = 2 * time.Second
	}
	t := &o.Timings
	t.IdleRequeue = orDefault(t.IdleRequeue, 10*time.Second)
	t.StopTimeout = orDefault(t.StopTimeout, 3*time.Second)
	t.FlushTimeout = orDefault(t.FlushTimeout, 2*time.Second)
	return o
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Close stops the manager, the simulated instances and the proxy, and
// returns what the manager ended with.
func (s *Stack) Close() error {
	err := s.Stop()
	if s.Sim != nil {
		s.Sim.Stop()
	}
	_ = s.Proxy.Close()
	return err
}

// AWS returns the operator's clients: those StackConfig.AWS set, and moto
// through the proxy for the others.
func (s *Stack) AWS() operator.AWS {
	clients := operator.NewAWS(s.AWSConfig())
	if s.aws.EC2 != nil {
		clients.EC2 = s.aws.EC2
	}
	if s.aws.SSM != nil {
		clients.SSM = s.aws.SSM
	}
	if s.aws.SQS != nil {
		clients.SQS = s.aws.SQS
	}
	if s.aws.Events != nil {
		clients.Events = s.aws.Events
	}
	for _, r := range s.regions {
		cfg := s.AWSConfig()
		cfg.Region = r
		if clients.Elsewhere == nil {
			clients.Elsewhere = map[string]operator.AWS{}
		}
		clients.Elsewhere[r] = operator.NewAWS(cfg)
	}
	return clients
}

// EC2In talks to moto directly in another region, for checks.
func (s *Stack) EC2In(region string) *ec2.Client {
	return ec2.NewFromConfig(s.direct, func(o *ec2.Options) { o.Region = region })
}

// AWSConfig is the SDK config that goes through the proxy.
func (s *Stack) AWSConfig() aws.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.awsCfg
}

// DirectAWSConfig is the SDK config of the stack's moto account, not through
// the proxy: for checks and for events the test itself publishes.
func (s *Stack) DirectAWSConfig() aws.Config { return s.direct }

// SetAWSAttempts sets how many attempts the operator's AWS clients make per
// call (1: the SDK never retries, so every fault reaches the controllers).
// It takes effect at the next Start.
func (s *Stack) SetAWSAttempts(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.awsCfg.RetryMaxAttempts = n
}

// Start runs a fresh manager (a fresh process, as far as the operator can tell).
func (s *Stack) Start() error {
	return s.StartManager(ManagerConfig{Options: ctrl.Options{
		Metrics: metricsserver.Options{BindAddress: "0"},
		// Secrets as the binary caches them: only those with the operator's label.
		Cache: operator.CacheOptions(s.Namespace),
	}})
}

// Stop ends the manager, waits for it and returns what it ended with.
func (s *Stack) Stop() error {
	s.mu.Lock()
	cancel, stopped := s.cancel, s.stopped
	s.cancel, s.stopped = nil, nil
	s.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	if err := <-stopped; err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	return nil
}

// Restart stops the manager and starts a new one.
func (s *Stack) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.Start()
}

// Poll checks cond every interval until it holds, it fails, timeout passes
// or ctx ends. cond reports whether what the wait is for holds and what it
// saw; an error from it ends the wait.
func Poll(ctx context.Context, interval, timeout time.Duration, what string, cond func() (ok bool, detail string, err error)) error {
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, detail, err := cond()
		switch {
		case err != nil:
			return fmt.Errorf("waiting for %s: %w", what, err)
		case ok:
			return nil
		case detail != "":
			last = detail
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s; last seen: %s", timeout, what, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w; last seen: %s", what, ctx.Err(), last)
		case <-time.After(interval):
		}
	}
}
