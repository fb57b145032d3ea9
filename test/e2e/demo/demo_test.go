// The demo's test runs it end to end, as `make demo` does, and checks its
// machine-readable verdict: what it created, and that nothing is left.
package main_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var verdict = regexp.MustCompile(`(?m)^demo: (OK|FAIL) snapshots=(\d+) instances=(\d+) leftover_volumes=(\d+) leftover_instances=(\d+) leftover_snapshots=(\d+) leftover_objects=(\d+)$`)

// TestDemo builds the demo, runs it non-interactively (in a loopback-only
// network namespace and its own PID namespace when this process may create
// them), and checks its last line. Timings are not checked.
func TestDemo(t *testing.T) {
	require(t, os.Getenv("KUBEBUILDER_ASSETS") != "", "KUBEBUILDER_ASSETS is unset; export KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh)")
	_, err := exec.LookPath("moto_server")
	require(t, err == nil, "moto_server is not on PATH")
	_, err = os.Stat("/usr/sbin/sshd")
	require(t, err == nil, "/usr/sbin/sshd is missing (apt-get install -y openssh-server)")

	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "xdrive-demo")
	build := exec.Command("go", "build", "-o", bin, "./test/e2e/demo")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the demo: %v\n%s", err, out)
	}

	args := []string{"--non-interactive", "--timeout", "4m"}
	name, isolated := bin, false
	if os.Geteuid() == 0 && exec.Command("unshare", "-n", "-p", "-f", "--kill-child", "--mount-proc", "true").Run() == nil {
		args = append([]string{"-n", "-p", "-f", "--kill-child", "--mount-proc", "sh", "-c", `ip link set lo up && exec "$0" "$@"`, bin}, args...)
		name, isolated = "unshare", true
	} else {
		t.Log("unshare is not available: running the demo on the host network (it listens on 127.0.0.1 only)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = root
	// Without a PID namespace, a signal lets the demo clean up before it is killed.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = time.Minute
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	text := out.String()
	m := verdict.FindAllStringSubmatch(text, -1)
	if runErr != nil || len(m) != 1 {
		t.Fatalf("demo: %v; %d verdict lines; output:\n%s", runErr, len(m), text)
	}
	got := m[0]
	if !strings.HasSuffix(strings.TrimSpace(text), strings.TrimSpace(got[0])) {
		t.Errorf("the verdict is not the last line of the output:\n%s", text)
	}
	n := func(i int) int { v, _ := strconv.Atoi(got[i]); return v }
	if got[1] != "OK" || n(2) != 6 || n(3) != 5 || n(4) != 0 || n(5) != 0 || n(6) != 0 || n(7) != 0 {
		t.Errorf("verdict %q; want OK with 6 snapshots (stop, interruption, idle stop, stop before the move, its copy in us-west-2, delete), 5 instances and nothing left over; output:\n%s", got[0], text)
	}
	for _, want := range []string{"step a:", "step b:", "step c:", "step d:", "step idle:", "step move:", "step e:", "step summary:", "Simulated:", "ran container shell's preStop hook (touch /root/checkpoint-at-notice): Ran"} {
		if !strings.Contains(text, want) {
			t.Errorf("the output lacks %q", want)
		}
	}
	if isolated && !strings.Contains(text, "Network:    loopback only") {
		t.Errorf("the demo did not see a loopback-only network inside unshare -n; output:\n%s", text)
	}
	if t.Failed() {
		return
	}
	t.Logf("%s", got[0])
}

// require skips the test when cond is false, or fails it when CI=true.
func require(t *testing.T, cond bool, msg string) {
	t.Helper()
	if cond {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
