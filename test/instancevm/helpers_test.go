//go:build instancevm

package instancevm_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/crypto/ssh"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
)

// dial opens an SSH connection to the instance as root, with the
// operator's key and the pinned host key; what is the caller, for errors.
func (in *instance) dial(what string) *ssh.Client {
	in.t.Helper()
	signer, err := ssh.ParsePrivateKey(in.target.ClientKey)
	if err != nil {
		in.t.Fatal(err)
	}
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(in.target.HostKey))
	if err != nil {
		in.t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", in.vm.SSHAddr, &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(hostKey), Timeout: time.Minute})
	if err != nil {
		in.t.Fatalf("%s: %v", what, err)
	}
	return c
}

// upload writes data to path on the instance (mode 0600), over SSH's stdin.
func (in *instance) upload(path string, data []byte) {
	in.t.Helper()
	c := in.dial("upload of " + path)
	defer func() { _ = c.Close() }()
	sess, err := c.NewSession()
	if err != nil {
		in.t.Fatalf("upload of %s: %v", path, err)
	}
	defer func() { _ = sess.Close() }()
	sess.Stdin = bytes.NewReader(data)
	if out, err := sess.CombinedOutput("umask 077 && cat >" + path); err != nil {
		in.t.Fatalf("upload of %s (%d bytes): %v: %s", path, len(data), err, out)
	}
}

// respec installs the container settings a launch with cs would render, as
// the next launch's user-data would (the config files only).
func (in *instance) respec(cs []v1alpha1.Container) {
	in.t.Helper()
	ud, err := in.render(cs)
	if err != nil {
		in.t.Fatalf("rendering the user-data: %v", err)
	}
	files, err := bootstrap.Unpack(ud)
	if err != nil {
		in.t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for path, data := range files {
		if !strings.HasPrefix(path, "etc/xdrive/containers") {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: path, Mode: 0o600, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			in.t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			in.t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		in.t.Fatal(err)
	}
	in.upload("/tmp/spec.tar", buf.Bytes())
	in.run("rm -rf /etc/xdrive/containers && tar -xf /tmp/spec.tar -C / && rm /tmp/spec.tar")
}

// startContainers runs the bootstrap's start_containers on the instance, as
// the next launch's boot does after Docker is up: the carry-over of every
// container whose spec changed. It returns its log.
func (in *instance) startContainers() string {
	in.t.Helper()
	cmd := `bash -c '. /usr/local/sbin/xdrive-bootstrap && load_config && start_containers' 2>&1`
	// As long as a boot may take: a carry-over commits, and may flatten, on
	// an emulated disk (past 3 min under a load of 4).
	out, err := in.tryRun(bootTimeout, cmd)
	if err != nil {
		in.t.Fatalf("%s: %q: %v (output %q)", in.vm.Config().InstanceID, cmd, err, out)
	}
	return out
}

// fill fills the filesystem holding dir to its last block, root's reserve
// included, without writing the blocks (fallocate), and returns df's line.
func (in *instance) fill(dir string) string {
	in.t.Helper()
	return in.run(`f=` + dir + `/xdrive-test-fill; free=$(stat -f -c '%f*%S' ` + dir + `)
fallocate -l $((free)) $f 2>/dev/null || fallocate -l $((free - 64*1048576)) $f
i=0; while fallocate -l 1M $f.$i 2>/dev/null; do i=$((i+1)); done
dd if=/dev/zero of=$f.last bs=4k 2>/dev/null; sync; df -P ` + dir + ` | tail -n 1`)
}

// checkLogText checks an appender's log: lines 1, 2, ... without a gap,
// at least acked of them; past acked (unacknowledged, e.g. cut by a full
// drive) the last line may be torn. It returns the whole lines.
func checkLogText(t testing.TB, out string, acked int) int {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	whole := 0
	for i, l := range lines {
		if l == strconv.Itoa(i+1) {
			whole++
			continue
		}
		if i == len(lines)-1 && i+1 > acked && strings.HasPrefix(strconv.Itoa(i+1), l) {
			break // a torn write that was never acknowledged
		}
		t.Fatalf("the appender's log line %d is %q, want %d (%d lines)", i+1, l, i+1, len(lines))
	}
	if whole < acked {
		t.Fatalf("the appender's log has %d lines; %d were acknowledged", whole, acked)
	}
	return whole
}

// deepImage is a docker-load tarball of ref: the test image's busybox rootfs
// and layers-1 more layers of one small file each.
func deepImage(t testing.TB, ref string, layers int) []byte {
	t.Helper()
	base, err := tarball.LayerFromFile(filepath.Join(image.Dir, "busybox.tar"))
	if err != nil {
		t.Fatal(err)
	}
	all := []v1.Layer{base}
	for i := 1; i < layers; i++ {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		data := fmt.Sprintf("layer %d\n", i)
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("layers/%03d", i), Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(data))
		_ = tw.Close()
		b := buf.Bytes()
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, l)
	}
	img, err := mutate.AppendLayers(empty.Image, all...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Cmd = []string{"sh"}
	cf.Config.Env = []string{"PATH=/bin", "DEEP=1"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := tarball.Write(tag, img, &out); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
