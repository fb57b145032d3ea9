//go:build instancevm

// The real-instance suite: each test boots real VMs (make test-real). It is
// behind the instancevm build tag so that make test does not boot them.
package instancevm_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/controller/workstation"
	"github.com/xdrive-io/xdrive/internal/operator"
	"github.com/xdrive-io/xdrive/internal/sshx"
	"github.com/xdrive-io/xdrive/test/instancevm"
	"github.com/xdrive-io/xdrive/test/sshd"
)

var image instancevm.Image

func TestMain(m *testing.M) {
	if err := instancevm.CheckHost(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	start := time.Now()
	var err error
	image, err = instancevm.LoadImage(os.Getenv("XDRIVE_INSTANCEVM_IMAGE"), "../../hack/instancevm-image.sh")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	accel, why := instancevm.Accel()
	fmt.Printf("instancevm: image %s (ready in %s); accelerator %s: %s\n", image.Dir, time.Since(start).Round(time.Second), accel, why)
	os.Exit(m.Run())
}

const (
	mountPath = "/v1"
	gib       = int64(1) << 30
	// bootTimeout bounds a boot up to the bootstrap's end: ~90 s under TCG
	// on a quiet machine, 3-5x that under a load of 15.
	bootTimeout = 15 * time.Minute
	// sshPatience is how long a call to a booted guest retries its SSH
	// connection: an emulated guest busy booting Docker, on a loaded
	// machine, can leave handshakes unanswered for a minute and more.
	sshPatience = 2 * time.Minute
)

// The containers of every test: a shell whose writable layer is written,
// and an appender that appends the next number to /data/log, fsyncs it, and
// only then acknowledges it on stdout. It resumes after the last line, so
// across launches the log must read 1, 2, 3, ... without a gap. A failed
// write or fsync (a full drive) is never acknowledged: the appender says so
// on stderr and stops appending.
var containers = []v1alpha1.Container{
	{Name: "shell", Image: "xdrive.test/busybox:1", Command: sleeper},
	{Name: "appender", Image: "xdrive.test/busybox:1",
		Command: []string{"sh", "-c", `trap "exit 0" TERM; mkdir -p /data; touch /data/log
i=$(wc -l </data/log); while :; do i=$((i+1))
if echo $i >>/data/log && sync /data/log; then echo $i; else echo "write $i failed" >&2; while :; do sleep 1; done; fi
usleep 50000; done`}},
}

// sleeper is a container's command that does nothing until stopped.
var sleeper = []string{"sh", "-c", `trap "exit 0" TERM; while :; do sleep 1; done`}

var instanceSeq atomic.Int32

// instance is one real VM booted with the operator's user-data.
type instance struct {
	t      testing.TB
	render func([]v1alpha1.Container) ([]byte, error) // the user-data of a launch with other containers
	poll   time.Duration
	vm     *instancevm.VM
	target agent.Target
	ssh    agent.SSH
	client *sshx.Client
}

type launchOpts struct {
	drive      instancevm.Drive
	blank      bool
	filesystem v1alpha1.Filesystem
	prewarm    bool
	// poll is how often ready() asks for the status; 3 s if zero.
	poll time.Duration
}

// launch renders the user-data as the operator does for a launch, and boots a VM with it.
func launch(t testing.TB, o launchOpts) *instance {
	t.Helper()
	n := instanceSeq.Add(1)
	id := fmt.Sprintf("i-0instancevm%05d", n)
	hostKey, hostPub := sshd.GenerateKey(t)
	clientKey, clientPub := sshd.GenerateKey(t)
	render := func(cs []v1alpha1.Container) ([]byte, error) {
		ws := &v1alpha1.Workstation{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "box"},
			Spec: v1alpha1.WorkstationSpec{MountPath: mountPath, Containers: cs}}
		drive := &v1alpha1.XDrive{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "box"},
			Spec: v1alpha1.XDriveSpec{Filesystem: o.filesystem}}
		return operator.UserData(workstation.UserDataInput{Workstation: ws, Drive: drive, HostKey: hostKey,
			Credentials: workstation.Credentials{ClientKey: clientKey, AuthorizedKey: clientPub},
			BlankDrive:  o.blank, Prewarm: o.prewarm})
	}
	ud, err := render(containers)
	if err != nil {
		t.Fatalf("rendering the user-data: %v", err)
	}
	vm, err := instancevm.Boot(instancevm.Config{Image: image, Dir: filepath.Join(t.TempDir(), id), InstanceID: id,
		Address: fmt.Sprintf("10.99.0.%d", n), UserData: ud, Drive: o.drive,
		Log: func(msg string) { t.Logf("%s %s: %s", time.Now().Format("15:04:05"), id, msg) }})
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{t: t, vm: vm, render: render, poll: cmp.Or(o.poll, 3*time.Second), ssh: agent.SSH{Resolver: vm.Resolve, Retry: sshx.RetryPolicy{MaxElapsed: sshPatience}},
		target: agent.Target{Address: vm.Config().Address, HostKey: hostPub, ClientKey: clientKey, DriveVolumeID: o.drive.VolumeID}}
	in.client, err = sshx.New(sshx.Config{PrivateKeyPEM: clientKey, HostKey: hostPub, Resolver: vm.Resolve,
		CommandTimeout: bootTimeout, Retry: sshx.RetryPolicy{MaxElapsed: sshPatience}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s console (end):\n%s", id, vm.SerialLog(6000))
			if out, err := in.tryRun(30*time.Second, "journalctl -b --no-pager -u xdrive-bootstrap -u xdrive-watch -u cloud-final -u docker | tail -n 80"); err == nil {
				t.Logf("%s journal (end):\n%s", id, out)
			}
		}
		vm.PowerOff()
	})
	return in
}

