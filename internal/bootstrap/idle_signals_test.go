package bootstrap

// Tests of issue #25, items 5, 6 and 8: each idle signal has its own time
// budget; a working user is never read as idle; the check command never
// runs as root.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIdleSignalBudgets: a hung nvidia-smi and a check command that never
// ends are reported unknown once their budget runs out; the other signals
// are still read, and the call returns.
func TestIdleSignalBudgets(t *testing.T) {
	s := idleSandbox(t, true)
	s.setState("nvidia-smi-hang", "")
	c := idleCheck
	c.Command = "sleep 600"
	got := s.signals(c, "XDRIVE_IDLE_BUDGET=2")
	for _, name := range []string{"gpu", "command"} {
		if got[name].State != SignalUnknown || !strings.Contains(got[name].Detail, "not read within 2s") {
			t.Errorf("signal %s = %+v, want unknown after its budget", name, got[name])
		}
	}
	expectStates(t, got, map[string]string{"ssh": SignalIdle, "jupyter": SignalIdle, "cpu": SignalIdle, "network": SignalIdle})
}

// TestIdleStatusDockerHangs: a Docker that does not answer does not hold
// the status call past its own short limit.
func TestIdleStatusDockerHangs(t *testing.T) {
	s := idleSandbox(t, false)
	s.setState("docker-hang-ps", "")
	s.timeout = 30 * time.Second
	out, stderr, err := s.ctl([]string{"XDRIVE_STATUS_DOCKER_TIMEOUT=1"}, "status")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, stderr)
	}
	if st, err := ParseStatus([]byte(out)); err != nil || st.Containers["lab"] != "unknown" {
		t.Errorf("status = %+v, %v", st, err)
	}
}

// TestCheckCommandUnprivileged: the check command runs as nobody, with a
// clean environment, and only once IMDS is closed to it.
func TestCheckCommandUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root, to drop to nobody")
		}
		t.Skip("needs root, to drop to nobody")
	}
	s := idleSandbox(t, false)
	for _, tc := range []struct{ name, command string }{
		{"root", `[ "$(id -u)" = 0 ]`},
		{"a supplementary group", `id -G | grep -qw 0`},
		{"the caller's environment", `[ -n "${SSH_CONNECTION:-}${SHIM_STATE:-}${XDRIVE_ROOT:-}" ]`},
		{"capabilities", `grep -q '^CapEff:.*[1-9a-f]' /proc/self/status`},
		{"the host's shadow file", `[ -r /etc/shadow ]`},
	} {
		c := idleCheck
		c.Command = tc.command
		if got := s.signals(c)["command"]; got.State != SignalIdle {
			t.Errorf("the check command has %s: %+v", tc.name, got)
		}
	}
	rules := s.read(filepath.Join(s.state, "iptables-rules"))
	if !strings.Contains(rules, "OUTPUT -d 169.254.169.254/32 -m owner --uid-owner 65534 -j REJECT") ||
		strings.Count(rules, "\n") != 1 {
		t.Errorf("iptables rules = %q, want IMDS closed to nobody, once", rules)
	}
	if !strings.Contains(s.read(filepath.Join(s.state, "ip6tables-rules")), "fd00:ec2::254/128") {
		t.Error("IMDS over IPv6 is not closed to nobody")
	}

	// Without the rule, the command does not run.
	ran := filepath.Join(t.TempDir(), "ran")
	if err := os.Chmod(filepath.Dir(ran), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(s.state, "iptables-rules")); err != nil {
		t.Fatal(err)
	}
	s.setState("iptables-fail", "")
	c := idleCheck
	c.Command = "touch " + ran
	if got := s.signals(c)["command"]; got.State != SignalUnknown || s.exists(ran) {
		t.Errorf("with IMDS open: command = %+v, ran = %t", got, s.exists(ran))
	}
}

