package instancesim

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
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

	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/test/sshd"
)

const (
	driveDev = "nvme1n1" // the drive's NVMe disk in every sandbox
	rootDev  = "nvme0n1"
	ebsModel = "Amazon Elastic Block Store"
)

// Instance is one simulated instance.
type Instance struct {
	ID, Type, Zone string
	// Region is the instance's region when it is one of Options.Elsewhere; "" for Options.EC2's.
	Region              string
	PublicIP, PrivateIP string
	// VolumeID is the drive's volume, mapped at bootstrap.DriveDevice.
	VolumeID string

	api          EC2API // the instance's region
	rootVolume   string
	restoredFrom string // the snapshot the drive was restored from
	dir          string // instances/ID: root/ (XDRIVE_ROOT), shim/ (SHIM_STATE), log/
	root, state  string
	logs         string

	env     []string      // the environment of the instance's scripts
	bin     string        // the shims
	ready   chan struct{} // closed once sshd listens (sshAddr) or booting failed (err)
	sshAddr string
	err     error

	mu      sync.Mutex
	off     bool
	procs   []*exec.Cmd
	sshd    *sshd.Server
	offOnce sync.Once
}

func newInstance(in ec2types.Instance, dir string) *Instance {
	h := &Instance{ID: aws.ToString(in.InstanceId), Type: string(in.InstanceType),
		PublicIP: aws.ToString(in.PublicIpAddress), PrivateIP: aws.ToString(in.PrivateIpAddress),
		dir: dir, root: filepath.Join(dir, "root"), state: filepath.Join(dir, "shim"), logs: filepath.Join(dir, "log"),
		ready: make(chan struct{})}
	if in.Placement != nil {
		h.Zone = aws.ToString(in.Placement.AvailabilityZone)
	}
	h.VolumeID, h.rootVolume = volumes(in)
	return h
}

// volumes returns the drive's volume and the root volume as EC2 shows them,
// or "" for one it does not show yet.
func volumes(in ec2types.Instance) (drive, root string) {
	for _, m := range in.BlockDeviceMappings {
		if m.Ebs == nil {
			continue
		}
		if aws.ToString(m.DeviceName) == bootstrap.DriveDevice {
			drive = aws.ToString(m.Ebs.VolumeId)
		} else if root == "" {
			root = aws.ToString(m.Ebs.VolumeId)
		}
	}
	return drive, root
}

