// Package harness runs the operator against a real API server (envtest) and
// moto behind the fault proxy, for integration tests, benchmarks and the demo.
package harness

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/xdrive-io/xdrive/internal/metrics"
	"github.com/xdrive-io/xdrive/internal/operator"
	testenv "github.com/xdrive-io/xdrive/test/envtest"
	"github.com/xdrive-io/xdrive/test/faultproxy"
	"github.com/xdrive-io/xdrive/test/moto"
)

var quietLogs sync.Once

// Harness is one isolated operator: its own namespace, moto account and proxy.
type Harness struct {
	T         testing.TB
	Client    client.Client
	Namespace string
	Proxy     *faultproxy.Proxy
	// EC2 talks to moto directly (not through the proxy), for assertions.
	EC2     *ec2.Client
	Agent   *FakeAgent
	Cluster string
	Options operator.Options

	cfg     *rest.Config
	awsCfg  aws.Config
	mu      sync.Mutex
	cancel  context.CancelFunc
	stopped chan struct{}
}

// Config tunes a harness.
type Config struct {
	Env *testenv.Env
	// Options are passed to operator.Setup; cluster, user-data and agent are filled in.
	Options operator.Options
}

// New starts the proxy and returns a harness whose manager is not running yet.
func New(t testing.TB, cfg Config) *Harness {
	t.Helper()
	quietLogs.Do(func() { ctrl.SetLogger(logr.Discard()) })
	srv := moto.Shared(t)
	proxy, err := faultproxy.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	account := moto.NewAccount()
	h := &Harness{
		T: t, Client: cfg.Env.Client, Namespace: testenv.CreateNamespace(t, cfg.Env.Client),
		Proxy: proxy, Agent: NewFakeAgent(), Cluster: "test-" + account, cfg: rest.CopyConfig(cfg.Env.Config),
		awsCfg: moto.Config(proxy.URL(), account),
	}
	h.cfg.QPS, h.cfg.Burst = 500, 1000
	h.awsCfg.RetryMaxAttempts = 8
	h.awsCfg.APIOptions = append(h.awsCfg.APIOptions, metrics.CountCalls)
	h.awsCfg.HTTPClient = &http.Client{Transport: moto.AccountTransport(account, nil), Timeout: time.Minute}
	h.EC2 = ec2.NewFromConfig(moto.Config(srv.URL, account))
	h.Options = cfg.Options
	h.Options.Cluster = h.Cluster
	if h.Options.UserData == nil {
		h.Options.UserData = operator.UserData
	}
	if h.Options.Agent == nil {
		h.Options.Agent = h.Agent
	}
	if h.Options.PollInterval == 0 {
		h.Options.PollInterval = 2 * time.Second
	}
	h.Options.Timings.IdleRequeue = orDuration(h.Options.Timings.IdleRequeue, 10*time.Second)
	h.Options.Timings.StopTimeout = orDuration(h.Options.Timings.StopTimeout, 3*time.Second)
	h.Options.Timings.FlushTimeout = orDuration(h.Options.Timings.FlushTimeout, 2*time.Second)
	t.Cleanup(h.Stop)
	return h
}

func orDuration(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// AWS returns clients that go through the proxy.
func (h *Harness) AWS() operator.AWS {
	return operator.AWS{
		EC2: ec2.NewFromConfig(h.awsCfg), SSM: ssm.NewFromConfig(h.awsCfg),
		SQS: sqs.NewFromConfig(h.awsCfg), Events: eventbridge.NewFromConfig(h.awsCfg),
	}
}

// AWSConfig is the SDK config that goes through the proxy.
func (h *Harness) AWSConfig() aws.Config { return h.awsCfg }

// Start runs a fresh manager (a fresh process, as far as the operator can tell).
func (h *Harness) Start() {
	h.T.Helper()
	mgr, err := ctrl.NewManager(h.cfg, ctrl.Options{
		Scheme:     testenv.NewScheme(),
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      cache.Options{DefaultNamespaces: map[string]cache.Config{h.Namespace: {}}},
		Controller: ctrlConfig(),
	})
	if err != nil {
		h.T.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := operator.Setup(ctx, mgr, h.AWS(), h.Options); err != nil {
		cancel()
		h.T.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		if err := mgr.Start(ctx); err != nil {
			h.T.Errorf("manager: %v", err)
		}
	}()
	h.mu.Lock()
	h.cancel, h.stopped = cancel, stopped
	h.mu.Unlock()
}

// Stop ends the manager and waits for it.
func (h *Harness) Stop() {
	h.mu.Lock()
	cancel, stopped := h.cancel, h.stopped
	h.cancel, h.stopped = nil, nil
	h.mu.Unlock()
	if cancel != nil {
		cancel()
		<-stopped
	}
}

// Restart stops the manager and starts a new one.
func (h *Harness) Restart() {
	h.Stop()
	h.Start()
}

// Eventually polls cond until it holds or the timeout passes.
func (h *Harness) Eventually(timeout time.Duration, what string, cond func() (bool, string)) {
	h.T.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		time.Sleep(100 * time.Millisecond)
	}
	h.T.Fatalf("timed out after %s waiting for %s; last seen: %s", timeout, what, last)
}
