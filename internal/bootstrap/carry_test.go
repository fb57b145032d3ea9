package bootstrap

// Tests of issue #25, items 1 and 2: a carry-over that fails at any step
// keeps the old container and every volume it uses, and a failed image
// change never runs older state under the newer image's label.

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const dataVolume = "3f2a9c0d:/var/lib/postgresql/data"

// carrySandbox boots web (nginx:1.25) with a change in its writable layer
// and a named volume, as a database keeps its data.
func carrySandbox(t *testing.T) (*sandbox, Params) {
	t.Helper()
	s := newSandbox(t, false)
	p := testParams(t)
	s.boot(p)
	s.change("web", "/root/work")
	s.write(filepath.Join(s.state, "meta/web/volumes"), dataVolume+"\n", 0o644)
	return s, p
}

// expectKept checks that web is the old container, running with its
// previous settings, its change and its volume, that the failure is
// reported, and that nothing of the attempt is left behind.
func expectKept(t *testing.T, s *sandbox, oldImage, why, file string) {
	t.Helper()
	st := s.status()
	if st.Phase != PhaseReady || st.Containers["web"] != "running" || !strings.Contains(st.PreserveError, "web: ") ||
		!strings.Contains(st.PreserveError, why) {
		t.Errorf("status = %+v, want web running and a preserve error with %q", st, why)
	}
	if !s.sees("web", file) {
		t.Error("the old container's change is gone")
	}
	if got := s.read(filepath.Join(s.state, "meta/web/volumes")); got != dataVolume+"\n" {
		t.Errorf("web's volumes = %q, want %q", got, dataVolume)
	}
	if got := s.read(filepath.Join(s.state, "meta/web/labels")); !strings.Contains(got, "xdrive.io/spec-image="+oldImage+"\n") {
		t.Errorf("web runs labelled %q, want its previous image %s", got, oldImage)
	}
	for _, left := range []string{"containers/web.xdrive-old", "images/web:xdrive-carry-latest", "images/web:xdrive-carry-previous"} {
		if s.exists(filepath.Join(s.state, left)) {
			t.Errorf("%s was left behind", left)
		}
	}
}

// expectApplied boots again without the fault: the change is applied, the
// state and the volume carried over.
func expectApplied(t *testing.T, s *sandbox, p Params) {
	t.Helper()
	calls := s.relaunch(p)
	expectOrder(t, calls, "docker create --name web", "docker start web", "docker rm web.xdrive-old")
	if st := s.status(); st.PreserveError != "" || st.Containers["web"] != "running" {
		t.Errorf("status = %+v", st)
	}
	argv := s.runArgv("web")
	if i := slices.Index(argv, "-v"); i < 0 || argv[i+1] != dataVolume {
		t.Errorf("the new container does not mount the old one's volume: %q", argv)
	}
	if s.exists(filepath.Join(s.state, "containers/web.xdrive-old")) {
		t.Error("the old container was left behind")
	}
}

func TestFailedCarryOverKeepsOldContainerAndVolumes(t *testing.T) {
	for _, tc := range []struct {
		name, fault, why string
		faultValue       string
		imageChange      bool
		env              []string
	}{
		{name: "failed pull on an image change", fault: "docker-fail-pull", why: "manifest unknown", imageChange: true},
		{name: "pull past the run time limit", fault: "docker-hang-pull", why: "time limit", imageChange: true,
			env: []string{"XDRIVE_DOCKER_RUN_TIMEOUT=1"}},
		{name: "create fails (full drive)", fault: "docker-fail-create", why: "create failed"},
		{name: "the new container does not start", fault: "docker-fail-start-from", faultValue: "web:xdrive-carry-latest", why: "starting it failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, p := carrySandbox(t)
			s.setState(tc.fault, tc.faultValue)
			p.Containers[0].Args = []string{"--new"}
			if tc.imageChange {
				p.Containers[0].Image = "nginx:1.27"
			}
			s.relaunch(p, tc.env...)
			expectKept(t, s, "nginx:1.25", tc.why, "/root/work")
			// Every later boot finds the state where it was, until the change works.
			s.relaunch(p, tc.env...)
			expectKept(t, s, "nginx:1.25", tc.why, "/root/work")
			if err := os.Remove(filepath.Join(s.state, tc.fault)); err != nil {
				t.Fatal(err)
			}
			expectApplied(t, s, p)
			if !tc.imageChange && !s.sees("web", "/root/work") {
				t.Error("the writable layer was not carried over")
			}
		})
	}
}

