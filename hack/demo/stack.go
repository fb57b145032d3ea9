package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/controller/workstation"
	"github.com/xdrive-io/xdrive/internal/operator"
	testenv "github.com/xdrive-io/xdrive/test/envtest"
	"github.com/xdrive-io/xdrive/test/faultproxy"
	"github.com/xdrive-io/xdrive/test/moto"
)

const (
	namespace = "demo"
	queueName = "xdrive-demo-interruptions"
)

// stack is everything the demo runs. stop undoes start, in reverse order,
// whatever was reached.
type stack struct {
	out     *printer
	workDir string
	logPath string
	logFile *os.File

	env     *testenv.Env
	moto    *moto.Server
	proxy   *faultproxy.Proxy
	account string
	cluster string
	direct  *ec2.Client         // moto without the proxy: the stand-in and the checks
	events  *eventbridge.Client // moto without the proxy: publishing the interruption event
	imds    *imds
	fleet   *fleet

	bgCancel  context.CancelFunc
	bg        sync.WaitGroup
	mgrCancel context.CancelFunc
	mgrDone   chan error
	stopOnce  sync.Once
}

func (s *stack) start(ctx context.Context, pollInterval time.Duration) error {
	var err error
	if s.workDir, err = os.MkdirTemp("", "xdrive-demo-"); err != nil {
		return err
	}
	s.logPath = filepath.Join(s.workDir, "operator.log")
	if s.logFile, err = os.Create(s.logPath); err != nil {
		return err
	}
	var logMu sync.Mutex
	logger := funcr.New(func(prefix, args string) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(s.logFile, "%s %s %s\n", time.Now().UTC().Format("15:04:05.000"), prefix, args)
	}, funcr.Options{})
	ctrl.SetLogger(logger)
	klog.SetLogger(logger)

	s.out.Progress("starting kube-apiserver and etcd (envtest, KUBEBUILDER_ASSETS=%s)", os.Getenv("KUBEBUILDER_ASSETS"))
	if s.env, err = testenv.New(); err != nil {
		return err
	}
	s.out.Note("API server %s, xdrive CRDs installed from %s", s.env.Config.Host, testenv.CRDDir())
	if err := s.env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		return fmt.Errorf("creating namespace %s: %w", namespace, err)
	}

	s.out.Progress("starting moto_server (simulated AWS: EC2, SSM, SQS, EventBridge)")
	if s.moto, err = moto.Start(); err != nil {
		return err
	}
	if s.proxy, err = faultproxy.New(s.moto.URL); err != nil {
		return err
	}
	s.account = moto.NewAccount()
	s.cluster = "demo-" + s.account
	s.direct = ec2.NewFromConfig(moto.Config(s.moto.URL, s.account))
	s.events = eventbridge.NewFromConfig(moto.Config(s.moto.URL, s.account))
	s.out.Note("moto %s, fault proxy %s (counts calls, sets spot prices, shows pending states), account %s",
		s.moto.URL, s.proxy.URL(), s.account)
	// moto skips in-between states; the proxy shows a few, as EC2 would.
	s.proxy.InstancePendingDescribes(1)
	s.proxy.SnapshotPendingDescribes(2)

	if s.imds, err = startIMDS(); err != nil {
		return err
	}
	if s.fleet, err = newFleet(s.direct, s.cluster, s.workDir, s.imds, s.out); err != nil {
		return err
	}
	bgCtx, bgCancel := context.WithCancel(context.Background())
	s.bgCancel = bgCancel
	s.bg.Add(1)
	go func() { defer s.bg.Done(); s.fleet.Run(bgCtx) }()

	s.out.Progress("starting the xdrive operator in this process (namespace %q, cluster tag %s)", namespace, s.cluster)
	return s.startOperator(pollInterval)
}

func (s *stack) awsConfig() aws.Config {
	cfg := moto.Config(s.proxy.URL(), s.account)
	cfg.RetryMaxAttempts = 8
	cfg.HTTPClient = &http.Client{Transport: moto.AccountTransport(s.account, nil), Timeout: time.Minute}
	return cfg
}