// ready waits, over SSH as the operator does, for the bootstrap to end
// (ready or failed), and reports how long the boot took.
func (in *instance) ready() agent.Status {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	var last error
	lastLog := time.Now()
	for {
		actx, acancel := context.WithTimeout(ctx, 30*time.Second)
		st, err := in.ssh.Status(actx, in.target)
		acancel()
		// Before the bootstrap installs the operator's keys, sshd shows the
		// image's host key or refuses the client key: both only mean "not yet".
		// A container "unknown" means docker ps ran past the status call's
		// 2 s for Docker, which an emulated guest under load may: ask again.
		if err == nil && (st.Phase == bootstrap.PhaseReady && !slices.Contains(slices.Collect(maps.Values(st.Containers)), "unknown") ||
			st.Phase == bootstrap.PhaseFailed) {
			in.t.Logf("%s: bootstrap %s %s after QEMU started", in.vm.Config().InstanceID, st.Phase,
				time.Since(in.vm.Started).Round(time.Second))
			in.timeline()
			return st
		}
		if err != nil {
			last = err
		}
		if time.Since(lastLog) > time.Minute {
			in.t.Logf("%s: booting for %s: phase %q, SSH error: %v", in.vm.Config().InstanceID,
				time.Since(in.vm.Started).Round(time.Second), st.Phase, err)
			lastLog = time.Now()
		}
		select {
		case <-in.vm.Exited():
			in.t.Fatalf("%s: QEMU exited during the boot (last SSH error: %v)", in.vm.Config().InstanceID, last)
		case <-ctx.Done():
			in.t.Fatalf("%s: the bootstrap did not end within %s (last status %+v, last SSH error: %v)",
				in.vm.Config().InstanceID, bootTimeout, st, last)
		case <-time.After(in.poll):
		}
	}
}

