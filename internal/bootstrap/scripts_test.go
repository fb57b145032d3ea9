package bootstrap

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

func TestBootstrapBlankDrive(t *testing.T) {
	for _, fs := range []v1alpha1.Filesystem{v1alpha1.FilesystemExt4, v1alpha1.FilesystemXFS} {
		t.Run(string(fs), func(t *testing.T) {
			s := newSandbox(t, false)
			p := testParams(t)
			p.Filesystem = fs
			s.boot(p)
			grow := "resize2fs ROOT/dev/nvme2n1"
			if fs == v1alpha1.FilesystemXFS {
				grow = "xfs_growfs ROOT/v1"
			}
			calls := s.calls()
			expectOrder(t, calls,
				"systemctl enable --no-reload xdrive-bootstrap.service xdrive-watch.service",
				"systemctl start --no-block xdrive-watch",
				"systemctl start --no-block containerd.service",
				"ssh-keygen -y -f ROOT/etc/ssh/ssh_host_ed25519_key",
				"sshd -t",
				"systemctl restart sshd",
				"blkid -p -o value -s TYPE ROOT/dev/nvme2n1",
				"mkfs."+string(fs)+" -q -L xdrive ROOT/dev/nvme2n1",
				"mount -t "+string(fs)+" -o noatime ROOT/dev/nvme2n1 ROOT/v1",
				grow,
				"systemctl restart docker",
				"docker run -d --name web",
			)
			// A daemon-reload reruns every generator: slow, and not needed
			// for units systemd has not loaded yet.
			expectNone(t, calls, "nvidia-ctk", "mkfs.ext4 ROOT/dev/nvme0n1", "mount -t "+string(fs)+" -o noatime ROOT/dev/nvme1n1",
				"systemctl daemon-reload")

			if got := s.read(filepath.Join(s.root, "etc/docker/daemon.json")); !strings.Contains(got, `"data-root": "/v1/docker"`) {
				t.Errorf("daemon.json = %s", got)
			}
			if got := s.read(filepath.Join(s.root, "var/lib/xdrive/volume-id")); got != driveVolumeID+"\n" {
				t.Errorf("volume-id = %q", got)
			}
			if s.exists(filepath.Join(s.root, "etc/ssh/ssh_host_rsa_key")) {
				t.Error("old RSA host key was not removed")
			}
			if got := s.read(filepath.Join(s.root, "etc/ssh/xdrive_authorized_keys/root")); got != p.AuthorizedKey+"\n" {
				t.Errorf("authorized key = %q", got)
			}
			st := s.status()
			if st.Phase != PhaseReady || !st.Mounted || st.VolumeID != driveVolumeID || st.Containers["web"] != "running" || st.Released {
				t.Errorf("status = %+v", st)
			}
		})
	}
}

// TestBootstrapSystemdReloads: the first boot enables and starts its units
// without a daemon-reload (each reruns every generator: 8 s on a real VM
// under emulation); a later boot of the same instance (from
// xdrive-bootstrap.service) leaves them be; Docker's drop-in is written
// once, and a docker.service loaded before it changed is reloaded.
func TestBootstrapSystemdReloads(t *testing.T) {
	s := newSandbox(t, false)
	s.boot(testParams(t))
	expectNone(t, s.calls(), "systemctl daemon-reload")
	if !s.exists(filepath.Join(s.root, "etc/systemd/system/multi-user.target.wants/xdrive-bootstrap.service")) {
		t.Fatal("xdrive-bootstrap.service is not enabled")
	}
	dropIn := filepath.Join(s.root, "etc/systemd/system/docker.service.d/xdrive.conf")
	if got := s.read(dropIn); got != "[Unit]\nConditionPathIsMountPoint=/v1\n" {
		t.Errorf("drop-in = %q", got)
	}
	st, err := os.Stat(dropIn)
	if err != nil {
		t.Fatal(err)
	}

	// A reboot: the service runs the bootstrap again.
	reboot := func() []string {
		t.Helper()
		n := len(s.calls())
		if _, stderr, err := s.run(nil, filepath.Join(s.root, "usr/local/sbin/xdrive-bootstrap")); err != nil {
			t.Fatalf("bootstrap: %v\n%s", err, stderr)
		}
		return s.calls()[n:]
	}
	calls := reboot()
	expectNone(t, calls, "systemctl enable", "systemctl start --no-block xdrive-watch", "systemctl daemon-reload")
	expectOrder(t, calls, "systemctl restart docker", "docker ps")
	if st2, err := os.Stat(dropIn); err != nil || !st2.ModTime().Equal(st.ModTime()) {
		t.Errorf("the unchanged drop-in was written again (%v)", err)
	}
	s.setState("need-daemon-reload", "")
	expectOrder(t, reboot(), "systemctl daemon-reload", "systemctl restart docker")
}

