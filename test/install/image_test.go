package install_test

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// imageDir is the image `make image` built (XDRIVE_IMAGE_DIR, set by `make
// test`) or, without it, one this test builds the same way.
func imageDir(t *testing.T) (dir, version string) {
	t.Helper()
	version = chartAppVersion(t)
	if dir := os.Getenv("XDRIVE_IMAGE_DIR"); dir != "" {
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(repoRoot(), dir)
		}
		return dir, version
	}
	dir = t.TempDir()
	bin := filepath.Join(dir, "manager")
	ldflags := fmt.Sprintf("-s -w -X main.version=%s -X main.commit=test -X main.buildDate=2026-01-01T00:00:00Z", version)
	build := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", bin, "./cmd")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	run(t, build)
	run(t, exec.Command("go", "run", "./internal/imagebuild", "--binary", bin, "--ref", "xdrive-controller:"+version,
		"--version", version, "--commit", "test", "--out", filepath.Join(dir, "image")))
	return filepath.Join(dir, "image"), version
}

func run(t *testing.T, cmd *exec.Cmd) []byte {
	t.Helper()
	if cmd.Dir == "" {
		cmd.Dir = repoRoot()
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s%s", strings.Join(cmd.Args, " "), err, out, stderr.Bytes())
	}
	return out
}

// TestImage checks the offline image: who it runs as, what it runs, and that
// the manager in it runs from its own root filesystem.
func TestImage(t *testing.T) {
	dir, version := imageDir(t)
	index, err := layout.ImageIndexFromPath(filepath.Join(dir, "oci"))
	if err != nil {
		t.Fatalf("reading the OCI layout (run `make image`): %v", err)
	}
	manifest, err := index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(manifest.Manifests) != 1 {
		t.Fatalf("%d images in the layout, want 1", len(manifest.Manifests))
	}
	if ref := manifest.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; !strings.HasSuffix(ref, ":"+version) {
		t.Errorf("image ref %q does not end in the chart's appVersion %s", ref, version)
	}
	img, err := index.Image(manifest.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}

	uid, gid := parseUser(t, cf.Config.User)
	if uid == 0 || gid == 0 {
		t.Errorf("image runs as %q: root", cf.Config.User)
	}
	if cf.Config.User != dockerfile(t).user {
		t.Errorf("image user %q, Dockerfile says %q", cf.Config.User, dockerfile(t).user)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/manager"}) || len(cf.Config.Cmd) != 0 {
		t.Errorf("entrypoint %q cmd %q, want [/manager] and no cmd", cf.Config.Entrypoint, cf.Config.Cmd)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s, want linux/%s", cf.OS, cf.Architecture, runtime.GOARCH)
	}
	if got := cf.Config.Labels["org.opencontainers.image.version"]; got != version {
		t.Errorf("version label %q, want %q", got, version)
	}

	root := extract(t, img)
	for _, f := range []string{"etc/ssl/certs/ca-certificates.crt", "etc/passwd", "tmp"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("image lacks /%s: %v", f, err)
		}
	}
	if passwd, _ := os.ReadFile(filepath.Join(root, "etc", "passwd")); !strings.Contains(string(passwd), fmt.Sprintf(":%d:%d:", uid, gid)) {
		t.Errorf("/etc/passwd has no user %d:%d:\n%s", uid, gid, passwd)
	}
	requireStatic(t, filepath.Join(root, "manager"))

	help := runImage(t, root, uid, gid, "--help")
	for _, flag := range []string{"-cluster-name", "-leader-elect", "-version", "-interruption-queue"} {
		if !strings.Contains(help, flag) {
			t.Errorf("--help lacks %s:\n%s", flag, help)
		}
	}
	out := runImage(t, root, uid, gid, "--version")
	if want := regexp.MustCompile(`^xdrive ` + regexp.QuoteMeta(version) + ` \(commit \S+, built \S+\)\n$`); !want.MatchString(out) {
		t.Errorf("--version printed %q, want xdrive %s (commit …, built …)", out, version)
	}
}

func parseUser(t *testing.T, user string) (uid, gid int) {
	t.Helper()
	u, g, ok := strings.Cut(user, ":")
	var err1, err2 error
	uid, err1 = strconv.Atoi(u)
	gid, err2 = strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("image user %q is not numeric uid:gid (runAsNonRoot needs a numeric user)", user)
	}
	return uid, gid
}

// extract unpacks the image's flattened filesystem into a new directory.
func extract(t *testing.T, img v1.Image) string {
	t.Helper()
	root := t.TempDir()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Clean("/" + h.Name)
		path := filepath.Join(root, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			body, err := io.ReadAll(tr)
			if err == nil {
				err = os.WriteFile(path, body, os.FileMode(h.Mode).Perm())
			}
			if err != nil {
				t.Fatal(err)
			}
		default:
			t.Errorf("unexpected entry %s of type %c", h.Name, h.Typeflag)
		}
	}
	// The chrooted manager must be able to reach / as a non-root user.
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// requireStatic fails unless the ELF binary needs no dynamic loader or libraries.
func requireStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("/manager: %v", err)
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("/manager asks for a dynamic loader: build it with CGO_ENABLED=0")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("/manager links %v", libs)
	}
}

// runImage runs /manager from the image's root filesystem: chrooted there as
// the image's user when the test runs as root, else directly.
func runImage(t *testing.T, root string, uid, gid int, args ...string) string {
	t.Helper()
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("/manager", args...)
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root,
			Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	} else {
		t.Logf("not root: running %s/manager without chroot", root)
		cmd = exec.Command(filepath.Join(root, "manager"), args...)
		cmd.Dir = root
	}
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("/manager %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}
