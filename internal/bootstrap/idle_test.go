package bootstrap

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// curlShim answers the Jupyter API of port P: api/kernels from
// $SHIM_STATE/jupyter-P, api/status from $SHIM_STATE/jupyter-P-status (or
// a last activity long ago); it fails (as with no server) when jupyter-P is
// absent, or (as with HTTP 403) when $SHIM_STATE/jupyter-token names a
// token it was not given.
const curlShim = `#!/bin/bash
for a; do url=$a; done
printf '%s\n' "$*" >>"$SHIM_STATE/curl-calls"
if [[ -e $SHIM_STATE/jupyter-token && " $* " != *" Authorization: token $(<"$SHIM_STATE/jupyter-token") "* ]]; then exit 22; fi
port=${url#http://127.0.0.1:}
port=${port%%/*}
[[ -e $SHIM_STATE/jupyter-$port ]] || exit 7
case $url in
*/api/status) cat "$SHIM_STATE/jupyter-$port-status" 2>/dev/null || echo '{"started": "2020-01-01T00:00:00Z", "last_activity": "2020-01-01T00:00:00.000000Z", "kernels": 1}' ;;
*) cat "$SHIM_STATE/jupyter-$port" ;;
esac
`

// A connection on port 22 other than the operator's, and the operator's own.
const (
	operatorSSH  = "10.0.0.1 40000 10.0.0.5 22"
	ssForward    = "0 0 10.0.0.5:22 10.0.0.9:50000\n\t cubic wscale:7,7 bytes_acked:1200 bytes_received:3400 segs_out:10\n"
	ssOwn        = "0 0 10.0.0.5:22 10.0.0.1:40000\n\t cubic wscale:7,7 bytes_acked:99 bytes_received:88\n"
	ssJupyterBig = "0 0 [::ffff:10.0.0.5]:8888 [::ffff:10.0.0.9]:50001\n\t cubic bytes_acked:60000 bytes_received:40000\n"
)

// idleSandbox boots an instance with a Jupyter container (token "s3cret",
// host port 8888) and a quiet machine: no session, load 0.01, no traffic.
func idleSandbox(t *testing.T, gpu bool, change ...func(*Params)) *sandbox {
	t.Helper()
	s := newSandbox(t, false)
	s.write(filepath.Join(s.bin, "curl"), curlShim, 0o755)
	// The GPU sampler a status call starts stops once gpu-wanted is gone.
	s.env = append(s.env, "XDRIVE_GPU_SAMPLE_INTERVAL=0.1")
	t.Cleanup(func() {
		run := filepath.Join(s.root, "run/xdrive")
		_ = os.Remove(filepath.Join(run, "gpu-wanted"))
		if s.exists(filepath.Join(run, "gpu-sampler.lock")) {
			_ = exec.Command("flock", "-w", "10", filepath.Join(run, "gpu-sampler.lock"), "true").Run()
		}
	})
	p := testParams(t)
	p.GPU = gpu
	p.Containers[0].Name = "lab"
	p.Containers[0].Env = []corev1.EnvVar{{Name: "JUPYTER_TOKEN", Value: "s3cret"}}
	for _, c := range change {
		c(&p)
	}
	s.boot(p)
	s.write(filepath.Join(s.root, "proc/loadavg"), "0.01 0.05 0.00 1/100 99\n", 0o644)
	s.setState("who", "")
	s.setState("ss", "")
	s.setState("jupyter-8888", `[{"id": "k1", "execution_state": "idle"}]`)
	s.quietNetwork()
	return s
}

// netDev is /proc/net/dev with BYTES received on eth0 (and traffic on lo
// and docker0, which does not count).
func netDev(bytes int64) string {
	return "Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n" +
		"    lo: 99999999 1000 0 0 0 0 0 0 99999999 1000 0 0 0 0 0 0\n" +
		fmt.Sprintf("  eth0: %d 500 0 0 0 0 0 0 2000 400 0 0 0 0 0 0\n", bytes) +
		"docker0: 88888888 10 0 0 0 0 0 0 88888888 10 0 0 0 0 0 0\n"
}