// timeline logs where the boot's time went, in seconds since the kernel
// started: cloud-init's final stage (the user-data) and each bootstrap phase.
func (in *instance) timeline() {
	out, err := in.tryRun(time.Minute, `journalctl -b -o short-monotonic --no-pager | `+
		`grep -E "running 'modules:final'|xdrive: phase|Startup finished|Reached target.*Multi-User" | cut -c1-150`)
	if err != nil {
		in.t.Logf("%s: reading the boot's timeline: %v", in.vm.Config().InstanceID, err)
		return
	}
	in.t.Logf("%s: boot timeline:\n%s", in.vm.Config().InstanceID, out)
}

func (in *instance) tryRun(timeout time.Duration, cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := in.client.Run(ctx, in.target.Address, cmd)
	return strings.TrimSpace(string(out)), err
}

// run runs a shell command on the instance as root and returns its trimmed stdout.
func (in *instance) run(cmd string) string {
	in.t.Helper()
	out, err := in.tryRun(3*time.Minute, cmd)
	if err != nil {
		in.t.Fatalf("%s: %q: %v (output %q)", in.vm.Config().InstanceID, cmd, err, out)
	}
	return out
}

func (in *instance) status() agent.Status {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), sshPatience+time.Minute)
	defer cancel()
	st, err := in.ssh.Status(ctx, in.target)
	if err != nil {
		in.t.Fatalf("%s: status: %v", in.vm.Config().InstanceID, err)
	}
	return st
}

// release runs `xdrive-ctl release` as the operator does, and checks the status after it.
func (in *instance) release() {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	if _, err := in.ssh.Release(ctx, in.target); err != nil {
		in.t.Fatalf("%s: release: %v", in.vm.Config().InstanceID, err)
	}
	in.t.Logf("%s: released in %s", in.vm.Config().InstanceID, time.Since(start).Round(100*time.Millisecond))
	if st := in.status(); !st.Released || st.Mounted || st.Phase != bootstrap.PhaseReleased {
		in.t.Fatalf("%s: status after the release = %+v", in.vm.Config().InstanceID, st)
	}
}

// checkStore checks that the drive is mounted at the mountPath from the
// disk with the volume's serial, with fstype, and that Docker's whole store
// is on it: data-root, overlay2 without the containerd image store, and the
// containers' writable layers.
func (in *instance) checkStore(fstype string) {
	in.t.Helper()
	drive := in.vm.Config().Drive
	got := in.run("findmnt -n -o SOURCE,FSTYPE --mountpoint " + mountPath)
	src, fs, _ := strings.Cut(got, " ")
	if fs = strings.TrimSpace(fs); fs != fstype {
		in.t.Errorf("%s is %q from %s; want %s", mountPath, fs, src, fstype)
	}
	if serial := in.run("lsblk -ndo SERIAL " + src); serial != drive.Serial() {
		in.t.Errorf("%s is mounted from %s whose serial is %q; want the volume's %q", mountPath, src, serial, drive.Serial())
	}
	// Docker's guard is live: docker.service never starts unless the drive is mounted.
	if got := in.run("systemctl show -p DropInPaths -p NeedDaemonReload -p ConditionResult docker.service"); !strings.Contains(got, "xdrive.conf") ||
		!strings.Contains(got, "NeedDaemonReload=no") {
		in.t.Errorf("docker.service: %s; want the xdrive.conf drop-in loaded", got)
	}
	if got := in.run("systemctl is-active xdrive-watch.service"); got != "active" {
		in.t.Errorf("xdrive-watch.service is %s", got)
	}
	info := in.run(`docker info --format '{{.DockerRootDir}}|{{.Driver}}|{{json .DriverStatus}}'`)
	if root, rest, _ := strings.Cut(info, "|"); root != mountPath+"/docker" || !strings.HasPrefix(rest, "overlay2|") ||
		strings.Contains(rest, "containerd.snapshotter") {
		in.t.Errorf("docker info = %s; want data-root %s/docker, overlay2, no containerd snapshotter", info, mountPath)
	}
	for _, c := range containers {
		upper := in.run("docker inspect -f '{{.GraphDriver.Data.UpperDir}}' " + c.Name)
		if !strings.HasPrefix(upper, mountPath+"/docker/") {
			in.t.Errorf("container %s writes to %s, not on the drive", c.Name, upper)
		}
	}
	if img := in.run("docker image inspect -f '{{.GraphDriver.Data.UpperDir}}' xdrive.test/busybox:1"); !strings.HasPrefix(img, mountPath+"/docker/") {
		in.t.Errorf("the image's layer is at %s, not on the drive", img)
	}
}

