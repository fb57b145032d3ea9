package bootstrap

// Tests of issue #17: the instance side keeps every byte. Containers are kept
// across launches, release and boot never race, a restored drive is never
// formatted, and Docker's whole store stays on the drive.

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// labelOf returns a container's spec-hash label, as the shim keeps it.
func labelOf(t *testing.T, s *sandbox, name string) string {
	t.Helper()
	for _, l := range strings.Split(s.read(filepath.Join(s.state, "meta", name, "labels")), "\n") {
		if v, ok := strings.CutPrefix(l, "xdrive.io/spec-hash="); ok {
			return v
		}
	}
	t.Fatalf("container %s has no spec-hash label", name)
	return ""
}

// docker runs the shim's docker in the sandbox, as a user on the instance would.
func (s *sandbox) docker(args ...string) error {
	s.t.Helper()
	_, _, err := s.run(nil, filepath.Join(s.bin, "docker"), args...)
	return err
}

// change writes a file into a running container's writable layer.
func (s *sandbox) change(name, path string) {
	s.t.Helper()
	if err := s.docker("exec", name, "touch", path); err != nil {
		s.t.Fatalf("docker exec %s touch %s: %v", name, path, err)
	}
}

// sees reports whether a container sees a file.
func (s *sandbox) sees(name, path string) bool {
	files := strings.Split(s.read(filepath.Join(s.state, "meta", name, "fs")), "\n")
	return slices.Contains(files, path)
}

// relaunch ends this launch with a release and boots the next one on the
// same drive (the shim's Docker store is the drive's), restored from a snapshot.
func (s *sandbox) relaunch(p Params, env ...string) []string {
	s.t.Helper()
	if _, stderr, err := s.ctl(nil, "release"); err != nil {
		s.t.Fatalf("release: %v\n%s", err, stderr)
	}
	s.newRoot()
	n := len(s.calls())
	p.BlankDrive = false
	s.boot(p, env...)
	return s.calls()[n:]
}

func TestKeepStartsUnchangedContainer(t *testing.T) {
	s := newSandbox(t, false)
	p := testParams(t)
	s.boot(p)
	hash := labelOf(t, s, "web")
	s.change("web", "/root/.bash_history")
	calls := s.relaunch(p)
	expectOrder(t, calls, "docker start web")
	expectNone(t, calls, "docker rm", "docker run", "docker commit", "docker stop")
	if !s.sees("web", "/root/.bash_history") || labelOf(t, s, "web") != hash {
		t.Error("the container was not kept as it was")
	}
	if st := s.status(); st.Containers["web"] != "running" || st.PreserveError != "" || st.Phase != PhaseReady {
		t.Errorf("status = %+v", st)
	}
}

func TestKeepStoppedContainersChanges(t *testing.T) {
	for _, specChange := range []bool{false, true} {
		t.Run(map[bool]string{false: "same spec", true: "spec changed"}[specChange], func(t *testing.T) {
			s := newSandbox(t, false)
			p := testParams(t)
			s.boot(p)
			s.change("web", "/opt/venv/installed")
			if err := s.docker("stop", "web"); err != nil { // the user stops it, or it crashed
				t.Fatal(err)
			}
			if specChange {
				p.Containers[0].Args = []string{"--debug"}
			}
			calls := s.relaunch(p)
			if specChange {
				expectOrder(t, calls, "docker commit web web:xdrive-carry-latest", "docker rename web web.xdrive-old",
					"docker create --name web", "docker start web", "docker rm web.xdrive-old", "docker tag web:xdrive-carry-latest web:xdrive-latest")
			} else {
				expectOrder(t, calls, "docker start web")
				expectNone(t, calls, "docker rm ")
			}
			if !s.sees("web", "/opt/venv/installed") {
				t.Error("the stopped container's change was lost")
			}
		})
	}
}

