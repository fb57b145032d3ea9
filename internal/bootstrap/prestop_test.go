package bootstrap

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// Tests of issue #30, part 3: the containers' preStop hooks run inside the
// release, before the containers stop and the drive is flushed.

// hookParams: "train" saves a checkpoint in 1 s, "hang" never ends (cut at
// 2 s), "bad" exits 1, "web" has no hook.
func hookParams(t *testing.T) Params {
	p := testParams(t)
	p.Containers = append(p.Containers,
		v1alpha1.Container{Name: "train", Image: "pytorch:2", PreStop: &v1alpha1.PreStopHook{Exec: []string{"checkpoint", "/work/ckpt-1", "1"}}},
		v1alpha1.Container{Name: "hang", Image: "busybox:1", PreStop: &v1alpha1.PreStopHook{Exec: []string{"sleep", "600"}, TimeoutSeconds: 2}},
		v1alpha1.Container{Name: "bad", Image: "busybox:1", PreStop: &v1alpha1.PreStopHook{Exec: []string{"false"}}},
	)
	return p
}

func outcomes(hooks []HookOutcome) map[string]HookOutcome {
	m := map[string]HookOutcome{}
	for _, h := range hooks {
		m[h.Container] = h
	}
	return m
}

// TestPreStopHooks: a Stop's release writes the notice, runs every hook at
// once, then stops the containers and flushes; a hook that hangs is cut at
// its timeout and one that fails blocks nothing. The checkpoint is on the
// drive, and the outcomes come back in the release's output and the status.
func TestPreStopHooks(t *testing.T) {
	s := newSandbox(t, false)
	s.boot(hookParams(t))
	deadline := time.Now().Add(2 * time.Minute).UTC().Truncate(time.Second)
	out, stderr, err := s.ctl(nil, "release", "--kind", "stop", "--deadline", deadline.Format(time.RFC3339))
	if err != nil {
		t.Fatalf("release: %v\n%s", err, stderr)
	}
	got := outcomes(ParseRelease([]byte(out)).PreStop)
	if len(got) != 3 || got["train"].Outcome != v1alpha1.PreStopRan || got["hang"].Outcome != v1alpha1.PreStopTimedOut ||
		got["hang"].Seconds != 2 || got["bad"].Outcome != v1alpha1.PreStopFailed || got["bad"].ExitCode != 1 {
		t.Errorf("release printed %q: %+v", out, got)
	}
	calls := s.calls()
	// Each hook is told the stop's kind and deadline and its own seconds (the README documents the variables).
	env := "docker exec -e XDRIVE_STOP_KIND=stop -e XDRIVE_STOP_DEADLINE=" + deadline.Format(time.RFC3339) + " -e XDRIVE_HOOK_SECONDS="
	for name, secs := range map[string]string{"train": "30", "hang": "2", "bad": "30"} {
		expectOrder(t, calls, env+secs+" "+name, "docker stop", "systemctl stop docker.service", "sync", "umount ROOT/v1")
	}
	if !s.sees("train", "/work/ckpt-1") {
		t.Error("the checkpoint is not in the container")
	}
	st := s.status()
	if !st.Released || st.Mounted || len(st.PreStop) != 3 || outcomes(st.PreStop)["hang"].Outcome != v1alpha1.PreStopTimedOut {
		t.Errorf("status after the release: %+v", st)
	}
	n := s.notice(s.read(filepath.Join(s.root, "run/xdrive/notice")))
	if n.Kind != "stop" || n.Deadline != deadline.Format(time.RFC3339) || n.SecondsLeft < 60 || n.Workstation != "team-a/dev-box" {
		t.Errorf("notice %+v", n)
	}
	if wall := s.readOr(filepath.Join(s.state, "wall")); !strings.Contains(wall, "stops now (stop)") {
		t.Errorf("wall message %q", wall)
	}
	if secs := strings.TrimSpace(s.readOr(filepath.Join(s.root, "v1", ".xdrive-flush-seconds"))); secs == "" {
		t.Error("the flush's time is not on the drive")
	}
	// A second release runs no hook again and reports the same outcomes.
	out2, stderr, err := s.ctl(nil, "release")
	if err != nil || !strings.Contains(stderr, "already released") || len(ParseRelease([]byte(out2)).PreStop) != 3 {
		t.Errorf("second release: %v %q\n%s", err, out2, stderr)
	}
}

// TestPreStopWithinDeadline: the hooks get what the deadline leaves after
// the flush's need: none with the default need (Skipped), and, once a
// flush was measured, a hook that never ends is cut by the deadline
// rather than its own timeout. The drive is flushed either way.
func TestPreStopWithinDeadline(t *testing.T) {
	p := testParams(t)
	p.Containers[0].PreStop = &v1alpha1.PreStopHook{Exec: []string{"sleep", "600"}, TimeoutSeconds: 600}
	for _, tc := range []struct {
		name     string
		measured string // the last flush's seconds on the drive, or none
		want     v1alpha1.PreStopOutcome
	}{
		{"no measured flush", "", v1alpha1.PreStopSkipped},
		{"measured flush", "0", v1alpha1.PreStopTimedOut},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t, false)
			s.boot(p)
			if tc.measured != "" {
				s.write(filepath.Join(s.root, "v1", ".xdrive-flush-seconds"), tc.measured+"\n", 0o644)
			}
			// The default need is 35 s; a measured 0 s needs the 5 s margin.
			deadline := time.Now().Add(9 * time.Second).UTC()
			out, stderr, err := s.ctl(nil, "release", "--kind", "spot-interruption", "--deadline", deadline.Format(time.RFC3339))
			if err != nil {
				t.Fatalf("release: %v\n%s", err, stderr)
			}
			h := outcomes(ParseRelease([]byte(out)).PreStop)["web"]
			if h.Outcome != tc.want || h.Seconds > 5 {
				t.Errorf("hook %+v, want %s within the deadline", h, tc.want)
			}
			if st := s.status(); !st.Released || st.Mounted {
				t.Errorf("not flushed: %+v", st)
			}
			expectOrder(t, s.calls(), "docker stop", "sync", "umount ROOT/v1")
		})
	}
}

// TestReleaseArgs: the release's arguments are checked on both sides.
func TestReleaseArgs(t *testing.T) {
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	if args, err := (Release{Kind: NoticeKindSpotInterruption, Deadline: at}).Args(); err != nil ||
		args != " --kind spot-interruption --deadline 2026-12-07T09:00:00Z" {
		t.Errorf("Args = %q, %v", args, err)
	}
	if _, err := (Release{Kind: "reboot", Deadline: at}).Args(); err == nil {
		t.Error("an unknown kind was accepted")
	}
	if args, err := (Release{}).Args(); args != "" || err != nil {
		t.Errorf("zero Release: %q, %v", args, err)
	}
	st := ParseRelease([]byte("prestop train Ran 3 0\nprestop hang TimedOut 30 124\nbogus line\nspot-notice\n"))
	if !st.SpotNotice || len(st.PreStop) != 2 || st.PreStop[1] != (HookOutcome{"hang", v1alpha1.PreStopTimedOut, 30, 124}) {
		t.Errorf("ParseRelease: %+v", st)
	}
}