// device is the disk whose NVMe serial is the drive's.
func (in *instance) device(d instancevm.Drive) string {
	in.t.Helper()
	dev := in.run("lsblk -dn -o PATH,SERIAL | awk -v s=" + d.Serial() + " '$2 == s {print $1}'")
	if !strings.HasPrefix(dev, "/dev/nvme") || strings.Contains(dev, "\n") {
		in.t.Fatalf("the disks with serial %s: %q", d.Serial(), dev)
	}
	return dev
}

// acked is the appender's last acknowledged (fsynced) number.
func (in *instance) acked() int {
	in.t.Helper()
	out := in.run("docker logs --tail 1 appender 2>/dev/null")
	n, err := strconv.Atoi(out)
	if err != nil || n <= 0 {
		in.t.Fatalf("the appender's last acknowledgement is %q", out)
	}
	return n
}

// checkLog checks that the appender's log reads 1..n without a gap, and
// holds at least want lines (checkLogText).
func (in *instance) checkLog(want int) int {
	in.t.Helper()
	return checkLogText(in.t, in.run("docker exec appender cat /data/log"), want)
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(3 * time.Second)
	}
}

// fsck checks an ext4 snapshot's filesystem on the host, read-only: a
// released drive is clean.
func fsck(t testing.TB, path string) {
	t.Helper()
	if out, err := exec.Command("e2fsck", "-fn", path).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck of the snapshot %s: %v\n%s", path, err, out)
	}
}

