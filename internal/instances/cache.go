package instances

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/xdrive-io/xdrive/internal/batch"
	"github.com/xdrive-io/xdrive/internal/cloud"
)

// maxFilterValues is the most values EC2 takes in one filter.
const maxFilterValues = 200

// Cache keeps the last known state of the cluster's instances. Lookups from
// many reconciles are merged into one DescribeInstances, and a slow poll of
// every owned instance replaces per-object polling while they are idle.
type Cache struct {
	api      cloud.InstancesAPI
	cluster  string
	byID     *batch.Batcher[Instance]
	byOwner  *batch.Batcher[[]Instance]
	onChange func(Instance)
	clock    clock.PassiveClock

	mu    sync.RWMutex
	known map[string]Instance
}

// CacheOptions configures a Cache.
type CacheOptions struct {
	API     cloud.InstancesAPI
	Cluster string
	// Window is how long lookups gather before one DescribeInstances; zero: no gathering.
	Window time.Duration
	// OnChange is called when a poll or lookup sees an instance change state.
	OnChange func(Instance)
	// Clock is the time source; the real clock if nil.
	Clock clock.PassiveClock
}

// NewCache returns an empty cache.
func NewCache(o CacheOptions) *Cache {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	c := &Cache{api: o.API, cluster: o.Cluster, onChange: o.OnChange, clock: o.Clock, known: map[string]Instance{}}
	c.byID = batch.New(o.Window, maxFilterValues, c.describeIDs)
	c.byOwner = batch.New(o.Window, maxFilterValues, c.describeOwners)
	return c
}

// Get returns the instance as EC2 describes it now. A missing instance is
// reported as not found; EC2 may take a moment to show a new one.
func (c *Cache) Get(ctx context.Context, id string) (Instance, bool, error) {
	return c.byID.Get(ctx, id)
}

// Cached returns the last known state without calling EC2.
func (c *Cache) Cached(id string) (Instance, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	i, ok := c.known[id]
	return i, ok
}

// Owned returns the live (not shutting down or terminated) instances tagged
// for the Workstation with this UID; an earlier object of the same name is not it.
func (c *Cache) Owned(ctx context.Context, workstation, uid string) ([]Instance, error) {
	list, _, err := c.byOwner.Get(ctx, workstation)
	return slices.DeleteFunc(slices.Clone(list), func(i Instance) bool { return i.Tags[cloud.TagOwnerUID] != uid }), err
}

// OfLaunch returns the instance of a Workstation's launch attempt, in any
// state (terminated too): found by its tags, as a launch whose answer was
// lost left it. found is false while EC2's listings do not show it.
func (c *Cache) OfLaunch(ctx context.Context, workstation, uid string, attempt int32) (inst Instance, found bool, err error) {
	err = c.describe(ctx, &ec2.DescribeInstancesInput{
		Filters: []ec2types.Filter{
			cloud.TagFilter(cloud.TagCluster, c.cluster),
			cloud.TagFilter(cloud.TagWorkstation, workstation),
			cloud.TagFilter(cloud.TagOwnerUID, uid),
			cloud.TagFilter(cloud.TagLaunchAttempt, fmt.Sprint(attempt)),
		},
	}, func(i Instance) { inst, found = i, true })
	return inst, found, err
}

// Live returns every instance of the cluster that is not shutting down or terminated.
func (c *Cache) Live(ctx context.Context) ([]Instance, error) {
	var out []Instance
	err := c.describe(ctx, &ec2.DescribeInstancesInput{
		Filters: []ec2types.Filter{
			cloud.TagFilter(cloud.TagCluster, c.cluster),
			cloud.Filter("instance-state-name", liveStates...),
		},
	}, func(i Instance) { out = append(out, i) })
	return out, err
}

var liveStates = []string{StatePending, StateRunning, StateStopping, StateStopped}

