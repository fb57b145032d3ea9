// Package quickstart_test runs the command blocks of the README's first
// Workstation and of docs/aws.md's "Try it", as a reader would: bash runs
// each block, with a real kubectl and kubectl-xdrive on the PATH, against a
// kube-apiserver (envtest), the operator in-process on moto, and simulated
// instances behind real sshds. A block is one a reader runs when a comment
//
//	<!-- quickstart: NAME -->
//
// stands right above its ```sh fence. The docs cannot drift from the code:
// a block that fails fails the test. The objects of the README's "What you
// write" go through the API server too (TestWhatYouWriteValid).
package quickstart_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/operator"
	"github.com/xdrive-io/xdrive/internal/plugin"
	testenv "github.com/xdrive-io/xdrive/test/envtest"
	"github.com/xdrive-io/xdrive/test/harness"
	"github.com/xdrive-io/xdrive/test/instancesim"
	"github.com/xdrive-io/xdrive/test/moto"
	"github.com/xdrive-io/xdrive/test/sshd"
)

// operatorCIDR is what the docs install the operator with (operatorCIDRs).
const operatorCIDR = "198.51.100.7/32"

// Block is one command block of a page.
type Block struct {
	Name, Script string
	// Line is where its fence opens.
	Line int
}

// marker finds a block: the comment, then the fence, both indented alike
// (inside a list item).
var marker = regexp.MustCompile("(?m)^( *)<!-- quickstart: ([a-z0-9-]+) -->\n( *)```(?:sh|bash)\n((?s:.*?))\n *```$")

// Blocks are the quickstart blocks of a Markdown page, in order, each
// without the indentation of its fence.
func Blocks(page string) []Block {
	var out []Block
	for _, m := range marker.FindAllStringSubmatchIndex(page, -1) {
		indent := page[m[6]:m[7]]
		lines := strings.Split(page[m[8]:m[9]], "\n")
		for i, l := range lines {
			lines[i] = strings.TrimPrefix(l, indent)
		}
		out = append(out, Block{Name: page[m[4]:m[5]], Script: strings.Join(lines, "\n"), Line: strings.Count(page[:m[0]], "\n") + 2})
	}
	return out
}

// want are the blocks each page must have, in this order: the path
// from nothing to a Workstation one stops and starts again.
var want = []string{"class", "drive", "workstation", "ssh", "stop", "start", "delete"}

func TestBlocks(t *testing.T) {
	for _, page := range []string{"README.md", "docs/aws.md"} {
		raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), page))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, b := range Blocks(string(raw)) {
			names = append(names, b.Name)
		}
		if !slices.Equal(names, want) {
			t.Errorf("%s has the quickstart blocks %q, want %q", page, names, want)
		}
	}
}

func TestReadmeQuickstart(t *testing.T) { runPage(t, "README.md") }

func TestAWSQuickstart(t *testing.T) { runPage(t, "docs/aws.md") }

