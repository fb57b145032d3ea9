package bootstrap

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/test/instancesim/shim"
	sshdtest "github.com/xdrive-io/xdrive/test/sshd"
)

// needTool returns the path of a test tool; without it the test fails on
// CI (CI=true) and is skipped elsewhere. With -short (make test-unit) the
// test is skipped.
func needTool(t *testing.T, path string, hint string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: no %s", path)
	}
	if p, err := exec.LookPath(path); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing; %s", path, hint)
	}
	t.Skipf("%s is missing; %s", path, hint)
	return ""
}

// unpack returns the files in a rendered user-data's archive.
func unpack(t *testing.T, userData []byte) map[string][]byte {
	t.Helper()
	files, err := Unpack(userData)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestRender(t *testing.T) {
	p := testParams(t)
	p.VolumeID = driveVolumeID
	p.GPU = true
	gz, err := Render(p)
	if err != nil {
		t.Fatal(err)
	}
	ud, err := Script(gz)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(ud, []byte("#!/bin/bash\n")) {
		t.Errorf("user-data starts with %q", ud[:20])
	}
	if !bytes.Contains(ud, []byte("team-a/dev-box")) {
		t.Error("user-data does not name the workstation")
	}
	path := filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(path, ud, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	again, err := Render(p)
	if err != nil || !bytes.Equal(gz, again) {
		t.Error("Render is not deterministic")
	}

	files := unpack(t, ud)
	for _, f := range installed {
		want, err := installedData(f.src)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(files[f.dst], want) {
			t.Errorf("%s is not %s", f.dst, f.src)
		}
		if strings.HasSuffix(f.src, ".sh") && bytes.Contains(want, []byte("\n#")) {
			t.Errorf("%s keeps comment lines", f.dst)
		}
	}
	wantConfig := "MOUNT_PATH=/v1\nFILESYSTEM=ext4\nDEVICE_NAME=" + DriveDevice + "\nVOLUME_ID=" + driveVolumeID + "\nDRIVE_SOURCE=blank\nPREWARM=false\nGPU=true\nWORKSTATION=team-a/dev-box\n"
	if got := string(files["etc/xdrive/config"]); got != wantConfig {
		t.Errorf("config = %q, want %q", got, wantConfig)
	}
	if got := string(files["etc/ssh/ssh_host_ed25519_key"]); got != p.HostKeyPEM {
		t.Errorf("host key = %q", got)
	}
	if got := string(files["etc/xdrive/containers.list"]); got != "web\n" {
		t.Errorf("containers.list = %q", got)
	}
}

// bigParams has the most containers the API allows, each with a fair amount
// of settings; compressible is false for random, incompressible env values.
func bigParams(t *testing.T, compressible bool) Params {
	p := testParams(t)
	p.Containers = nil
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range maxContainers {
		c := v1alpha1.Container{
			Name:    fmt.Sprintf("service-%02d", i),
			Image:   fmt.Sprintf("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/service-%02d:v1.2.%d", i, i),
			Command: []string{"/usr/local/bin/entrypoint.sh", "--config", "/etc/service/config.yaml"},
		}
		for j := range 12 {
			c.Args = append(c.Args, fmt.Sprintf("--option-%d=value-%d-%d", j, i, j))
		}
		for j := range 10 {
			value := fmt.Sprintf("https://service-%02d.internal.example.com:%d/path", i, 8000+j)
			if !compressible {
				b := make([]byte, 96)
				for k := range b {
					b[k] = byte(rng.UintN(256))
				}
				value = base64.StdEncoding.EncodeToString(b)
			}
			c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprintf("SETTING_%d", j), Value: value})
		}
		for j := range 3 {
			c.Ports = append(c.Ports, v1alpha1.ContainerPort{ContainerPort: int32(8000 + j), HostPort: int32(10000 + 10*i + j)})
		}
		// The longest preStop hook the API allows: maxHookExec items of maxHookItem characters.
		c.PreStop = &v1alpha1.PreStopHook{TimeoutSeconds: maxHookTimeout}
		for j := range maxHookExec {
			arg := fmt.Sprintf("--checkpoint-%d=/v1/checkpoints/service-%02d/step-", j, i)
			c.PreStop.Exec = append(c.PreStop.Exec, arg+strings.Repeat(strconv.Itoa(j), maxHookItem-len(arg)))
		}
		p.Containers = append(p.Containers, c)
	}
	return p
}

