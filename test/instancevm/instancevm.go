// Package instancevm runs a real xdrive instance: a Linux VM under QEMU,
// booted from the image hack/instancevm-image.sh builds (Debian trixie with
// systemd, cloud-init, sshd and Docker), with
//
//   - the user-data the operator renders, passed unchanged through a NoCloud
//     seed and run by the VM's real cloud-init and systemd;
//   - the drive as an NVMe disk whose serial is the EBS volume ID without its
//     dash, as EC2's Nitro disks show it, backed by a file (a Drive) that
//     outlives the VM as a volume outlives its instance;
//   - sshd on a forwarded loopback port, reached with the operator's pinned
//     host key through VM.Resolve (an sshx.Resolver), as the demo's address
//     map does;
//   - instance metadata from amazon-ec2-metadata-mock on a loopback port,
//     reached by the guest at 169.254.169.254 through QEMU's guestfwd and one
//     socat per connection; VM.Notice makes it show a spot interruption notice.
//
// Where test/instancesim runs the bootstrap against shims of docker, mkfs and
// mount, here everything is real: the kernel, ext4/xfs, Docker, systemd.
// QEMU runs with TCG (software emulation) unless KVM works here; Accel says
// which and why. A missing tool is an error naming it, never a skip.
package instancevm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Tools are the host programs a VM needs; hack/install-test-deps.sh installs them.
var Tools = []string{"qemu-system-x86_64", "qemu-img", "genisoimage", "socat", "ec2-metadata-mock", "e2fsck", "debugfs", "dumpe2fs"}

// CheckHost reports the missing tools, if any.
func CheckHost() error {
	var missing []string
	for _, t := range Tools {
		if _, err := lookTool(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("instancevm: missing %s; run hack/install-test-deps.sh", strings.Join(missing, ", "))
	}
	return nil
}

// lookTool finds a tool on PATH, or ec2-metadata-mock in Go's bin directory.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	gobin := os.Getenv("GOBIN")
	if gobin == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gobin = filepath.Join(strings.TrimSpace(string(out)), "bin")
		}
	}
	p := filepath.Join(gobin, name)
	if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
		return p, nil
	}
	return "", fmt.Errorf("%s not found", name)
}

// Image is a directory made by hack/instancevm-image.sh.
type Image struct {
	Dir string
}

// LoadImage returns the image in dir, or, when dir is empty, builds (or
// finds in its cache) the image with the script at buildScript.
func LoadImage(dir, buildScript string) (Image, error) {
	if dir == "" {
		out, err := exec.Command(buildScript).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return Image{}, fmt.Errorf("instancevm: building the image with %s: %w: %s", buildScript, err, ee.Stderr)
			}
			return Image{}, fmt.Errorf("instancevm: building the image with %s: %w", buildScript, err)
		}
		dir = strings.TrimSpace(string(out))
	}
	for _, f := range []string{"vmlinuz", "initrd.img", "root.raw", "done"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return Image{}, fmt.Errorf("instancevm: image %s is incomplete: %w", dir, err)
		}
	}
	return Image{Dir: dir}, nil
}

// Accel picks QEMU's accelerator: XDRIVE_INSTANCEVM_ACCEL if set, else kvm
// when /dev/kvm is usable with a stock kernel, else tcg. why says why.
func Accel() (accel, why string) {
	if a := os.Getenv("XDRIVE_INSTANCEVM_ACCEL"); a != "" {
		return a, "XDRIVE_INSTANCEVM_ACCEL=" + a
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return "tcg", fmt.Sprintf("no usable /dev/kvm (%v)", err)
	}
	_ = f.Close()
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil {
		return "tcg", "/dev/kvm is kvm_pvm, which boots only PVM guest kernels"
	}
	cpuinfo, _ := os.ReadFile("/proc/cpuinfo")
	if !strings.Contains(string(cpuinfo), " vmx") && !strings.Contains(string(cpuinfo), " svm") {
		return "tcg", "the CPU has no vmx or svm"
	}
	return "kvm", "/dev/kvm with vmx/svm"
}

// Drive is an EBS volume: a file attached to a VM as an NVMe disk whose
// serial is VolumeID without its dash.
type Drive struct {
	Path     string
	VolumeID string
}

