package plugin_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/plugin"
	"github.com/xdrive-io/xdrive/internal/sshx"
	testenv "github.com/xdrive-io/xdrive/test/envtest"
	"github.com/xdrive-io/xdrive/test/sshd"
)

// instanceIP is the address in status: TEST-NET-3, never dialled (the address map sends ssh to the loopback sshd).
const instanceIP = "203.0.113.7"

var (
	envOnce sync.Once
	env     *testenv.Env
	envErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// sharedEnv is one API server for every test of the package.
func sharedEnv(t *testing.T) *testenv.Env {
	testenv.RequireAssets(t)
	envOnce.Do(func() { env, envErr = testenv.New() })
	if envErr != nil {
		t.Fatal(envErr)
	}
	return env
}

type fixture struct {
	t         *testing.T
	clientKey []byte
	c         client.Client
	ns        string
	srv       *sshd.Server
	opts      plugin.Options
}

// newFixture makes a Workstation "dev" in envtest whose status points at a
// real loopback sshd with that sshd's host key, and the operator's SSH
// Secret holding the key the sshd authorizes. The sshd's ForceCommand echoes the command.
func newFixture(t *testing.T) *fixture {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no ssh client: apt-get install -y openssh-client")
	}
	e := sharedEnv(t)
	f := &fixture{t: t, c: e.Client, ns: testenv.CreateNamespace(t, e.Client)}
	clientKey, clientPub, err := sshx.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "force.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"ran: $SSH_ORIGINAL_COMMAND\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A Match block overrides the test sshd's AllowTcpForwarding no, as an instance's default sshd allows it.
	f.clientKey = clientKey
	f.srv = sshd.Start(t, sshd.Options{AuthorizedKeys: []string{clientPub}, ForceCommand: script,
		ExtraConfig: []string{"Match all", "AllowTcpForwarding local"}})
	ctx := context.Background()
	ws := &v1alpha1.Workstation{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "dev"},
		Spec: v1alpha1.WorkstationSpec{DriveRef: v1alpha1.DriveReference{Name: "home"}, InstanceTypes: []string{"t3.large"},
			State: v1alpha1.WorkstationStateStopped},
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: v1alpha1.SSHSecretName("dev")},
		Data: map[string][]byte{v1alpha1.SSHSecretClientKey: clientKey}}
	for _, o := range []client.Object{ws, secret} {
		if err := f.c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	f.setStatus(f.srv.HostKey)
	f.opts = plugin.Options{Client: f.c, Namespace: f.ns, AddressMap: map[string]string{instanceIP: f.srv.Addr}}
	return f
}

// setStatus writes the status the operator would for a running instance, with the given host key (none if empty).
func (f *fixture) setStatus(hostKey string, change ...func(*v1alpha1.WorkstationStatus)) {
	f.t.Helper()
	ws := &v1alpha1.Workstation{}
	if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "dev"}, ws); err != nil {
		f.t.Fatal(err)
	}
	launched := metav1.NewTime(time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC))
	ws.Status = v1alpha1.WorkstationStatus{
		Phase: v1alpha1.WorkstationPhaseRunning, InstanceID: "i-0123456789abcdef0", PublicIP: instanceIP,
		InstanceType: "t3.large", CapacityType: v1alpha1.CapacityTypeSpot, AvailabilityZone: "us-east-1a",
		SpotPrice: "0.0208", PricePerHour: "0.0208", LaunchTime: &launched,
		Idle: &v1alpha1.IdleState{InstanceID: "i-0123456789abcdef0", LastActivityTime: metav1.NewTime(launched.Add(100 * time.Minute)),
			LastActivitySignal: v1alpha1.IdleSignalSSH},
		PreStop: &v1alpha1.PreStopStatus{InstanceID: "i-0fedcba9876543210", Time: metav1.NewTime(launched.Add(-time.Hour)),
			Hooks: []v1alpha1.PreStopResult{{Container: "train", Outcome: v1alpha1.PreStopTimedOut, DurationSeconds: ptr.To[int32](30)}}},
		Endpoints: []v1alpha1.Endpoint{
			{Name: "ssh", URL: "ssh://" + f.srv.User + "@" + instanceIP + ":22"}, {Name: "jupyter", URL: "http://" + instanceIP + ":8888"},
		},
	}
	if hostKey != "" {
		ws.Status.SSH = &v1alpha1.SSHAccess{InstanceID: "i-0123456789abcdef0", User: f.srv.User, HostPublicKey: hostKey}
	}
	for _, c := range change {
		c(&ws.Status)
	}
	if err := f.c.Status().Update(context.Background(), ws); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) run(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	o := f.opts
	o.Stdout, o.Stderr = &out, &errOut
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = plugin.Run(ctx, o, args)
	return out.String(), errOut.String(), err
}