func (s *Sim) bootSteps(ctx context.Context, h *Instance) error {
	for _, d := range []string{h.root, h.state, h.logs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	userData, err := s.userData(ctx, h)
	if err != nil {
		return err
	}
	volDir, err := s.volume(ctx, h)
	if err != nil {
		return err
	}
	if err := h.addDisks(); err != nil {
		return err
	}
	from := "a blank volume"
	if h.restoredFrom != "" {
		from = "a volume restored from " + h.restoredFrom
	}
	s.opts.Log(h.ID, fmt.Sprintf("booting %s in %s: sandbox %s, drive %s (%s) as /dev/%s",
		h.Type, h.Zone, h.root, h.VolumeID, from, driveDev))

	env := s.env(h, volDir)
	h.env, h.bin = env, s.bin
	udPath := filepath.Join(h.dir, "user-data")
	if err := os.WriteFile(udPath, userData, 0o700); err != nil {
		return err
	}
	bootDone, err := h.start("boot.log", env, "bash", udPath)
	if err != nil {
		return err
	}
	for name, keep := range map[string]*regexp.Regexp{"boot.log": bootLines, "ssh.log": sshLines, "watch.log": watchLines} {
		s.boots.Add(1)
		go func() {
			defer s.boots.Done()
			s.tail(ctx, h, name, keep)
		}()
	}

	// The bootstrap installs the pinned host key and restarts sshd; the
	// simulator starts the real sshd at that point.
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
	return s.startSSHD(h, env)
}

// startSSHD runs the instance's sshd on 127.0.0.1 with the keys the
// user-data installed; its ForceCommand runs the operator's commands in the
// sandbox.
func (s *Sim) startSSHD(h *Instance, env []string) error {
	wrapper := filepath.Join(h.dir, "force-command.sh")
	if err := os.WriteFile(wrapper, []byte(forceCommand(h, env)), 0o700); err != nil {
		return err
	}
	srv, err := sshd.StartServer(sshd.Options{
		Dir:                h.dir,
		HostKeyFile:        filepath.Join(h.root, "etc/ssh/ssh_host_ed25519_key"),
		AuthorizedKeysFile: filepath.Join(h.root, "etc/ssh/xdrive_authorized_keys/%u"),
		ForceCommand:       wrapper,
		ExtraConfig: []string{
			"HostKeyAlgorithms ssh-ed25519",
			"PermitTTY no",
			// bash, root's login shell, skips ~/.bashrc for commands from sshd when SHLVL starts at 1.
			"SetEnv SHLVL=1",
		},
	})
	if err != nil {
		return err
	}
	h.mu.Lock()
	off := h.off
	h.sshd = srv
	h.mu.Unlock()
	if off {
		srv.Stop()
		return errors.New("powered off while booting")
	}
	h.sshAddr = srv.Addr
	s.opts.Log(h.ID, fmt.Sprintf("sshd listens on %s for %s, host key %s (installed by the user-data)",
		srv.Addr, orDash(h.PublicIP), fingerprint(srv.HostKey)))
	return nil
}

// userData reads the instance's user-data back from EC2, as cloud-init would from IMDS.
func (s *Sim) userData(ctx context.Context, h *Instance) ([]byte, error) {
	id := h.ID
	out, err := h.api.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
		InstanceId: aws.String(id), Attribute: ec2types.InstanceAttributeNameUserData,
	})
	if err != nil {
		return nil, fmt.Errorf("reading the user-data of %s: %w", id, err)
	}
	if out.UserData == nil || aws.ToString(out.UserData.Value) == "" {
		return nil, fmt.Errorf("instance %s has no user-data", id)
	}
	raw := aws.ToString(out.UserData.Value)
	ud, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		ud = []byte(raw)
	}
	return bootstrap.Script(ud) // as cloud-init gunzips it
}

// volume returns the directory that holds the drive volume's data, making it
// from the snapshot's source volume when the volume is new.
func (s *Sim) volume(ctx context.Context, h *Instance) (string, error) {
	dir := filepath.Join(s.opts.Dir, "volumes", h.VolumeID)
	out, err := h.api.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{h.VolumeID}})
	if err != nil {
		return "", fmt.Errorf("describing volume %s: %w", h.VolumeID, err)
	}
	if len(out.Volumes) == 1 {
		h.restoredFrom = aws.ToString(out.Volumes[0].SnapshotId)
	}
	if exists(dir) {
		return dir, nil
	}
	if h.restoredFrom == "" {
		return dir, os.MkdirAll(dir, 0o755)
	}
	srcVolume, err := s.sourceVolume(ctx, h.api, h.Region, h.restoredFrom)
	if err != nil {
		return "", err
	}
	src := filepath.Join(s.opts.Dir, "volumes", srcVolume)
	if !exists(src) {
		return "", fmt.Errorf("snapshot %s: the data of its source volume %s is unknown to the simulator", h.restoredFrom, srcVolume)
	}
	if out, err := exec.Command("cp", "-a", src, dir).CombinedOutput(); err != nil {
		return "", fmt.Errorf("restoring %s from %s: %w: %s", h.VolumeID, src, err, out)
	}
	return dir, nil
}