func (s *stack) startOperator(pollInterval time.Duration) error {
	mgr, err := ctrl.NewManager(s.env.Config, ctrl.Options{
		Scheme:                 testenv.NewScheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{namespace: {}}},
	})
	if err != nil {
		return err
	}
	cfg := s.awsConfig()
	clients := operator.AWS{
		EC2: ec2.NewFromConfig(cfg), SSM: ssm.NewFromConfig(cfg),
		SQS: sqs.NewFromConfig(cfg), Events: eventbridge.NewFromConfig(cfg),
	}
	ctx, cancel := context.WithCancel(context.Background())
	err = operator.Setup(ctx, mgr, clients, operator.Options{
		Cluster:          s.cluster,
		PollInterval:     pollInterval,
		FastPollInterval: time.Second,
		Timings: workstation.Timings{
			FlushTimeout: 20 * time.Second, StopTimeout: 30 * time.Second, IdleRequeue: 10 * time.Second,
		},
		UserData:    operator.UserData,
		SSHResolver: s.fleet.Resolve,
		QueueName:   queueName,
		CreateQueue: true,
	})
	if err != nil {
		cancel()
		return err
	}
	s.mgrCancel, s.mgrDone = cancel, make(chan error, 1)
	go func() { s.mgrDone <- mgr.Start(ctx) }()
	s.out.Note("real SSH agent: operator.Options.SSHResolver maps each instance IP to its loopback sshd; interruption queue %q via EventBridge", queueName)
	return nil
}

// setSpotPrices gives every (type, zone) the demo may use a price, so that
// t3.large is cheapest in us-east-1a, then us-east-1b, then us-east-1c.
func (s *stack) setSpotPrices(ctx context.Context, types []string) error {
	base := map[string]float64{"t3.large": 0.0208, "m6i.large": 0.0381, "m7i.large": 0.0412}
	step := map[string]float64{"us-east-1a": 0, "us-east-1b": 0.0023, "us-east-1c": 0.0046}
	s.out.Note("spot prices, set through the fault proxy (moto's own are all $0.00001):")
	var rows [][]string
	for i, t := range types {
		out, err := s.direct.DescribeInstanceTypeOfferings(ctx, &ec2.DescribeInstanceTypeOfferingsInput{
			LocationType: ec2types.LocationTypeAvailabilityZone,
			Filters:      []ec2types.Filter{cloud.Filter("instance-type", t)},
		})
		if err != nil {
			return err
		}
		var zones []string
		for _, o := range out.InstanceTypeOfferings {
			zones = append(zones, aws.ToString(o.Location))
		}
		sort.Strings(zones)
		p, ok := base[t]
		if !ok {
			p = 0.030 + 0.003*float64(i)
		}
		row := []string{t}
		for _, z := range zones {
			d, ok := step[z]
			if !ok {
				d = 0.0090
			}
			price := fmt.Sprintf("%.4f", p+d)
			s.proxy.SetSpotPrice(t, z, price)
			row = append(row, z+" $"+price)

		}
		rows = append(rows, row)
	}
	for _, r := range rows {
		s.out.Note("  %-10s %s", r[0], strings.Join(r[1:], ", "))
	}
	return nil
}

// stop tears everything down; it is safe to call more than once and from a signal handler.
func (s *stack) stop() {
	s.stopOnce.Do(func() {
		if s.mgrCancel != nil {
			s.mgrCancel()
			select {
			case err := <-s.mgrDone:
				if err != nil {
					s.out.Note("the manager stopped with: %v", err)
				}
			case <-time.After(15 * time.Second):
				s.out.Note("the manager did not stop within 15s")
			}
		}
		if s.bgCancel != nil {
			s.bgCancel()
		}
		if s.fleet != nil {
			s.fleet.StopAll()
		}
		s.bg.Wait()
		if s.imds != nil {
			s.imds.Close()
		}
		if s.proxy != nil {
			_ = s.proxy.Close()
		}
		if s.moto != nil {
			s.moto.Stop()
		}
		if s.env != nil {
			if err := s.env.Stop(); err != nil {
				s.out.Note("stopping the control plane: %v", err)
			}
		}
		ctrl.SetLogger(logr.Discard())
		if s.logFile != nil {
			_ = s.logFile.Close()
		}
	})
}

// kill ends the child processes at once, for a second Ctrl-C.
func (s *stack) kill() {
	if s.fleet != nil {
		for _, id := range s.fleet.Launched() {
			if h, ok := s.fleet.Host(id); ok {
				s.fleet.powerOff(h, "")
			}
		}
	}
	if s.moto != nil {
		s.moto.Stop()
	}
	if s.env != nil {
		_ = s.env.Stop()
	}
}