func TestSSH(t *testing.T) {
	f := newFixture(t)
	out, stderr, err := f.run("ssh", "dev", "--operator-key", "--", "echo", "hello")
	if err != nil || strings.TrimSpace(out) != "ran: echo hello" {
		t.Fatalf("ssh: %v; stdout %q; stderr %q", err, out, stderr)
	}

	// Another host key in status: ssh must refuse the server, not trust it.
	_, otherKey, err := sshx.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	f.setStatus(otherKey)
	out, stderr, err = f.run("ssh", "dev", "--operator-key", "--", "echo", "hello")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || out != "" || !strings.Contains(stderr, "Host key verification failed") {
		t.Fatalf("ssh with a wrong pinned key: err %v; stdout %q; stderr %q; want a refusal", err, out, stderr)
	}
}

func TestSSHRefusesWithoutPublishedKey(t *testing.T) {
	f := newFixture(t)
	f.setStatus("")
	if _, _, err := f.run("ssh", "dev", "--operator-key"); err == nil {
		t.Fatal("ssh ran without a published host key")
	}
}

// TestSSHAlias: the Host block that ssh-config prints reaches the
// Workstation through the plugin's proxy, checks the host key that
// known-hosts reads from status strictly, and logs in as the class's
// sshUser with the user's own key (no operator key); paths with a space and
// a % are quoted.
func TestSSHAlias(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(t.TempDir(), "my keys")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	bin, kubeconfig := buildPlugin(t, dir)
	// The class's user is the one the test sshd lets in.
	f.setStatus(f.srv.HostKey, func(st *v1alpha1.WorkstationStatus) {
		st.Class = &v1alpha1.ResolvedClass{Name: "standard", SSHUser: f.srv.User}
	})
	kubectl := linkKubectl(t, dir, bin)
	cmd := exec.Command(bin, "ssh-config", "--kubeconfig", kubeconfig, "-n", f.ns, "--kubectl", kubectl)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ssh-config: %v", err)
	}
	config := filepath.Join(dir, "config")
	if err := os.WriteFile(config, out, 0o600); err != nil {
		t.Fatal(err)
	}
	host := "dev." + f.ns + ".xdrive"
	parsed, err := exec.Command("ssh", "-G", "-F", config, host).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh -G: %v\n%s\nconfig:\n%s", err, parsed, out)
	}
	for _, want := range []string{"user " + f.srv.User, "hostkeyalias " + host, "stricthostkeychecking true",
		"userknownhostsfile /dev/null", "globalknownhostsfile /dev/null", "checkhostip no",
		"proxycommand \"" + kubectl + "\" xdrive --kubeconfig \"" + kubeconfig + "\" --context envtest proxy %h %p",
		"knownhostscommand \"" + kubectl + "\" xdrive --kubeconfig \"" + kubeconfig + "\" --context envtest known-hosts %H"} {
		if !strings.Contains(string(parsed), want+"\n") {
			t.Errorf("ssh -G lacks %q:\n%s\nconfig:\n%s", want, parsed, out)
		}
	}
	userKey := filepath.Join(dir, "id_user")
	if err := os.WriteFile(userKey, f.clientKey, 0o600); err != nil {
		t.Fatal(err)
	}
	ssh := exec.Command("ssh", "-F", config, "-i", userKey, "-o", "BatchMode=yes", host, "uptime")
	ssh.Env = append(os.Environ(), plugin.AddressMapEnv+"="+instanceIP+"="+f.srv.Addr)
	got, err := ssh.CombinedOutput()
	if err != nil || strings.TrimSpace(string(got)) != "ran: uptime" {
		t.Fatalf("ssh through the alias: %v\n%s", err, got)
	}

	// Another launch's key in status: the alias refuses the server.
	_, otherKey, err := sshx.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	f.setStatus(otherKey)
	got, err = ssh2(ssh).CombinedOutput()
	if err == nil || !strings.Contains(string(got), "Host key verification failed") {
		t.Fatalf("ssh through the alias with another pinned key: %v\n%s; want a refusal", err, got)
	}
}

