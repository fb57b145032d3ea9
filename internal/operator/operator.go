// Package operator wires the controllers, the AWS services and the
// interruption receiver into a controller-runtime manager.
package operator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/controller/common"
	"github.com/xdrive-io/xdrive/internal/controller/gc"
	"github.com/xdrive-io/xdrive/internal/controller/workstation"
	"github.com/xdrive-io/xdrive/internal/controller/xdrive"
	"github.com/xdrive-io/xdrive/internal/drives"
	"github.com/xdrive-io/xdrive/internal/instances"
	"github.com/xdrive-io/xdrive/internal/interruption"
	"github.com/xdrive-io/xdrive/internal/pricing"
	"github.com/xdrive-io/xdrive/internal/securitygroup"
	"github.com/xdrive-io/xdrive/internal/sshx"
)

// AWS holds the clients of every AWS service the operator calls.
type AWS struct {
	EC2    cloud.EC2API
	SSM    cloud.SSMAPI
	SQS    cloud.QueueAPI
	Events cloud.RulesAPI
	// Region is the clients' region.
	Region string
	// SecurityGroups manages the Workstations' own groups (spec.access); nil refuses spec.access.
	SecurityGroups cloud.SecurityGroupsAPI
	// Pricing reads on-demand prices; nil leaves the committed table alone.
	Pricing cloud.PricingAPI
	// Elsewhere are the clients of the other regions Workstations may run
	// in (--regions), by region; each has its own poll, queue and collector.
	Elsewhere map[string]AWS
}

// regionParts are the services the controllers use in one region.
type regionParts struct {
	clients  AWS
	cache    *instances.Cache
	drives   *drives.Service
	launcher *instances.Launcher
	catalog  *instances.Catalog
	groups   *securitygroup.Service
}

func newRegionParts(clients AWS, opts Options, wsEvents chan event.TypedGenericEvent[*v1alpha1.Workstation], xdEvents chan event.TypedGenericEvent[*v1alpha1.XDrive]) regionParts {
	p := regionParts{clients: clients}
	p.cache = instances.NewCache(instances.CacheOptions{
		API: clients.EC2, Cluster: opts.Cluster, Window: opts.BatchWindow,
		OnChange: func(i instances.Instance) { wake(i, wsEvents, xdEvents) },
	})
	p.drives = drives.NewService(clients.EC2, opts.Cluster, opts.BatchWindow, nil)
	p.launcher = &instances.Launcher{API: clients.EC2, Cluster: opts.Cluster, TerminateWindow: opts.BatchWindow}
	p.catalog = instances.NewCatalog(clients.EC2, clients.SSM, time.Hour)
	p.catalog.Region = clients.Region
	p.groups = securityGroups(clients, opts.Cluster)
	return p
}

// Options configures the operator.
type Options struct {
	// Cluster is the ownership tag value; the operator touches nothing without it.
	Cluster string
	// PollInterval is how often every owned instance is described in one call.
	PollInterval time.Duration
	// FastPollInterval is the poll interval while any instance starts or stops.
	FastPollInterval time.Duration
	// BatchWindow is how long lookups by ID gather before one EC2 call.
	BatchWindow time.Duration
	// Concurrency is the number of parallel reconciles per controller.
	Concurrency int
	Timings     workstation.Timings
	Images      workstation.ImageDefaults
	// UserData renders an instance's bootstrap.
	UserData func(workstation.UserDataInput) ([]byte, error)
	// SSHResolver maps instance addresses to dialed addresses (tests and the demo: 127.0.0.1).
	SSHResolver sshx.Resolver
	// Agent overrides the SSH agent, for tests and benchmarks.
	Agent agent.Agent
	// QueueName is the SQS queue of interruption events; empty means poll only.
	QueueName   string
	CreateQueue bool
	// QueuePollers is how many ReceiveMessage calls run at once; 0 means interruption.DefaultPollers.
	QueuePollers int
	// GCInterval is how often the garbage collector lists owned instances and volumes.
	GCInterval time.Duration
	// GCGrace is how long an unreferenced resource is left alone before it is collected.
	GCGrace time.Duration
	// OperatorCIDRs may reach SSH through every Workstation's own security group.
	OperatorCIDRs []string
	// AccessResync is how often a Workstation's security group rules are compared with EC2's.
	AccessResync time.Duration
	// PriceRefresh is how often the region's on-demand prices are read from
	// the Pricing API; unlike the other fields, zero turns it off (tests).
	PriceRefresh time.Duration
	// OnNotice is called when an interruption notice for a Workstation is recorded.
	OnNotice func(ws types.NamespacedName, instanceID string, at time.Time)
}

