package main

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/crypto/ssh"

	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/instances"
)

//go:embed shim.sh
var shimScript []byte

// shimmed are the system commands the instance scripts run that the demo
// replaces (see shim.sh). Everything else (bash, tar, base64, ssh-keygen,
// flock, curl, timeout, ...) is the real thing.
var shimmed = []string{
	"docker", "systemctl", "blkid", "mkfs.ext4", "mkfs.xfs", "mount", "umount", "findmnt",
	"resize2fs", "xfs_growfs", "nvidia-ctk", "sync", "fuser", "sshd",
}

const (
	driveDev = "nvme1n1" // the drive's NVMe disk in every sandbox
	rootDev  = "nvme0n1"
	ebsModel = "Amazon Elastic Block Store"
)

// fleet plays the instance side of every EC2 instance moto runs for the
// operator. For each instance it makes a sandbox (XDRIVE_ROOT) with fake NVMe
// disks, runs the instance's real user-data from moto in it (which unpacks and
// runs the real xdrive-bootstrap), starts the real xdrive-watch against a
// loopback IMDS, and starts a real sshd on 127.0.0.1 with the host key and
// authorized key that the user-data installed. The operator reaches it
// through Resolve; moto's instance IPs are never dialled. When moto reports
// the instance terminated, its processes are killed, as a power-off would.
//
// EBS volumes are directories under volumes/: a volume restored from a
// snapshot starts as a copy of the volume the snapshot was taken from, as
// moto's VolumeId/SnapshotId say; moto itself stores no data.
type fleet struct {
	ec2     *ec2.Client // straight to moto: not counted by the fault proxy
	cluster string
	dir     string
	bin     string
	imds    *imds
	out     *printer

	mu       sync.Mutex
	hosts    map[string]*host // by instance ID
	order    []string         // instance IDs, in launch order
	byAddr   map[string]*host // by public and private IP
	changed  chan struct{}    // closed and replaced when hosts change
	wg       sync.WaitGroup
	stopping bool
}

// host is one simulated instance.
type host struct {
	id, typ, zone, publicIP, privateIP, volumeID string
	restoredFrom                                 string // snapshot the drive was restored from
	root, state, logs                            string

	ready   chan struct{} // closed once sshd listens (sshAddr) or booting failed (err)
	sshAddr string
	err     error

	mu      sync.Mutex
	off     bool
	procs   []*exec.Cmd
	sshd    *sshd
	offOnce sync.Once
}