// ssh2 is a fresh copy of a command, to run it again.
func ssh2(c *exec.Cmd) *exec.Cmd {
	n := exec.Command(c.Path, c.Args[1:]...)
	n.Env = c.Env
	return n
}

// linkKubectl puts envtest's kubectl beside the plugin, so that kubectl finds the plugin on PATH; it returns kubectl's path.
func linkKubectl(t *testing.T, dir, plugin string) string {
	t.Helper()
	kubectl := filepath.Join(filepath.Dir(plugin), "kubectl")
	if err := os.Symlink(testenv.KubectlPath(t), kubectl); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", filepath.Dir(plugin)+":"+os.Getenv("PATH"))
	return kubectl
}

func TestPortForward(t *testing.T) {
	f := newFixture(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "jupyter here") }),
		ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	_, remote, _ := net.SplitHostPort(l.Addr().String())
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, local, _ := net.SplitHostPort(free.Addr().String())
	_ = free.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		o := f.opts
		o.Stdout, o.Stderr = io.Discard, io.Discard
		done <- plugin.Run(ctx, o, []string{"port-forward", "dev", remote + ":" + local, "--operator-key"})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("port-forward ended: %v", err)
		}
	}()
	var body string
	for i := 0; i < 100 && body == ""; i++ {
		resp, err := http.Get("http://127.0.0.1:" + local + "/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			body = string(b)
			break
		}
		select {
		case err := <-done:
			t.Fatalf("port-forward ended: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if body != "jupyter here" {
		t.Fatalf("through the forward: %q", body)
	}
}

func TestStartStopStatus(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	f.opts.Now = func() time.Time { return now }
	get := func() *v1alpha1.Workstation {
		ws := &v1alpha1.Workstation{}
		if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "dev"}, ws); err != nil {
			t.Fatal(err)
		}
		return ws
	}
	if _, _, err := f.run("start", "dev"); err != nil {
		t.Fatal(err)
	}
	ws := get()
	if ws.Spec.State != v1alpha1.WorkstationStateRunning || ws.Annotations[v1alpha1.ResumeAnnotation] != "2026-01-02T12:00:00Z" {
		t.Errorf("after start: state %s, annotations %v", ws.Spec.State, ws.Annotations)
	}
	if _, _, err := f.run("stop", "dev"); err != nil {
		t.Fatal(err)
	}
	if ws := get(); ws.Spec.State != v1alpha1.WorkstationStateStopped {
		t.Errorf("after stop: state %s", ws.Spec.State)
	}

	xd := &v1alpha1.XDrive{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "home"}, Spec: v1alpha1.XDriveSpec{SizeGiB: 100}}
	if err := f.c.Create(context.Background(), xd); err != nil {
		t.Fatal(err)
	}
	snapped := metav1.NewTime(now.Add(-3 * time.Hour))
	xd.Status = v1alpha1.XDriveStatus{Phase: v1alpha1.XDrivePhaseAttached, VolumeID: "vol-0a1b2c3d4e5f60718",
		LatestSnapshotID: "snap-0123456789abcdef0", LatestSnapshotTime: &snapped,
		Cost: &v1alpha1.DriveCost{VolumeUSD: "0.5", SnapshotUSD: "0.1", AsOf: metav1.NewTime(now.Add(-10 * time.Hour)), SnapshotUSDPerHour: "0.015"}}
	if err := f.c.Status().Update(context.Background(), xd); err != nil {
		t.Fatal(err)
	}
	// Two launches ended before this one, which the ledger counts from its launch.
	f.setStatus(f.srv.HostKey, func(st *v1alpha1.WorkstationStatus) {
		st.Cost = &v1alpha1.WorkstationCost{InstanceUSD: "1.25", Launches: 2, LastCountedInstanceID: "i-0fedcba9876543210",
			Open: &v1alpha1.OpenLaunchCost{InstanceID: st.InstanceID, Since: *st.LaunchTime, PricePerHour: st.PricePerHour}}
		stop, month := metav1.NewTime(now.Add(2*time.Hour)), metav1.NewTime(time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC))
		st.Schedule = &v1alpha1.ScheduleStatus{Window: v1alpha1.ScheduleWindowOpen, NextStop: &stop}
		st.Budget = &v1alpha1.BudgetState{Month: month, WarningTime: &month, Scope: v1alpha1.BudgetScopeNamespace, LimitUSD: "10", SpentUSD: "8.5"}
	})
	out, _, err := f.run("status", "dev")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Cost:", "$2.04 in all: instances $1.29 over 3 launches, drive storage about $0.75 (volume $0.50, snapshots $0.25, estimated)",
		"Phase:", "Running", "i-0123456789abcdef0 t3.large Spot in us-east-1a, launched 120m ago",
		"home: Attached, 100 GiB, volume vol-0a1b2c3d4e5f60718", "snap-0123456789abcdef0, 3h old",
		"$0.0208/h (spot price at launch)", "$0.0416 so far", "Idle:", "20m since the last activity (ssh)", "jupyter http://" + instanceIP + ":8888",
		"PreStop:", "train TimedOut in 30s, at the stop of i-0fedcba9876543210 3h ago",
		"Schedule:", "open until " + now.Add(2*time.Hour).Format(time.RFC3339) + " (in 120m)",
		"Budget:", "warned: $8.50 of $10.00 (namespace)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	// A closed window says when the next start is, and when the launch for it comes.
	f.setStatus(f.srv.HostKey, func(st *v1alpha1.WorkstationStatus) {
		start, launch := metav1.NewTime(now.Add(10*time.Hour)), metav1.NewTime(now.Add(10*time.Hour-400*time.Second))
		st.Schedule = &v1alpha1.ScheduleStatus{Window: v1alpha1.ScheduleWindowClosed, NextStart: &start, LaunchAt: &launch, LeadSeconds: 400,
			Basis: "measured: 5m to Ready"}
	})
	if out, _, err = f.run("status", "dev"); err != nil {
		t.Fatal(err)
	}
	if want := "closed; next start " + now.Add(10*time.Hour).Format(time.RFC3339) + " (in 10h), launching 400s ahead, at " +
		now.Add(10*time.Hour-400*time.Second).Format(time.RFC3339) + " (in 9h) (measured: 5m to Ready)"; !strings.Contains(out, want) {
		t.Errorf("status lacks %q:\n%s", want, out)
	}
}