// DefaultImages are public SSM parameters of Amazon Linux 2023 and the Deep Learning GPU AMI.
var DefaultImages = workstation.ImageDefaults{
	CPU: map[string]string{
		"x86_64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
		"arm64":  "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
	},
	GPU: map[string]string{
		"x86_64": "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id",
		"arm64":  "/aws/service/deeplearning/ami/arm64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id",
	},
}

// Defaults are the settings the operator uses for the zero fields of
// Options. They are defined here only: the manager's flags (cmd/main.go)
// start from them.
func Defaults() Options {
	return Options{
		PollInterval:     30 * time.Second,
		FastPollInterval: 2 * time.Second,
		BatchWindow:      20 * time.Millisecond,
		Concurrency:      32,
		Timings: workstation.Timings{
			FlushTimeout: 60 * time.Second,
			StopTimeout:  5 * time.Minute,
			IdleRequeue:  5 * time.Minute,
			AvoidFor:     30 * time.Minute,
			IdleMinute:   time.Minute,
		},
		Images:       DefaultImages,
		GCInterval:   5 * time.Minute,
		GCGrace:      10 * time.Minute,
		AccessResync: 10 * time.Minute,
		PriceRefresh: 12 * time.Hour,
	}
}

// defaults fills the zero fields of o from Defaults.
func (o *Options) defaults() {
	d := Defaults()
	o.PollInterval = cmp.Or(o.PollInterval, d.PollInterval)
	o.FastPollInterval = cmp.Or(o.FastPollInterval, d.FastPollInterval)
	o.BatchWindow = cmp.Or(o.BatchWindow, d.BatchWindow)
	o.Concurrency = cmp.Or(o.Concurrency, d.Concurrency)
	o.GCInterval = cmp.Or(o.GCInterval, d.GCInterval)
	o.GCGrace = cmp.Or(o.GCGrace, d.GCGrace)
	o.AccessResync = cmp.Or(o.AccessResync, d.AccessResync)
	t := &o.Timings
	t.FlushTimeout = cmp.Or(t.FlushTimeout, d.Timings.FlushTimeout)
	t.StopTimeout = cmp.Or(t.StopTimeout, d.Timings.StopTimeout)
	t.IdleRequeue = cmp.Or(t.IdleRequeue, d.Timings.IdleRequeue)
	t.AvoidFor = cmp.Or(t.AvoidFor, d.Timings.AvoidFor)
	t.IdleMinute = cmp.Or(t.IdleMinute, d.Timings.IdleMinute)
	if o.Images.CPU == nil {
		o.Images = d.Images
	}
}