// procStat writes a process's /proc/PID/stat and comm in the sandbox, with
// CPU time in clock ticks.
func (s *sandbox) procStat(pid, ppid int, comm string, ticks int) {
	dir := filepath.Join(s.root, "proc", fmt.Sprint(pid))
	s.write(filepath.Join(dir, "comm"), comm+"\n", 0o644)
	s.write(filepath.Join(dir, "stat"), fmt.Sprintf("%d (%s) S %d %d %d 0 -1 4194560 100 0 0 0 %d %d 0 0 20 0 1 0 100 0 0\n",
		pid, comm, ppid, pid, pid, ticks, 0), 0o644)
}

// TestFalseIdle: each way of working that read as idle before is now
// activity, through the signal that sees it, and quiet again afterwards.
func TestFalseIdle(t *testing.T) {
	hz := 100 // CLK_TCK on Linux
	for _, tc := range []struct {
		name, signal string
		gpu          bool
		setup        func(s *sandbox)
	}{
		{name: "an outbound download at low CPU", signal: "network", setup: func(s *sandbox) {
			s.write(filepath.Join(s.root, "proc/net/dev"), netDev(1000+50*1024*1024), 0o644)
		}},
		{name: "traffic to a published port through Docker's DNAT", signal: "network", setup: func(s *sandbox) {
			s.write(filepath.Join(s.root, "proc/net/nf_conntrack"),
				"ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.0.9 dst=10.0.0.5 sport=50001 dport=8888 packets=900 bytes=4000000 "+
					"src=172.17.0.2 dst=10.0.0.9 sport=8888 dport=50001 packets=800 bytes=9000000 [ASSURED] mark=0 use=1\n", 0o644)
			// Nothing on the interfaces' own counters moves: only conntrack sees it.
		}},
		{name: "a detached tmux job", signal: "cpu", setup: func(s *sandbox) {
			s.procStat(700, 1, "tmux: server", 5)
			s.procStat(701, 700, "bash", 2)
			s.procStat(702, 701, "python3", 3*hz) // 3 CPU seconds in 10 s: 30% of a CPU, load still low
		}},
		{name: "a shell in an SSM session", signal: "ssh", setup: func(s *sandbox) {
			s.procStat(800, 1, "ssm-agent-worker", 1)
			s.procStat(801, 800, "ssm-session-worker", 1)
			s.procStat(802, 801, "sh", 0)
		}},
		{name: "Jupyter on another port, found in the container", signal: "jupyter", setup: func(s *sandbox) {
			s.setState("meta/lab/jupyter-servers", `{"base_url": "/", "port": 9999, "token": "other"}`)
			s.setState("jupyter-9999", `[{"id": "k9", "execution_state": "busy"}]`)
		}},
		{name: "a notebook with recent activity and no busy kernel", signal: "jupyter", setup: func(s *sandbox) {
			s.setState("jupyter-8888-status", fmt.Sprintf(`{"last_activity": "%s", "kernels": 1}`,
				time.Now().Add(time.Second).UTC().Format("2006-01-02T15:04:05.000000Z")))
		}},
		{name: "a GPU busy between two checks", signal: "gpu", gpu: true, setup: func(s *sandbox) {
			s.setState("nvidia-smi", "85")
			samples := filepath.Join(s.root, "run/xdrive/gpu-samples")
			waitFor(s.t, 20*time.Second, "the sampler to see 85%", func() bool { return strings.Contains(s.readOr(samples), " 85\n") })
			s.setState("nvidia-smi", "0")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := idleSandbox(t, tc.gpu)
			var env []string
			if tc.gpu {
				s.setState("nvidia-smi", "0")
			}
			expectStates(t, s.signals(idleCheck, env...), allIdle)
			s.quietNetwork()
			time.Sleep(time.Second) // Jupyter's and the GPU's windows start at the last check, in seconds
			tc.setup(s)
			want := map[string]string{}
			for name := range allIdle {
				want[name] = SignalIdle
			}
			want[tc.signal] = SignalActive
			expectStates(t, s.signals(idleCheck, env...), want)
		})
	}
}