func TestBootstrapExistingFilesystem(t *testing.T) {
	for _, fs := range []string{"ext4", "xfs"} {
		t.Run(fs, func(t *testing.T) {
			s := newSandbox(t, false)
			s.setState("fs/nvme2n1", fs)
			p := testParams(t)
			p.Filesystem = v1alpha1.FilesystemXFS // the drive's own filesystem wins
			s.boot(p)
			grow := "resize2fs ROOT/dev/nvme2n1"
			if fs == "xfs" {
				grow = "xfs_growfs ROOT/v1"
			}
			calls := s.calls()
			expectOrder(t, calls, "blkid", "mount -t "+fs+" -o noatime ROOT/dev/nvme2n1 ROOT/v1", grow)
			expectNone(t, calls, "mkfs")
		})
	}
}

func TestBootstrapNeverFormatsUnclearDevice(t *testing.T) {
	s := newSandbox(t, false)
	s.setState("blkid-rc", "8") // ambivalent probing result
	_, stderr, err := s.run(nil, "bash", s.userData(testParams(t)))
	if err == nil || !strings.Contains(stderr, "refusing to format") {
		t.Fatalf("err = %v, stderr:\n%s", err, stderr)
	}
	expectNone(t, s.calls(), "mkfs", "mount")
	if st := s.status(); st.Phase != PhaseFailed || !strings.Contains(st.Message, "refusing to format") {
		t.Errorf("status = %+v", st)
	}
}

func TestBootstrapGPU(t *testing.T) {
	containers := []v1alpha1.Container{
		{Name: "auto", Image: "cuda:12", GPUs: v1alpha1.GPUModeAuto},
		{Name: "default", Image: "cuda:12"},
		{Name: "all", Image: "cuda:12", GPUs: v1alpha1.GPUModeAll},
		{Name: "none", Image: "cuda:12", GPUs: v1alpha1.GPUModeNone},
	}
	for _, gpu := range []bool{true, false} {
		t.Run(map[bool]string{true: "gpu", false: "cpu"}[gpu], func(t *testing.T) {
			s := newSandbox(t, false)
			p := testParams(t)
			p.GPU = gpu
			p.Containers = containers
			s.boot(p)
			calls := s.calls()
			want := map[string]bool{"auto": gpu, "default": gpu, "all": true, "none": false}
			for name, gpus := range want {
				argv := s.runArgv(name)
				if got := slices.Contains(argv, "--gpus"); got != gpus {
					t.Errorf("%s: --gpus present = %v, want %v; argv %q", name, got, gpus, argv)
				}
				if gpus && argv[slices.Index(argv, "--gpus")+1] != "all" {
					t.Errorf("%s: argv %q", name, argv)
				}
			}
			if gpu {
				expectOrder(t, calls,
					"mount",
					"nvidia-ctk runtime configure --runtime=docker --set-as-default --config=ROOT/etc/docker/daemon.json",
					"systemctl restart docker")
			} else {
				expectNone(t, calls, "nvidia-ctk")
			}
		})
	}
}

func TestBootstrapArgsAreNotEvaluated(t *testing.T) {
	s := newSandbox(t, false)
	pwned := filepath.Join(s.root, "pwned")
	evil := []string{
		"$(touch " + pwned + ")",
		"`touch " + pwned + "`",
		"; touch " + pwned,
		`it's "quoted" \ back\slash`,
		"two  spaces\tand tab",
		"new\nline",
		"",
		"-v",
		"*",
	}
	p := testParams(t)
	p.Containers = []v1alpha1.Container{{
		Name:    "app",
		Image:   "registry.example.com/team/app:1.0",
		Command: []string{"/bin/sh", "-c", `echo "$@"`},
		Args:    evil,
		Env: []corev1.EnvVar{
			{Name: "GREETING", Value: `hello "world" $(touch ` + pwned + `)`},
			{Name: "EMPTY"},
		},
		Ports: []v1alpha1.ContainerPort{
			{ContainerPort: 80, HostPort: 8080},
			{ContainerPort: 53, Protocol: "udp"},
		},
	}}
	s.boot(p)
	want := append([]string{
		"run", "-d", "--name", "app", "--restart", "unless-stopped",
		"--label", "xdrive.io/spec-hash=" + labelOf(t, s, "app"), "--label", "xdrive.io/spec-image=registry.example.com/team/app:1.0",
		"-p", "8080:80/tcp", "-p", "53:53/udp",
		"-e", `GREETING=hello "world" $(touch ` + pwned + `)`, "-e", "EMPTY=",
		"--entrypoint", "/bin/sh",
		"registry.example.com/team/app:1.0",
		"-c", `echo "$@"`,
	}, evil...)
	if got := s.runArgv("app"); !slices.Equal(got, want) {
		t.Errorf("docker argv\n got %q\nwant %q", got, want)
	}
	if s.exists(pwned) {
		t.Error("a container argument was evaluated by the shell")
	}
}

