package integration_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/plugin"
	testenv "github.com/xdrive-io/xdrive/test/envtest"
	"github.com/xdrive-io/xdrive/test/harness"
)

// TestPluginSSHAliasFollowsRelaunches (issue #28): a real kubectl finds and
// runs the plugin as `kubectl xdrive`; `start --wait` waits for a launch on
// moto and simulated instances; `ssh-config` writes an alias once, and a
// real OpenSSH client connects through it, with strict host-key checking
// and nothing run in between, to two successive launches, each with its
// own host key; the second is started by the alias's proxy itself.
func TestPluginSSHAliasFollowsRelaunches(t *testing.T) {
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		if testenv.InCI() {
			t.Fatal("no ssh client: apt-get install -y openssh-client")
		}
		t.Skip("no ssh client: apt-get install -y openssh-client")
	}
	env := requireEnv(t)
	h := harness.New(t, harness.Config{Env: env, Instances: true})
	k := env.Kubectl(t, h.Namespace)
	bin := filepath.Join(k.Home, "bin")
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "kubectl-xdrive"), "./cmd/kubectl-xdrive")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/kubectl-xdrive: %v\n%s", err, out)
	}
	// kubectl, the plugin and ssh on the PATH, as on a user's machine; the address
	// map sends the proxy to the simulated instances' loopback sshds.
	if err := os.Symlink(k.Path, filepath.Join(bin, "kubectl")); err != nil {
		t.Fatal(err)
	}
	addrFile := filepath.Join(k.Home, "addresses")
	if err := os.WriteFile(addrFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	path := "PATH=" + bin + ":" + filepath.Dir(sshBin) + ":/usr/bin:/bin"
	xdrive := func(args ...string) string {
		t.Helper()
		out, stderr, err := k.Run([]string{path, plugin.AddressMapEnv + "=@" + addrFile}, append([]string{"xdrive"}, args...)...)
		if err != nil {
			t.Fatalf("%v\nstdout:\n%s", err, out)
		}
		t.Logf("kubectl xdrive %s:\n%s%s", strings.Join(args, " "), out, stderr)
		return out
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go mapAddresses(ctx, h, "box", addrFile)

	h.Start()
	box := h.NewWorkstation("box", "data", []string{"t3.large"})
	box.Spec.State = v1alpha1.WorkstationStateStopped
	h.Create(h.NewDrive("data", 20), box)

	out := xdrive("start", "box", "--wait", "--timeout", "3m")
	if !strings.Contains(out, "Workstation Running") || !strings.Contains(out, "spec.state=Running") {
		t.Errorf("start --wait showed no progress to Running:\n%s", out)
	}
	first := h.Workstation("box").Status
	if first.SSH == nil || first.Phase != v1alpha1.WorkstationPhaseRunning {
		t.Fatalf("start --wait returned before the Workstation was reachable: %+v", first)
	}
	if first.Class == nil || first.Class.SSHUser != v1alpha1.DefaultSSHUser {
		t.Errorf("status.class = %+v, want the class's sshUser, defaulted to %s", first.Class, v1alpha1.DefaultSSHUser)
	}

	config := filepath.Join(k.Home, "ssh_config")
	if err := os.WriteFile(config, []byte(xdrive("ssh-config", "box", "--start", "--operator-key-dir", filepath.Join(k.Home, "keys"))), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, _ := os.ReadFile(config); !strings.Contains(string(cfg), "xdrive --kubeconfig "+k.Kubeconfig+" --context envtest proxy --start %h %p") {
		t.Errorf("the alias does not name the kubeconfig ($KUBECONFIG) and context it was made with:\n%s", cfg)
	}
	host := "box." + h.Namespace + ".xdrive"
	ssh := func(extra ...string) (string, error) {
		args := append([]string{"-F", config, "-o", "BatchMode=yes", "-o", "ConnectTimeout=120"}, extra...)
		cmd := exec.Command(sshBin, append(args, host, agent.StatusCommand)...)
		cmd.Env = []string{path, "HOME=" + k.Home, "KUBECONFIG=" + k.Kubeconfig, plugin.AddressMapEnv + "=@" + addrFile}
		got, err := cmd.CombinedOutput()
		return string(got), err
	}
	parsed, err := exec.Command(sshBin, "-G", "-F", config, host).CombinedOutput()
	if err != nil || !strings.Contains(string(parsed), "stricthostkeychecking true\n") ||
		!strings.Contains(string(parsed), "userknownhostsfile /dev/null\n") {
		t.Fatalf("ssh -G: %v\n%s", err, parsed)
	}

	got, err := ssh()
	if err != nil || !strings.Contains(got, `"phase":`) {
		t.Fatalf("ssh %s to the first launch (%s): %v\n%s", host, first.InstanceID, err, got)
	}

	// stop --wait, with the snapshot held pending (EC2's progress 50%) for a while.
	h.Proxy.HoldSnapshots(true)
	stopped := make(chan string, 1)
	go func() {
		out, stderr, err := k.Run([]string{path}, "xdrive", "stop", "box", "--wait", "--timeout", "3m")
		stopped <- fmt.Sprintf("%s%s(%v)", out, stderr, err)
	}()
	h.Eventually(converge, "the pending snapshot's progress in status", func() (bool, string) {
		ps := h.Drive("data").Status.PendingSnapshot
		return ps != nil && ps.Progress == "50%", fmt.Sprintf("pending snapshot %+v", ps)
	})
	time.Sleep(2 * time.Second) // a poll of stop --wait sees it
	h.Proxy.HoldSnapshots(false)
	out = <-stopped
	t.Logf("kubectl xdrive stop box --wait:\n%s", out)
	if !strings.Contains(out, "[#####.....] 50%") || !strings.Contains(out, "Workstation Stopped") || !strings.HasSuffix(out, "(<nil>)") {
		t.Errorf("stop --wait showed no snapshot progress, or failed:\n%s", out)
	}
	if st := h.Workstation("box").Status; st.Phase != v1alpha1.WorkstationPhaseStopped {
		t.Fatalf("stop --wait returned in phase %s", st.Phase)
	}
	if ps := h.Drive("data").Status.PendingSnapshot; ps != nil && ps.CompletionTime == nil {
		t.Errorf("stop --wait returned with the snapshot pending: %+v", ps)
	}

	// The same alias, the Workstation stopped: the proxy starts it and waits.
	got, err = ssh()
	second := h.Workstation("box").Status
	if err != nil || !strings.Contains(got, `"phase":`) {
		t.Fatalf("ssh %s through proxy --start: %v\n%s", host, err, got)
	}
	if second.InstanceID == first.InstanceID || second.SSH == nil || second.SSH.HostPublicKey == first.SSH.HostPublicKey {
		t.Fatalf("no second launch with a new host key: first %s %q, second %+v", first.InstanceID, first.SSH.HostPublicKey, second.SSH)
	}
	if !strings.Contains(got, "Workstation Running") {
		t.Errorf("proxy --start showed no progress on ssh's stderr:\n%s", got)
	}

	// Checking is strict: the first launch's key, offered for the second, is refused.
	got, err = ssh("-o", "KnownHostsCommand=/bin/echo %H "+first.SSH.HostPublicKey)
	if err == nil || !strings.Contains(got, "Host key verification failed") {
		t.Fatalf("ssh accepted the second launch with the first launch's host key: %v\n%s", err, got)
	}
}

// mapAddresses keeps file mapping the Workstation's current address to its
// simulated instance's loopback sshd, as DNS would to a real instance.
func mapAddresses(ctx context.Context, h *harness.Harness, name, file string) {
	last := ""
	for ctx.Err() == nil {
		ws, err := h.Stack.Workstation(ctx, name)
		if err == nil && ws.Status.PublicIP != "" && ws.Status.PublicIP != last {
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			addr, err := h.Sim.Resolve(rctx, ws.Status.PublicIP)
			cancel()
			if err == nil {
				tmp := file + ".tmp"
				if os.WriteFile(tmp, []byte(fmt.Sprintf("%s=%s\n", ws.Status.PublicIP, addr)), 0o600) == nil && os.Rename(tmp, file) == nil {
					last = ws.Status.PublicIP
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}