// TestKubectlRunsPlugin: a real kubectl finds the plugin on PATH and runs
// it as `kubectl xdrive`, with kubectl's flags before or after the
// subcommand; help exits 0 and describes each flag; completion is there.
// Session files go to a $TMPDIR whose path holds a space and a %.
func TestKubectlRunsPlugin(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	bin, kubeconfig := buildPlugin(t, dir)
	kubectl := linkKubectl(t, dir, bin)
	tmp := spacedDir(t)
	run := func(args ...string) (string, error) {
		cmd := exec.Command(kubectl, args...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "HOME="+dir, "TMPDIR="+tmp,
			plugin.AddressMapEnv+"="+instanceIP+"="+f.srv.Addr)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("xdrive", "ssh", "dev", "--operator-key", "-n", f.ns, "--", "id"); err != nil || strings.TrimSpace(out) != "ran: id" {
		t.Fatalf("kubectl xdrive ssh dev --operator-key -n NS -- id: %v\n%s", err, out)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("left in $TMPDIR: %v", left)
	}
	if out, err := run("xdrive", "--namespace", f.ns, "--context", "envtest", "list"); err != nil ||
		!regexp.MustCompile(`(?m)^dev +Running +t3\.large +\$0\.0208 `).MatchString(out) {
		t.Errorf("kubectl xdrive list: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"xdrive", "--help"}, {"xdrive", "ssh", "--help"}, {"xdrive", "help", "ssh"}} {
		out, err := run(args...)
		if err != nil || !strings.Contains(out, "--operator-key") && args[1] != "--help" || !strings.Contains(out, "kubectl xdrive") {
			t.Errorf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if out, _ := run("xdrive", "ssh", "--help"); !strings.Contains(out, "log in as root with the operator's key") {
		t.Errorf("ssh --help does not describe --operator-key:\n%s", out)
	}
	if out, err := run("xdrive", "options"); err != nil || !strings.Contains(out, "-n, --namespace string") || !strings.Contains(out, "--context string") {
		t.Errorf("kubectl xdrive options: %v\n%s", err, out)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		if out, err := run("xdrive", "completion", shell); err != nil || !strings.Contains(out, "kubectl-xdrive") {
			t.Errorf("kubectl xdrive completion %s: %v\n%.300s", shell, err, out)
		}
	}
	// Completion of Workstation names, as the shell scripts (and kubectl's, through kubectl_complete-xdrive) ask for it.
	complete := exec.Command(bin, "__complete", "-n", f.ns, "ssh", "")
	complete.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	if out, err := complete.CombinedOutput(); err != nil || !strings.Contains(string(out), "dev\tRunning") {
		t.Errorf("completing a Workstation name: %v\n%s", err, out)
	}
	if out, err := run("xdrive", "-n", f.ns, "ssh", "nosuch"); err == nil || !strings.Contains(out, "not found") {
		t.Errorf("ssh to a missing Workstation: %v\n%s", err, out)
	}
	if out, err := run("xdrive", "nosuch"); err == nil || !strings.Contains(out, `unknown command "nosuch"`) {
		t.Errorf("an unknown command: %v\n%s", err, out)
	}
}

// TestSSHUser: ssh logs in as the class's sshUser with the user's keys;
// --user overrides it; --operator-key logs in as status.ssh.user with the operator's key.
func TestSSHUser(t *testing.T) {
	f := newFixture(t)
	fake := filepath.Join(t.TempDir(), "ssh")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho \"$@\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	f.opts.SSH = fake
	login := func(args ...string) string {
		t.Helper()
		out, stderr, err := f.run(append([]string{"ssh", "dev"}, args...)...)
		if err != nil {
			t.Fatalf("ssh %v: %v\n%s", args, err, stderr)
		}
		fields := strings.Fields(out)
		for i, a := range fields {
			if a == "-l" && i+1 < len(fields) {
				if strings.Contains(out, "IdentityFile=") != slices.Contains(args, "--operator-key") {
					t.Errorf("ssh %v: the operator's key is used only with --operator-key: %s", args, out)
				}
				return fields[i+1]
			}
		}
		t.Fatalf("ssh %v ran without -l: %s", args, out)
		return ""
	}
	if got := login(); got != v1alpha1.DefaultSSHUser {
		t.Errorf("with no class's sshUser known, ssh logs in as %s, want %s", got, v1alpha1.DefaultSSHUser)
	}
	f.setStatus(f.srv.HostKey, func(st *v1alpha1.WorkstationStatus) {
		st.Class = &v1alpha1.ResolvedClass{Name: "ubuntu-class", SSHUser: "ubuntu"}
	})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "ubuntu"},
		{[]string{"--user", "alice"}, "alice"},
		{[]string{"-l", "alice"}, "alice"},
		{[]string{"--operator-key"}, f.srv.User},
		{[]string{"--operator-key", "--user", "alice"}, "alice"},
	} {
		if got := login(tc.args...); got != tc.want {
			t.Errorf("ssh %v logs in as %s, want %s", tc.args, got, tc.want)
		}
	}
}

// TestOperatorKeyRemovedOnSignal: a hang-up or a kill of `kubectl xdrive ssh
// --operator-key` ends ssh and removes the key (root on the instance) from $TMPDIR.
func TestOperatorKeyRemovedOnSignal(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	bin, kubeconfig := buildPlugin(t, dir)
	// An ssh that holds the session open until it is told to end.
	fakeBin := filepath.Join(dir, "bin")
	if err := os.Mkdir(fakeBin, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fakeBin, "ssh"), []byte("#!/bin/sh\necho $$ > \"$FAKE_SSH_PID\"\nexec sleep 600\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			tmp := spacedDir(t)
			pidFile := filepath.Join(t.TempDir(), "ssh.pid")
			t.Cleanup(func() { // an ssh the plugin left behind
				if pid, err := os.ReadFile(pidFile); err == nil {
					_ = exec.Command("kill", strings.TrimSpace(string(pid))).Run()
				}
			})
			cmd := exec.Command(bin, "--kubeconfig", kubeconfig, "-n", f.ns, "ssh", "dev", "--operator-key")
			cmd.Env = append(os.Environ(), "PATH="+fakeBin+":"+os.Getenv("PATH"), "TMPDIR="+tmp, "FAKE_SSH_PID="+pidFile,
				plugin.AddressMapEnv+"="+instanceIP+"="+f.srv.Addr)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			cmd.WaitDelay = 5 * time.Second // a left-behind ssh holds the output open
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			for keys := []string(nil); len(keys) == 0; keys, _ = filepath.Glob(filepath.Join(tmp, "kubectl-xdrive-*", "id")) {
				select {
				case err := <-done:
					t.Fatalf("exited before its session started: %v\n%s", err, out.String())
				case <-time.After(20 * time.Millisecond):
				}
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				t.Logf("after %s: %v", sig, err) // a signalled exit is expected
			case <-time.After(time.Minute):
				_ = cmd.Process.Kill()
				t.Fatalf("still running a minute after %s", sig)
			}
			if left, _ := os.ReadDir(tmp); len(left) > 0 {
				t.Errorf("after %s, left in $TMPDIR: %v\n%s", sig, left, out.String())
			}
		})
	}
}