// Serial is the NVMe serial EC2 shows for the volume.
func (d Drive) Serial() string { return strings.Replace(d.VolumeID, "-", "", 1) }

// BlankDrive makes a blank volume: a sparse file of size bytes.
func BlankDrive(path, volumeID string, size int64) (Drive, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Drive{}, fmt.Errorf("instancevm: creating drive %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	if err := f.Truncate(size); err != nil {
		return Drive{}, fmt.Errorf("instancevm: sizing drive %s: %w", path, err)
	}
	return Drive{Path: path, VolumeID: volumeID}, nil
}

// Snapshot copies the drive's file to path (a reflink when the filesystem
// allows), as it is now: EBS snapshots are point-in-time at CreateSnapshot.
func (d Drive) Snapshot(path string) error {
	if out, err := exec.Command("cp", "--reflink=auto", "--sparse=always", d.Path, path).CombinedOutput(); err != nil {
		return fmt.Errorf("instancevm: snapshotting %s to %s: %w: %s", d.Path, path, err, out)
	}
	return nil
}

// Restore makes a new volume from a snapshot file, of size bytes (0: the
// snapshot's size; never smaller), as CreateVolume(SnapshotId, Size) does.
func Restore(snapshot, path, volumeID string, size int64) (Drive, error) {
	d := Drive{Path: snapshot}
	if err := d.Snapshot(path); err != nil {
		return Drive{}, err
	}
	d = Drive{Path: path, VolumeID: volumeID}
	if size > 0 {
		if err := d.Grow(size); err != nil {
			return Drive{}, err
		}
	}
	return d, nil
}

// Grow enlarges the drive's file to size bytes; it never shrinks it.
func (d Drive) Grow(size int64) error {
	st, err := os.Stat(d.Path)
	if err != nil {
		return fmt.Errorf("instancevm: growing drive %s: %w", d.Path, err)
	}
	if size < st.Size() {
		return fmt.Errorf("instancevm: drive %s is %d bytes; refusing to shrink it to %d", d.Path, st.Size(), size)
	}
	if err := os.Truncate(d.Path, size); err != nil {
		return fmt.Errorf("instancevm: growing drive %s: %w", d.Path, err)
	}
	return nil
}

// bootArgs make the guest boot faster under TCG: no Spectre/Meltdown
// mitigations (page table isolation makes every syscall dear), no AppArmor
// (its profiles take 30-60 s to load; Amazon Linux has none either), and no
// module loads for a display or FUSE. no_timer_check: on a busy host the
// emulated timer's first ticks can come late, and the kernel then panics
// ("IO-APIC + timer doesn't work"), as it did here under a load of 10;
// panic=-1 makes any panic end QEMU (-no-reboot) rather than hang the test.
const bootArgs = "mitigations=off apparmor=0 no_timer_check panic=-1 " +
	"systemd.mask=modprobe@drm.service systemd.mask=modprobe@fuse.service"

// Config describes one VM.
type Config struct {
	Image Image
	// Dir holds the VM's root disk overlay, seed, serial console log and
	// QEMU and IMDS logs. Required.
	Dir string
	// InstanceID is the instance's ID (cloud-init's instance-id). Required.
	InstanceID string
	// Address is the instance's (made-up) IP: the address the operator
	// would dial; Resolve maps it to the VM's sshd. Required.
	Address string
	// UserData is given to cloud-init unchanged. Required.
	UserData []byte
	// Drive is attached at boot. Required.
	Drive Drive
	// MemoryMiB is the VM's memory; default 1024.
	MemoryMiB int
	// Log, if set, is told what the VM does.
	Log func(msg string)
}

// VM is a running QEMU instance.
type VM struct {
	cfg     Config
	Accel   string
	SSHAddr string // the forwarded loopback address of the guest's sshd
	Started time.Time

	qemu   *exec.Cmd
	exited chan struct{}
	err    error // QEMU's exit, once exited is closed

	mu   sync.Mutex
	imds *imdsMock
}