// quietNetwork records readings of no traffic and no jobs 10 s ago, so the
// next ones have a rate.
func (s *sandbox) quietNetwork() {
	then := time.Now().Unix() - 10
	s.write(filepath.Join(s.root, "proc/net/dev"), netDev(1000), 0o644)
	s.write(filepath.Join(s.root, "var/lib/xdrive/idle-net"), fmt.Sprintf("%d 0\n", then), 0o644)
	s.write(filepath.Join(s.root, "var/lib/xdrive/idle-iface"), fmt.Sprintf("%d 3000\n", then), 0o644)
	s.write(filepath.Join(s.root, "var/lib/xdrive/idle-jobs"), fmt.Sprintf("%d 0\n", then), 0o644)
}

var idleCheck = IdleCheck{CPULoad: "0.5", GPUPercent: 10, Ports: []int32{8888}, BytesPerSecond: 4096,
	Jupyter: []JupyterPort{{Container: "lab", Port: 8888}}, Command: "exit 1"}

// signals runs `xdrive-ctl status` with the idle check, as the operator
// does over SSH, on a ready instance; env adds settings.
func (s *sandbox) signals(c IdleCheck, env ...string) map[string]Signal {
	s.t.Helper()
	args := append([]string{"status", "--drive", driveVolumeID}, strings.Fields(c.StatusArgs())...)
	out, stderr, err := s.ctl(append([]string{"SSH_CONNECTION=" + operatorSSH}, env...), args...)
	if err != nil {
		s.t.Fatalf("xdrive-ctl status: %v\n%s", err, stderr)
	}
	st, err := ParseStatus([]byte(out))
	if err != nil {
		s.t.Fatal(err)
	}
	if st.Phase != PhaseReady || !st.Mounted {
		s.t.Fatalf("status = %+v, want a ready instance", st)
	}
	got := map[string]Signal{}
	for _, sig := range st.Activity {
		got[sig.Name] = sig
	}
	if len(got) != 6 {
		s.t.Fatalf("activity = %+v, want the six signals", st.Activity)
	}
	return got
}

func expectStates(t *testing.T, got map[string]Signal, want map[string]string) {
	t.Helper()
	for name, state := range want {
		if got[name].State != state {
			t.Errorf("signal %s = %+v, want %s", name, got[name], state)
		}
	}
}

var allIdle = map[string]string{"ssh": SignalIdle, "jupyter": SignalIdle, "gpu": SignalIdle, "cpu": SignalIdle, "network": SignalIdle, "command": SignalIdle}

// TestIdleSignalsQuiet: a machine nobody uses reports every signal idle,
// the operator's own SSH connection included; without --idle, no signals.
func TestIdleSignalsQuiet(t *testing.T) {
	s := idleSandbox(t, false)
	s.setState("ss", ssOwn)
	// A who that reads logind (coreutils 9.4 on, as Debian trixie's, seen
	// on a real VM) lists the operator's own status call as a session
	// without a terminal: it is the operator's connection, not a login.
	s.setState("who", "root     sshd pid:4242 2026-12-06 10:00 (10.0.2.2)")
	expectStates(t, s.signals(idleCheck), allIdle)
	if st := s.status(); len(st.Activity) != 0 {
		t.Errorf("status without --idle reported %+v", st.Activity)
	}
	if calls := s.read(filepath.Join(s.state, "curl-calls")); !strings.Contains(calls, "Authorization: token s3cret") {
		t.Errorf("the Jupyter API was not asked with the container's token: %s", calls)
	}
}