// Setup registers the controllers and background loops with the manager.
func Setup(ctx context.Context, mgr manager.Manager, clients AWS, opts Options) error {
	opts.defaults()
	if opts.Cluster == "" {
		return errors.New("a cluster name is required: it marks what the operator owns")
	}
	if opts.UserData == nil {
		return errors.New("a user-data renderer is required")
	}
	if err := common.Index(ctx, mgr.GetFieldIndexer()); err != nil {
		return fmt.Errorf("indexing Workstations by drive: %w", err)
	}
	costMetrics(mgr.GetClient())
	wsEvents := make(chan event.TypedGenericEvent[*v1alpha1.Workstation], 4096)
	xdEvents := make(chan event.TypedGenericEvent[*v1alpha1.XDrive], 4096)
	home := newRegionParts(clients, opts, wsEvents, xdEvents)
	elsewhere := map[string]regionParts{}
	for region, c := range clients.Elsewhere {
		if region != clients.Region {
			elsewhere[region] = newRegionParts(c, opts, wsEvents, xdEvents)
		}
	}
	ag := opts.Agent
	if ag == nil {
		ag = agent.SSH{Resolver: opts.SSHResolver}
	}
	driveRegions := map[string]xdrive.RegionServices{}
	for region, p := range elsewhere {
		driveRegions[region] = xdrive.RegionServices{Volumes: p.drives, Snapshots: p.drives, Copies: p.drives, Instances: p.cache}
	}
	if err := (&xdrive.Reconciler{
		Client: mgr.GetClient(), Region: clients.Region, Volumes: home.drives, Snapshots: home.drives, Copies: home.drives,
		Instances: home.cache, Elsewhere: driveRegions,
		Recorder: mgr.GetEventRecorder("xdrive"), InstanceEvents: xdEvents, MaxConcurrent: opts.Concurrency,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the XDrive controller: %w", err)
	}
	agentEvents := make(chan event.TypedGenericEvent[*v1alpha1.Workstation], 4096)
	urgentEvents := make(chan event.TypedGenericEvent[*v1alpha1.Workstation], 1024)
	calls := &agent.Calls{Agent: ag, Context: ctx, Finished: func(owner string, kind agent.CallKind) {
		ns, name, ok := cloud.SplitObjectKey(owner)
		if !ok {
			return
		}
		w := &v1alpha1.Workstation{}
		w.Namespace, w.Name = ns, name
		if kind == agent.CallRelease {
			urgentEvents <- event.TypedGenericEvent[*v1alpha1.Workstation]{Object: w}
			return
		}
		agentEvents <- event.TypedGenericEvent[*v1alpha1.Workstation]{Object: w}
	}}
	wsRegions := map[string]workstation.RegionServices{}
	for region, p := range elsewhere {
		wsRegions[region] = workstation.RegionServices{Catalog: p.catalog, Launcher: p.launcher, Instances: p.cache, Volumes: p.drives, Groups: p.groups}
	}
	if err := (&workstation.Reconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(),
		Catalog: home.catalog, Region: clients.Region,
		Launcher: home.launcher, Volumes: home.drives,
		Instances: home.cache, Calls: calls, Recorder: mgr.GetEventRecorder("workstation"),
		UserData: opts.UserData, Images: opts.Images, Timings: opts.Timings,
		InstanceEvents: wsEvents, AgentEvents: agentEvents, UrgentEvents: urgentEvents, MaxConcurrent: opts.Concurrency,
		Access:    workstation.Access{Groups: home.groups, OperatorCIDRs: opts.OperatorCIDRs, Resync: opts.AccessResync},
		Elsewhere: wsRegions,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the Workstation controller: %w", err)
	}
	all := []regionParts{home}
	for _, p := range elsewhere {
		all = append(all, p)
	}
	for _, p := range all {
		if err := p.run(ctx, mgr, opts, wsEvents, xdEvents); err != nil {
			return err
		}
	}
	return nil
}

// run adds the region's collector, instance poll, price refresh and interruption queue to the manager.
func (p regionParts) run(ctx context.Context, mgr manager.Manager, opts Options,
	wsEvents chan event.TypedGenericEvent[*v1alpha1.Workstation], xdEvents chan event.TypedGenericEvent[*v1alpha1.XDrive]) error {
	clients := p.clients
	collector := &gc.Collector{
		Client: mgr.GetClient(), Instances: p.cache, Launcher: p.launcher, Volumes: p.drives, Snapshots: p.drives,
		Recorder: mgr.GetEventRecorder("xdrive-gc"), Grace: opts.GCGrace,
		Wake: func(i instances.Instance) { wake(i, wsEvents, xdEvents) },
	}
	if p.groups != nil {
		collector.Groups = p.groups
	}
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		return collector.Run(ctx, opts.GCInterval)
	})); err != nil {
		return fmt.Errorf("adding the garbage collector of region %s: %w", clients.Region, err)
	}
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		return p.cache.Run(ctx, opts.PollInterval, opts.FastPollInterval)
	})); err != nil {
		return fmt.Errorf("adding the instance poll of region %s: %w", clients.Region, err)
	}
	if clients.Pricing != nil && opts.PriceRefresh > 0 {
		if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
			refreshPrices(ctx, clients.Pricing, clients.Region, opts.PriceRefresh)
			return nil
		})); err != nil {
			return fmt.Errorf("adding the price refresh of region %s: %w", clients.Region, err)
		}
	}
	cache := p.cache
	if opts.QueueName == "" {
		return nil
	}
	return mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		log := ctrl.Log.WithName("interruption")
		url, err := interruption.EnsureQueue(ctx, clients.SQS, clients.Events, interruption.Options{
			QueueName: opts.QueueName, Create: opts.CreateQueue, ClusterName: opts.Cluster,
		})
		if err != nil {
			return err
		}
		warnings, err := interruption.SharingWarnings(ctx, clients.SQS, clients.Events, url, interruption.Options{
			QueueName: opts.QueueName, Create: opts.CreateQueue, ClusterName: opts.Cluster,
		})
		if err != nil {
			log.Error(err, "Could not check whether the interruption queue is shared")
		}
		for _, w := range warnings {
			log.Info("WARNING: the interruption queue must not be shared: "+w, "queue", url)
		}
		log.Info("Receiving interruption events", "queue", url, "region", clients.Region)
		log = log.WithValues("region", clients.Region)
		return (&interruption.Receiver{
			QueueAPI: clients.SQS, QueueURL: url, Logger: log, Pollers: opts.QueuePollers,
			Handler: &workstation.NoticeHandler{Client: mgr.GetClient(), Instances: cache, Received: opts.OnNotice},
		}).Run(logr.NewContext(ctx, log))
	}))
}

