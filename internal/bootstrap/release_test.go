package bootstrap

// Tests of issue #25, item 3: the release flushes with a full root disk and
// a full drive.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fullDisks mounts a small tmpfs, filled up, on the instance's state
// directory (its root disk) and on the drive's mount point, in a mount
// namespace of its own, then runs xdrive-ctl ARGS there.
const fullDisks = `set -e
fill() {
	cp -a "$1" "$TMPDIR/copy"
	/bin/mount -t tmpfs -o size=64k tmpfs "$1"
	cp -a "$TMPDIR/copy/." "$1"
	rm -rf "$TMPDIR/copy"
	dd if=/dev/zero of="$1/.fill" bs=4k 2>/dev/null || true
	if printf x >"$1/.probe" 2>/dev/null; then echo "$1 is not full" >&2; exit 3; fi
}
fill "$XDRIVE_ROOT/var/lib/xdrive"
fill "$XDRIVE_ROOT/v1"
exec "$XDRIVE_ROOT/usr/local/sbin/xdrive-ctl" "$@"
`

func TestReleaseWithFullDisks(t *testing.T) {
	unshare := needTool(t, "unshare", "apt-get install util-linux; run as root")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root, for a mount namespace")
		}
		t.Skip("needs root, for a mount namespace")
	}
	s := newSandbox(t, false)
	s.boot(testParams(t))
	s.change("web", "/root/work")
	env := []string{"TMPDIR=" + t.TempDir()}
	_, stderr, err := s.run(env, unshare, "-m", "bash", "-c", fullDisks, "full", "release")
	if err != nil {
		t.Fatalf("release with full disks: %v\n%s", err, stderr)
	}
	expectOrder(t, s.calls(), "docker stop -t 20 web", "systemctl stop docker.service", "sync", "umount ROOT/v1")
	if st := s.status(); !st.Released || st.Mounted || st.Phase != PhaseReleased || st.SpotNotice {
		// No spot notice: the operator's own release, not an interruption.
		t.Errorf("status after the release = %+v", st)
	}
	if !strings.Contains(s.readOr(filepath.Join(s.root, "run/xdrive/released")), "T") {
		t.Error("the release's time is not on tmpfs")
	}
	// A second release, and the watcher, see it released.
	if _, stderr, err := s.run(env, unshare, "-m", "bash", "-c", fullDisks, "full", "release"); err != nil ||
		!strings.Contains(stderr, "already released") {
		t.Errorf("second release: %v\n%s", err, stderr)
	}
}
