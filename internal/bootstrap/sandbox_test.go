package bootstrap

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/test/instancesim/shim"
)

const (
	driveVolumeID = "vol-0123456789abcdef0"
	rootVolumeID  = "vol-0fedcba9876543210"
	ebsModel      = "Amazon Elastic Block Store"
	storeModel    = "Amazon EC2 NVMe Instance Storage"
	runTimeout    = 60 * time.Second
)

// shimmed are the commands replaced by the shim (test/instancesim/shim) in a
// sandbox: those of a simulated instance, and ssh-keygen.
var shimmed = append(slices.Clip(shim.Commands), "ssh-keygen")

// sandbox is a fake instance: a root directory with /sys/block and /dev
// entries, and PATH shims that log their argv and keep a little state.
type sandbox struct {
	t     testing.TB
	root  string // XDRIVE_ROOT
	state string // SHIM_STATE
	bin   string // shims, first on PATH
	env   []string
	// timeout bounds each run; runTimeout if zero.
	timeout time.Duration
}

// newSandbox makes a sandbox with a root disk, an instance-store disk and,
// unless noDrive, the drive: nvme2n1 holding driveVolumeID. With -short
// (make test-unit) it skips t: the scripts' runs take minutes.
func newSandbox(t testing.TB, noDrive bool, shims ...string) *sandbox {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no sandbox")
	}
	dir := t.TempDir()
	s := &sandbox{t: t, root: filepath.Join(dir, "root"), state: filepath.Join(dir, "shim"), bin: filepath.Join(dir, "bin")}
	for _, d := range []string{s.root, s.state, s.bin} {
		s.mkdir(d)
	}
	if len(shims) == 0 {
		shims = shimmed
	}
	if err := shim.Install(s.bin, shims...); err != nil {
		t.Fatal(err)
	}
	s.addDisk("nvme0n1", ebsModel, serial(rootVolumeID), "nvme0n1p1", "nvme0n1p128")
	s.addDisk("nvme1n1", storeModel, "AWS1A2B3C4D5E6F7G8H9")
	if !noDrive {
		s.addDisk("nvme2n1", ebsModel, serial(driveVolumeID))
	}
	s.write(filepath.Join(s.state, "rootsrc"), "/dev/nvme0n1p1\n", 0o644)
	s.write(filepath.Join(s.root, "etc/ssh/ssh_host_rsa_key"), "old rsa key\n", 0o600)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "XDRIVE_") && !strings.HasPrefix(kv, "PATH=") {
			s.env = append(s.env, kv)
		}
	}
	s.env = append(s.env,
		"PATH="+s.bin+":"+os.Getenv("PATH"),
		"XDRIVE_ROOT="+s.root,
		"SHIM_STATE="+s.state,
		"XDRIVE_POLL_INTERVAL=0.1",
		"XDRIVE_DEVICE_TIMEOUT=10",
	)
	return s
}

func serial(volumeID string) string { return strings.Replace(volumeID, "-", "", 1) }

// addDisk adds /sys/block/NAME with its model, serial and partitions, then /dev/NAME.
func (s *sandbox) addDisk(name, model, serial string, partitions ...string) {
	sys := filepath.Join(s.root, "sys/block", name)
	// Real sysfs pads the model with spaces.
	s.write(filepath.Join(sys, "device/model"), model+"                \n", 0o644)
	s.write(filepath.Join(sys, "device/serial"), serial+"\n", 0o644)
	for _, p := range partitions {
		s.mkdir(filepath.Join(sys, p))
	}
	// A fresh EBS volume reads as zeros.
	dev := filepath.Join(s.root, "dev", name)
	s.write(dev, "", 0o644)
	if err := os.Truncate(dev, 1<<20); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sandbox) mkdir(dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sandbox) write(path, data string, mode os.FileMode) {
	s.mkdir(filepath.Dir(path))
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		s.t.Fatal(err)
	}
}

// setState writes a shim state file, e.g. "containers/web" = "exited".
func (s *sandbox) setState(name, value string) {
	s.write(filepath.Join(s.state, name), value+"\n", 0o644)
}

func (s *sandbox) exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func (s *sandbox) read(path string) string {
	s.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		s.t.Fatal(err)
	}
	return string(b)
}