// TestReleaseDuringPullKeepsOldContainer: a release stops a boot that is
// pulling the new image; the next boot puts the old container back.
func TestReleaseDuringPullKeepsOldContainer(t *testing.T) {
	s, p := carrySandbox(t)
	if _, stderr, err := s.ctl(nil, "release"); err != nil {
		t.Fatalf("release: %v\n%s", err, stderr)
	}
	s.newRoot()
	s.setState("docker-hang-pull", "")
	p.Containers[0].Image = "nginx:1.27"
	p.BlankDrive = false
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	boot := s.command(ctx, nil, "bash", s.userData(p))
	if err := boot.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, runTimeout/2, "the boot to pull", func() bool { return s.exists(filepath.Join(s.state, "pulling")) })
	if _, stderr, err := s.ctl([]string{"XDRIVE_BOOT_WAIT=1"}, "release"); err != nil {
		t.Fatalf("release: %v\n%s", err, stderr)
	}
	_ = boot.Wait() // stopped by the release
	if !s.exists(filepath.Join(s.state, "containers/web.xdrive-old")) || s.exists(filepath.Join(s.state, "containers/web")) {
		t.Fatal("the test did not interrupt the replacement")
	}
	// The next boot cannot pull either: the old container is back.
	if err := os.Remove(filepath.Join(s.state, "docker-hang-pull")); err != nil {
		t.Fatal(err)
	}
	s.setState("docker-fail-pull", "")
	s.newRoot()
	s.boot(p)
	expectKept(t, s, "nginx:1.25", "manifest unknown", "/root/work")
	if err := os.Remove(filepath.Join(s.state, "docker-fail-pull")); err != nil {
		t.Fatal(err)
	}
	expectApplied(t, s, p)
}

// TestInterruptedSwapRecovered: a boot that died after creating the
// successor: one never started is removed and the old container put back;
// one that started keeps its place and the old container goes.
func TestInterruptedSwapRecovered(t *testing.T) {
	for _, successorStarted := range []bool{false, true} {
		t.Run(map[bool]string{false: "successor never started", true: "successor started"}[successorStarted], func(t *testing.T) {
			s, p := carrySandbox(t)
			for _, args := range [][]string{{"stop", "web"}, {"rename", "web", "web.xdrive-old"},
				{"create", "--name", "web", "--label", "xdrive.io/spec-image=nginx:1.25", "nginx:1.25"}} {
				if err := s.docker(args...); err != nil {
					t.Fatal(err)
				}
			}
			if successorStarted {
				if err := s.docker("start", "web"); err != nil {
					t.Fatal(err)
				}
			}
			calls := s.relaunch(p)
			if s.exists(filepath.Join(s.state, "containers/web.xdrive-old")) {
				t.Error("web.xdrive-old was left behind")
			}
			if successorStarted {
				expectOrder(t, calls, "docker rm web.xdrive-old")
				return
			}
			expectOrder(t, calls, "docker rm -f web", "docker rename web.xdrive-old web")
			if !s.sees("web", "/root/work") || !strings.Contains(s.read(filepath.Join(s.state, "meta/web/volumes")), dataVolume) {
				t.Error("the old container was not put back")
			}
		})
	}
}

// TestFailedImageChangeKeepsEarlierStatesTagged: after a successful image
// change, web:xdrive-previous holds the state of the older image; a later
// image change that fails leaves it as it was, and no container ever runs
// an older state labelled as the newer image.
func TestFailedImageChangeKeepsEarlierStatesTagged(t *testing.T) {
	s, p := carrySandbox(t)
	p.Containers[0].Image = "nginx:1.27"
	s.relaunch(p)
	previous := s.read(filepath.Join(s.state, "images/web:xdrive-previous"))
	if !strings.Contains(previous, "file /root/work") {
		t.Fatalf("web:xdrive-previous = %q", previous)
	}
	s.change("web", "/root/on-1.27")
	s.setState("docker-fail-pull", "")
	p.Containers[0].Image = "nginx:1.29"
	s.relaunch(p)
	expectKept(t, s, "nginx:1.27", "manifest unknown", "/root/on-1.27")
	if got := s.read(filepath.Join(s.state, "images/web:xdrive-previous")); got != previous {
		t.Errorf("the failed change moved web:xdrive-previous:\n%s\nwas:\n%s", got, previous)
	}
}

// TestSavedStateNeverRunsUnderNewerImage: with the container gone and only
// web:xdrive-latest left, made from nginx:1.25, a spec on nginx:1.27 starts
// from nginx:1.27, keeps the tag and reports it.
func TestSavedStateNeverRunsUnderNewerImage(t *testing.T) {
	s, p := carrySandbox(t)
	p.Containers[0].Args = []string{"--new"}
	s.relaunch(p) // web:xdrive-latest is now web's state on nginx:1.25
	for _, args := range [][]string{{"stop", "web"}, {"rm", "web"}} {
		if err := s.docker(args...); err != nil {
			t.Fatal(err)
		}
	}
	p.Containers[0].Image = "nginx:1.27"
	s.relaunch(p)
	if argv := s.runArgv("web"); argv[len(argv)-2] != "nginx:1.27" {
		t.Errorf("web runs from %q, want nginx:1.27", argv)
	}
	if !s.exists(filepath.Join(s.state, "images/web:xdrive-latest")) {
		t.Error("web:xdrive-latest was dropped")
	}
	if st := s.status(); !strings.Contains(st.PreserveError, "web:xdrive-latest holds its state from image nginx:1.25") {
		t.Errorf("status = %+v", st)
	}
	p.Containers[0].Image = "nginx:1.25"
	if err := s.docker("stop", "web"); err != nil {
		t.Fatal(err)
	}
	if err := s.docker("rm", "web"); err != nil {
		t.Fatal(err)
	}
	s.relaunch(p)
	if argv := s.runArgv("web"); argv[len(argv)-2] != "web:xdrive-latest" || !s.sees("web", "/root/work") {
		t.Errorf("back on nginx:1.25, web runs from %q", argv)
	}
}