// Boot starts the VM and returns once QEMU runs; the guest boots on.
func Boot(cfg Config) (*VM, error) {
	if cfg.Dir == "" || cfg.InstanceID == "" || cfg.Address == "" || len(cfg.UserData) == 0 || cfg.Drive.Path == "" {
		return nil, errors.New("instancevm: Config needs Dir, InstanceID, Address, UserData and Drive")
	}
	if err := CheckHost(); err != nil {
		return nil, err
	}
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = 1024
	}
	if cfg.Log == nil {
		cfg.Log = func(string) {}
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	v := &VM{cfg: cfg, exited: make(chan struct{})}
	var why string
	v.Accel, why = Accel()
	cfg.Log(fmt.Sprintf("accelerator %s: %s", v.Accel, why))
	overlay := filepath.Join(cfg.Dir, "root.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw",
		"-b", filepath.Join(cfg.Image.Dir, "root.raw"), overlay).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("instancevm: making the root disk overlay: %w: %s", err, out)
	}
	seed, err := writeSeed(cfg)
	if err != nil {
		return nil, err
	}
	if v.imds, err = startIMDS(filepath.Join(cfg.Dir, "imds.log"), false); err != nil {
		return nil, err
	}
	sshPort, err := freePort()
	if err != nil {
		v.imds.stop()
		return nil, err
	}
	v.SSHAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(sshPort))
	// restrict=on: the guest reaches nothing but the forwards. The guest
	// network is link-local so that a guestfwd may own 169.254.169.254.
	netdev := fmt.Sprintf("user,id=n0,restrict=on,net=169.254.0.0/16,host=169.254.0.2,dns=169.254.0.3,"+
		"dhcpstart=169.254.0.15,hostfwd=tcp:127.0.0.1:%d-:22,"+
		"guestfwd=tcp:169.254.169.254:80-cmd:socat STDIO TCP:127.0.0.1:%d", sshPort, v.imds.port)
	args := []string{
		"-accel", v.Accel, "-m", strconv.Itoa(cfg.MemoryMiB), "-smp", "1",
		"-nodefaults", "-nographic", "-no-reboot", "-serial", "file:" + filepath.Join(cfg.Dir, "serial.log"), "-monitor", "none",
		"-kernel", filepath.Join(cfg.Image.Dir, "vmlinuz"), "-initrd", filepath.Join(cfg.Image.Dir, "initrd.img"),
		"-append", "root=/dev/vda rw console=ttyS0,115200 quiet " + bootArgs,
		"-drive", "file=" + overlay + ",if=virtio,format=qcow2",
		"-drive", "file=" + seed + ",if=virtio,format=raw,readonly=on",
		"-drive", "file=" + cfg.Drive.Path + ",if=none,id=vol0,format=raw",
		"-device", "nvme,serial=" + cfg.Drive.Serial() + ",drive=vol0",
		"-netdev", netdev, "-device", "virtio-net-pci,netdev=n0,romfile=",
	}
	if v.Accel == "kvm" {
		args = append(args, "-cpu", "host")
	}
	qlog, err := os.Create(filepath.Join(cfg.Dir, "qemu.log"))
	if err != nil {
		v.imds.stop()
		return nil, err
	}
	v.qemu = exec.Command("qemu-system-x86_64", args...)
	v.qemu.Stdout, v.qemu.Stderr = qlog, qlog
	v.qemu.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := v.qemu.Start(); err != nil {
		_ = qlog.Close()
		v.imds.stop()
		return nil, fmt.Errorf("instancevm: starting QEMU: %w", err)
	}
	v.Started = time.Now()
	cfg.Log(fmt.Sprintf("QEMU %d booting %s (%s) with drive %s (%s); ssh on %s",
		v.qemu.Process.Pid, cfg.InstanceID, cfg.Address, cfg.Drive.VolumeID, cfg.Drive.Path, v.SSHAddr))
	go func() {
		v.err = v.qemu.Wait()
		_ = qlog.Close()
		close(v.exited)
	}()
	return v, nil
}

// Config returns the VM's configuration.
func (v *VM) Config() Config { return v.cfg }

// Resolve is an sshx.Resolver: the VM's address maps to its forwarded sshd;
// any other address is refused, never dialled.
func (v *VM) Resolve(_ context.Context, addr string) (string, error) {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		addr = h
	}
	if addr != v.cfg.Address {
		return "", fmt.Errorf("instancevm: no VM has address %s; refusing to dial it", addr)
	}
	select {
	case <-v.exited:
		return "", fmt.Errorf("instancevm: VM %s is off", v.cfg.InstanceID)
	default:
	}
	return v.SSHAddr, nil
}