// command prepares a command in the sandbox; env adds KEY=VALUE settings.
func (s *sandbox) command(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(append([]string{}, s.env...), env...)
	cmd.Dir = s.root
	// A process the command left behind (a hung docker exec) cannot hold its output past the timeout.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs a command to its end and returns stdout, stderr and its error.
func (s *sandbox) run(env []string, name string, args ...string) (string, string, error) {
	s.t.Helper()
	limit := s.timeout
	if limit == 0 {
		limit = runTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := s.command(ctx, env, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		s.t.Fatalf("%s %v did not finish within %s; stderr:\n%s", name, args, limit, stderr.String())
	}
	return stdout.String(), stderr.String(), err
}

// userData renders p into the sandbox and returns the user-data's path.
func (s *sandbox) userData(p Params) string {
	s.t.Helper()
	ud, err := Render(p)
	if err != nil {
		s.t.Fatalf("Render: %v", err)
	}
	script, err := Script(ud) // as cloud-init gunzips it
	if err != nil {
		s.t.Fatal(err)
	}
	path := filepath.Join(filepath.Dir(s.root), "user-data")
	s.write(path, string(script), 0o755)
	return path
}

// boot renders p, runs the user-data and fails the test if it fails.
func (s *sandbox) boot(p Params, env ...string) {
	s.t.Helper()
	if _, stderr, err := s.run(env, "bash", s.userData(p)); err != nil {
		s.t.Fatalf("user-data failed: %v\n%s", err, stderr)
	}
}

// ctl runs xdrive-ctl with args.
func (s *sandbox) ctl(env []string, args ...string) (string, string, error) {
	return s.run(env, filepath.Join(s.root, "usr/local/sbin/xdrive-ctl"), args...)
}

func (s *sandbox) status() Status {
	s.t.Helper()
	out, stderr, err := s.ctl(nil, "status")
	if err != nil {
		s.t.Fatalf("xdrive-ctl status: %v\n%s", err, stderr)
	}
	st, err := ParseStatus([]byte(out))
	if err != nil {
		s.t.Fatal(err)
	}
	return st
}

// calls returns the logged shim calls, one "name arg..." line each, with
// args quoted by bash's %q and the sandbox root replaced by "ROOT".
func (s *sandbox) calls() []string {
	b, err := os.ReadFile(filepath.Join(s.state, "calls"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		s.t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), s.root, "ROOT")
	return strings.Split(strings.TrimSuffix(text, "\n"), "\n")
}

// runArgv returns the argv of the last `docker run` of a container.
func (s *sandbox) runArgv(name string) []string {
	s.t.Helper()
	data := strings.TrimSuffix(s.read(filepath.Join(s.state, "run-"+name)), "\x00")
	return strings.Split(data, "\x00")
}

// expectOrder checks that calls starting with each prefix appear in this order.
func expectOrder(t *testing.T, calls []string, prefixes ...string) {
	t.Helper()
	i := 0
	for _, p := range prefixes {
		for i < len(calls) && !strings.HasPrefix(calls[i], p) {
			i++
		}
		if i == len(calls) {
			t.Fatalf("no call %q in order %q; calls:\n%s", p, prefixes, strings.Join(calls, "\n"))
		}
		i++
	}
}

// expectNone checks that no call starts with any of the prefixes.
func expectNone(t *testing.T, calls []string, prefixes ...string) {
	t.Helper()
	for _, c := range calls {
		for _, p := range prefixes {
			if strings.HasPrefix(c, p) {
				t.Fatalf("unexpected call %q; calls:\n%s", c, strings.Join(calls, "\n"))
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// testKeys returns an ed25519 host key in OpenSSH PEM form and an authorized key line.
func testKeys(t testing.TB) (hostKeyPEM, authorizedKey string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	str := func(b []byte) []byte { return binary.BigEndian.AppendUint32(nil, uint32(len(b))) }
	field := func(b []byte) []byte { return append(str(b), b...) }
	pubBlob := append(field([]byte("ssh-ed25519")), field(pub)...)
	private := binary.BigEndian.AppendUint32(nil, 0x5eed5eed)
	private = binary.BigEndian.AppendUint32(private, 0x5eed5eed)
	private = append(private, pubBlob...)
	private = append(private, field(priv)...)
	private = append(private, field([]byte("xdrive-test"))...)
	for i := byte(1); len(private)%8 != 0; i++ {
		private = append(private, i)
	}
	body := []byte("openssh-key-v1\x00")
	body = append(body, field([]byte("none"))...)
	body = append(body, field([]byte("none"))...)
	body = append(body, field(nil)...)
	body = binary.BigEndian.AppendUint32(body, 1)
	body = append(body, field(pubBlob)...)
	body = append(body, field(private)...)
	hostKeyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: body}))
	return hostKeyPEM, "ssh-ed25519 " + base64.StdEncoding.EncodeToString(pubBlob) + " operator"
}

// testParams are valid Params with one container, web.
func testParams(t testing.TB) Params {
	hostKey, authKey := testKeys(t)
	return Params{
		HostKeyPEM:     hostKey,
		AuthorizedKey:  authKey,
		WorkstationKey: "team-a/dev-box",
		VolumeID:       driveVolumeID,
		BlankDrive:     true,
		Containers: []v1alpha1.Container{{
			Name:  "web",
			Image: "nginx:1.25",
			Ports: []v1alpha1.ContainerPort{{ContainerPort: 80, HostPort: 8080}},
		}},
	}
}
