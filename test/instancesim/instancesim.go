// Package instancesim simulates the instance side of the operator's EC2
// instances on this machine, with the real bootstrap. For every instance of
// the cluster that EC2 (moto, or a fake) reports running, it
//
//   - makes a sandbox directory (XDRIVE_ROOT) with fake NVMe disks, whose
//     serials are the EBS volume IDs;
//   - runs the instance's real user-data, read back from EC2, in it: the real
//     xdrive-bootstrap, with the system commands it calls (docker, mount,
//     mkfs, systemctl, ...) replaced by shim/shim.sh;
//   - starts the real xdrive-watch against a loopback IMDS, where Notice sets
//     a spot interruption notice;
//   - starts a real sshd (test/sshd) on 127.0.0.1 with the host key and
//     authorized key that the user-data installed, whose only commands are
//     agent.StatusCommand and agent.ReleaseCommand, run in the sandbox.
//
// The operator reaches an instance through Sim.Resolve, its
// operator.Options.SSHResolver: instance addresses map to the loopback sshd,
// and EC2's made-up instance IPs are never dialled. When EC2 reports an
// instance stopped or terminated, its processes are killed, as a power-off
// would. An EBS volume is a directory: a volume restored from a snapshot
// starts as a copy of the volume the snapshot was taken from (EC2's
// DescribeVolumes and DescribeSnapshots say which; for a snapshot copied from
// another region, the source its xdrive.io/copied-from tags name), so data
// written on one instance is there on the next. Options.Elsewhere adds
// regions: their instances are followed too.
//
// Typical use, with the operator started on the same EC2 account:
//
//	sim, err := instancesim.Start(instancesim.Options{EC2: direct, Cluster: cluster, Dir: dir})
//	...
//	defer sim.Stop()
//	opts.SSHResolver = sim.Resolve // and leave opts.Agent nil: the real agent.SSH
package instancesim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/test/instancesim/shim"
)

// EC2API is what the simulator reads from EC2: the operator's EC2 interface,
// and the instances' user-data. *ec2.Client satisfies it; point it at moto
// directly rather than through a fault proxy, so that the simulator's calls
// are neither counted nor faulted.
type EC2API interface {
	cloud.EC2API
	DescribeInstanceAttribute(ctx context.Context, in *ec2.DescribeInstanceAttributeInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error)
}

// Options configures a simulator.
type Options struct {
	// EC2 is read for the cluster's instances, their user-data and volumes. Required.
	EC2 EC2API
	// Elsewhere are EC2's other regions, by name, read the same way: an
	// instance's user-data and volume are read in its own region, and a
	// volume restored from a copied snapshot (tag xdrive.io/copied-from)
	// starts as a copy of the data of the source snapshot's volume.
	Elsewhere map[string]EC2API
	// Cluster is the xdrive.io/cluster tag of the instances to simulate. Required.
	Cluster string
	// Dir is the work directory: instances/ID holds an instance's sandbox
	// (root/), shim state (shim/) and logs (log/boot.log, ssh.log,
	// watch.log); volumes/VOLUME-ID holds a volume's data. Required.
	Dir string
	// Log, if set, is told what instances do: boots, power-offs, and the
	// notable lines of their bootstrap, SSH and watcher logs. instanceID is
	// empty for the simulator's own troubles.
	Log func(instanceID, msg string)
	// Interval is how often EC2 is described; default 300ms.
	Interval time.Duration
}

// Sim follows the cluster's instances in EC2 and simulates each one.
type Sim struct {
	opts Options
	bin  string // the shims, first on every instance's PATH
	imds *imds

	cancel  context.CancelFunc
	done    chan struct{} // closed when the polling loop ends
	boots   sync.WaitGroup
	stopped sync.Once

	mu       sync.Mutex
	hosts    map[string]*Instance // by instance ID
	order    []string             // instance IDs, in launch order
	byAddr   map[string]*Instance // by public and private IP
	changed  chan struct{}        // closed and replaced when hosts change
	stopping bool
}