func TestRecreateCarriesOverOnSpecChange(t *testing.T) {
	s := newSandbox(t, false)
	p := testParams(t)
	s.boot(p)
	before := labelOf(t, s, "web")
	s.change("web", "/root/notes")
	// An image's VOLUME (anonymous volume) is not in a commit: it must be mounted again.
	s.write(filepath.Join(s.state, "meta/web/volumes"), "3f2a9c0d:/var/lib/data\n", 0o644)
	p.Containers[0].Env = []corev1.EnvVar{{Name: "MODE", Value: "dev"}}
	calls := s.relaunch(p)
	// Stop first, then commit, then create from the commit and start; the
	// old container goes only once its successor has started.
	expectOrder(t, calls, "docker stop -t 20 web", "docker commit web web:xdrive-carry-latest", "docker rename web web.xdrive-old",
		"docker create --name web", "docker start web", "docker rm web.xdrive-old")
	argv := s.runArgv("web")
	if i := slices.Index(argv, "-v"); i < 0 || argv[i+1] != "3f2a9c0d:/var/lib/data" {
		t.Errorf("the new container does not mount the old one's volume: %q", argv)
	}
	if argv[len(argv)-1] != "web:xdrive-carry-latest" || !slices.Contains(argv, "MODE=dev") {
		t.Errorf("new container argv %q", argv)
	}
	if labelOf(t, s, "web") == before {
		t.Error("the spec hash did not change")
	}
	if !s.sees("web", "/root/notes") {
		t.Error("the writable layer was not carried over")
	}

	t.Run("spec image change keeps the old state as an image", func(t *testing.T) {
		s.change("web", "/root/more")
		p.Containers[0].Image = "nginx:1.27"
		calls := s.relaunch(p)
		expectOrder(t, calls, "docker commit web web:xdrive-carry-previous", "docker rename web web.xdrive-old",
			"docker create --name web", "docker start web", "docker rm web.xdrive-old", "docker tag web:xdrive-carry-previous web:xdrive-previous")
		if argv := s.runArgv("web"); argv[len(argv)-1] != "nginx:1.27" {
			t.Errorf("new container argv %q", argv)
		}
		img := s.read(filepath.Join(s.state, "images", "web:xdrive-previous"))
		if !strings.Contains(img, "file /root/more") {
			t.Errorf("web:xdrive-previous = %q", img)
		}
		if s.exists(filepath.Join(s.state, "images", "web:xdrive-latest")) {
			t.Error("a stale web:xdrive-latest would seed a later re-creation")
		}
	})
}

// TestDepthStaysBounded runs 200 spec changes, each with a change in the
// container, through start_container in one bash process.
func TestDepthStaysBounded(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, false)
	s.timeout = 8 * runTimeout // 200 cycles of about twenty shim calls each, on a machine that may be busy
	p := testParams(t)
	p.Containers[0].Env = []corev1.EnvVar{{Name: "TOKEN", Value: "not-in-the-image"}}
	s.boot(p)
	const cycles, maxDepth = 200, 20
	script := `set -e
. "$XDRIVE_ROOT/usr/local/sbin/xdrive-bootstrap"
load_config
for ((i = 1; i <= ` + strconv.Itoa(cycles) + `; i++)); do
	printf 'cycle-%d\0' "$i" >"$CONF_DIR/containers/web/argv"
	docker exec web touch "/cycle-$i"
	PRESERVE_ERRORS=
	load_container_states
	start_container web
	[[ -z $PRESERVE_ERRORS ]] || { echo "cycle $i: $PRESERVE_ERRORS" >&2; exit 1; }
	img=$SHIM_STATE/images/web:xdrive-latest
	echo "depth $(sed -n 's/^layers //p' "$img")"
	if grep -qx 'layers 1' "$img"; then cp "$img" "$SHIM_STATE/flattened"; fi
done`
	out, stderr, err := s.run([]string{"XDRIVE_MAX_DEPTH=" + strconv.Itoa(maxDepth)}, "bash", "-c", script)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var depths []int
	for _, m := range regexp.MustCompile(`depth (\d+)`).FindAllStringSubmatch(out, -1) {
		d, _ := strconv.Atoi(m[1])
		depths = append(depths, d)
	}
	if len(depths) != cycles {
		t.Fatalf("%d depths, want %d:\n%s", len(depths), cycles, out)
	}
	flattened := 0
	for i, d := range depths {
		if d > maxDepth {
			t.Fatalf("cycle %d: depth %d > %d", i+1, d, maxDepth)
		}
		if i > 0 && d < depths[i-1] {
			flattened++
		}
	}
	if flattened == 0 {
		t.Fatal("never flattened; the test proves nothing")
	}
	for i := 1; i <= cycles; i++ {
		if !s.sees("web", "/cycle-"+strconv.Itoa(i)) {
			t.Fatalf("the change of cycle %d was lost (flattened %d times)", i, flattened)
		}
	}
	img := s.read(filepath.Join(s.state, "flattened"))
	if strings.Contains(img, "TOKEN") || !strings.Contains(img, `change CMD ["/bin/sh"]`) || !strings.Contains(img, `change ENV PATH="/usr/local/bin:/usr/bin"`) {
		t.Errorf("flattened image:\n%s", img)
	}
}