// runPage runs the page's blocks in order against a fresh control plane,
// moto account and operator.
func runPage(t *testing.T, page string) {
	if testing.Short() {
		t.Skip("starts a control plane, moto and sshds")
	}
	kubectl := testenv.KubectlPath(t)
	require(t, os.Getenv("KUBEBUILDER_ASSETS") != "", "KUBEBUILDER_ASSETS is unset")
	_, err := exec.LookPath("moto_server")
	require(t, err == nil, "moto_server is not on PATH")
	_, err = os.Stat(sshd.Binary)
	require(t, err == nil, sshd.Binary+" is missing (make test-deps)")
	require(t, os.Geteuid() == 0, "simulated instances log in as root: run as root")
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), page))
	if err != nil {
		t.Fatal(err)
	}
	blocks := Blocks(string(raw))
	if len(blocks) == 0 {
		t.Fatalf("%s has no quickstart blocks", page)
	}

	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "kubectl-xdrive"), "./cmd/kubectl-xdrive")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building kubectl-xdrive: %v\n%s", err, out)
	}
	if err := os.Symlink(kubectl, filepath.Join(bin, "kubectl")); err != nil {
		t.Fatal(err)
	}

	srv, err := moto.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	ctrl.SetLogger(logr.Discard())
	env := testenv.StartEnv(t)
	ns := testenv.CreateNamespace(t, env.Client)
	st, err := harness.NewStack(harness.StackConfig{
		Env: env, Namespace: ns, MotoURL: srv.URL,
		Options:   operator.Options{OperatorCIDRs: []string{operatorCIDR}},
		Instances: &instancesim.Options{Dir: t.TempDir()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	kubeconfig := filepath.Join(home, "kubeconfig")
	if err := testenv.WriteKubeconfig(env.Config, ns, kubeconfig); err != nil {
		t.Fatal(err)
	}

	for _, b := range blocks {
		addrs, err := addressMap(st)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", b.Script)
		cmd.Dir = home
		cmd.Env = []string{
			"PATH=" + bin + ":" + os.Getenv("PATH"), "HOME=" + home, "KUBECONFIG=" + kubeconfig, "LANG=C", "TMPDIR=" + home,
			// moto's instance IPs are never dialled: ssh goes to each instance's loopback sshd.
			plugin.AddressMapEnv + "=" + addrs,
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err = cmd.Run()
		cancel()
		t.Logf("%s:%d, block %q (%s):\n%s", page, b.Line, b.Name, time.Since(start).Round(time.Second), out.String())
		if err != nil {
			t.Fatalf("%s:%d: block %q failed: %v\n%s", page, b.Line, b.Name, err, diagnose(st))
		}
		if err := check(st, b.Name, out.String()); err != nil {
			t.Fatalf("%s:%d: after block %q: %v\n%s", page, b.Line, b.Name, err, diagnose(st))
		}
	}
}

// check reads, after a block, what the reader was told they would see.
func check(st *harness.Stack, name, out string) error {
	ctx := context.Background()
	switch name {
	case "workstation", "start":
		ws, err := st.Workstation(ctx, "dev")
		if err != nil {
			return err
		}
		if ready, _ := v1alpha1.ReadyReason(ws.Status.Conditions); ready != "True" || ws.Status.SecurityGroup == nil {
			return fmt.Errorf("the Workstation is not Ready with its own security group: %+v", ws.Status)
		}
		cidrs, err := groupCIDRs(ctx, st, ws.Status.SecurityGroup.ID)
		if err != nil {
			return err
		}
		if !slices.Contains(cidrs, operatorCIDR) {
			return fmt.Errorf("security group %s does not admit the operator's %s", ws.Status.SecurityGroup.ID, operatorCIDR)
		}
	case "ssh":
		if !strings.Contains(out, "vol-") {
			return fmt.Errorf("xdrive-ctl status over ssh did not name the drive's volume: %q", out)
		}
	case "stop":
		xd, err := st.Drive(ctx, "home")
		if err != nil {
			return err
		}
		if xd.Status.Phase != v1alpha1.XDrivePhaseArchived {
			return fmt.Errorf("the drive is %s, want Archived", xd.Status.Phase)
		}
	case "delete":
		var list v1alpha1.XDriveList
		if err := st.Client.List(ctx, &list, client.InNamespace(st.Namespace)); err != nil {
			return err
		}
		if len(list.Items) != 0 {
			return fmt.Errorf("%d XDrives left", len(list.Items))
		}
	}
	return nil
}

// groupCIDRs are the networks a security group admits, as EC2 (moto) holds them.
func groupCIDRs(ctx context.Context, st *harness.Stack, id string) ([]string, error) {
	out, err := st.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}})
	if err != nil || len(out.SecurityGroups) != 1 {
		return nil, fmt.Errorf("describing security group %s: %w", id, err)
	}
	var cidrs []string
	for _, p := range out.SecurityGroups[0].IpPermissions {
		for _, r := range p.IpRanges {
			cidrs = append(cidrs, aws.ToString(r.CidrIp))
		}
	}
	return cidrs, nil
}

// addressMap maps the address of each Workstation's instance to its loopback sshd.
func addressMap(st *harness.Stack) (string, error) {
	ctx := context.Background()
	var list v1alpha1.WorkstationList
	if err := st.Client.List(ctx, &list, client.InNamespace(st.Namespace)); err != nil {
		return "", err
	}
	var pairs []string
	for _, ws := range list.Items {
		for _, ip := range []string{ws.Status.PublicIP, ws.Status.PrivateIP} {
			if ip == "" {
				continue
			}
			to, err := st.Sim.Resolve(ctx, ip)
			if err != nil {
				continue // an address of an instance no longer simulated
			}
			pairs = append(pairs, ip+"="+to)
		}
	}
	return strings.Join(pairs, ","), nil
}

// diagnose is what the operator last reported, for a failed block.
func diagnose(st *harness.Stack) string {
	ctx := context.Background()
	var b strings.Builder
	var wss v1alpha1.WorkstationList
	_ = st.Client.List(ctx, &wss, client.InNamespace(st.Namespace))
	for _, ws := range wss.Items {
		fmt.Fprintf(&b, "Workstation %s: phase %s\n", ws.Name, ws.Status.Phase)
		for _, c := range ws.Status.Conditions {
			fmt.Fprintf(&b, "  %s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	var xds v1alpha1.XDriveList
	_ = st.Client.List(ctx, &xds, client.InNamespace(st.Namespace))
	for _, xd := range xds.Items {
		fmt.Fprintf(&b, "XDrive %s: phase %s\n", xd.Name, xd.Status.Phase)
		for _, c := range xd.Status.Conditions {
			fmt.Fprintf(&b, "  %s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	return b.String()
}

// require skips the test when cond is false, or fails it when CI=true.
func require(t *testing.T, cond bool, msg string) {
	t.Helper()
	if cond {
		return
	}
	if testenv.InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
