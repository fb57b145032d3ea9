package bootstrap

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Tests of issue #30, part 4: the idle warning reaches the instance
// (`xdrive-ctl notify`, `notice`), and `xdrive-ctl extend` asks for more time.

// noticeFile is /run/xdrive/notice, as programs read it.
type noticeFile struct {
	Kind        string `json:"kind"`
	Deadline    string `json:"deadline"`
	SecondsLeft int64  `json:"secondsLeft"`
	Workstation string `json:"workstation"`
}

// idleStatus runs `xdrive-ctl status` with an idle check, as the operator
// does when the idle stop is on: it also keeps the idle stop's commands in
// /run/xdrive/idle.sh.
func (s *sandbox) idleStatus() Status {
	s.t.Helper()
	c := IdleCheck{CPULoad: "0.5", GPUPercent: 10, BytesPerSecond: 4096}
	out, stderr, err := s.ctl(nil, append([]string{"status"}, strings.Fields(c.StatusArgs())...)...)
	if err != nil {
		s.t.Fatalf("xdrive-ctl status --idle: %v\n%s", err, stderr)
	}
	st, err := ParseStatus([]byte(out))
	if err != nil {
		s.t.Fatal(err)
	}
	if len(st.Activity) == 0 {
		s.t.Fatalf("status --idle reported no activity: %s", out)
	}
	return st
}

func (s *sandbox) notice(text string) noticeFile {
	s.t.Helper()
	var n noticeFile
	if err := json.Unmarshal([]byte(text), &n); err != nil {
		s.t.Fatalf("the notice %q is not JSON: %v", text, err)
	}
	return n
}

// TestNotify: the operator's notify writes the notice, world-readable, and
// sends a wall message naming the deadline and the way to postpone; a
// failed wall still leaves the notice; bad arguments are refused.
func TestNotify(t *testing.T) {
	s := newSandbox(t, false)
	s.boot(testParams(t))
	deadline := time.Now().Add(5 * time.Minute).UTC().Truncate(time.Second)
	// Before the first status call with an idle check, the instance has no idle stop's commands.
	if _, stderr, err := s.ctl(nil, "notify", "--kind", "idle-stop", "--deadline", deadline.Format(time.RFC3339)); err == nil ||
		!strings.Contains(stderr, "idle.sh") {
		t.Fatalf("notify before any idle check: %v\n%s", err, stderr)
	}
	// A status call that cannot keep the commands (a full /run) still reports the signals.
	blocked := filepath.Join(s.root, "run/xdrive/.idle.sh.tmp")
	s.mkdir(blocked)
	s.idleStatus()
	if s.exists(filepath.Join(s.root, "run/xdrive/idle.sh")) {
		t.Fatal("idle.sh written past a blocked temporary file")
	}
	if err := os.Remove(blocked); err != nil {
		t.Fatal(err)
	}
	s.idleStatus()
	path := filepath.Join(s.root, "run/xdrive/notice")
	if _, _, err := s.ctl(nil, "notice"); err == nil {
		t.Fatal("notice succeeded with no notice")
	}
	if _, stderr, err := s.ctl(nil, "notify", "--kind", "idle-stop", "--deadline", deadline.Format(time.RFC3339)); err != nil {
		t.Fatalf("notify: %v\n%s", err, stderr)
	}
	n := s.notice(s.read(path))
	if n.Kind != "idle-stop" || n.Deadline != deadline.Format(time.RFC3339) || n.SecondsLeft < 240 || n.SecondsLeft > 300 || n.Workstation != "team-a/dev-box" {
		t.Errorf("notice %+v", n)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("the notice's mode: %v, %v", fi, err)
	}
	wall := s.read(filepath.Join(s.state, "wall"))
	for _, want := range []string{"team-a/dev-box", deadline.Format("2006-01-02 15:04:05 UTC"), "in 5 min", "sudo xdrive-ctl extend 1h", "xdrive-ctl notice"} {
		if !strings.Contains(wall, want) {
			t.Errorf("the wall message lacks %q:\n%s", want, wall)
		}
	}
	// notice prints it with the seconds left now.
	out, stderr, err := s.ctl(nil, "notice")
	if err != nil {
		t.Fatalf("notice: %v\n%s", err, stderr)
	}
	if got := s.notice(out); got.Deadline != n.Deadline || got.SecondsLeft > n.SecondsLeft || got.SecondsLeft < n.SecondsLeft-30 {
		t.Errorf("notice printed %+v after %+v", got, n)
	}

	// A failed wall is a warning; the notice is written.
	s.setState("wall-fail", "")
	later := deadline.Add(time.Hour)
	if _, stderr, err := s.ctl(nil, "notify", "--kind", "idle-stop", "--deadline", later.Format(time.RFC3339)); err != nil ||
		!strings.Contains(stderr, "wall failed") {
		t.Fatalf("notify with a failing wall: %v\n%s", err, stderr)
	}
	if n := s.notice(s.read(path)); n.Deadline != later.Format(time.RFC3339) {
		t.Errorf("notice after a failed wall: %+v", n)
	}

	for _, args := range [][]string{
		{"notify"},
		{"notify", "--kind", "idle-stop"},
		{"notify", "--kind", "reboot", "--deadline", later.Format(time.RFC3339)},
		{"notify", "--kind", "idle-stop", "--deadline", "tomorrow"},
		{"notify", "--kind", "idle-stop", "--deadline", "2026-11-30T10:30:00+01:00"},
		{"notify", "--kind", "idle-stop", "--deadline", later.Format(time.RFC3339), "--wall", "x"},
		{"reboot"},
	} {
		if _, _, err := s.ctl(nil, args...); err == nil {
			t.Errorf("xdrive-ctl %q succeeded", args)
		}
	}
	if n := s.notice(s.read(path)); n.Deadline != later.Format(time.RFC3339) {
		t.Errorf("a refused notify changed the notice: %+v", n)
	}
}