// Notice makes the VM's IMDS show a spot interruption notice from now on,
// as EC2's does two minutes before it takes a spot instance back.
func (v *VM) Notice() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	port := v.imds.port
	v.imds.stop()
	m, err := startIMDSOn(filepath.Join(v.cfg.Dir, "imds.log"), port, true)
	if err != nil {
		return err
	}
	v.imds = m
	v.cfg.Log("IMDS shows a spot interruption notice")
	return nil
}

// Exited is closed when QEMU has exited.
func (v *VM) Exited() <-chan struct{} { return v.exited }

// PowerOff ends the VM at once, as EC2 terminating it would, and its IMDS.
// The drive's file stays.
func (v *VM) PowerOff() {
	select {
	case <-v.exited:
	default:
		_ = syscall.Kill(-v.qemu.Process.Pid, syscall.SIGKILL)
		<-v.exited
		v.cfg.Log(fmt.Sprintf("powered off after %s", time.Since(v.Started).Round(time.Second)))
	}
	v.mu.Lock()
	v.imds.stop()
	v.mu.Unlock()
}

// SerialLog returns the end of the guest's console output, for failures.
func (v *VM) SerialLog(maxBytes int) string {
	b, _ := os.ReadFile(filepath.Join(v.cfg.Dir, "serial.log"))
	if len(b) > maxBytes {
		b = b[len(b)-maxBytes:]
	}
	return string(b)
}

// writeSeed writes the NoCloud seed ISO: the user-data as given, and the
// instance's ID.
func writeSeed(cfg Config) (string, error) {
	dir := filepath.Join(cfg.Dir, "seed")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	meta := fmt.Sprintf("instance-id: %s\nlocal-hostname: %s\n", cfg.InstanceID, cfg.InstanceID)
	if err := os.WriteFile(filepath.Join(dir, "meta-data"), []byte(meta), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "user-data"), cfg.UserData, 0o644); err != nil {
		return "", err
	}
	iso := filepath.Join(cfg.Dir, "seed.iso")
	cmd := exec.Command("genisoimage", "-quiet", "-output", iso, "-volid", "cidata", "-joliet", "-rock", "user-data", "meta-data")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("instancevm: making the NoCloud seed: %w: %s", err, out)
	}
	return iso, nil
}

// imdsMock is one amazon-ec2-metadata-mock, IMDSv2 only, on a loopback port.
type imdsMock struct {
	port int
	cmd  *exec.Cmd
	log  *os.File
	once sync.Once
}

func startIMDS(logPath string, notice bool) (*imdsMock, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return startIMDSOn(logPath, port, notice)
}

// startIMDSOn starts the mock on port: with a spot notice (and a rebalance
// recommendation) at once if notice, else none before 2099.
func startIMDSOn(logPath string, port int, notice bool) (*imdsMock, error) {
	bin, err := lookTool("ec2-metadata-mock")
	if err != nil {
		return nil, fmt.Errorf("instancevm: %w; run hack/install-test-deps.sh", err)
	}
	args := []string{"-n", "127.0.0.1", "-p", strconv.Itoa(port), "-I"}
	if notice {
		args = append(args, "-d", "0", "--rebalance-delay-sec", "0")
	} else {
		args = append(args, "--mock-trigger-time", "2099-01-01T00:00:00Z", "--rebalance-trigger-time", "2099-01-01T00:00:00Z")
	}
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	m := &imdsMock{port: port, log: log, cmd: exec.Command(bin, args...)}
	m.cmd.Stdout, m.cmd.Stderr = log, log
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	m.cmd.Dir = filepath.Dir(logPath)
	if err := m.cmd.Start(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("instancevm: starting ec2-metadata-mock: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(20 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return m, nil
		}
		if time.Now().After(deadline) {
			m.stop()
			return nil, fmt.Errorf("instancevm: ec2-metadata-mock does not answer on %s: %w", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (m *imdsMock) stop() {
	m.once.Do(func() {
		_ = m.cmd.Process.Kill()
		_ = m.cmd.Wait()
		_ = m.log.Close()
	})
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("instancevm: finding a free port: %w", err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