// TestKeptAcrossLaunches is the drive's life on real instances:
//  1. first use: a blank volume is formatted ext4 and mounted, and Docker's
//     whole store is on it; a write in a container's writable layer, and an
//     fsync appender running; the operator releases; the snapshot is taken.
//  2. a second instance from the snapshot, on a larger volume: not
//     formatted (same filesystem UUID), grown to the volume, the same
//     containers with their writes, every acknowledged append there,
//     prewarm reads the whole volume; then a spot notice at its IMDS: the
//     instance's own watcher releases the drive, with no operator call.
//  3. a third instance from that snapshot finds the writes made before the notice.
func TestKeptAcrossLaunches(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	vol1, err := instancevm.BlankDrive(filepath.Join(dir, "vol1.raw"), "vol-0aaaaaaaaaaaaaaa1", gib)
	if err != nil {
		t.Fatal(err)
	}

	// 1. First use.
	first := launch(t, launchOpts{drive: vol1, blank: true})
	st := first.ready()
	if st.Phase != bootstrap.PhaseReady || !st.Mounted || st.VolumeID != vol1.VolumeID ||
		st.Containers["shell"] != "running" || st.Containers["appender"] != "running" {
		t.Fatalf("first boot: status = %+v", st)
	}
	first.checkStore("ext4")
	uuid := first.run("blkid -o value -s UUID $(findmnt -n -o SOURCE --mountpoint " + mountPath + ")")
	shellID := first.run("docker inspect -f '{{.Id}}' shell")
	first.run("docker exec shell sh -c 'echo first-launch >/note'")
	waitFor(t, "the appender's first acknowledgements", 2*time.Minute, func() bool {
		return first.run("docker logs --tail 1 appender 2>&1") != ""
	})
	// The release with a full root disk (its state goes to tmpfs).
	t.Logf("root disk filled: %s", first.fill("/"))
	acked := first.acked()
	first.release()
	snap1 := filepath.Join(dir, "snap1.raw")
	if err := vol1.Snapshot(snap1); err != nil {
		t.Fatal(err)
	}
	first.vm.PowerOff()
	fsck(t, snap1)

	// 2. Restored, on a larger volume.
	vol2, err := instancevm.Restore(snap1, filepath.Join(dir, "vol2.raw"), "vol-0bbbbbbbbbbbbbbb2", 2*gib)
	if err != nil {
		t.Fatal(err)
	}
	second := launch(t, launchOpts{drive: vol2, prewarm: true})
	st = second.ready()
	if st.Phase != bootstrap.PhaseReady || !st.Mounted || st.Containers["shell"] != "running" || st.Containers["appender"] != "running" {
		t.Fatalf("second boot: status = %+v", st)
	}
	second.checkStore("ext4")
	if got := second.run("blkid -o value -s UUID $(findmnt -n -o SOURCE --mountpoint " + mountPath + ")"); got != uuid {
		t.Errorf("the restored drive's filesystem UUID is %s, was %s: it was formatted", got, uuid)
	}
	if got := second.run("docker inspect -f '{{.Id}}' shell"); got != shellID {
		t.Errorf("the shell container is %s, was %s", got, shellID)
	}
	if got := second.run("docker exec shell cat /note"); got != "first-launch" {
		t.Errorf("the first launch's write reads %q", got)
	}
	second.checkLog(acked)
	size, _ := strconv.ParseInt(second.run("df -B1 --output=size "+mountPath+" | tail -n1"), 10, 64)
	if size < gib+gib/2 {
		t.Errorf("%s is %d bytes on a 2 GiB volume restored from a 1 GiB one: not grown", mountPath, size)
	}
	var pw *bootstrap.Prewarm
	waitFor(t, "prewarm to read the whole volume", 5*time.Minute, func() bool {
		pw = second.status().Prewarm
		return pw != nil && pw.Done()
	})
	if pw.BytesTotal != 2*gib || pw.VolumeID != vol2.VolumeID {
		t.Errorf("prewarm = %+v; want all of %s's 2 GiB", *pw, vol2.VolumeID)
	}
	t.Logf("prewarm read %d MiB at %d MiB/s", pw.BytesRead>>20, pw.BytesPerSecond>>20)

	// The spot notice: the instance releases the drive by itself.
	second.run("docker exec shell sh -c 'echo before-the-notice >/note2'")
	acked = second.acked()
	if err := second.vm.Notice(); err != nil {
		t.Fatal(err)
	}
	noticed := time.Now()
	waitFor(t, "the watcher to release the drive after the spot notice", 3*time.Minute, func() bool {
		st = second.status()
		return st.Released
	})
	t.Logf("released by the watcher %s after the notice", time.Since(noticed).Round(time.Second))
	if st.Mounted || st.Phase != bootstrap.PhaseReleased {
		t.Fatalf("status after the watcher's release = %+v", st)
	}
	if got := second.run("cat /var/lib/xdrive/spot-instance-action"); !strings.Contains(got, `"terminate"`) {
		t.Errorf("the watcher recorded the notice as %q", got)
	}
	snap2 := filepath.Join(dir, "snap2.raw")
	if err := vol2.Snapshot(snap2); err != nil {
		t.Fatal(err)
	}
	second.vm.PowerOff()
	fsck(t, snap2)

	// 3. From the snapshot taken after the watcher's release.
	vol3, err := instancevm.Restore(snap2, filepath.Join(dir, "vol3.raw"), "vol-0ccccccccccccccc3", 0)
	if err != nil {
		t.Fatal(err)
	}
	third := launch(t, launchOpts{drive: vol3})
	if st = third.ready(); st.Phase != bootstrap.PhaseReady {
		t.Fatalf("third boot: status = %+v", st)
	}
	if got := third.run("docker exec shell cat /note /note2"); got != "first-launch\nbefore-the-notice" {
		t.Errorf("the writes before the notice read %q", got)
	}
	if got := third.run("docker inspect -f '{{.Id}}' shell"); got != shellID {
		t.Errorf("the shell container is %s, was %s", got, shellID)
	}
	third.checkLog(acked)

	// A hung Docker (dockerd stopped by SIGSTOP: every docker call hangs):
	// the operator's status still answers, with the containers unknown; the
	// release gives up on docker after its time limit, stops docker.service
	// (systemd's SIGTERM comes with a SIGCONT) and flushes: every
	// acknowledged write is in the snapshot, read from it on the host.
	upper := third.run("docker inspect -f '{{.GraphDriver.Data.UpperDir}}' appender")
	acked = third.acked()
	third.run("kill -STOP $(systemctl show -p MainPID --value docker.service)")
	if st = third.status(); st.Containers["appender"] != "unknown" || st.Phase != bootstrap.PhaseReady {
		t.Errorf("status with Docker hung = %+v; want ready, containers unknown", st)
	}
	third.release()
	snap3 := filepath.Join(dir, "snap3.raw")
	if err := vol3.Snapshot(snap3); err != nil {
		t.Fatal(err)
	}
	third.vm.PowerOff()
	fsck(t, snap3)
	checkLogText(t, debugfsCat(t, snap3, strings.TrimPrefix(upper, mountPath)+"/data/log"), acked)
}