// TestExtend: extend records the time asked and who asked, status reports
// it, a notice of an earlier stop goes, and bad durations are refused with
// a clear error.
func TestExtend(t *testing.T) {
	s := newSandbox(t, false)
	s.boot(testParams(t))
	if st := s.idleStatus(); st.ExtendUntil != "" || st.ExtendBy != "" {
		t.Fatalf("status before any extend: until %q by %q", st.ExtendUntil, st.ExtendBy)
	}
	for _, bad := range []string{"", "0m", "1d", "90", "1h30", "-1h", "721h", "1.5h", "1h 30m", "m"} {
		_, stderr, err := s.ctl(nil, "extend", bad)
		if err == nil || !strings.Contains(stderr, "is not a duration from 1m to 720h") {
			t.Errorf("extend %q: %v\n%s", bad, err, stderr)
		}
	}
	if _, _, err := s.ctl(nil, "extend", "1h", "2h"); err == nil {
		t.Error("extend with two durations succeeded")
	}
	if s.exists(filepath.Join(s.root, "var/lib/xdrive/extend")) {
		t.Fatal("a refused extend was recorded")
	}

	// A notice of a stop in 5 minutes; extend asks for 1h30m.
	deadline := time.Now().Add(5 * time.Minute).UTC().Format(time.RFC3339)
	if _, stderr, err := s.ctl(nil, "notify", "--kind", "idle-stop", "--deadline", deadline); err != nil {
		t.Fatalf("notify: %v\n%s", err, stderr)
	}
	before := time.Now()
	out, stderr, err := s.ctl([]string{"SUDO_USER=alice"}, "extend", "1h30m")
	if err != nil || !strings.Contains(out, "waits until") {
		t.Fatalf("extend 1h30m: %v\n%s%s", err, out, stderr)
	}
	st := s.idleStatus()
	until, err := time.Parse(time.RFC3339, st.ExtendUntil)
	if err != nil || st.ExtendBy != "alice" {
		t.Fatalf("status: extendUntil %q by %q", st.ExtendUntil, st.ExtendBy)
	}
	if st := s.status(); st.ExtendUntil != "" {
		t.Errorf("status without an idle check reports extendUntil %q", st.ExtendUntil)
	}
	if lo, hi := before.Add(90*time.Minute-time.Second), time.Now().Add(90*time.Minute); until.Before(lo) || until.After(hi) {
		t.Errorf("extendUntil %s, want between %s and %s", until, lo, hi)
	}
	if _, _, err := s.ctl(nil, "notice"); err == nil || s.exists(filepath.Join(s.root, "run/xdrive/notice")) {
		t.Error("the notice of the earlier stop is still there")
	}

	// A later extend replaces it; an odd user name is not passed on.
	if _, stderr, err := s.ctl([]string{"SUDO_USER=x\"y"}, "extend", "45m"); err != nil {
		t.Fatalf("extend 45m: %v\n%s", err, stderr)
	}
	if st := s.idleStatus(); st.ExtendBy != "unknown" || st.ExtendUntil == "" || st.ExtendUntil >= until.Format(time.RFC3339) {
		t.Errorf("after extend 45m: until %q by %q", st.ExtendUntil, st.ExtendBy)
	}
	// A notice of a stop after the extension stays.
	far := time.Now().Add(3 * time.Hour).UTC().Format(time.RFC3339)
	if _, stderr, err := s.ctl(nil, "notify", "--kind", "idle-stop", "--deadline", far); err != nil {
		t.Fatalf("notify: %v\n%s", err, stderr)
	}
	if _, stderr, err := s.ctl(nil, "extend", "2h"); err != nil {
		t.Fatalf("extend 2h: %v\n%s", err, stderr)
	}
	if out, _, err := s.ctl(nil, "notice"); err != nil || s.notice(out).Deadline != far {
		t.Errorf("the notice of a later stop: %q, %v", out, err)
	}
}