// Start starts the IMDS and follows the cluster's instances until Stop.
func Start(opts Options) (*Sim, error) {
	if opts.EC2 == nil || opts.Cluster == "" || opts.Dir == "" {
		return nil, errors.New("instancesim: Options need EC2, Cluster and Dir")
	}
	if opts.Log == nil {
		opts.Log = func(string, string) {}
	}
	if opts.Interval <= 0 {
		opts.Interval = 300 * time.Millisecond
	}
	s := &Sim{opts: opts, bin: filepath.Join(opts.Dir, "bin"), done: make(chan struct{}),
		hosts: map[string]*Instance{}, byAddr: map[string]*Instance{}, changed: make(chan struct{})}
	for _, d := range []string{filepath.Join(opts.Dir, "volumes"), filepath.Join(opts.Dir, "instances")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := shim.Install(s.bin); err != nil {
		return nil, fmt.Errorf("instancesim: installing the shims: %w", err)
	}
	var err error
	if s.imds, err = startIMDS(); err != nil {
		return nil, fmt.Errorf("instancesim: starting the IMDS: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.run(ctx)
	return s, nil
}

// Stop powers off every instance, waits for them and stops the IMDS. The
// volume directories stay in Dir.
func (s *Sim) Stop() {
	s.stopped.Do(func() {
		s.mu.Lock()
		s.stopping = true
		s.mu.Unlock()
		s.cancel()
		<-s.done
		s.Kill()
		s.boots.Wait()
		s.imds.Close()
	})
}

// Kill powers off every instance at once, without waiting; for a second Ctrl-C.
func (s *Sim) Kill() {
	s.mu.Lock()
	hosts := make([]*Instance, 0, len(s.hosts))
	for _, h := range s.hosts {
		hosts = append(hosts, h)
	}
	s.mu.Unlock()
	for _, h := range hosts {
		s.powerOff(h, "")
	}
}

// Resolve is the operator's SSH resolver: an instance address maps to the
// loopback sshd of that instance, waiting up to 30s while it boots. Unknown
// addresses are refused, never dialled.
func (s *Sim) Resolve(ctx context.Context, addr string) (string, error) {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		addr = h
	}
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		h, changed := s.byAddr[addr], s.changed
		s.mu.Unlock()
		if h != nil {
			select {
			case <-h.ready:
				if h.err != nil {
					return "", fmt.Errorf("instancesim: instance %s (%s) failed to boot: %w", h.ID, addr, h.err)
				}
				return h.sshAddr, nil
			case <-ctx.Done():
				return "", ctx.Err()
			case <-deadline.C:
				return "", fmt.Errorf("instancesim: instance %s (%s) is still booting", h.ID, addr)
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", ctx.Err()
		case <-deadline.C:
			return "", fmt.Errorf("instancesim: no simulated instance has address %s; refusing to dial it", addr)
		}
	}
}

// Notice makes the instance's IMDS answer spot/instance-action with a
// terminate action two minutes out, as EC2's does after a spot interruption
// notice; its xdrive-watch then releases the drive.
func (s *Sim) Notice(instanceID string) { s.imds.Notice(instanceID) }

// Instance returns a simulated instance by ID.
func (s *Sim) Instance(id string) (*Instance, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.hosts[id]
	return h, ok
}

// Launched lists every instance simulated so far, in launch order.
func (s *Sim) Launched() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.order...)
}

// Running lists the instances that are not powered off.
func (s *Sim) Running() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, id := range s.order {
		if !s.hosts[id].isOff() {
			ids = append(ids, id)
		}
	}
	return ids
}

// Failed returns an error for the first instance that failed to boot, if any.
func (s *Sim) Failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.order {
		h := s.hosts[id]
		select {
		case <-h.ready:
			if h.err != nil {
				return fmt.Errorf("simulated instance %s failed to boot: %w", id, h.err)
			}
		default:
		}
	}
	return nil
}

// run follows EC2's instances until ctx ends.
func (s *Sim) run(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		if err := s.sync(ctx); err != nil && ctx.Err() == nil {
			s.opts.Log("", fmt.Sprintf("describing instances: %v", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sync follows the instances of every region.
func (s *Sim) sync(ctx context.Context) error {
	var errs []error
	if err := s.syncRegion(ctx, "", s.opts.EC2); err != nil {
		errs = append(errs, err)
	}
	for _, region := range slices.Sorted(maps.Keys(s.opts.Elsewhere)) {
		if err := s.syncRegion(ctx, region, s.opts.Elsewhere[region]); err != nil {
			errs = append(errs, fmt.Errorf("in %s: %w", region, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Sim) syncRegion(ctx context.Context, region string, api EC2API) error {
	p := ec2.NewDescribeInstancesPaginator(api, &ec2.DescribeInstancesInput{
		Filters: []ec2types.Filter{cloud.TagFilter(cloud.TagCluster, s.opts.Cluster)},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				s.observe(ctx, in, region, api)
			}
		}
	}
	return nil
}

// observe boots an instance seen running for the first time, and powers off
// one that EC2 no longer runs.
func (s *Sim) observe(ctx context.Context, in ec2types.Instance, region string, api EC2API) {
	id := aws.ToString(in.InstanceId)
	state := ec2types.InstanceStateNamePending
	if in.State != nil {
		state = in.State.Name
	}
	s.mu.Lock()
	h, known := s.hosts[id]
	if !known && state == ec2types.InstanceStateNameRunning && !s.stopping {
		if h = newInstance(in, filepath.Join(s.opts.Dir, "instances", id)); h.VolumeID != "" {
			h.Region, h.api = region, api
			s.hosts[id] = h
			s.order = append(s.order, id)
			for _, a := range []string{h.PublicIP, h.PrivateIP} {
				if a != "" {
					s.byAddr[a] = h
				}
			}
			s.notify()
			s.boots.Add(1)
			go func() {
				defer s.boots.Done()
				s.boot(ctx, h)
			}()
		}
	}
	s.mu.Unlock()
	if known && state != ec2types.InstanceStateNameRunning && state != ec2types.InstanceStateNamePending {
		s.powerOff(h, string(state))
	}
}

// notify wakes the resolvers waiting for a change; s.mu is held.
func (s *Sim) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Sim) boot(ctx context.Context, h *Instance) {
	if err := s.bootSteps(ctx, h); err != nil {
		h.err = err
		s.opts.Log(h.ID, fmt.Sprintf("boot failed: %v", err))
	}
	close(h.ready)
	s.mu.Lock()
	s.notify()
	s.mu.Unlock()
}

// powerOff ends everything the instance runs; its volume directory stays,
// as an EBS volume does.
func (s *Sim) powerOff(h *Instance, why string) {
	h.offOnce.Do(func() {
		s.mu.Lock()
		for _, a := range []string{h.PublicIP, h.PrivateIP} {
			if s.byAddr[a] == h {
				delete(s.byAddr, a)
			}
		}
		s.mu.Unlock()
		h.kill()
		if why != "" {
			s.opts.Log(h.ID, fmt.Sprintf("powered off (EC2 says %s): sshd, xdrive-watch and the bootstrap are gone", why))
		}
	})
}
