package bootstrap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// TestOnlineGrow: the boot has udev grow the drive's filesystem when EBS
// grows the volume (a change uevent with RESIZE=1 on the drive's disk),
// and `xdrive-ctl grow` grows the mounted filesystem, never one being
// released or not mounted.
func TestOnlineGrow(t *testing.T) {
	for _, c := range []struct {
		fs   v1alpha1.Filesystem
		grow string
	}{
		{v1alpha1.FilesystemExt4, "resize2fs ROOT/dev/nvme2n1"},
		{v1alpha1.FilesystemXFS, "xfs_growfs ROOT/v1"},
	} {
		t.Run(string(c.fs), func(t *testing.T) {
			s := newSandbox(t, false)
			p := testParams(t)
			p.Filesystem = c.fs
			s.boot(p)
			rule := s.read(filepath.Join(s.root, "run/udev/rules.d/90-xdrive-grow.rules"))
			for _, want := range []string{`ACTION=="change"`, `KERNEL=="nvme2n1"`, `ENV{RESIZE}=="1"`,
				`RUN+="/usr/bin/systemd-run --no-block --collect --unit=xdrive-grow /usr/local/sbin/xdrive-ctl grow"`} {
				if !strings.Contains(rule, want) {
					t.Errorf("the udev rule lacks %s:\n%s", want, rule)
				}
			}
			expectOrder(t, s.calls(), "udevadm control --reload", c.grow)
			grown := func() int { return countCalls(s.calls(), c.grow) }
			booted := grown()

			if _, stderr, err := s.ctl(nil, "grow"); err != nil || grown() != booted+1 {
				t.Fatalf("grow of the mounted drive: %v, %d grows after the boot's %d\n%s", err, grown(), booted, stderr)
			}

			// A release under way (marked, the drive still mounted) wins.
			releasing := filepath.Join(s.root, "run/xdrive/releasing")
			s.write(releasing, "", 0o644)
			if _, stderr, err := s.ctl(nil, "grow"); err != nil || grown() != booted+1 || !strings.Contains(stderr, "being released") {
				t.Errorf("grow while a release is under way: %v, %d grows, want %d\n%s", err, grown(), booted+1, stderr)
			}
			s.remove(releasing)

			s.setState("umount-busy", "0")
			if _, stderr, err := s.ctl(nil, "release"); err != nil {
				t.Fatalf("release: %v\n%s", err, stderr)
			}
			_, stderr, err := s.ctl(nil, "grow")
			if err != nil || grown() != booted+1 || !strings.Contains(stderr, "being released") {
				t.Errorf("grow after the release: %v, %d grows, want %d\n%s", err, grown(), booted+1, stderr)
			}
		})
	}
}

func countCalls(calls []string, call string) int {
	n := 0
	for _, c := range calls {
		if c == call {
			n++
		}
	}
	return n
}

func (s *sandbox) remove(path string) {
	s.t.Helper()
	if err := os.Remove(path); err != nil {
		s.t.Fatal(err)
	}
}
