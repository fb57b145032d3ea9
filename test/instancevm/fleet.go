package instancevm

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/cloud"
)

// FleetEC2 is what a Fleet reads from EC2 (moto): the cluster's instances,
// their user-data, and the volumes and snapshots behind their drives.
type FleetEC2 interface {
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeInstanceAttribute(ctx context.Context, in *ec2.DescribeInstanceAttributeInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error)
	DescribeVolumes(ctx context.Context, in *ec2.DescribeVolumesInput, opts ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error)
	DescribeSnapshots(ctx context.Context, in *ec2.DescribeSnapshotsInput, opts ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
}

// FleetOptions configures a Fleet.
type FleetOptions struct {
	// EC2 is read for the cluster's instances; point it at moto directly. Required.
	EC2 FleetEC2
	// Cluster is the xdrive.io/cluster tag of the instances to boot. Required.
	Cluster string
	// Dir holds volumes/VOLUME-ID.raw (the EBS volumes, which outlive the
	// VMs) and instances/ID (each VM's files). Required.
	Dir   string
	Image Image
	// Log, if set, is told what the VMs do; instanceID is empty for the fleet's own troubles.
	Log func(instanceID, msg string)
	// Interval is how often EC2 is described; default 1s.
	Interval time.Duration
}

// Fleet is test/instancesim's follower with real VMs: for each instance of
// the cluster that EC2 reports running, it boots a VM with the user-data
// read back from EC2 and the drive's volume as its NVMe disk; when EC2 says
// the instance stops or ends, the VM is powered off. A volume is a file: a
// blank one is sparse, one restored from a snapshot starts as a copy
// (reflink when the filesystem allows) of the file of the volume the
// snapshot was taken from, as it is when the restore is seen (the operator
// snapshots a released drive and no VM writes it afterwards).
type Fleet struct {
	opts   FleetOptions
	cancel context.CancelFunc
	done   chan struct{}
	boots  sync.WaitGroup
	stop   sync.Once

	mu       sync.Mutex
	vms      map[string]*FleetVM
	order    []string
	byAddr   map[string]*FleetVM
	stopping bool
}

// FleetVM is one instance of the fleet.
type FleetVM struct {
	ID, Type, Zone, Address string
	VolumeID, RestoredFrom  string
	Drive                   Drive

	ready chan struct{} // closed once QEMU runs (vm) or the boot failed (err)
	vm    *VM
	err   error

	mu  sync.Mutex
	off bool // powered off by the fleet (EC2 stopped or ended it)
}

// StartFleet follows the cluster's instances until Stop.
func StartFleet(opts FleetOptions) (*Fleet, error) {
	if opts.EC2 == nil || opts.Cluster == "" || opts.Dir == "" || opts.Image.Dir == "" {
		return nil, errors.New("instancevm: FleetOptions need EC2, Cluster, Dir and Image")
	}
	if err := CheckHost(); err != nil {
		return nil, err
	}
	if opts.Log == nil {
		opts.Log = func(string, string) {}
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	for _, d := range []string{"volumes", "instances"} {
		if err := os.MkdirAll(filepath.Join(opts.Dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Fleet{opts: opts, cancel: cancel, done: make(chan struct{}), vms: map[string]*FleetVM{}, byAddr: map[string]*FleetVM{}}
	go f.run(ctx)
	return f, nil
}

// Stop powers off every VM and stops following EC2. The volume files stay.
func (f *Fleet) Stop() {
	f.stop.Do(func() {
		f.mu.Lock()
		f.stopping = true
		f.mu.Unlock()
		f.cancel()
		<-f.done
		f.boots.Wait()
		f.Kill()
	})
}

// Kill powers off every VM at once.
func (f *Fleet) Kill() {
	f.mu.Lock()
	vms := make([]*FleetVM, 0, len(f.vms))
	for _, v := range f.vms {
		vms = append(vms, v)
	}
	f.mu.Unlock()
	for _, v := range vms {
		f.powerOff(v, "")
	}
}

// Resolve is the operator's SSH resolver: an instance's address maps to its
// VM's forwarded sshd. Unknown addresses are refused, never dialled.
func (f *Fleet) Resolve(ctx context.Context, addr string) (string, error) {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		addr = h
	}
	f.mu.Lock()
	v := f.byAddr[addr]
	f.mu.Unlock()
	if v == nil {
		return "", fmt.Errorf("instancevm: no VM has address %s; refusing to dial it", addr)
	}
	select {
	case <-v.ready:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if v.err != nil {
		return "", fmt.Errorf("instancevm: VM %s failed to boot: %w", v.ID, v.err)
	}
	select {
	case <-v.vm.Exited():
		return "", fmt.Errorf("instancevm: VM %s is off", v.ID)
	default:
	}
	return v.vm.SSHAddr, nil
}

// Notice makes the instance's IMDS show a spot interruption notice.
func (f *Fleet) Notice(instanceID string) error {
	v, ok := f.VM(instanceID)
	if !ok {
		return fmt.Errorf("instancevm: no VM %s", instanceID)
	}
	<-v.ready
	if v.err != nil {
		return v.err
	}
	return v.vm.Notice()
}

// VM returns the fleet's VM for an instance.
func (f *Fleet) VM(id string) (*FleetVM, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.vms[id]
	return v, ok
}

// Launched lists every instance booted so far, in launch order.
func (f *Fleet) Launched() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.order...)
}

// Running lists the instances whose VM runs.
func (f *Fleet) Running() []string {
	f.mu.Lock()
	ids := append([]string(nil), f.order...)
	f.mu.Unlock()
	var running []string
	for _, id := range ids {
		if v, _ := f.VM(id); v.running() {
			running = append(running, id)
		}
	}
	return running
}

// Failed returns an error for the first VM that failed to boot or whose
// QEMU ended without EC2 stopping it (a guest panic ends QEMU).
func (f *Fleet) Failed() error {
	f.mu.Lock()
	ids := append([]string(nil), f.order...)
	f.mu.Unlock()
	for _, id := range ids {
		v, _ := f.VM(id)
		select {
		case <-v.ready:
		default:
			continue
		}
		if v.err != nil {
			return fmt.Errorf("VM %s failed to boot: %w", id, v.err)
		}
		v.mu.Lock()
		off := v.off
		v.mu.Unlock()
		select {
		case <-v.vm.Exited():
			if !off && v.vm.err != nil {
				return fmt.Errorf("VM %s stopped by itself (QEMU: %w); console: %s", id, v.vm.err, v.vm.SerialLog(1500))
			}
			if !off {
				return fmt.Errorf("VM %s powered itself off; console: %s", id, v.vm.SerialLog(1500))
			}
		default:
		}
	}
	return nil
}

func (v *FleetVM) running() bool {
	select {
	case <-v.ready:
	default:
		return true // booting
	}
	if v.err != nil {
		return false
	}
	select {
	case <-v.vm.Exited():
		return false
	default:
		return true
	}
}

// Off reports whether the VM is off.
func (v *FleetVM) Off() bool { return !v.running() }

// Released reports whether the drive's filesystem was left clean: the VM is
// off and its ext4 journal needs no recovery, i.e. xdrive-ctl release
// unmounted it before the power-off. Read from the volume file with dumpe2fs.
func (v *FleetVM) Released() bool {
	if v.running() {
		return false
	}
	out, err := exec.Command("dumpe2fs", "-h", v.Drive.Path).Output()
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "Filesystem features:") {
			return !strings.Contains(l, "needs_recovery")
		}
	}
	return false
}

func (f *Fleet) run(ctx context.Context) {
	defer close(f.done)
	t := time.NewTicker(f.opts.Interval)
	defer t.Stop()
	for {
		if err := f.sync(ctx); err != nil && ctx.Err() == nil {
			f.opts.Log("", fmt.Sprintf("describing instances: %v", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (f *Fleet) sync(ctx context.Context) error {
	p := ec2.NewDescribeInstancesPaginator(f.opts.EC2, &ec2.DescribeInstancesInput{
		Filters: []ec2types.Filter{cloud.TagFilter(cloud.TagCluster, f.opts.Cluster)},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				f.observe(ctx, in)
			}
		}
	}
	return nil
}

// observe boots an instance seen running for the first time, and powers off
// one that EC2 no longer runs.
func (f *Fleet) observe(ctx context.Context, in ec2types.Instance) {
	id := aws.ToString(in.InstanceId)
	state := ec2types.InstanceStateNamePending
	if in.State != nil {
		state = in.State.Name
	}
	f.mu.Lock()
	v, known := f.vms[id]
	if !known && state == ec2types.InstanceStateNameRunning && !f.stopping {
		v = &FleetVM{ID: id, Type: string(in.InstanceType), Address: aws.ToString(in.PublicIpAddress), ready: make(chan struct{})}
		if in.Placement != nil {
			v.Zone = aws.ToString(in.Placement.AvailabilityZone)
		}
		for _, m := range in.BlockDeviceMappings {
			if m.Ebs != nil && aws.ToString(m.DeviceName) == bootstrap.DriveDevice {
				v.VolumeID = aws.ToString(m.Ebs.VolumeId)
			}
		}
		if v.VolumeID != "" {
			f.vms[id] = v
			f.order = append(f.order, id)
			for _, a := range []string{aws.ToString(in.PublicIpAddress), aws.ToString(in.PrivateIpAddress)} {
				if a != "" {
					f.byAddr[a] = v
				}
			}
			f.boots.Add(1)
			go func() {
				defer f.boots.Done()
				if err := f.boot(ctx, v); err != nil {
					v.err = err
					f.opts.Log(id, fmt.Sprintf("boot failed: %v", err))
				}
				close(v.ready)
			}()
		}
	}
	f.mu.Unlock()
	if known && state != ec2types.InstanceStateNameRunning && state != ec2types.InstanceStateNamePending {
		f.powerOff(v, string(state))
	}
}

func (f *Fleet) boot(ctx context.Context, v *FleetVM) error {
	ud, err := f.userData(ctx, v.ID)
	if err != nil {
		return err
	}
	if v.Drive, err = f.volume(ctx, v); err != nil {
		return err
	}
	// A reattached volume: its last VM must be off first (QEMU locks the file).
	for deadline := time.Now().Add(2 * time.Minute); f.otherUser(v); {
		if time.Now().After(deadline) {
			return fmt.Errorf("volume %s is still attached to a running VM", v.VolumeID)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	from := "a blank volume"
	switch {
	case v.RestoredFrom != "":
		from = "a volume restored from " + v.RestoredFrom
	case v.Drive.Path != "" && fileUsed(v.Drive.Path):
		from = "a volume reattached, as its last instance left it"
	}
	f.opts.Log(v.ID, fmt.Sprintf("booting a VM for %s in %s, drive %s (%s) as an NVMe disk backed by %s",
		v.Type, v.Zone, v.VolumeID, from, v.Drive.Path))
	vm, err := Boot(Config{Image: f.opts.Image, Dir: filepath.Join(f.opts.Dir, "instances", v.ID), InstanceID: v.ID,
		Address: v.Address, UserData: ud, Drive: v.Drive, Log: func(msg string) { f.opts.Log(v.ID, msg) }})
	if err != nil {
		return err
	}
	v.vm = vm
	return nil
}

// otherUser reports whether another running VM has v's volume.
func (f *Fleet) otherUser(v *FleetVM) bool {
	f.mu.Lock()
	others := make([]*FleetVM, 0, len(f.vms))
	for _, o := range f.vms {
		if o != v && o.VolumeID == v.VolumeID {
			others = append(others, o)
		}
	}
	f.mu.Unlock()
	for _, o := range others {
		if o.running() {
			return true
		}
	}
	return false
}

// powerOff ends the VM as EC2 stopping or terminating it would; its volume file stays.
func (f *Fleet) powerOff(v *FleetVM, why string) {
	v.mu.Lock()
	if v.off {
		v.mu.Unlock()
		return
	}
	v.off = true
	v.mu.Unlock()
	<-v.ready
	if v.vm != nil {
		v.vm.PowerOff()
	}
	if why != "" {
		f.opts.Log(v.ID, fmt.Sprintf("VM powered off (EC2 says %s)", why))
	}
}

// fileUsed reports whether a sparse file holds any data.
func fileUsed(path string) bool {
	out, err := exec.Command("du", "-k", path).Output()
	return err == nil && !strings.HasPrefix(string(out), "0\t")
}

// userData reads the instance's user-data back from EC2, as cloud-init would from IMDS.
func (f *Fleet) userData(ctx context.Context, id string) ([]byte, error) {
	out, err := f.opts.EC2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
		InstanceId: aws.String(id), Attribute: ec2types.InstanceAttributeNameUserData,
	})
	if err != nil {
		return nil, fmt.Errorf("reading the user-data of %s: %w", id, err)
	}
	if out.UserData == nil || aws.ToString(out.UserData.Value) == "" {
		return nil, fmt.Errorf("instance %s has no user-data", id)
	}
	raw := aws.ToString(out.UserData.Value)
	if b, err := base64.StdEncoding.DecodeString(raw); err == nil {
		return b, nil
	}
	return []byte(raw), nil
}

// volume returns the drive's volume file, making it when the volume is new:
// sparse when blank, else a copy of the snapshot's source volume, grown to
// the volume's size.
func (f *Fleet) volume(ctx context.Context, v *FleetVM) (Drive, error) {
	path := filepath.Join(f.opts.Dir, "volumes", v.VolumeID+".raw")
	out, err := f.opts.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{v.VolumeID}})
	if err != nil {
		return Drive{}, fmt.Errorf("describing volume %s: %w", v.VolumeID, err)
	}
	if len(out.Volumes) != 1 {
		return Drive{}, fmt.Errorf("volume %s: EC2 shows %d volumes", v.VolumeID, len(out.Volumes))
	}
	vol := out.Volumes[0]
	size := int64(aws.ToInt32(vol.Size)) << 30
	if _, err := os.Stat(path); err == nil { // reattached
		d := Drive{Path: path, VolumeID: v.VolumeID}
		return d, d.Grow(size)
	}
	if v.RestoredFrom = aws.ToString(vol.SnapshotId); v.RestoredFrom == "" {
		return BlankDrive(path, v.VolumeID, size)
	}
	snaps, err := f.opts.EC2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{v.RestoredFrom}})
	if err != nil {
		return Drive{}, fmt.Errorf("describing snapshot %s: %w", v.RestoredFrom, err)
	}
	if len(snaps.Snapshots) != 1 {
		return Drive{}, fmt.Errorf("snapshot %s: EC2 shows %d snapshots", v.RestoredFrom, len(snaps.Snapshots))
	}
	src := filepath.Join(f.opts.Dir, "volumes", aws.ToString(snaps.Snapshots[0].VolumeId)+".raw")
	if _, err := os.Stat(src); err != nil {
		return Drive{}, fmt.Errorf("snapshot %s: the file of its source volume is unknown to the fleet: %w", v.RestoredFrom, err)
	}
	return Restore(src, path, v.VolumeID, size)
}