func newFleet(api *ec2.Client, cluster, dir string, m *imds, out *printer) (*fleet, error) {
	f := &fleet{ec2: api, cluster: cluster, dir: dir, bin: filepath.Join(dir, "bin"), imds: m, out: out,
		hosts: map[string]*host{}, byAddr: map[string]*host{}, changed: make(chan struct{})}
	for _, d := range []string{f.bin, filepath.Join(dir, "volumes"), filepath.Join(dir, "instances")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	shim := filepath.Join(dir, "shim.sh")
	if err := os.WriteFile(shim, shimScript, 0o755); err != nil {
		return nil, err
	}
	for _, name := range shimmed {
		if err := os.Symlink(shim, filepath.Join(f.bin, name)); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// Resolve is the operator's SSH resolver: an instance address maps to the
// loopback sshd of that instance's stand-in, waiting while it boots. Unknown
// addresses are refused, never dialled.
func (f *fleet) Resolve(ctx context.Context, addr string) (string, error) {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		addr = h
	}
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		h, changed := f.byAddr[addr], f.changed
		f.mu.Unlock()
		if h != nil {
			select {
			case <-h.ready:
				if h.err != nil {
					return "", fmt.Errorf("demo: instance %s (%s) failed to boot: %w", h.id, addr, h.err)
				}
				return h.sshAddr, nil
			case <-ctx.Done():
				return "", ctx.Err()
			case <-deadline.C:
				return "", fmt.Errorf("demo: instance %s (%s) is still booting", h.id, addr)
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", ctx.Err()
		case <-deadline.C:
			return "", fmt.Errorf("demo: no simulated instance has address %s; refusing to dial it", addr)
		}
	}
}

// Run follows moto's instances until ctx ends.
func (f *fleet) Run(ctx context.Context) {
	t := time.NewTicker(300 * time.Millisecond)
	defer t.Stop()
	for {
		if err := f.sync(ctx); err != nil && ctx.Err() == nil {
			f.out.Note("instance stand-in: describing instances: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (f *fleet) sync(ctx context.Context) error {
	p := ec2.NewDescribeInstancesPaginator(f.ec2, &ec2.DescribeInstancesInput{
		Filters: []ec2types.Filter{cloud.TagFilter(cloud.TagCluster, f.cluster)},
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

func (f *fleet) observe(ctx context.Context, in ec2types.Instance) {
	id := aws.ToString(in.InstanceId)
	state := ec2types.InstanceStateNamePending
	if in.State != nil {
		state = in.State.Name
	}
	f.mu.Lock()
	h, known := f.hosts[id]
	if !known && state == ec2types.InstanceStateNameRunning && !f.stopping && driveVolume(in) != "" {
		h = &host{id: id, typ: string(in.InstanceType), publicIP: aws.ToString(in.PublicIpAddress),
			privateIP: aws.ToString(in.PrivateIpAddress), ready: make(chan struct{})}
		if in.Placement != nil {
			h.zone = aws.ToString(in.Placement.AvailabilityZone)
		}
		var rootVolume string
		for _, m := range in.BlockDeviceMappings {
			if m.Ebs == nil {
				continue
			}
			if aws.ToString(m.DeviceName) == instances.DriveDevice {
				h.volumeID = aws.ToString(m.Ebs.VolumeId)
			} else if rootVolume == "" {
				rootVolume = aws.ToString(m.Ebs.VolumeId)
			}
		}
		f.hosts[id] = h
		f.order = append(f.order, id)
		for _, a := range []string{h.publicIP, h.privateIP} {
			if a != "" {
				f.byAddr[a] = h
			}
		}
		close(f.changed)
		f.changed = make(chan struct{})
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.boot(ctx, h, rootVolume)
		}()
	}
	f.mu.Unlock()
	if known && state != ec2types.InstanceStateNameRunning && state != ec2types.InstanceStateNamePending {
		f.powerOff(h, string(state))
	}
}

// driveVolume is the drive's volume as moto shows it, or "" while moto does not show it yet.
func driveVolume(in ec2types.Instance) string {
	for _, m := range in.BlockDeviceMappings {
		if aws.ToString(m.DeviceName) == instances.DriveDevice && m.Ebs != nil {
			return aws.ToString(m.Ebs.VolumeId)
		}
	}
	return ""
}

// Failed returns the first instance that failed to boot, if any.
func (f *fleet) Failed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range f.order {
		h := f.hosts[id]
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

// powerOff ends everything the instance runs; its volume directory stays, as an EBS volume does.
func (f *fleet) powerOff(h *host, why string) {
	h.offOnce.Do(func() {
		f.mu.Lock()
		for _, a := range []string{h.publicIP, h.privateIP} {
			if f.byAddr[a] == h {
				delete(f.byAddr, a)
			}
		}
		f.mu.Unlock()
		h.mu.Lock()
		h.off = true
		procs, s := h.procs, h.sshd
		h.mu.Unlock()
		for _, c := range procs {
			if c.Process != nil {
				_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			}
		}
		s.Stop()
		if why != "" {
			f.out.Instance(h.id, "powered off (moto says %s): sshd, xdrive-watch and the bootstrap are gone", why)
		}
	})
}

// StopAll powers off every instance, for the end of the demo.
func (f *fleet) StopAll() {
	f.mu.Lock()
	f.stopping = true
	hosts := make([]*host, 0, len(f.hosts))
	for _, h := range f.hosts {
		hosts = append(hosts, h)
	}
	f.mu.Unlock()
	for _, h := range hosts {
		f.powerOff(h, "")
	}
	f.wg.Wait()
}

// Running lists the instances whose stand-in still runs.
func (f *fleet) Running() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, id := range f.order {
		h := f.hosts[id]
		h.mu.Lock()
		if !h.off {
			ids = append(ids, id)
		}
		h.mu.Unlock()
	}
	return ids
}

// Host returns the stand-in of an instance.
func (f *fleet) Host(id string) (*host, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, ok := f.hosts[id]
	return h, ok
}

// Launched lists every instance seen, in launch order.
func (f *fleet) Launched() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.order...)
}

func (f *fleet) boot(ctx context.Context, h *host, rootVolume string) {
	err := f.bootSteps(ctx, h, rootVolume)
	if err != nil {
		h.err = err
		f.out.Instance(h.id, "boot failed: %v", err)
	}
	close(h.ready)
	f.mu.Lock()
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func (f *fleet) bootSteps(ctx context.Context, h *host, rootVolume string) error {
	if h.volumeID == "" {
		return errors.New("moto shows no drive volume at " + instances.DriveDevice)
	}
	base := filepath.Join(f.dir, "instances", h.id)
	h.root, h.state, h.logs = filepath.Join(base, "root"), filepath.Join(base, "shim"), filepath.Join(base, "log")
	for _, d := range []string{h.root, h.state, h.logs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	userData, err := f.userData(ctx, h.id)
	if err != nil {
		return err
	}
	volDir, err := f.volume(ctx, h)
	if err != nil {
		return err
	}
	if rootVolume == "" {
		rootVolume = "vol-0000000000000000r"
	}
	if err := h.addDisk(rootDev, strings.Replace(rootVolume, "-", "", 1), "nvme0n1p1"); err != nil {
		return err
	}
	if err := h.addDisk(driveDev, strings.Replace(h.volumeID, "-", "", 1)); err != nil {
		return err
	}
	from := "a blank volume"
	if h.restoredFrom != "" {
		from = "a volume restored from " + h.restoredFrom
	}
	f.out.Instance(h.id, "booting %s in %s: sandbox %s, drive %s (%s) as /dev/%s",
		h.typ, h.zone, h.root, h.volumeID, from, driveDev)

	env := f.env(h, volDir)
	udPath := filepath.Join(base, "user-data")
	if err := os.WriteFile(udPath, userData, 0o700); err != nil {
		return err
	}
	bootDone, err := h.start("boot.log", env, "bash", udPath)
	if err != nil {
		return err
	}
	go f.tail(ctx, h, "boot.log", bootLines)
	go f.tail(ctx, h, "ssh.log", sshLines)
	go f.tail(ctx, h, "watch.log", watchLines)

	// The bootstrap installs the pinned host key and restarts sshd; the
	// stand-in starts the real sshd at that point.
	restarted := filepath.Join(h.state, "sshd-restarted")
	deadline := time.Now().Add(60 * time.Second)
	for !exists(restarted) {
		if time.Now().After(deadline) {
			return errors.New("the bootstrap did not restart sshd within 60s")
		}
		select {
		case <-bootDone:
			if !exists(restarted) {
				return fmt.Errorf("the bootstrap ended before restarting sshd: %s", lastLines(filepath.Join(h.logs, "boot.log"), 5))
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	// systemd would have started xdrive-watch (user-data: systemctl enable --now xdrive-watch.service).
	if _, err := h.start("watch.log", env, filepath.Join(h.root, "usr/local/sbin/xdrive-watch")); err != nil {
		return err
	}
	wrapper := filepath.Join(base, "force-command.sh")
	if err := os.WriteFile(wrapper, []byte(forceCommand(h, env)), 0o700); err != nil {
		return err
	}
	s, err := startSSHD(sshdOptions{
		Dir:            base,
		HostKeyFile:    filepath.Join(h.root, "etc/ssh/ssh_host_ed25519_key"),
		AuthorizedKeys: filepath.Join(h.root, "etc/ssh/xdrive_authorized_keys/%u"),
		Wrapper:        wrapper,
	})
	if err != nil {
		return err
	}
	h.mu.Lock()
	off := h.off
	h.sshd = s
	h.mu.Unlock()
	if off {
		s.Stop()
		return errors.New("powered off while booting")
	}
	h.sshAddr = s.Addr
	pub, _ := os.ReadFile(filepath.Join(h.root, "etc/ssh/ssh_host_ed25519_key.pub"))
	f.out.Instance(h.id, "sshd listens on %s for %s, host key %s (installed by the user-data)",
		s.Addr, orDash(h.publicIP), fingerprint(string(pub)))
	return nil
}

// userData reads the instance's user-data back from moto, as cloud-init would from IMDS.
func (f *fleet) userData(ctx context.Context, id string) ([]byte, error) {
	out, err := f.ec2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
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

// volume returns the directory that holds the drive volume's data, making it
// from the snapshot's source volume when the volume is new.
func (f *fleet) volume(ctx context.Context, h *host) (string, error) {
	dir := filepath.Join(f.dir, "volumes", h.volumeID)
	out, err := f.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{h.volumeID}})
	if err != nil {
		return "", fmt.Errorf("describing volume %s: %w", h.volumeID, err)
	}
	if len(out.Volumes) == 1 {
		h.restoredFrom = aws.ToString(out.Volumes[0].SnapshotId)
	}
	if exists(dir) {
		return dir, nil
	}
	if h.restoredFrom != "" {
		snaps, err := f.ec2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{h.restoredFrom}})
		if err != nil {
			return "", fmt.Errorf("describing snapshot %s: %w", h.restoredFrom, err)
		}
		if len(snaps.Snapshots) == 1 {
			src := filepath.Join(f.dir, "volumes", aws.ToString(snaps.Snapshots[0].VolumeId))
			if exists(src) {
				if out, err := exec.Command("cp", "-a", src, dir).CombinedOutput(); err != nil {
					return "", fmt.Errorf("restoring %s from %s: %w: %s", h.volumeID, src, err, out)
				}
				return dir, nil
			}
		}
		return "", fmt.Errorf("snapshot %s: its source volume's data is unknown to the demo", h.restoredFrom)
	}
	return dir, os.MkdirAll(dir, 0o755)
}

func (h *host) addDisk(name, serial string, partitions ...string) error {
	sys := filepath.Join(h.root, "sys/block", name)
	files := map[string]string{
		filepath.Join(sys, "device/model"):  ebsModel + "\n",
		filepath.Join(sys, "device/serial"): serial + "\n",
		filepath.Join(h.root, "dev", name):  "",
	}
	for path, data := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			return err
		}
	}
	for _, p := range partitions {
		if err := os.MkdirAll(filepath.Join(sys, p), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// env is the environment of the instance's scripts: the sandbox root, the
// shims first on PATH, short intervals.
func (f *fleet) env(h *host, volDir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "XDRIVE_") && !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "SHIM_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"PATH="+f.bin+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"XDRIVE_ROOT="+h.root,
		"SHIM_STATE="+h.state,
		"SHIM_DRIVE_DEV="+driveDev,
		"SHIM_VOLUME_DIR="+volDir,
		"XDRIVE_POLL_INTERVAL=0.2",
		"XDRIVE_DEVICE_TIMEOUT=30",
		"XDRIVE_DOCKER_TIMEOUT=10",
		"XDRIVE_STOP_TIMEOUT=5",
		"XDRIVE_LOCK_TIMEOUT=30",
		"XDRIVE_IMDS_URL="+f.imds.URL+"/"+h.id,
		"XDRIVE_WATCH_INTERVAL=1",
	)
}

// forceCommand is sshd's ForceCommand: the operator's command runs against
// the sandbox, as if / were XDRIVE_ROOT. Only xdrive-ctl status|release run.
func forceCommand(h *host, env []string) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# xdrive demo: ForceCommand of instance " + h.id + "\n")
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if k == "PATH" || strings.HasPrefix(k, "XDRIVE_") || strings.HasPrefix(k, "SHIM_") {
			b.WriteString(k + "=" + shellQuote(v) + "; export " + k + "\n")
		}
	}
	log := shellQuote(filepath.Join(h.logs, "ssh.log"))
	b.WriteString(`echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) command: $SSH_ORIGINAL_COMMAND" >>` + log + "\n")
	b.WriteString(`case $SSH_ORIGINAL_COMMAND in
"/usr/local/sbin/xdrive-ctl status" | "/usr/local/sbin/xdrive-ctl release") ;;
*) echo "xdrive demo: only xdrive-ctl status|release run here" >&2; exit 126 ;;
esac
set -- $SSH_ORIGINAL_COMMAND
err=$(mktemp)
"$XDRIVE_ROOT$1" "$2" 2>"$err"
rc=$?
cat "$err" >>` + log + `
cat "$err" >&2
rm -f "$err"
exit $rc
`)
	return b.String()
}

// start runs a command of the instance in its own process group, logging to
// logs/name; the channel is closed when it ends.
func (h *host) start(logName string, env []string, name string, args ...string) (<-chan struct{}, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.off {
		return nil, errors.New("powered off")
	}
	logFile, err := os.OpenFile(filepath.Join(h.logs, logName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(name, args...)
	cmd.Env, cmd.Dir = env, h.root
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	h.procs = append(h.procs, cmd)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return done, nil
}

// ReadDrive reads a file on the instance's drive, as the user would see it at the mount path.
func (h *host) ReadDrive(mountPath, name string) (string, error) {
	if err := h.booted(); err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(h.root, mountPath, name))
	return string(b), err
}

// AppendDrive appends a line to a file on the mounted drive, as the user's work would.
func (h *host) AppendDrive(mountPath, name, line string) error {
	if err := h.booted(); err != nil {
		return err
	}
	dir := filepath.Join(h.root, mountPath)
	if fi, err := os.Lstat(dir); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		return fmt.Errorf("the drive is not mounted at %s on %s", mountPath, h.id)
	}
	fh, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer fh.Close()
	_, err = fmt.Fprintln(fh, line)
	return err
}

// Released reports whether xdrive-ctl release completed on the instance.
func (h *host) Released() bool {
	return h.booted() == nil && exists(filepath.Join(h.root, "var/lib/xdrive/released"))
}

// booted reports whether the instance booted (its sandbox fields are set).
func (h *host) booted() error {
	select {
	case <-h.ready:
		return h.err
	default:
		return fmt.Errorf("instance %s is still booting", h.id)
	}
}

// SSHCommands counts the commands the operator ran on the instance over SSH.
func (h *host) SSHCommands() (status, release int) {
	select {
	case <-h.ready:
	default:
		return 0, 0
	}
	fh, err := os.Open(filepath.Join(h.logs, "ssh.log"))
	if err != nil {
		return 0, 0
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		switch {
		case strings.HasSuffix(sc.Text(), "command: /usr/local/sbin/xdrive-ctl status"):
			status++
		case strings.HasSuffix(sc.Text(), "command: /usr/local/sbin/xdrive-ctl release"):
			release++
		}
	}
	return status, release
}

var (
	bootLines  = regexp.MustCompile(`is blank; making|^drive vol-|removing stale container|starting container|phase: ready|error|failed|refus`)
	sshLines   = regexp.MustCompile(`command: .*release|committing|drive released|already released|error|warning`)
	watchLines = regexp.MustCompile(`spot interruption notice|released after|already released|release failed`)
	logPrefix  = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (xdrive: )?`)
)

// tail prints the interesting lines of an instance log as they are written.
func (f *fleet) tail(ctx context.Context, h *host, name string, keep *regexp.Regexp) {
	path := filepath.Join(h.logs, name)
	var offset int64
	var partial string
	for {
		if fh, err := os.Open(path); err == nil {
			if _, err := fh.Seek(offset, io.SeekStart); err == nil {
				data, _ := io.ReadAll(fh)
				offset += int64(len(data))
				text := partial + string(data)
				lines := strings.Split(text, "\n")
				partial = lines[len(lines)-1]
				for _, l := range lines[:len(lines)-1] {
					if keep.MatchString(l) {
						l = strings.ReplaceAll(logPrefix.ReplaceAllString(l, ""), h.root, "")
						f.out.Instance(h.id, "%s: %s", strings.TrimSuffix(name, ".log"), l)
					}
				}
			}
			fh.Close()
		}
		h.mu.Lock()
		off := h.off
		h.mu.Unlock()
		if off {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func lastLines(path string, n int) string {
	lines := strings.Split(strings.TrimSpace(string(readFile(path))), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// fingerprint is the SHA256 fingerprint of an authorized_keys line.
func fingerprint(authorizedKey string) string {
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorizedKey))
	if err != nil {
		return "(unreadable)"
	}
	return ssh.FingerprintSHA256(k)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