// debugfsCat reads a file from an ext4 image on the host, read-only.
func debugfsCat(t testing.TB, img, path string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", "cat "+path, img).Output()
	if err != nil || len(out) == 0 {
		t.Fatalf("debugfs cat %s in %s: %v (%d bytes)", path, img, err, len(out))
	}
	return string(out)
}

// TestFirstUseXFS: a blank volume with filesystem xfs is formatted xfs, and
// Docker's whole store is on it; after the release the filesystem is clean.
func TestFirstUseXFS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	vol, err := instancevm.BlankDrive(filepath.Join(dir, "vol.raw"), "vol-0ddddddddddddddd4", 2*gib)
	if err != nil {
		t.Fatal(err)
	}
	in := launch(t, launchOpts{drive: vol, blank: true, filesystem: v1alpha1.FilesystemXFS})
	if st := in.ready(); st.Phase != bootstrap.PhaseReady || !st.Mounted || st.Containers["appender"] != "running" {
		t.Fatalf("status = %+v", st)
	}
	in.checkStore("xfs")
	checkIdleSignals(in)
	carryOver(t, in)

	// The release with a full drive, under the appender's writes: every
	// acknowledged write is on the drive, read after the release from the
	// device (mounted read-only) by the guest's kernel.
	upper := in.run("docker inspect -f '{{.GraphDriver.Data.UpperDir}}' appender")
	t.Logf("drive filled: %s", in.fill(mountPath))
	time.Sleep(5 * time.Second)
	acked := in.acked()
	in.release()
	dev := in.device(vol)
	log := in.run("mkdir -p /mnt/check && mount -o ro " + dev + " /mnt/check && cat /mnt/check" +
		strings.TrimPrefix(upper, mountPath) + "/data/log; umount /mnt/check")
	t.Logf("%d writes acknowledged before the release, %d on the drive", acked, checkLogText(t, log, acked))
	// The guest's xfs_repair: the host's (bookworm's) may not know the
	// features trixie's mkfs.xfs turns on.
	// As long as a boot may take: it reads the whole full filesystem's
	// metadata on an emulated disk.
	if out, err := in.tryRun(bootTimeout, "xfs_repair -n "+dev+" 2>&1"); err != nil {
		t.Fatalf("xfs_repair -n %s: %v\n%s", dev, err, out)
	}
}