func TestFailedCommitKeepsOldContainer(t *testing.T) {
	s := newSandbox(t, false)
	p := testParams(t)
	s.boot(p)
	s.change("web", "/root/work")
	s.setState("docker-fail-commit", "")
	p.Containers[0].Args = []string{"--new"}
	calls := s.relaunch(p)
	expectOrder(t, calls, "docker commit web", "docker start web")
	expectNone(t, calls, "docker rm ", "docker rename", "docker create", "docker run")
	if !s.sees("web", "/root/work") {
		t.Error("the old container's change is gone")
	}
	st := s.status()
	if st.Phase != PhaseReady || st.Containers["web"] != "running" || !strings.Contains(st.PreserveError, "web: docker commit failed") {
		t.Errorf("status = %+v", st)
	}

	// Once the commit works, the next boot carries it over and clears the error.
	if err := os.Remove(filepath.Join(s.state, "docker-fail-commit")); err != nil {
		t.Fatal(err)
	}
	calls = s.relaunch(p)
	expectOrder(t, calls, "docker commit web web:xdrive-carry-latest", "docker create --name web", "docker start web", "docker rm web.xdrive-old")
	if st := s.status(); st.PreserveError != "" || !s.sees("web", "/root/work") {
		t.Errorf("status = %+v", st)
	}
}

// TestReleaseDuringDrivePreparation holds the boot at mount, and releases
// meanwhile: the release waits, and the drive ends unmounted and released.
func TestReleaseDuringDrivePreparation(t *testing.T) {
	s := newSandbox(t, false)
	s.setState("pause-mount", "")
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	boot := s.command(ctx, nil, "bash", s.userData(testParams(t)))
	var bootErr strings.Builder
	boot.Stderr = &bootErr
	if err := boot.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, runTimeout/2, "the boot to reach mount", func() bool { return s.exists(filepath.Join(s.state, "paused-mount")) })

	release := s.command(ctx, nil, filepath.Join(s.root, "usr/local/sbin/xdrive-ctl"), "release")
	var relErr strings.Builder
	release.Stderr = &relErr
	if err := release.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, runTimeout/2, "the release to start", func() bool {
		return strings.TrimSpace(s.readOr(filepath.Join(s.root, "var/lib/xdrive/phase"))) == PhaseReleasing
	})
	if st := s.status(); st.Released {
		t.Fatalf("released while the boot is mounting: %+v", st)
	}
	if err := os.Remove(filepath.Join(s.state, "pause-mount")); err != nil {
		t.Fatal(err)
	}
	if err := boot.Wait(); err != nil {
		t.Fatalf("boot: %v\n%s", err, bootErr.String())
	}
	if err := release.Wait(); err != nil {
		t.Fatalf("release: %v\n%s", err, relErr.String())
	}
	calls := s.calls()
	expectOrder(t, calls, "mount -t ext4", "umount ROOT/v1")
	// The boot stopped at its next step; it started nothing.
	expectNone(t, calls, "systemctl restart docker", "docker run")
	if st := s.status(); !st.Released || st.Mounted {
		t.Errorf("status = %+v", st)
	}
}