// sourceVolume returns the volume a snapshot was taken from: for a copy
// (tags xdrive.io/copied-from and copied-from-region), that of the snapshot
// it was copied from, followed to its region.
func (s *Sim) sourceVolume(ctx context.Context, api EC2API, region, snapshot string) (string, error) {
	for range 8 { // a copy of a copy of ...; a longer chain is a loop
		out, err := api.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snapshot}})
		if err != nil {
			return "", fmt.Errorf("describing snapshot %s in %s: %w", snapshot, orHome(region), err)
		}
		if len(out.Snapshots) != 1 {
			return "", fmt.Errorf("snapshot %s is not in %s", snapshot, orHome(region))
		}
		tags := cloud.TagMap(out.Snapshots[0].Tags)
		from, fromRegion := tags[cloud.TagCopiedFrom], tags[cloud.TagCopiedFromRegion]
		if from == "" {
			return aws.ToString(out.Snapshots[0].VolumeId), nil
		}
		if api = s.regionAPI(fromRegion); api == nil {
			return "", fmt.Errorf("snapshot %s was copied from %s in %s, a region the simulator does not read", snapshot, from, fromRegion)
		}
		snapshot, region = from, fromRegion
	}
	return "", fmt.Errorf("snapshot %s: too many copies to follow", snapshot)
}

// regionAPI returns the client of a region: Options.Elsewhere's, else
// Options.EC2 (whose region the simulator does not know by name).
func (s *Sim) regionAPI(region string) EC2API {
	if api, ok := s.opts.Elsewhere[region]; ok {
		return api
	}
	if region == "" {
		return nil
	}
	return s.opts.EC2
}

func orHome(region string) string {
	if region == "" {
		return "the home region"
	}
	return region
}

// addDisks makes the root disk and the drive under /sys/block and /dev, and
// tells the shim where / is mounted from.
func (h *Instance) addDisks() error {
	root := h.rootVolume
	if root == "" {
		root = "vol-0000000000000000r"
	}
	files := map[string]string{filepath.Join(h.state, "rootsrc"): "/dev/" + rootDev + "p1\n",
		// A quiet machine, for the idle auto-stop's CPU and network signals.
		filepath.Join(h.root, "proc/loadavg"): "0.02 0.03 0.00 1/120 4242\n",
		filepath.Join(h.root, "proc/net/dev"): "Inter-|   Receive    |  Transmit\n face |bytes    packets|bytes    packets\n" +
			"  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n"}
	for _, d := range []struct{ name, volume string }{{rootDev, root}, {driveDev, h.VolumeID}} {
		sys := filepath.Join(h.root, "sys/block", d.name)
		files[filepath.Join(sys, "device/model")] = ebsModel + "\n"
		files[filepath.Join(sys, "device/serial")] = strings.Replace(d.volume, "-", "", 1) + "\n"
		files[filepath.Join(sys, "size")] = "2048\n" // 512-byte sectors: the device's MiB
		files[filepath.Join(h.root, "dev", d.name)] = ""
	}
	if err := os.MkdirAll(filepath.Join(h.root, "sys/block", rootDev, rootDev+"p1"), 0o755); err != nil {
		return err
	}
	for path, data := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			return err
		}
	}
	// The drive's device reads as zeros (the shim's blkid knows its filesystem).
	return os.Truncate(filepath.Join(h.root, "dev", driveDev), 1<<20)
}

// env is the environment of the instance's scripts: the sandbox root, the
// shims first on PATH, short intervals, and the instance's IMDS.
func (s *Sim) env(h *Instance, volDir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "XDRIVE_") && !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "SHIM_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"PATH="+s.bin+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"XDRIVE_ROOT="+h.root,
		"SHIM_STATE="+h.state,
		"SHIM_DRIVE_DEV="+driveDev,
		"SHIM_VOLUME_DIR="+volDir,
		"XDRIVE_POLL_INTERVAL=0.2",
		"XDRIVE_DEVICE_TIMEOUT=30",
		"XDRIVE_DOCKER_TIMEOUT=10",
		"XDRIVE_STOP_TIMEOUT=5",
		"XDRIVE_LOCK_TIMEOUT=30",
		"XDRIVE_IMDS_URL="+s.imds.URL+"/"+h.ID,
		"XDRIVE_WATCH_INTERVAL=1",
	)
}