// carryOver changes the containers' spec on a running instance and runs
// the bootstrap's start_containers, as the next launch's boot would, on
// real Docker:
//   - a container from an image with a VOLUME (db) and one from a 62-layer
//     image (deep, past the bootstrap's 60) are added and written to;
//   - their env changes: each is committed and recreated, db with its
//     volume (the same one) and its writable layer, deep flattened to one
//     layer with its image's settings and its writes;
//   - db's image changes to one no registry has: the pull fails, and the
//     old db comes back, running with its previous settings and data, and
//     the failure is reported (preserveError).
func carryOver(t *testing.T, in *instance) {
	t.Helper()
	in.run(`docker import --change 'CMD ["sh"]' --change 'VOLUME ["/vol"]' ` +
		`/usr/local/share/xdrive-instancevm/busybox.tar xdrive.test/busybox-vol:1`)
	in.upload("/tmp/deep.tar", deepImage(t, "xdrive.test/deep:1", 62))
	in.run("docker load -q -i /tmp/deep.tar && rm /tmp/deep.tar")
	db := v1alpha1.Container{Name: "db", Image: "xdrive.test/busybox-vol:1", Command: sleeper}
	deep := v1alpha1.Container{Name: "deep", Image: "xdrive.test/deep:1", Command: sleeper}
	spec := func() []v1alpha1.Container { return append(slices.Clone(containers), db, deep) }
	in.respec(spec())
	t.Logf("db and deep added:\n%s", in.startContainers())
	if got := in.run("docker image inspect -f '{{len .RootFS.Layers}}' xdrive.test/deep:1"); got != "62" {
		t.Fatalf("xdrive.test/deep:1 has %s layers, want 62", got)
	}
	in.run("docker exec db sh -c 'echo in-the-volume >/vol/v && echo in-the-layer >/l' && docker exec deep sh -c 'echo deep-layer >/d'")
	volume := in.run(`docker inspect -f '{{range .Mounts}}{{.Name}}{{end}}' db`)

	db.Env = []corev1.EnvVar{{Name: "X", Value: "2"}}
	deep.Env = db.Env
	in.respec(spec())
	out := in.startContainers()
	t.Logf("env changed:\n%s", out)
	if !strings.Contains(out, "flattening") {
		t.Errorf("deep was not flattened at 63 layers")
	}
	if got := in.run("docker exec db sh -c 'cat /vol/v /l; echo $X'"); got != "in-the-volume\nin-the-layer\n2" {
		t.Errorf("db after the carry-over reads %q", got)
	}
	if got := in.run(`docker inspect -f '{{range .Mounts}}{{.Name}}{{end}}' db`); got != volume {
		t.Errorf("db mounts volume %q, had %q", got, volume)
	}
	if got := in.run("docker exec deep sh -c 'cat /d; echo $X $DEEP'"); got != "deep-layer\n2 1" {
		t.Errorf("deep after the carry-over reads %q", got)
	}
	if got := in.run("docker image inspect -f '{{len .RootFS.Layers}}' deep:xdrive-latest"); got != "1" {
		t.Errorf("deep:xdrive-latest has %s layers; want 1 (flattened)", got)
	}
	if st := in.status(); st.PreserveError != "" || st.Containers["deep"] != "running" || st.Containers["db"] != "running" {
		t.Errorf("status after the carry-over = %+v", st)
	}

	db.Image = "xdrive.test/missing:1"
	in.respec(spec())
	t.Logf("db's image changed to one no registry has:\n%s", in.startContainers())
	if got := in.run("docker exec db sh -c 'cat /vol/v /l; echo $X'"); got != "in-the-volume\nin-the-layer\n2" {
		t.Errorf("db after the failed pull reads %q", got)
	}
	if st := in.status(); !strings.Contains(st.PreserveError, "db:") || st.Containers["db"] != "running" {
		t.Errorf("status after the failed pull = %+v; want db running, its failure in preserveError", st)
	}
	if got := in.run("docker ps -a --format '{{.Names}}' | sort | tr '\\n' ' '; docker images --format '{{.Repository}}:{{.Tag}}' | grep carry || true"); got != "appender db deep shell" {
		t.Errorf("containers and pending tags left: %q", got)
	}
}

