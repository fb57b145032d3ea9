package bootstrap

// Tests of issue #25, items 1 and 2: a carry-over that fails at any step
// keeps the old container and every volume it uses, and a failed image
// change never runs older state under the newer image's label.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"
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

// specImageSettings gives nginx:1.25 settings beyond entrypoint, command
// and env, as the bootstrap's FLATTEN_KEEPS template prints them; the
// template itself is checked against Docker's types in TestFlattenTemplate.
func specImageSettings(s *sandbox) {
	path := filepath.Join(s.state, "images/nginx:1.25")
	img := s.read(path) + `config STOPSIGNAL SIGQUIT
config VOLUME ["/var/cache/nginx"]
config VOLUME ["/var/lib/data"]
config LABEL "maintainer"="NGINX Docker Maintainers"
config EXPOSE 80/tcp
config HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD ["/bin/sh","-c","curl -f http://localhost/ || exit 1"]
`
	s.write(path, img, 0o644)
}

// TestFlattenKeepsSettings: a flattened image keeps the spec image's
// volumes, stop signal, health check, labels and ports.
func TestFlattenKeepsSettings(t *testing.T) {
	s, p := carrySandbox(t)
	specImageSettings(s)
	p.Containers[0].Args = []string{"--new"}
	calls := s.relaunch(p, "XDRIVE_MAX_DEPTH=2")
	expectOrder(t, calls, "docker export web", "docker create --name web", "docker start web")
	img := s.read(filepath.Join(s.state, "images/web:xdrive-latest"))
	for _, want := range []string{
		"layers 1",
		`change VOLUME ["/var/cache/nginx"]`,
		`change VOLUME ["/var/lib/data"]`,
		"change STOPSIGNAL SIGQUIT",
		`change HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD ["/bin/sh","-c","curl -f http://localhost/ || exit 1"]`,
		`change LABEL "maintainer"="NGINX Docker Maintainers"`,
		"change EXPOSE 80/tcp",
		`change ENV PATH="/usr/local/bin:/usr/bin"`,
	} {
		if !strings.Contains(img, want+"\n") {
			t.Errorf("flattened image lacks %q:\n%s", want, img)
		}
	}
	if !s.sees("web", "/root/work") {
		t.Error("the flattened container lost its change")
	}
}

// TestFailedFlattenStillApplies: a flatten that fails (here the env cannot
// be read) never makes an image without the env; the change is applied
// unflattened and the failure reported, or, past the depth Docker allows,
// refused with the reason.
func TestFailedFlattenStillApplies(t *testing.T) {
	s, p := carrySandbox(t)
	s.setState("docker-fail-env", "")
	p.Containers[0].Args = []string{"--new"}
	calls := s.relaunch(p, "XDRIVE_MAX_DEPTH=2")
	expectNone(t, calls, "docker export", "docker import")
	if argv := s.runArgv("web"); argv[len(argv)-1] != "--new" {
		t.Errorf("the change was not applied: %q", argv)
	}
	st := s.status()
	if st.PreserveError != "" || !strings.Contains(st.Message, "web: not flattened (cannot read the settings of nginx:1.25") {
		t.Errorf("status = %+v", st)
	}

	p.Containers[0].Args = []string{"--newer"}
	calls = s.relaunch(p, "XDRIVE_MAX_DEPTH=2", "XDRIVE_HARD_DEPTH=4")
	expectNone(t, calls, "docker create")
	st = s.status()
	if !strings.Contains(st.PreserveError, "web: flattening web:xdrive-carry-latest failed: cannot read the settings") ||
		!strings.Contains(st.PreserveError, "cannot be applied unflattened") {
		t.Errorf("status = %+v", st)
	}
	if argv := s.runArgv("web"); argv[len(argv)-1] != "--new" || !s.sees("web", "/root/work") {
		t.Errorf("the old container was not kept: %q", argv)
	}
}

// dockerConfig has the fields and types of Docker's image config
// (container.Config, HealthConfig), which FLATTEN_KEEPS reads.
type dockerConfig struct {
	Entrypoint, Cmd, Env []string
	WorkingDir, User     string
	StopSignal           string
	Volumes              map[string]struct{}
	Labels               map[string]string
	ExposedPorts         map[string]struct{}
	Healthcheck          *dockerHealth
}

type dockerHealth struct {
	Test                                          []string
	Interval, Timeout, StartPeriod, StartInterval time.Duration
	Retries                                       int
}

// TestFlattenTemplate runs the bootstrap's FLATTEN_KEEPS template as Docker
// does (text/template, with Docker's json function) on image configs.
func TestFlattenTemplate(t *testing.T) {
	src, err := scripts.ReadFile("scripts/xdrive-bootstrap.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)\nFLATTEN_KEEPS='(.*?)'\n`).FindSubmatch(src)
	if m == nil {
		t.Fatal("no FLATTEN_KEEPS in xdrive-bootstrap.sh")
	}
	tmpl, err := template.New("keeps").Funcs(template.FuncMap{"json": func(v any) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		return strings.TrimSpace(b.String())
	}}).Parse(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  dockerConfig
		want string
	}{
		{"nothing", dockerConfig{}, ""},
		{"everything", dockerConfig{
			Entrypoint: []string{"/docker-entrypoint.sh"}, Cmd: []string{"nginx", "-g", "daemon off;"}, WorkingDir: "/srv", User: "101:101",
			StopSignal: "SIGQUIT", Volumes: map[string]struct{}{"/var/lib/data": {}, "/a b": {}},
			Labels:       map[string]string{"maintainer": `NGINX "Docker" <docker-maint@nginx.com>`},
			ExposedPorts: map[string]struct{}{"80/tcp": {}, "443/tcp": {}},
			Healthcheck: &dockerHealth{Test: []string{"CMD-SHELL", "curl -f http://localhost/ || exit 1"},
				Interval: 30 * time.Second, Timeout: 5 * time.Second, StartPeriod: 90 * time.Second, Retries: 3},
		}, `ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["nginx","-g","daemon off;"]
WORKDIR /srv
USER 101:101
STOPSIGNAL SIGQUIT
VOLUME ["/a b"]
VOLUME ["/var/lib/data"]
LABEL "maintainer"="NGINX \"Docker\" <docker-maint@nginx.com>"
EXPOSE 443/tcp
EXPOSE 80/tcp
HEALTHCHECK --interval=30s --timeout=5s --start-period=1m30s --retries=3 CMD ["/bin/sh","-c","curl -f http://localhost/ || exit 1"]
`},
		{"exec-form health check", dockerConfig{Healthcheck: &dockerHealth{Test: []string{"CMD", "/bin/check", "--fast"}, StartInterval: time.Second}},
			"HEALTHCHECK --start-interval=1s CMD [\"/bin/check\",\"--fast\"]\n"},
		{"health check off", dockerConfig{Healthcheck: &dockerHealth{Test: []string{"NONE"}}}, "HEALTHCHECK NONE\n"},
	} {
		var out strings.Builder
		if err := tmpl.Execute(&out, struct{ Config dockerConfig }{tc.cfg}); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if out.String() != tc.want {
			t.Errorf("%s: got\n%s\nwant\n%s", tc.name, out.String(), tc.want)
		}
	}
}
