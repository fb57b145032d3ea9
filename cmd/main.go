// Command manager runs the xdrive controllers.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/middleware"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/interruption"
	"github.com/xdrive-io/xdrive/internal/operator"
)

// Set at build time: go build -ldflags "-X main.version=... -X main.commit=... -X main.buildDate=..."
// (the Makefile and the Dockerfile pass them).
var (
	version   = "dev"
	commit    = ""
	buildDate = ""
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// flags are the manager's command line.
type flags struct {
	metricsAddr, probeAddr, sshOverride string
	leaderElect, secureMetrics          bool
	showVersion                         bool
	ec2RateScale                        float64
	pprofAddr                           string
	regions                             []string
	opts                                operator.Options
	zap                                 zap.Options
}

// newFlags defines the manager's flags on fs; docs/flags.md is generated
// from them (make docs; TestFlagsDoc fails when it is stale).
func newFlags(fs *flag.FlagSet) *flags {
	// The operator's settings start at its defaults, defined in one place.
	f := &flags{opts: operator.Defaults(), zap: zap.Options{Development: false}}
	opts := &f.opts
	fs.BoolVar(&f.showVersion, "version", false, "Print the version, commit and build date, and exit.")
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", ":8443", "Address of the metrics endpoint; 0 disables it.")
	fs.BoolVar(&f.secureMetrics, "metrics-secure", true, "Serve metrics over HTTPS with authentication (TokenReview) and authorization (SubjectAccessReview).")
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "Address of the health and readiness probes.")
	fs.BoolVar(&f.leaderElect, "leader-elect", false, "Elect a leader (the Lease xdrive.io), so that only one replica is active; config/manager and the Helm chart turn it on.")
	fs.StringVar(&opts.Cluster, "cluster-name", "", "Ownership tag value (xdrive.io/cluster) of every AWS resource this operator creates. It touches only resources with this tag, and it must match CLUSTER_NAME in the IAM policy (docs/aws.md). Required.")
	fs.DurationVar(&opts.PollInterval, "instance-poll-interval", opts.PollInterval, "How often all owned instances are described in one call.")
	fs.StringVar(&opts.QueueName, "interruption-queue", "", "SQS queue of EC2 interruption events, one per installation, never shared; empty polls instance state only (with --create-interruption-queue: xdrive-<cluster-name>; at most 61 characters, so that the rules named after it fit EventBridge's limit).")
	fs.BoolVar(&opts.CreateQueue, "create-interruption-queue", false, "Create the queue, its policy and its four EventBridge rules at start (the IAM policy's OnlyWithCreateInterruptionQueueFlag statement; docs/aws.md, section 3).")
	fs.DurationVar(&opts.Timings.FlushTimeout, "interruption-flush-timeout", opts.Timings.FlushTimeout, "Longest wait for the instance to flush after an interruption notice, counted from the notice's time; then it is terminated and the drive snapshotted once detached.")
	fs.DurationVar(&opts.Timings.StopTimeout, "stop-timeout", opts.Timings.StopTimeout, "Longest teardown over SSH (stop the containers, unmount the drive) when a Workstation is stopped.")
	fs.DurationVar(&opts.Timings.IdleRequeue, "idle-check-interval", opts.Timings.IdleRequeue, "How often a Ready Workstation is checked over SSH.")
	fs.DurationVar(&opts.Timings.IdleMinute, "idle-minute", opts.Timings.IdleMinute, "How long a minute of spec.idleStop lasts (tests and demos shorten it).")
	fs.DurationVar(&opts.Timings.AvoidFor, "avoid-offering-for", opts.Timings.AvoidFor, "How long an interrupted or full offering (capacity type, instance type, zone) is skipped.")
	fs.IntVar(&opts.Concurrency, "concurrency", opts.Concurrency, "Parallel reconciles per controller.")
	fs.DurationVar(&opts.GCInterval, "gc-interval", opts.GCInterval, "How often the garbage collector lists owned instances and volumes that no object references.")
	fs.DurationVar(&opts.GCGrace, "gc-grace", opts.GCGrace, "How long an unreferenced owned resource is left alone before it is collected.")
	fs.Float64Var(&f.ec2RateScale, "ec2-rate-limit-scale", 1, "Scale of EC2's documented request buckets, one per API action (RunInstances 5 and 2/s, each mutating action 50 and 5/s, each non-mutating one 100 and 20/s) the operator keeps under; raise it if AWS raised your account's limits, 0 turns the limiter off.")
	fs.StringVar(&f.pprofAddr, "pprof-bind-address", "", "Address of the pprof endpoint (e.g. 127.0.0.1:6060); empty turns it off.")
	fs.StringVar(&f.sshOverride, "ssh-address-override", "", "Dial every instance at this host:port instead of its IP: for tests and the demo only, never against AWS.")
	fs.Func("operator-cidr", "IPv4 networks (repeatable, or comma-separated; empty adds none) that may always reach SSH through the security group of each Workstation with spec.access: the operator's own egress address, e.g. its NAT gateway's x.x.x.x/32. Unset: the class's security groups must admit the operator, as without spec.access.", func(v string) error {
		cidrs, err := parseCIDRs(v)
		opts.OperatorCIDRs = append(opts.OperatorCIDRs, cidrs...)
		return err
	})
	fs.DurationVar(&opts.AccessResync, "access-resync-interval", opts.AccessResync, "How often the rules of each Workstation's own security group are compared with EC2's, to undo changes made from outside.")
	fs.Func("regions", "Other AWS regions (repeatable, or comma-separated) that WorkstationClasses may list in spec.regions, besides AWS_REGION: each gets its own EC2 clients and rate limits, instance poll, garbage collector and interruption queue (of the same name). A drive moves to one by copying its snapshot (ec2:CopySnapshot).", func(v string) error {
		for _, r := range strings.Split(v, ",") {
			if r = strings.TrimSpace(r); r != "" {
				if err := cloud.CheckRegion(r); err != nil {
					return err
				}
				f.regions = append(f.regions, r)
			}
		}
		return nil
	})
	fs.DurationVar(&opts.PriceRefresh, "on-demand-price-refresh", opts.PriceRefresh, "How often the region's on-demand prices are read from the Pricing API (pricing:GetProducts, in us-east-1); until it answers, and outside the commercial regions, the committed table prices them. 0 reads only the table.")
	f.zap.BindFlags(fs)
	return f
}