// Poll describes every live instance of the cluster in as few calls as EC2 allows.
func (c *Cache) Poll(ctx context.Context) error {
	seen := map[string]bool{}
	err := c.describe(ctx, &ec2.DescribeInstancesInput{
		Filters:    []ec2types.Filter{cloud.TagFilter(cloud.TagCluster, c.cluster)},
		MaxResults: aws.Int32(1000),
	}, func(i Instance) { seen[i.ID] = true })
	if err != nil {
		return err
	}
	// An instance missing from one listing is not gone: EC2's listings lag, and
	// tags can be edited. Only terminated instances that EC2 stopped listing are forgotten;
	// the others keep their last known state until a lookup by ID says more.
	c.mu.Lock()
	for id, i := range c.known {
		if !seen[id] && i.State == StateTerminated {
			delete(c.known, id)
		}
	}
	c.mu.Unlock()
	return nil
}

// Run polls until ctx ends; it is a manager Runnable. It polls every
// interval while all instances are steady, and every fastInterval while any
// is starting or stopping, so transitions of all Workstations share one call.
func (c *Cache) Run(ctx context.Context, interval, fastInterval time.Duration) error {
	log := logr.FromContextOrDiscard(ctx).WithName("instance-poll")
	last := c.clock.Now()
	t := time.NewTicker(min(interval, fastInterval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if c.clock.Since(last) < interval && !c.inTransition() {
				continue
			}
			last = c.clock.Now()
			if err := c.Poll(ctx); err != nil {
				log.Error(err, "Polling instances failed")
			}
		}
	}
}

// inTransition reports whether any known instance is between steady states.
func (c *Cache) inTransition() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, i := range c.known {
		if i.State == StatePending || i.State == StateShuttingDown || i.State == StateStopping {
			return true
		}
	}
	return false
}

// Remember records what the operator itself just did to an instance (a launch
// answer, or a termination), so the fast poll follows it. It wakes no one:
// the caller's own status write, which records the same, wakes its readers.
func (c *Cache) Remember(i Instance) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.known[i.ID] = i
}

func (c *Cache) describeIDs(ctx context.Context, ids []string) (map[string]Instance, error) {
	out := make(map[string]Instance, len(ids))
	err := c.describe(ctx, &ec2.DescribeInstancesInput{
		Filters: []ec2types.Filter{cloud.Filter("instance-id", ids...)},
	}, func(i Instance) { out[i.ID] = i })
	return out, err
}

func (c *Cache) describeOwners(ctx context.Context, owners []string) (map[string][]Instance, error) {
	out := make(map[string][]Instance, len(owners))
	err := c.describe(ctx, &ec2.DescribeInstancesInput{
		Filters: []ec2types.Filter{
			cloud.TagFilter(cloud.TagCluster, c.cluster),
			cloud.Filter("tag:"+cloud.TagWorkstation, owners...),
			cloud.Filter("instance-state-name", liveStates...),
		},
	}, func(i Instance) { out[i.Workstation()] = append(out[i.Workstation()], i) })
	return out, err
}

func (c *Cache) describe(ctx context.Context, in *ec2.DescribeInstancesInput, each func(Instance)) error {
	p := ec2.NewDescribeInstancesPaginator(c.api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("describing instances: %w", err)
		}
		for _, r := range page.Reservations {
			for _, raw := range r.Instances {
				i := fromEC2(raw)
				if !cloud.OwnedBy(raw.Tags, c.cluster) {
					continue
				}
				c.remember(i)
				each(i)
			}
		}
	}
	return nil
}

func (c *Cache) remember(i Instance) {
	c.mu.Lock()
	old, had := c.known[i.ID]
	c.known[i.ID] = i
	c.mu.Unlock()
	if !had || old.State != i.State || old.DriveVolumeID != i.DriveVolumeID {
		c.notify(i)
	}
}

func (c *Cache) notify(i Instance) {
	if c.onChange != nil {
		c.onChange(i)
	}
}