// buildPlugin builds cmd/kubectl-xdrive into dir, and a kubeconfig for the shared API server beside it.
func buildPlugin(t *testing.T, dir string) (bin, kubeconfig string) {
	t.Helper()
	bin = filepath.Join(dir, "kubectl-xdrive")
	build := exec.Command("go", "build", "-o", bin, "./cmd/kubectl-xdrive")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/kubectl-xdrive: %v\n%s", err, out)
	}
	kubeconfig = filepath.Join(dir, "kubeconfig")
	writeKubeconfig(t, kubeconfig)
	return bin, kubeconfig
}

// spacedDir is an empty directory whose path holds a space and a %.
func spacedDir(t *testing.T) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "tmp dir 100%")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

// writeKubeconfig writes the shared API server's admin config as a kubeconfig file.
func writeKubeconfig(t *testing.T, path string) {
	cfg := env.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
}

// fakeSSH makes the fixture run a script that prints its arguments instead of ssh.
func (f *fixture) fakeSSH() {
	f.t.Helper()
	fake := filepath.Join(f.t.TempDir(), "ssh")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho \"$@\"\n"), 0o700); err != nil {
		f.t.Fatal(err)
	}
	f.opts.SSH = fake
}

// TestLogs: logs runs journalctl for the boot's and xdrive's units over the
// pinned ssh, with sudo for a user other than root.
func TestLogs(t *testing.T) {
	f := newFixture(t)
	f.fakeSSH()
	out, stderr, err := f.run("logs", "dev", "-f", "--tail", "20")
	if err != nil {
		t.Fatalf("logs: %v\n%s", err, stderr)
	}
	for _, want := range []string{"StrictHostKeyChecking=yes", "-l " + v1alpha1.DefaultSSHUser,
		"sudo -n journalctl --boot --no-pager --output=short-iso --unit=cloud-final.service --unit=xdrive-bootstrap.service " +
			"--unit=xdrive-watch.service --unit=docker.service --follow --lines=20"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs ran ssh without %q: %s", want, out)
		}
	}
	out, _, err = f.run("logs", "dev", "--operator-key")
	if err != nil || strings.Contains(out, "sudo") || !strings.Contains(out, " journalctl --boot") {
		t.Errorf("logs --operator-key (root): %v: %s", err, out)
	}
}