// wake enqueues the Workstation and the XDrive an instance belongs to.
func wake(i instances.Instance, ws chan<- event.TypedGenericEvent[*v1alpha1.Workstation], xd chan<- event.TypedGenericEvent[*v1alpha1.XDrive]) {
	if ns, name, ok := cloud.SplitObjectKey(i.Workstation()); ok {
		w := &v1alpha1.Workstation{}
		w.Namespace, w.Name = ns, name
		ws <- event.TypedGenericEvent[*v1alpha1.Workstation]{Object: w}
	}
	if ns, name, ok := cloud.SplitObjectKey(i.Tags[cloud.TagDrive]); ok {
		d := &v1alpha1.XDrive{}
		d.Namespace, d.Name = ns, name
		xd <- event.TypedGenericEvent[*v1alpha1.XDrive]{Object: d}
	}
}

// refreshPrices reads the region's on-demand prices from the Pricing API
// now and every interval, until ctx ends. A failure keeps the prices it had
// (the committed table at first): the API is outside some networks.
func refreshPrices(ctx context.Context, api cloud.PricingAPI, region string, interval time.Duration) {
	log := ctrl.Log.WithName("pricing").WithValues("region", region)
	if !slices.Contains(cloud.Partitions["aws"], region) {
		log.Info("Using the committed on-demand price table: the Pricing API serves the commercial regions only")
		return
	}
	failing := false
	for {
		prices, err := pricing.FetchOnDemand(ctx, api, region)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			log.Error(err, "Could not read on-demand prices from the Pricing API; using the committed table until it answers")
			failing = true
		case err == nil:
			instances.SetOnDemandPrices(region, prices)
			log.Info("Read on-demand prices from the Pricing API", "types", len(prices))
			failing = false
		}
		wait := interval
		if failing {
			wait = min(interval, priceRetry)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// priceRetry is how soon the Pricing API is asked again after a failure.
const priceRetry = 15 * time.Minute

func securityGroups(clients AWS, cluster string) *securitygroup.Service {
	if clients.SecurityGroups == nil {
		return nil
	}
	return &securitygroup.Service{API: clients.SecurityGroups, Cluster: cluster}
}
