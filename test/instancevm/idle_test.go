//go:build instancevm

package instancevm_test

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/bootstrap"
)

// idlePort is the published port of the idle checks' server container.
const idlePort = 18080

// idleCheck is what the checks ask: the load average set far above what
// TCG's emulation shows, so the cpu signal reads the tmux job, not the
// emulator's noise; 200 KB/s of traffic counts.
var idleCheck = bootstrap.IdleCheck{CPULoad: "50", Ports: []int32{idlePort}, BytesPerSecond: 200_000}

// signals runs the status call the idle auto-stop makes, and returns the
// activity signals by name. Each signal gets 20 s rather than 3: under
// TCG on a loaded host (a load of 20 here) a signal can take more than 3 s,
// and reads unknown, which the operator counts as activity.
func (in *instance) signals() map[string]bootstrap.Signal {
	in.t.Helper()
	target := in.target
	target.Idle = &idleCheck
	out, err := in.tryRun(2*time.Minute, "XDRIVE_IDLE_BUDGET=20 "+agent.StatusCommandFor(target))
	if err != nil {
		in.t.Fatalf("%s: status with the idle check: %v", in.vm.Config().InstanceID, err)
	}
	st, err := bootstrap.ParseStatus([]byte(out))
	if err != nil {
		in.t.Fatalf("%s: status with the idle check: %v", in.vm.Config().InstanceID, err)
	}
	got := map[string]bootstrap.Signal{}
	for _, s := range st.Activity {
		got[s.Name] = s
	}
	return got
}

// waitSignal asks for the signals until name reads state and cond holds
// (nil: any detail), and fails after two minutes.
func (in *instance) waitSignal(name, state string, cond func(detail string) bool) bootstrap.Signal {
	in.t.Helper()
	var last bootstrap.Signal
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		last = in.signals()[name]
		if last.State == state && (cond == nil || cond(last.Detail)) {
			return last
		}
		time.Sleep(2 * time.Second)
	}
	in.t.Fatalf("%s: signal %s never read %s; last %+v", in.vm.Config().InstanceID, name, state, last)
	return last
}

// quiet checks that every signal reads idle (the first readings of the
// rates are unknown, so it asks until they are not).
func (in *instance) quiet(after string) {
	in.t.Helper()
	var got map[string]bootstrap.Signal
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		got = in.signals()
		idle := len(got) > 0
		for _, s := range got {
			idle = idle && s.State == bootstrap.SignalIdle
		}
		if idle {
			in.t.Logf("quiet %s: %v", after, got)
			return
		}
		time.Sleep(2 * time.Second)
	}
	in.t.Fatalf("%s: not idle %s: %+v", in.vm.Config().InstanceID, after, got)
}

// portBytesRE reads the traffic on PORTS from the network signal's detail.
var portBytesRE = regexp.MustCompile(`ports [0-9 ]+: ([0-9]+) B/s`)

// checkIdleSignals: on a real system, a quiet instance reads idle, and each
// of these reads as activity, then idle again once it ends: an ssh login
// with a terminal, a job left running in a detached tmux, a download, and
// traffic on a container's published port.
func checkIdleSignals(in *instance) {
	in.t.Helper()
	in.run("docker run -d --name idle-server -p " + strconv.Itoa(idlePort) + ":8080 xdrive.test/busybox:1 " +
		`sh -c 'while :; do yes | nc -l -p 8080; done'`)
	in.quiet("at first")

	// An ssh login with a terminal, as a user's.
	sess, closeSession := in.login()
	s := in.waitSignal("ssh", bootstrap.SignalActive, nil)
	in.t.Logf("ssh login: %s", s.Detail)
	_ = sess.Close()
	closeSession()
	in.waitSignal("ssh", bootstrap.SignalIdle, nil)

	// A job in a detached tmux: a loop that keeps a CPU busy, at nice 19:
	// on an emulated CPU under load, a loop at the probe's priority starved
	// the probe past its 20 s (the cpu signal read unknown); niced, it
	// still takes every cycle the probe leaves.
	in.run(`tmux new-session -d -s job 'nice -n 19 sh -c "while :; do :; done"'`)
	s = in.waitSignal("cpu", bootstrap.SignalActive, func(d string) bool { return strings.Contains(d, "tmux") })
	in.t.Logf("tmux job: %s", s.Detail)
	in.run("tmux kill-server")
	in.waitSignal("cpu", bootstrap.SignalIdle, nil)

	// A download: 24 MiB reach the instance between two readings.
	in.signals()
	in.upload("/tmp/download", bytes.Repeat([]byte("x"), 24<<20))
	s = in.signals()["network"]
	if s.State != bootstrap.SignalActive {
		in.t.Errorf("a 24 MiB download reads %+v", s)
	}
	in.t.Logf("download: %s", s.Detail)
	in.run("rm /tmp/download")

	// The published port in use: a client reading the server's stream.
	// Its stdin stays open: busybox nc ends at its stdin's end.
	in.run("setsid sh -c 'sleep 900 | busybox nc 127.0.0.1 " + strconv.Itoa(idlePort) + " >/dev/null' </dev/null >/dev/null 2>&1 &")
	s = in.waitSignal("network", bootstrap.SignalActive, func(d string) bool {
		m := portBytesRE.FindStringSubmatch(d)
		if m == nil {
			return false
		}
		n, err := strconv.ParseInt(m[1], 10, 64)
		return err == nil && n >= idleCheck.BytesPerSecond
	})
	in.t.Logf("published port in use: %s", s.Detail)
	// [b], [s]: a pattern must not match this command's own shell.
	in.run("pkill -f '[b]usybox nc 127.0.0.1'; pkill -f '[s]leep 900'; docker rm -f idle-server")
	in.quiet("after the activity ended")
}

// login opens an ssh session with a terminal, as a user's login, and
// returns it with what closes its connection.
func (in *instance) login() (*ssh.Session, func()) {
	in.t.Helper()
	c := in.dial("login")
	sess, err := c.NewSession()
	if err != nil {
		in.t.Fatalf("login: %v", err)
	}
	if err := sess.RequestPty("xterm", 40, 120, ssh.TerminalModes{}); err != nil {
		in.t.Fatalf("login: terminal: %v", err)
	}
	if err := sess.Start("sleep 600"); err != nil {
		in.t.Fatalf("login: %v", err)
	}
	return sess, func() { _ = c.Close() }
}