// TestOpen: open forwards the port a container declares, by name, number or
// the first, and prints its local URL.
func TestOpen(t *testing.T) {
	f := newFixture(t)
	f.fakeSSH()
	ws := &v1alpha1.Workstation{}
	if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "dev"}, ws); err != nil {
		t.Fatal(err)
	}
	ws.Spec.Containers = []v1alpha1.Container{
		{Name: "dns", Image: "busybox", Ports: []v1alpha1.ContainerPort{{ContainerPort: 53, Protocol: "udp"}}},
		{Name: "jupyter", Image: "jupyter", Ports: []v1alpha1.ContainerPort{{ContainerPort: 8888, HostPort: 18888}}},
		{Name: "web", Image: "nginx", Ports: []v1alpha1.ContainerPort{{ContainerPort: 80, HostPort: 8080}}},
	}
	if err := f.c.Update(context.Background(), ws); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ arg, port string }{{"", "18888"}, {"jupyter", "18888"}, {"web", "8080"}, {"80", "8080"}, {"8080", "8080"}} {
		args := []string{"open", "dev", "--local-port", "40000"}
		if tc.arg != "" {
			args = append(args, tc.arg)
		}
		out, stderr, err := f.run(args...)
		if err != nil || !strings.Contains(out, "http://127.0.0.1:40000/\n") || !strings.Contains(out, "-L 127.0.0.1:40000:127.0.0.1:"+tc.port+" ") {
			t.Errorf("open dev %s: %v\n%s%s", tc.arg, err, out, stderr)
		}
	}
	if _, _, err := f.run("open", "dev", "dns"); err == nil || !strings.Contains(err.Error(), "jupyter:18888, web:8080") {
		t.Errorf("open of a UDP port: %v; want a refusal naming the declared ports", err)
	}
}