func run() error {
	f := newFlags(flag.CommandLine)
	opts := &f.opts
	flag.Parse()
	if f.showVersion {
		fmt.Println(versionString())
		return nil
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&f.zap)))

	if opts.Cluster == "" {
		return fmt.Errorf("--cluster-name is required: it marks the AWS resources this operator owns")
	}
	if opts.CreateQueue && opts.QueueName == "" {
		opts.QueueName = interruption.DefaultQueueName(opts.Cluster)
	}
	if opts.CreateQueue {
		if _, err := interruption.RuleNames(opts.QueueName); err != nil {
			return err
		}
	}
	if sshOverride := f.sshOverride; sshOverride != "" {
		if _, _, err := net.SplitHostPort(sshOverride); err != nil {
			return fmt.Errorf("--ssh-address-override: %w", err)
		}
		opts.SSHResolver = func(context.Context, string) (string, error) { return sshOverride, nil }
	}
	opts.UserData = operator.UserData
	ctx := ctrl.SetupSignalHandler()
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("loading AWS config: %w", err)
	}
	if err := cloud.CheckRegion(awsCfg.Region); err != nil {
		return err
	}

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return fmt.Errorf("registering Kubernetes types: %w", err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return fmt.Errorf("registering xdrive types: %w", err)
	}
	metricsOpts := metricsserver.Options{BindAddress: f.metricsAddr, SecureServing: f.secureMetrics}
	if f.secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsOpts,
		HealthProbeBindAddress: f.probeAddr,
		LeaderElection:         f.leaderElect,
		LeaderElectionID:       operator.LeaderElectionID,
		Cache:                  operator.CacheOptions(),
		PprofBindAddress:       f.pprofAddr,
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	var apiOptions []func(*middleware.Stack) error
	if f.ec2RateScale > 0 {
		apiOptions = append(apiOptions, cloud.NewEC2RateLimiter(cloud.AWSEC2Limits.Scaled(f.ec2RateScale)).Middleware)
	}
	clients := operator.NewAWS(awsCfg, apiOptions...)
	for _, region := range f.regions {
		if region == awsCfg.Region {
			continue
		}
		cfg := awsCfg.Copy()
		cfg.Region = region
		var regionOptions []func(*middleware.Stack) error
		if f.ec2RateScale > 0 {
			// EC2 throttles each region on its own.
			regionOptions = append(regionOptions, cloud.NewEC2RateLimiter(cloud.AWSEC2Limits.Scaled(f.ec2RateScale)).Middleware)
		}
		if clients.Elsewhere == nil {
			clients.Elsewhere = map[string]operator.AWS{}
		}
		clients.Elsewhere[region] = operator.NewAWS(cfg, regionOptions...)
	}
	if err := operator.Setup(ctx, mgr, clients, *opts); err != nil {
		return fmt.Errorf("setting up controllers: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("adding the readiness check: %w", err)
	}
	ctrl.Log.Info("Starting manager", "version", version, "commit", buildCommit(), "cluster", opts.Cluster, "region", awsCfg.Region)
	return mgr.Start(ctx)
}

// versionString is what --version prints: "xdrive <version> (commit <sha>, built <date>)".
func versionString() string {
	date := buildDate
	if date == "" {
		date = "unknown"
	}
	return fmt.Sprintf("xdrive %s (commit %s, built %s)", version, buildCommit(), date)
}

// buildCommit is the commit set by ldflags or, failing that, the one the Go
// toolchain stamped into the binary.
func buildCommit() string {
	if commit != "" {
		return commit
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return s.Value[:12]
			}
		}
	}
	return "unknown"
}

// parseCIDRs reads --operator-cidr: IPv4 networks separated by commas, each
// masked to its network; an empty value is none (an unset kustomize setting).
func parseCIDRs(v string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("want an IPv4 CIDR such as 198.51.100.7/32, got %q", s)
		}
		out = append(out, p.Masked().String())
	}
	return out, nil
}
