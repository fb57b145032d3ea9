package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/operator"
	"github.com/xdrive-io/xdrive/internal/plugin"
	testenv "github.com/xdrive-io/xdrive/test/envtest"
	"github.com/xdrive-io/xdrive/test/harness"
	"github.com/xdrive-io/xdrive/test/instancesim"
	"github.com/xdrive-io/xdrive/test/instancevm"
	"github.com/xdrive-io/xdrive/test/moto"
)

const (
	namespace = "demo"
	queueName = "xdrive-demo-interruptions"
)

// setup is everything the demo runs: the control plane, moto, and the
// operator with its simulated instances (a harness.Stack). stop undoes
// start, in reverse order, whatever was reached.
type setup struct {
	out *printer
	// vm: the instances are real VMs (test/instancevm) booted from image.
	vm    bool
	image instancevm.Image
	inst  instanceSide
	fleet *instancevm.Fleet

	workDir string
	logPath string
	logFile *os.File

	env    *testenv.Env
	moto   *moto.Server
	st     *harness.Stack
	events *eventbridge.Client // moto without the proxy: publishing the interruption event

	stopOnce sync.Once
}

func (s *setup) start(ctx context.Context, pollInterval time.Duration) error {
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
	opts := operator.Options{
		PollInterval: pollInterval, FastPollInterval: time.Second,
		QueueName: queueName, CreateQueue: true,
	}
	// A Stop's 60 s leave the preStop hook its time before the first flush is measured (35 s kept for it).
	opts.Timings.FlushTimeout, opts.Timings.StopTimeout, opts.Timings.IdleRequeue = 20*time.Second, 60*time.Second, 10*time.Second
	opts.Timings.IdleMinute = demoIdleMinute
	cfg := harness.StackConfig{Env: s.env, Namespace: namespace, MotoURL: s.moto.URL, ClusterPrefix: "demo-", Options: opts}
	if s.vm {
		// An emulated guest releases in 15-30 s, more under load.
		cfg.Options.Timings.FlushTimeout, cfg.Options.Timings.StopTimeout = 2*time.Minute, 3*time.Minute
		// Its status command takes 10-30 s where EC2's takes well under 1 s.
		cfg.Options.Timings.StatusTimeout = time.Minute
	} else {
		cfg.Instances = &instancesim.Options{Dir: s.workDir, Log: s.instanceLog}
		cfg.Regions = []string{otherRegion} // step move; the VM fleet follows one region
	}
	if s.st, err = harness.NewStack(cfg); err != nil {
		return err
	}
	if s.vm {
		s.out.Progress("starting the VM fleet: a QEMU VM for each running instance, from image %s", s.image.Dir)
		if s.fleet, err = instancevm.StartFleet(instancevm.FleetOptions{EC2: s.st.EC2, Cluster: s.st.Cluster,
			Dir: s.workDir, Image: s.image, Log: s.instanceLog}); err != nil {
			return err
		}
		s.st.Options.SSHResolver = s.fleet.Resolve
		s.inst = &vmSide{Fleet: s.fleet, ws: "", opts: func() plugin.Options {
			return plugin.Options{Client: s.env.Client, Namespace: namespace}
		}}
	} else {
		s.inst = simSide{s.st.Sim}
	}
	s.events = eventbridge.NewFromConfig(s.st.DirectAWSConfig())
	s.out.Note("moto %s, fault proxy %s (counts calls, sets spot prices, shows pending states), account %s",
		s.moto.URL, s.st.Proxy.URL(), s.st.Account)
	// moto skips in-between states; the proxy shows a few, as EC2 would.
	s.st.Proxy.InstancePendingDescribes(1)
	s.st.Proxy.SnapshotPendingDescribes(2)

	s.out.Progress("starting the xdrive operator in this process (namespace %q, cluster tag %s)", namespace, s.st.Cluster)
	if err := s.st.Start(); err != nil {
		return err
	}
	s.out.Note("real SSH agent: operator.Options.SSHResolver maps each instance IP to its loopback sshd; interruption queue %q via EventBridge", queueName)
	return nil
}