func TestRenderSize(t *testing.T) {
	ud, err := Render(bigParams(t, true))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("user-data for %d containers: %d bytes", maxContainers, len(ud))
	if len(ud) > MaxUserDataSize {
		t.Errorf("user-data is %d bytes", len(ud))
	}
	if _, err := Render(bigParams(t, false)); err == nil || !strings.Contains(err.Error(), "over EC2's limit") {
		t.Errorf("oversized user-data: err = %v", err)
	}
}

func TestRenderRejectsBadParams(t *testing.T) {
	hostKey, authKey := testKeys(t)
	container := func(mod func(*v1alpha1.Container)) func(*Params) {
		return func(p *Params) { mod(&p.Containers[0]) }
	}
	cases := []struct {
		name string
		mod  func(*Params)
		want string
	}{
		{"relative mount path", func(p *Params) { p.MountPath = "v1" }, "mountPath"},
		{"mount path with space", func(p *Params) { p.MountPath = "/my drive" }, "mountPath"},
		{"mount path dotdot", func(p *Params) { p.MountPath = "/v1/../etc" }, "mountPath"},
		{"mount path /etc", func(p *Params) { p.MountPath = "/etc" }, "system directory"},
		{"mount path under /usr", func(p *Params) { p.MountPath = "/usr/local" }, "system directory"},
		{"mount path /", func(p *Params) { p.MountPath = "/" }, "mountPath"},
		{"filesystem", func(p *Params) { p.Filesystem = "btrfs" }, "filesystem"},
		{"device name", func(p *Params) { p.DeviceName = "sdf" }, "deviceName"},
		{"volume ID", func(p *Params) { p.VolumeID = "vol-XYZ" }, "volumeID"},
		{"workstation key", func(p *Params) { p.WorkstationKey = "a/b\nc" }, "workstationKey"},
		{"prewarm of a blank drive", func(p *Params) { p.BlankDrive, p.Prewarm = true, true }, "prewarm"},
		{"no host key", func(p *Params) { p.HostKeyPEM = "" }, "hostKeyPEM"},
		{"RSA PEM host key", func(p *Params) {
			p.HostKeyPEM = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"
		}, "hostKeyPEM"},
		{"truncated host key", func(p *Params) {
			p.HostKeyPEM = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5v\n-----END OPENSSH PRIVATE KEY-----\n"
		}, "truncated"},
		{"no authorized key", func(p *Params) { p.AuthorizedKey = "" }, "authorizedKey"},
		{"two authorized keys", func(p *Params) { p.AuthorizedKey = authKey + "\n" + authKey }, "single line"},
		{"authorized key options", func(p *Params) { p.AuthorizedKey = `command="x" ` + authKey }, "authorizedKey"},
		{"authorized key type mismatch", func(p *Params) { p.AuthorizedKey = "ssh-rsa" + strings.TrimPrefix(authKey, "ssh-ed25519") }, "does not hold"},
		{"container name", container(func(c *v1alpha1.Container) { c.Name = "Web_1" }), "DNS label"},
		{"duplicate container", func(p *Params) { p.Containers = append(p.Containers, p.Containers[0]) }, "duplicate name"},
		{"image option", container(func(c *v1alpha1.Container) { c.Image = "--privileged" }), "image"},
		{"image with space", container(func(c *v1alpha1.Container) { c.Image = "nginx latest" }), "image"},
		{"gpus", container(func(c *v1alpha1.Container) { c.GPUs = "Some" }), "gpus"},
		{"empty command", container(func(c *v1alpha1.Container) { c.Command = []string{""} }), "command[0]"},
		{"NUL arg", container(func(c *v1alpha1.Container) { c.Args = []string{"a\x00b"} }), "NUL"},
		{"empty preStop", container(func(c *v1alpha1.Container) { c.PreStop = &v1alpha1.PreStopHook{} }), "preStop"},
		{"long preStop item", container(func(c *v1alpha1.Container) {
			c.PreStop = &v1alpha1.PreStopHook{Exec: []string{strings.Repeat("x", maxHookItem+1)}}
		}), "preStop"},
		{"preStop newline", container(func(c *v1alpha1.Container) { c.PreStop = &v1alpha1.PreStopHook{Exec: []string{"a\nb"}} }), "preStop"},
		{"preStop timeout", container(func(c *v1alpha1.Container) {
			c.PreStop = &v1alpha1.PreStopHook{Exec: []string{"true"}, TimeoutSeconds: maxHookTimeout + 1}
		}), "preStop"},
		{"env name", container(func(c *v1alpha1.Container) { c.Env = []corev1.EnvVar{{Name: "A=B"}} }), "env name"},
		{"env valueFrom", container(func(c *v1alpha1.Container) {
			c.Env = []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{}}}
		}), "literal"},
		{"port", container(func(c *v1alpha1.Container) { c.Ports = []v1alpha1.ContainerPort{{ContainerPort: 0}} }), "port"},
		{"protocol", container(func(c *v1alpha1.Container) {
			c.Ports = []v1alpha1.ContainerPort{{ContainerPort: 80, Protocol: "sctp"}}
		}), "protocol"},
		{"duplicate host port", func(p *Params) {
			p.Containers = append(p.Containers, v1alpha1.Container{
				Name: "other", Image: "nginx", Ports: []v1alpha1.ContainerPort{{ContainerPort: 8080}},
			})
		}, "also published by web"},
		{"too many args", container(func(c *v1alpha1.Container) { c.Args = make([]string, maxArgs+1) }), "at most"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := testParams(t)
			p.HostKeyPEM, p.AuthorizedKey = hostKey, authKey
			tc.mod(&p)
			_, err := Render(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	st, err := ParseStatus([]byte(`{"phase":"ready","volumeID":"vol-1","mounted":true,"containers":{"web":"running"},"released":false}` + "\n"))
	if err != nil || st.Phase != PhaseReady || !st.Mounted || st.Containers["web"] != "running" {
		t.Errorf("ParseStatus = %+v, %v", st, err)
	}
	for _, bad := range []string{"", "not json", `{"mounted":true}`} {
		if _, err := ParseStatus([]byte(bad)); err == nil {
			t.Errorf("ParseStatus(%q) accepted", bad)
		}
	}
}

// TestStatusEscapesMessage checks that status stays valid JSON whatever the message holds.
func TestStatusEscapesMessage(t *testing.T) {
	s := newSandbox(t, false)
	s.boot(testParams(t))
	msg := "bad \"thing\"\\ happened\tat\x01 end\nline 2"
	s.write(filepath.Join(s.root, "var/lib/xdrive/message"), msg, 0o644)
	if got, want := s.status().Message, "bad \"thing\"\\ happened\tat end"; got != want {
		t.Errorf("message = %q, want %q (first line, control characters dropped)", got, want)
	}
}

func TestShellcheck(t *testing.T) {
	shellcheck := needTool(t, "shellcheck", "install it with: apt-get install -y shellcheck")
	files, err := filepath.Glob("scripts/*.sh")
	if err != nil || len(files) < 4 {
		t.Fatalf("scripts: %v %v", files, err)
	}
	gz, err := Render(testParams(t))
	if err != nil {
		t.Fatal(err)
	}
	ud, err := Script(gz)
	if err != nil {
		t.Fatal(err)
	}
	rendered := filepath.Join(t.TempDir(), "user-data.sh")
	if err := os.WriteFile(rendered, ud, 0o644); err != nil {
		t.Fatal(err)
	}
	shimPath := filepath.Join(t.TempDir(), "shim.sh")
	if err := os.WriteFile(shimPath, shim.Script, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range files {
		files[i] = filepath.Base(files[i])
	}
	cmd := exec.Command(shellcheck, append([]string{"-x", "-s", "bash"}, append(files, shimPath, rendered)...)...)
	cmd.Dir = "scripts"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("shellcheck: %v\n%s", err, out)
	}
}

// TestSSHDAcceptsDropIn checks the sshd drop-in and the host key with the real sshd.
func TestSSHDAcceptsDropIn(t *testing.T) {
	sshd := needTool(t, "/usr/sbin/sshd", "install it with: apt-get install -y openssh-server")
	keygen := needTool(t, "ssh-keygen", "install it with: apt-get install -y openssh-client")
	if err := sshdtest.PrepareHost(); err != nil {
		t.Fatal(err)
	}
	p := testParams(t)
	ud, err := Render(p)
	if err != nil {
		t.Fatal(err)
	}
	files := unpack(t, ud)
	dir := t.TempDir()
	key := filepath.Join(dir, "host_key")
	if err := os.WriteFile(key, files["etc/ssh/ssh_host_ed25519_key"], 0o600); err != nil {
		t.Fatal(err)
	}
	pub, err := exec.Command(keygen, "-y", "-f", key).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -y: %v\n%s", err, pub)
	}
	if got, want := strings.Fields(string(pub))[1], strings.Fields(p.AuthorizedKey)[1]; got != want {
		t.Errorf("host key's public half %s, want %s", got, want)
	}
	conf := strings.ReplaceAll(string(files["etc/ssh/sshd_config.d/00-xdrive.conf"]), "/etc/ssh/ssh_host_ed25519_key", key)
	confPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(confPath, []byte(conf+"PidFile none\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sshd, "-t", "-f", confPath).CombinedOutput(); err != nil {
		t.Fatalf("sshd -t: %v\n%s", err, out)
	}
}