// forceCommand is sshd's ForceCommand: the operator's command runs against
// the sandbox, as if / were XDRIVE_ROOT. Only the agent's commands run.
func forceCommand(h *Instance, env []string) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# test/instancesim: ForceCommand of instance " + h.ID + "\n")
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if k == "PATH" || strings.HasPrefix(k, "XDRIVE_") || strings.HasPrefix(k, "SHIM_") {
			b.WriteString(k + "=" + sshd.ShellQuote(v) + "; export " + k + "\n")
		}
	}
	log := sshd.ShellQuote(filepath.Join(h.logs, "ssh.log"))
	b.WriteString(`echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) command: $SSH_ORIGINAL_COMMAND" >>` + log + "\n")
	b.WriteString(`notify= release=
case $SSH_ORIGINAL_COMMAND in
` + sshd.ShellQuote(agent.StatusCommand) + ` | ` + sshd.ShellQuote(agent.StatusCommand+" --drive ") + `vol-* | ` + sshd.ShellQuote(agent.ReleaseCommand) + `) ;;
` + sshd.ShellQuote(bootstrap.CtlPath+" notify --kind "+bootstrap.NoticeKindIdleStop+" --deadline ") + `*Z) notify=1 ;;
` + sshd.ShellQuote(agent.ReleaseCommand+" --kind ") + `*Z) release=1 ;;
*) echo "instancesim: only the agent's commands run here" >&2; exit 126 ;;
esac
set -f
set -- $SSH_ORIGINAL_COMMAND
if [ -n "$notify" ]; then
	case "$#|$6" in 6\|*[!0-9TZ:-]*) echo "instancesim: bad deadline" >&2; exit 126 ;; 6\|*) ;; *) echo "instancesim: bad arguments" >&2; exit 126 ;; esac
elif [ -n "$release" ]; then
	[ "$#|$3|$5" = "6|--kind|--deadline" ] || { echo "instancesim: bad arguments" >&2; exit 126; }
	case $4 in stop | idle-stop | spot-interruption | rebalance) ;; *) echo "instancesim: bad kind" >&2; exit 126 ;; esac
	case $6 in *[!0-9TZ:-]*) echo "instancesim: bad deadline" >&2; exit 126 ;; esac
else
	case ${4#vol-} in *[!0-9a-f]*) echo "instancesim: bad volume ID" >&2; exit 126 ;; esac
	case "${5:-}|${7:-}|${9:-}" in "||" | "--idle|--probe|") ;; *) echo "instancesim: bad arguments" >&2; exit 126 ;; esac
	case "${6:-}${8:-}" in *[!A-Za-z0-9+/=]*) echo "instancesim: bad idle arguments" >&2; exit 126 ;; esac
fi
err=$(mktemp)
"$XDRIVE_ROOT$1" "$2" ${3:+"$3"} ${4:+"$4"} ${5:+"$5"} ${6:+"$6"} ${7:+"$7"} ${8:+"$8"} 2>"$err"
rc=$?
cat "$err" >>` + log + `
cat "$err" >&2
rm -f "$err"
exit $rc
`)
	return b.String()
}

// start runs a command of the instance in its own process group, logging to
// log/logName; the channel is closed when it ends.
func (h *Instance) start(logName string, env []string, name string, args ...string) (<-chan struct{}, error) {
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

// kill ends the instance's processes and its sshd.
func (h *Instance) kill() {
	h.mu.Lock()
	h.off = true
	procs, srv := h.procs, h.sshd
	h.mu.Unlock()
	for _, c := range procs {
		if c.Process != nil {
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		}
	}
	if srv != nil {
		srv.Stop()
	}
}

func (h *Instance) isOff() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.off
}

// Wait waits until the instance's sshd listens, and returns why booting
// failed if it did. The bootstrap may still be preparing the drive then:
// `xdrive-ctl status` (agent.Agent's Status) says when it is ready.
func (h *Instance) Wait(ctx context.Context) error {
	select {
	case <-h.ready:
		return h.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// booted returns nil once the instance booted, an error before or if it failed.
func (h *Instance) booted() error {
	select {
	case <-h.ready:
		return h.err
	default:
		return fmt.Errorf("instance %s is still booting", h.ID)
	}
}

// ReadDrive reads a file on the instance's drive, as the user would see it at the mount path.
func (h *Instance) ReadDrive(mountPath, name string) (string, error) {
	if err := h.booted(); err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(h.root, mountPath, name))
	return string(b), err
}

// AppendDrive appends a line to a file on the mounted drive, as the user's work would.
func (h *Instance) AppendDrive(mountPath, name, line string) error {
	if err := h.booted(); err != nil {
		return err
	}
	dir := filepath.Join(h.root, mountPath)
	if fi, err := os.Lstat(dir); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		return fmt.Errorf("the drive is not mounted at %s on %s", mountPath, h.ID)
	}
	fh, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer fh.Close()
	_, err = fmt.Fprintln(fh, line)
	return err
}