// loadImage finds the VMs' image: XDRIVE_INSTANCEVM_IMAGE (hack/demo.sh
// builds it before it enters the loopback-only namespace), else the cached
// build of hack/instancevm-image.sh.
func (s *setup) loadImage() error {
	if err := instancevm.CheckHost(); err != nil {
		return err
	}
	var err error
	s.image, err = instancevm.LoadImage(os.Getenv("XDRIVE_INSTANCEVM_IMAGE"), filepath.Join(testenv.RepoRoot(), "hack", "instancevm-image.sh"))
	if err != nil {
		return err
	}
	accel, why := instancevm.Accel()
	s.out.Note("VM image %s; accelerator %s (%s)", s.image.Dir, accel, why)
	return nil
}

// instanceLog prints what the simulated instances do.
func (s *setup) instanceLog(id, msg string) {
	if id == "" {
		s.out.Note("instance simulator: %s", msg)
		return
	}
	s.out.Instance(id, "%s", msg)
}

// setSpotPrices gives every (type, zone) the demo may use a price, so that
// t3.large is cheapest in us-east-1a, then us-east-1b, then us-east-1c, and
// m6i.large in us-east-1b is within 20% of t3.large in us-east-1c (so that a
// relaunch after t3.large's interruption in us-east-1b reattaches the volume
// there). With regions, every zone of the other region costs more than any
// of moto.Region's, so that the Workstation moves there only when told to
// (step move).
func (s *setup) setSpotPrices(ctx context.Context, types []string, regions bool) error {
	base := map[string]float64{"t3.large": 0.0208, "m6i.large": 0.0240, "m7i.large": 0.0412}
	step := map[string]float64{"us-east-1a": 0, "us-east-1b": 0.0023, "us-east-1c": 0.0046}
	s.out.Note("spot prices, set through the fault proxy (moto's own are all $0.00001):")
	for i, t := range types {
		zones, err := s.st.OfferedZones(ctx, t)
		if err != nil {
			return err
		}
		if regions {
			west, err := offeredZones(ctx, s.st.EC2In(otherRegion), t)
			if err != nil {
				return err
			}
			zones = append(zones, west...)
		}
		p, ok := base[t]
		if !ok {
			p = 0.030 + 0.003*float64(i)
		}
		var prices []string
		for _, z := range zones {
			d, ok := step[z]
			switch {
			case strings.HasPrefix(z, otherRegion):
				d = 0.0120
			case !ok:
				d = 0.0090
			}
			price := fmt.Sprintf("%.4f", p+d)
			s.st.Proxy.SetSpotPrice(t, z, price)
			prices = append(prices, z+" $"+price)
		}
		s.out.Note("  %-10s %s", t, strings.Join(prices, ", "))
	}
	return nil
}

// offeredZones lists the zones where a region offers an instance type.
func offeredZones(ctx context.Context, api *ec2.Client, instanceType string) ([]string, error) {
	out, err := api.DescribeInstanceTypeOfferings(ctx, &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: ec2types.LocationTypeAvailabilityZone,
		Filters:      []ec2types.Filter{cloud.Filter("instance-type", instanceType)},
	})
	if err != nil {
		return nil, fmt.Errorf("describing offerings of %s: %w", instanceType, err)
	}
	var zones []string
	for _, o := range out.InstanceTypeOfferings {
		zones = append(zones, aws.ToString(o.Location))
	}
	slices.Sort(zones)
	return zones, nil
}

// stop tears everything down; it is safe to call more than once and from a signal handler.
func (s *setup) stop() {
	s.stopOnce.Do(func() {
		if s.fleet != nil {
			s.fleet.Stop()
		}
		if s.st != nil {
			if err := s.st.Close(); err != nil {
				s.out.Note("the operator stopped with: %v", err)
			}
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
func (s *setup) kill() {
	if s.inst != nil {
		s.inst.Kill()
	}
	if s.moto != nil {
		s.moto.Stop()
	}
	if s.env != nil {
		_ = s.env.Stop()
	}
}