// TestReleaseRefusesWhileBootHoldsDrive: a boot that does not let go
// within the wait is stopped; if the drive is still held, the release fails
// rather than report released.
func TestReleaseRefusesWhileBootHoldsDrive(t *testing.T) {
	s := newSandbox(t, false)
	s.setState("pause-mount", "")
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	boot := s.command(ctx, nil, "bash", s.userData(testParams(t)))
	if err := boot.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, runTimeout/2, "the boot to reach mount", func() bool { return s.exists(filepath.Join(s.state, "paused-mount")) })
	_, stderr, err := s.ctl([]string{"XDRIVE_BOOT_WAIT=1"}, "release")
	if err == nil || !strings.Contains(stderr, "not released") {
		t.Fatalf("release: err = %v\n%s", err, stderr)
	}
	_ = boot.Wait() // stopped by the release
	expectNone(t, s.calls(), "umount")
	// The mount the stopped boot left running may still complete: the drive
	// is then mounted, and was rightly never reported released.
	if err := os.Remove(filepath.Join(s.state, "pause-mount")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, runTimeout/2, "the orphaned mount to finish", func() bool { return strings.Contains(s.readOr(filepath.Join(s.state, "mounts")), "/v1 ") })
	if st := s.status(); st.Released || !st.Mounted {
		t.Errorf("status = %+v", st)
	}
}

func TestRestoredVolumeNeverFormatted(t *testing.T) {
	t.Run("blkid rc 2 on a restored volume", func(t *testing.T) {
		s := newSandbox(t, false)
		s.setState("blkid-rc", "2")
		p := testParams(t)
		p.BlankDrive = false
		_, stderr, err := s.run(nil, "bash", s.userData(p))
		if err == nil || !strings.Contains(stderr, "restored from a snapshot") {
			t.Fatalf("err = %v\n%s", err, stderr)
		}
		expectNone(t, s.calls(), "mkfs", "mount")
		if st := s.status(); st.Phase != PhaseFailed || !strings.Contains(st.Message, "refusing to format") {
			t.Errorf("status = %+v", st)
		}
	})
	t.Run("a blank volume whose first MiB is not zeros", func(t *testing.T) {
		s := newSandbox(t, false)
		dev := filepath.Join(s.root, "dev/nvme2n1")
		f, err := os.OpenFile(dev, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte{1}, 4096); err != nil {
			t.Fatal(err)
		}
		f.Close()
		_, stderr, err := s.run(nil, "bash", s.userData(testParams(t)))
		if err == nil || !strings.Contains(stderr, "not all zeros") {
			t.Fatalf("err = %v\n%s", err, stderr)
		}
		expectNone(t, s.calls(), "mkfs", "mount")
	})
}

func TestDockerStoreOffDriveReported(t *testing.T) {
	for name, info := range map[string]string{
		"data-root":        `/var/lib/docker|overlay2|[["Backing Filesystem","extfs"]]`,
		"containerd store": `/v1/docker|overlayfs|[["driver-type","io.containerd.snapshotter.v1"]]`,
	} {
		t.Run(name, func(t *testing.T) {
			s := newSandbox(t, false)
			s.setState("docker-info", info)
			_, stderr, err := s.run(nil, "bash", s.userData(testParams(t)))
			if err == nil {
				t.Fatalf("boot succeeded:\n%s", stderr)
			}
			expectNone(t, s.calls(), "docker run")
			st := s.status()
			if st.StoreError == "" || st.Phase != PhaseFailed {
				t.Errorf("status = %+v", st)
			}
		})
	}
	s := newSandbox(t, false)
	s.boot(testParams(t))
	if got := s.read(filepath.Join(s.root, "etc/docker/daemon.json")); !strings.Contains(got, `"containerd-snapshotter": false`) {
		t.Errorf("daemon.json = %s", got)
	}
	if st := s.status(); st.StoreError != "" {
		t.Errorf("status = %+v", st)
	}
}