func TestBootstrapFindsDriveBySerial(t *testing.T) {
	const other = "vol-0aaaabbbbccccdddd"
	t.Run("volume ID picks among several EBS disks", func(t *testing.T) {
		s := newSandbox(t, false)
		s.addDisk("nvme3n1", ebsModel, serial(other))
		p := testParams(t)
		p.VolumeID = driveVolumeID
		s.boot(p)
		expectOrder(t, s.calls(), "mount -t ext4 -o noatime ROOT/dev/nvme2n1 ROOT/v1")
		expectNone(t, s.calls(), "mkfs.ext4 -q -L xdrive ROOT/dev/nvme3n1")
	})
	t.Run("without a volume ID the boot waits, never guesses", func(t *testing.T) {
		s := newSandbox(t, false)
		p := testParams(t)
		p.VolumeID = ""
		_, stderr, err := s.run([]string{"XDRIVE_VOLUME_WAIT=1"}, "bash", s.userData(p))
		if err == nil || !strings.Contains(stderr, "volume ID was not passed") {
			t.Fatalf("err = %v, stderr:\n%s", err, stderr)
		}
		expectNone(t, s.calls(), "blkid", "mkfs", "mount")
	})
	t.Run("the operator passes the volume ID with status --drive", func(t *testing.T) {
		s := newSandbox(t, false)
		s.addDisk("nvme3n1", ebsModel, serial(other))
		p := testParams(t)
		p.VolumeID = ""
		ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
		defer cancel()
		cmd := s.command(ctx, nil, "bash", s.userData(p))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		phase := filepath.Join(s.root, "var/lib/xdrive/phase")
		waitFor(t, 30*time.Second, "phase waiting-for-drive", func() bool {
			b, _ := os.ReadFile(phase)
			return string(b) == PhaseWaitingForDrive+"\n"
		})
		if _, errOut, err := s.ctl(nil, "status", "--drive", other); err != nil {
			t.Fatalf("status --drive: %v\n%s", err, errOut)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("user-data: %v\n%s", err, stderr.String())
		}
		expectOrder(t, s.calls(), "mkfs.ext4 -q -L xdrive ROOT/dev/nvme3n1", "mount -t ext4 -o noatime ROOT/dev/nvme3n1 ROOT/v1")
		expectNone(t, s.calls(), "mkfs.ext4 -q -L xdrive ROOT/dev/nvme2n1")
		if st := s.status(); st.VolumeID != other {
			t.Errorf("status = %+v", st)
		}
	})
}

func TestBootstrapWrongVolumeID(t *testing.T) {
	s := newSandbox(t, false)
	p := testParams(t)
	p.VolumeID = "vol-0aaaaaaaaaaaaaaaa"
	_, stderr, err := s.run([]string{"XDRIVE_DEVICE_TIMEOUT=1"}, "bash", s.userData(p))
	want := "drive vol-0aaaaaaaaaaaaaaaa not found after 1s"
	if err == nil || !strings.Contains(stderr, want) {
		t.Fatalf("err = %v, want %q in stderr:\n%s", err, want, stderr)
	}
	expectNone(t, s.calls(), "blkid", "mkfs", "mount", "docker run")
	if st := s.status(); st.Phase != PhaseFailed || !strings.Contains(st.Message, want) {
		t.Errorf("status = %+v", st)
	}
}

func TestBootstrapWaitsForDrive(t *testing.T) {
	s := newSandbox(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := s.command(ctx, []string{"XDRIVE_DEVICE_TIMEOUT=50"}, "bash", s.userData(testParams(t)))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	phase := filepath.Join(s.root, "var/lib/xdrive/phase")
	waitFor(t, 30*time.Second, "phase waiting-for-drive", func() bool {
		b, _ := os.ReadFile(phase)
		return string(b) == PhaseWaitingForDrive+"\n"
	})
	s.addDisk("nvme2n1", ebsModel, serial(driveVolumeID))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("user-data: %v\n%s", err, stderr.String())
	}
	expectOrder(t, s.calls(), "mkfs.ext4 -q -L xdrive ROOT/dev/nvme2n1", "mount")
}