// SetShimState writes (or, with data "", removes) a file of the shim's state,
// e.g. "who" to show a login session to the idle auto-stop (shim.sh lists them).
func (h *Instance) SetShimState(name, data string) error {
	path := filepath.Join(h.state, name)
	if data == "" {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	return os.WriteFile(path, []byte(data), 0o644)
}

// Docker runs the simulated docker on the instance, as a user would, e.g.
// `exec NAME touch PATH` to change a container's files.
func (h *Instance) Docker(ctx context.Context, args ...string) (string, error) {
	if err := h.booted(); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(h.bin, "docker"), args...)
	cmd.Env = h.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s on %s: %w: %s", strings.Join(args, " "), h.ID, err, out)
	}
	return string(out), nil
}

// Released reports whether xdrive-ctl release completed on the instance.
func (h *Instance) Released() bool {
	// On tmpfs (/run), and on the root disk when it has room.
	return h.booted() == nil && (exists(filepath.Join(h.root, "run/xdrive/released")) ||
		exists(filepath.Join(h.root, "var/lib/xdrive/released")))
}

// File reads a file of the instance, e.g. /run/xdrive/notice.
func (h *Instance) File(path string) (string, error) {
	b, err := os.ReadFile(filepath.Join(h.root, path))
	return string(b), err
}

// Walls returns the messages `wall` sent to the instance's users, one after another.
func (h *Instance) Walls() string {
	b, _ := os.ReadFile(filepath.Join(h.state, "wall"))
	return string(b)
}

// SSHCommands counts the commands the operator ran on the instance over SSH.
func (h *Instance) SSHCommands() (status, release int) {
	if h.booted() != nil {
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
		case strings.HasSuffix(sc.Text(), "command: "+agent.StatusCommand),
			strings.Contains(sc.Text(), "command: "+agent.StatusCommand+" --drive "):
			status++
		case strings.HasSuffix(sc.Text(), "command: "+agent.ReleaseCommand),
			strings.Contains(sc.Text(), "command: "+agent.ReleaseCommand+" --kind "):
			release++
		}
	}
	return status, release
}

var (
	bootLines  = regexp.MustCompile(`is blank; making|^drive vol-|carrying its writable layer|starting the existing container|starting container|phase: ready|error|failed|refus`)
	sshLines   = regexp.MustCompile(`command: .*release|preStop of|stopping|drive released|already released|error|warning`)
	watchLines = regexp.MustCompile(`spot interruption notice|released after|already released|release failed`)
	logPrefix  = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (xdrive: )?`)
)

// tail passes the notable lines of an instance log to Options.Log as they are written.
func (s *Sim) tail(ctx context.Context, h *Instance, name string, keep *regexp.Regexp) {
	path := filepath.Join(h.logs, name)
	var offset int64
	var partial string
	for {
		if fh, err := os.Open(path); err == nil {
			if _, err := fh.Seek(offset, io.SeekStart); err == nil {
				data, _ := io.ReadAll(fh)
				offset += int64(len(data))
				lines := strings.Split(partial+string(data), "\n")
				partial = lines[len(lines)-1]
				for _, l := range lines[:len(lines)-1] {
					if keep.MatchString(l) {
						l = strings.ReplaceAll(logPrefix.ReplaceAllString(l, ""), h.root, "")
						s.opts.Log(h.ID, strings.TrimSuffix(name, ".log")+": "+l)
					}
				}
			}
			fh.Close()
		}
		if h.isOff() {
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
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
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