func TestDockerCallsHaveTimeouts(t *testing.T) {
	s := newSandbox(t, false)
	s.boot(testParams(t))
	s.setState("docker-hang-stop", "")
	_, stderr, err := s.ctl([]string{"XDRIVE_STOP_TIMEOUT=1", "XDRIVE_DOCKER_CALL_TIMEOUT=1"}, "release")
	if err != nil {
		t.Fatalf("release: %v\n%s", err, stderr)
	}
	st := s.status()
	if !st.Released || !strings.Contains(st.Message, "docker stop failed") {
		t.Errorf("status = %+v", st)
	}
	unit, err := scripts.ReadFile("scripts/xdrive-bootstrap.service")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^TimeoutStartSec=(\S+)$`).FindSubmatch(unit)
	if m == nil || string(m[1]) == "0" || string(m[1]) == "infinity" {
		t.Errorf("the boot unit's TimeoutStartSec must be finite:\n%s", unit)
	}
	for _, src := range []string{"xdrive-bootstrap.sh", "xdrive-ctl.sh", "xdrive-lib.sh"} {
		data, _ := scripts.ReadFile("scripts/" + src)
		for i, line := range strings.Split(string(data), "\n") {
			code, _, _ := strings.Cut(line, "#")
			if regexp.MustCompile(`(^|[;&|(]\s*|\s)docker\s`).MatchString(code) && !strings.Contains(code, "timeout") && !strings.HasPrefix(strings.TrimSpace(code), "dk ") && !strings.Contains(code, "command -v") {
				t.Errorf("%s:%d runs docker without a time limit: %s", src, i+1, strings.TrimSpace(line))
			}
		}
	}
}

func TestOptionFilesArePrivate(t *testing.T) {
	s := newSandbox(t, false)
	p := testParams(t)
	p.Containers[0].Env = []corev1.EnvVar{{Name: "API_TOKEN", Value: "s3cret"}}
	s.boot(p)
	for _, f := range []string{"etc/xdrive/config", "etc/xdrive/containers/web/opts", "etc/xdrive/containers/web/argv",
		"etc/xdrive/containers/web/image", "etc/ssh/ssh_host_ed25519_key"} {
		fi, err := os.Stat(filepath.Join(s.root, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v", f, fi.Mode().Perm())
		}
	}
}

// newRoot clears what the next instance would not have: /var/lib/xdrive on
// its new root disk, and /run/xdrive.
func (s *sandbox) newRoot() {
	s.t.Helper()
	for _, d := range []string{"var/lib/xdrive", "run/xdrive"} {
		if err := os.RemoveAll(filepath.Join(s.root, d)); err != nil {
			s.t.Fatal(err)
		}
	}
}

// readOr reads a file, or returns "" when it cannot.
func (s *sandbox) readOr(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// TestXenDiskNeverGuessed: on a Xen type the drive is /dev/xvd*, with no NVMe
// serial. Placement skips such types (internal/instances); should one run the
// bootstrap anyway, it fails clearly and touches no disk.
func TestXenDiskNeverGuessed(t *testing.T) {
	s := newSandbox(t, true)
	s.write(filepath.Join(s.root, "sys/block/xvdf/size"), "20971520\n", 0o644)
	s.write(filepath.Join(s.root, "dev/xvdf"), "", 0o644)
	_, stderr, err := s.run([]string{"XDRIVE_DEVICE_TIMEOUT=1"}, "bash", s.userData(testParams(t)))
	if err == nil || !strings.Contains(stderr, "drive "+driveVolumeID+" not found") {
		t.Fatalf("err = %v\n%s", err, stderr)
	}
	expectNone(t, s.calls(), "blkid", "mkfs", "mount")
}