func TestBootstrapInstallsDockerWhenMissing(t *testing.T) {
	shims := slices.DeleteFunc(slices.Clone(shimmed), func(s string) bool { return s == "docker" })
	s := newSandbox(t, false, append(shims, "dnf", "apt-get")...)
	// PATH without any directory holding a real docker.
	path := []string{s.bin}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(dir, "docker")); err != nil {
			path = append(path, dir)
		}
	}
	_, stderr, err := s.run([]string{"PATH=" + strings.Join(path, ":")}, "bash", s.userData(testParams(t)))
	if err == nil || !strings.Contains(stderr, "Docker is not installed and could not be installed") {
		t.Fatalf("err = %v, stderr:\n%s", err, stderr)
	}
	expectOrder(t, s.calls(), "mount", "dnf install -y docker")
	expectNone(t, s.calls(), "apt-get")
}

func TestRelease(t *testing.T) {
	s := newSandbox(t, false)
	p := testParams(t)
	p.Containers = []v1alpha1.Container{{Name: "web", Image: "nginx:1.25"}, {Name: "db", Image: "postgres:16"}, {Name: "job", Image: "busybox:1"}}
	s.boot(p)
	if _, stderr, err := s.run(nil, filepath.Join(s.bin, "docker"), "stop", "job"); err != nil {
		t.Fatal(stderr)
	}
	s.setState("containers/sidecar", "running") // not in the spec
	before := len(s.calls())

	if _, stderr, err := s.ctl(nil, "release"); err != nil {
		t.Fatalf("release: %v\n%s", err, stderr)
	}
	calls := s.calls()[before:]
	// Stop, sync, unmount; no commit: the writable layers are on the drive.
	expectOrder(t, calls,
		"docker stop -t 20",
		"systemctl stop docker.service docker.socket",
		"sync",
		"umount ROOT/v1",
	)
	expectNone(t, calls, "docker commit", "docker rm")
	stop := calls[slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, "docker stop") })]
	for _, c := range []string{"web", "db", "sidecar"} {
		if !contains(strings.Fields(stop), c) {
			t.Errorf("%q does not stop %s", stop, c)
		}
	}
	marker := s.read(filepath.Join(s.root, "var/lib/xdrive/released"))
	at, err := time.Parse(time.RFC3339, strings.TrimSpace(marker))
	if err != nil {
		t.Fatalf("released marker %q: %v", marker, err)
	}
	st := s.status()
	if !st.Released || st.Mounted || st.Phase != PhaseReleased || st.ReleasedAt != at.Format(time.RFC3339) || st.Containers["web"] != "unknown" {
		t.Errorf("status after release = %+v", st)
	}

	// Again: a no-op success, and so is a later boot.
	n := len(s.calls())
	_, stderr, err := s.ctl(nil, "release")
	if err != nil || !strings.Contains(stderr, "already released") {
		t.Fatalf("second release: %v\n%s", err, stderr)
	}
	if _, stderr, err := s.run(nil, filepath.Join(s.root, "usr/local/sbin/xdrive-bootstrap")); err != nil {
		t.Fatalf("bootstrap after release: %v\n%s", err, stderr)
	}
	if extra := s.calls()[n:]; len(extra) != 0 {
		t.Errorf("calls after release: %q", extra)
	}
}

func TestReleaseBusyMount(t *testing.T) {
	t.Run("busy once", func(t *testing.T) {
		s := newSandbox(t, false)
		s.boot(testParams(t))
		s.setState("umount-busy", "1")
		if _, stderr, err := s.ctl(nil, "release"); err != nil {
			t.Fatalf("release: %v\n%s", err, stderr)
		}
		expectOrder(t, s.calls(), "umount ROOT/v1", "fuser -km ROOT/v1", "umount ROOT/v1")
		if !s.status().Released {
			t.Error("not released")
		}
	})
	t.Run("always busy", func(t *testing.T) {
		s := newSandbox(t, false)
		s.boot(testParams(t))
		s.setState("umount-busy", "100")
		_, stderr, err := s.ctl([]string{"XDRIVE_UMOUNT_TRIES=2"}, "release")
		if err == nil || !strings.Contains(stderr, "cannot unmount") {
			t.Fatalf("err = %v, stderr:\n%s", err, stderr)
		}
		st := s.status()
		if st.Released || !st.Mounted || !strings.Contains(st.Message, "cannot unmount") {
			t.Errorf("status = %+v", st)
		}
	})
}

func TestCtlUsage(t *testing.T) {
	s := newSandbox(t, false)
	s.boot(testParams(t))
	_, stderr, err := s.ctl(nil, "frobnicate")
	if err == nil || !strings.Contains(stderr, "usage: xdrive-ctl") {
		t.Fatalf("err = %v, stderr:\n%s", err, stderr)
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