// TestIdleSignalsActive: each kind of activity is reported by its own signal.
func TestIdleSignalsActive(t *testing.T) {
	for _, tc := range []struct {
		name, signal string
		gpu          bool
		setup        func(s *sandbox)
		check        func(c *IdleCheck)
	}{
		{name: "login session", signal: "ssh", setup: func(s *sandbox) { s.setState("who", "alice pts/0 2026-11-30 10:00 (10.0.0.9)") }},
		{name: "port-forward", signal: "ssh", setup: func(s *sandbox) { s.setState("ss", ssOwn+ssForward) }},
		{name: "busy kernel", signal: "jupyter", setup: func(s *sandbox) {
			s.setState("jupyter-8888", `[{"id": "k1", "execution_state": "idle"}, {"id": "k2", "execution_state": "busy"}]`)
		}},
		{name: "GPU at 45%", signal: "gpu", gpu: true, setup: func(s *sandbox) { s.setState("nvidia-smi", "3\n45") }},
		{name: "load 1.2", signal: "cpu", setup: func(s *sandbox) {
			s.write(filepath.Join(s.root, "proc/loadavg"), "1.20 0.50 0.20 2/100 99\n", 0o644)
		}},
		{name: "traffic on 8888", signal: "network", setup: func(s *sandbox) { s.setState("ss", ssJupyterBig) }},
		{name: "check command", signal: "command", check: func(c *IdleCheck) { c.Command = "test -d /" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := idleSandbox(t, tc.gpu)
			if tc.gpu {
				s.setState("nvidia-smi", "0\n1")
			}
			c := idleCheck
			expectStates(t, s.signals(c), allIdle)
			s.quietNetwork()
			if tc.setup != nil {
				tc.setup(s)
			}
			if tc.check != nil {
				tc.check(&c)
			}
			got := s.signals(c)
			want := map[string]string{}
			for name := range allIdle {
				want[name] = SignalIdle
			}
			want[tc.signal] = SignalActive
			expectStates(t, got, want)
		})
	}
}

// TestIdleSignalsUnknown: a signal that cannot be read is unknown, never idle.
func TestIdleSignalsUnknown(t *testing.T) {
	for _, tc := range []struct {
		name, signal string
		also         string // a second signal that cannot be read
		gpu          bool
		setup        func(s *sandbox)
		check        func(c *IdleCheck)
	}{
		{name: "who fails", signal: "ssh", setup: func(s *sandbox) { s.setState("who-fail", "") }},
		{name: "ss fails", signal: "ssh", also: "network", setup: func(s *sandbox) { s.setState("ss-fail", "") }},
		{name: "Jupyter does not answer", signal: "jupyter", setup: func(s *sandbox) {
			if err := os.Remove(filepath.Join(s.state, "jupyter-8888")); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "nvidia-smi fails", signal: "gpu", gpu: true},
		{name: "no load average", signal: "cpu", setup: func(s *sandbox) {
			s.write(filepath.Join(s.root, "proc/loadavg"), "garbage\n", 0o644)
		}},
		{name: "first traffic reading", signal: "network", setup: func(s *sandbox) {
			s.write(filepath.Join(s.root, "var/lib/xdrive/idle-net"), "", 0o644)
		}},
		{name: "command not found", signal: "command", check: func(c *IdleCheck) { c.Command = "no-such-command-xdrive" }},
		{name: "command exits 2", signal: "command", check: func(c *IdleCheck) { c.Command = "exit 2" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := idleSandbox(t, tc.gpu)
			if tc.setup != nil {
				tc.setup(s)
			}
			c := idleCheck
			if tc.check != nil {
				tc.check(&c)
			}
			want := map[string]string{}
			for name := range allIdle {
				want[name] = SignalIdle
			}
			want[tc.signal] = SignalUnknown
			if tc.also != "" {
				want[tc.also] = SignalUnknown
			}
			expectStates(t, s.signals(c), want)
		})
	}
}

// TestIdleSignalsJupyterToken: without JUPYTER_TOKEN in the container's env,
// the token comes from the container's `jupyter server list`; a server whose
// token cannot be found does not answer, which counts as unknown.
func TestIdleSignalsJupyterToken(t *testing.T) {
	s := idleSandbox(t, false)
	s.setState("jupyter-token", "made-up-by-jupyter")
	if got := s.signals(idleCheck)["jupyter"]; got.State != SignalUnknown {
		t.Fatalf("with the wrong token: jupyter = %+v, want unknown", got)
	}
	s = idleSandbox(t, false, func(p *Params) { p.Containers[0].Env = nil })
	s.setState("jupyter-token", "made-up-by-jupyter")
	if got := s.signals(idleCheck)["jupyter"]; got.State != SignalUnknown {
		t.Fatalf("without a server list: jupyter = %+v, want unknown", got)
	}
	s.setState("meta/lab/jupyter-servers", `{"base_url": "/", "hostname": "0.0.0.0", "port": 8888, "token": "made-up-by-jupyter"}`)
	if got := s.signals(idleCheck)["jupyter"]; got.State != SignalIdle {
		t.Fatalf("with the server list's token: jupyter = %+v, want idle", got)
	}
}