// TestList: list shows each Workstation's phase, type, price, its cost over
// its life (here the current launch's only) and the idle time, as kubectl renders ages.
func TestList(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	f.opts.Now = func() time.Time { return now }
	other := &v1alpha1.Workstation{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "stopped"},
		Spec: v1alpha1.WorkstationSpec{DriveRef: v1alpha1.DriveReference{Name: "other"}, InstanceTypes: []string{"t3.large"},
			State: v1alpha1.WorkstationStateStopped},
	}
	if err := f.c.Create(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	out, _, err := f.run("list")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "NAME PHASE TYPE $/H COST IDLE AGE" ||
		!strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), "dev Running t3.large $0.0208 $0.04 20m ") ||
		!strings.HasPrefix(strings.Join(strings.Fields(lines[2]), " "), "stopped - - - $0.00 - ") {
		t.Errorf("list:\n%s", out)
	}
}

// TestStatusWatch: status --watch prints the status again when it changes, until interrupted.
func TestStatusWatch(t *testing.T) {
	f := newFixture(t)
	f.opts.Poll = 20 * time.Millisecond
	var out syncBuffer
	o := f.opts
	o.Stdout, o.Stderr = &out, io.Discard
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- plugin.Run(ctx, o, []string{"status", "dev", "--watch"}) }()
	waitOutput := func(want string) {
		t.Helper()
		for i := 0; i < 500 && !strings.Contains(out.String(), want); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if !strings.Contains(out.String(), want) {
			cancel()
			t.Fatalf("status --watch never printed %q:\n%s", want, out.String())
		}
	}
	waitOutput("Phase:")
	f.setStatus("", func(st *v1alpha1.WorkstationStatus) { st.Phase = v1alpha1.WorkstationPhaseReleasing })
	waitOutput("Releasing")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("status --watch ended with %v", err)
	}
	if n := strings.Count(out.String(), "Phase:"); n != 2 {
		t.Errorf("status --watch printed %d statuses for 2 states:\n%s", n, out.String())
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