// TestRestoredNeverFormatted: a volume restored from a snapshot whose first
// MiB reads as zeros (no filesystem signature) is never formatted: the boot
// fails with a message, and not one byte of the volume changes.
func TestRestoredNeverFormatted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	vol, err := instancevm.BlankDrive(filepath.Join(dir, "vol.raw"), "vol-0eeeeeeeeeeeeeee5", gib)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(vol.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	precious := []byte(strings.Repeat("the user's data, past the first MiB. ", 100))
	if _, err := f.WriteAt(precious, 8<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	before := fileHash(t, vol.Path)
	in := launch(t, launchOpts{drive: vol})
	st := in.ready()
	if st.Phase != bootstrap.PhaseFailed || st.Mounted || !strings.Contains(st.Message, "refusing to format") {
		t.Errorf("status = %+v; want failed, refusing to format", st)
	}
	if got := in.run("blkid -p " + in.device(vol) + " || echo none"); got != "none" {
		t.Errorf("blkid finds %q on the restored volume", got)
	}
	in.vm.PowerOff()
	if after := fileHash(t, vol.Path); after != before {
		t.Errorf("the restored volume changed on a failed boot")
	}
}

func fileHash(t testing.TB, path string) string {
	t.Helper()
	out, err := exec.Command("sha256sum", path).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("sha256sum %s: %v: %s", path, err, ee.Stderr)
		}
		t.Fatal(err)
	}
	return strings.Fields(string(out))[0]
}

// TestReleaseDuringBoot: a release sent while the boot prepares the drive,
// starts Docker or starts the containers (on a real systemd, with real
// dockerd) wins: the boot stops, the drive is unmounted, Docker stays
// stopped, nothing mounts the drive again, and the filesystem is clean.
func TestReleaseDuringBoot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	vol, err := instancevm.BlankDrive(filepath.Join(dir, "vol.raw"), "vol-0fffffffffffffff6", gib)
	if err != nil {
		t.Fatal(err)
	}
	in := launch(t, launchOpts{drive: vol, blank: true})
	var phase string
	waitFor(t, "the boot to reach the drive", bootTimeout, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st, err := in.ssh.Status(ctx, in.target)
		if err != nil {
			return false // sshd has not the operator's keys yet
		}
		switch phase = st.Phase; phase {
		case bootstrap.PhasePreparingDrive, bootstrap.PhaseStartingDocker, bootstrap.PhaseStartingContainers:
			return true
		case bootstrap.PhaseReady, bootstrap.PhaseFailed:
			t.Fatalf("the boot ended (%s) before a release could be sent during it", phase)
		}
		return false
	})
	t.Logf("releasing during the boot's phase %s", phase)
	in.release()
	// The boot must not go on after the release.
	time.Sleep(15 * time.Second)
	if st := in.status(); !st.Released || st.Mounted || st.Phase != bootstrap.PhaseReleased {
		t.Errorf("status 15s after the release = %+v", st)
	}
	if got := in.run("findmnt -rn -o TARGET --source " + in.device(vol) + " || echo none"); got != "none" {
		t.Errorf("the drive is mounted at %q after the release", got)
	}
	if got := in.run("systemctl is-active docker.service || true"); got != "inactive" {
		t.Errorf("docker.service is %q after the release", got)
	}
	snap := filepath.Join(dir, "snap.raw")
	if err := vol.Snapshot(snap); err != nil {
		t.Fatal(err)
	}
	in.vm.PowerOff()
	// A release during preparing-drive may come before mkfs; after it, the filesystem is clean.
	out, _ := exec.Command("blkid", "-p", "-o", "value", "-s", "TYPE", snap).Output()
	switch fs := strings.TrimSpace(string(out)); {
	case fs == "ext4":
		fsck(t, snap)
	case fs == "" && phase == bootstrap.PhasePreparingDrive:
	default:
		t.Errorf("the released drive holds %q after a release during %s", fs, phase)
	}
}
