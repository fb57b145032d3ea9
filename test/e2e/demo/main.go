// Command xdrive-demo runs the whole xdrive lifecycle on this machine, with
// no AWS account and no cluster: a real kube-apiserver and etcd (envtest),
// moto for AWS behind the fault proxy, the operator in-process
// (test/harness.Stack), and for each EC2 instance a simulation that runs the
// real bootstrap scripts in a sandbox directory behind a real sshd on
// 127.0.0.1 (test/instancesim). Run it with `make demo` (or hack/demo.sh),
// which puts it in a loopback-only network namespace; demo_test.go runs it
// as a test.
//
// The last line is machine-checkable:
//
//	demo: OK snapshots=6 instances=5 leftover_volumes=0 leftover_instances=0 ...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/test/sshd"
)

func main() {
	nonInteractive := flag.Bool("non-interactive", false, "plain output: no screen clearing, no colours, no redrawing (for CI)")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up (and clean up) after this long")
	keep := flag.Bool("keep", false, "keep the work directory (instance sandboxes, logs) after a successful run")
	instances := flag.String("instances", "sim", "what plays the EC2 instances: sim (test/instancesim: the real scripts in sandboxes, shims for the system) or vm (test/instancevm: a real Linux VM under QEMU per instance; make demo-real)")
	flag.Parse()
	if *instances != "sim" && *instances != "vm" {
		fmt.Fprintf(os.Stderr, "--instances=%s: want sim or vm\n", *instances)
		os.Exit(2)
	}
	os.Exit(run(*nonInteractive, *timeout, *keep, *instances == "vm"))
}

func run(nonInteractive bool, timeout time.Duration, keep, vm bool) int {
	out := &printer{w: os.Stdout, start: time.Now(), interactive: !nonInteractive && isTerminal(os.Stdout)}
	if out.interactive {
		out.width = terminalWidth(os.Stdout)
	}
	if out.interactive {
		out.Raw("\033[H\033[2J")
	}
	intro(out, vm)
	s := &setup{out: out, vm: vm}
	err := preflight()
	if err == nil && vm {
		err = s.loadImage()
	}
	if err != nil {
		out.Fail("%v", err)
		out.Raw("demo: FAIL %v\n", err)
		return 1
	}

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var interrupted atomic.Bool
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-sigs
		first := time.Now()
		interrupted.Store(true)
		out.Alert("%s: cleaning up (once more to kill everything at once)", sig)
		cancel()
		for range sigs {
			// A Ctrl-C reaches the demo twice: from the terminal and from hack/demo.sh.
			if time.Since(first) > time.Second {
				break
			}
		}
		s.kill()
		out.Raw("demo: INTERRUPTED (killed)\n")
		os.Exit(130)
	}()

	var res result
	err = s.start(ctx, 2*time.Second)
	var v *view
	if err == nil {
		v = &view{c: s.env.Client, ns: namespace, out: out}
		vctx, vcancel := context.WithCancel(ctx)
		vdone := make(chan struct{})
		started := false
		sc := &scenario{s: s, st: s.st, inst: s.inst, vm: vm, out: out, c: s.env.Client, startView: func() {
			started = true
			go func() { defer close(vdone); v.Run(vctx) }()
		}}
		res, err = sc.run(ctx)
		vcancel()
		if started {
			<-vdone
		}
		if err != nil && !interrupted.Load() {
			diagnose(out, s, v)
		}
	}
	if err != nil && !interrupted.Load() {
		out.Fail("%v", err)
	}
	out.Progress("cleaning up: operator, instances, moto, kube-apiserver and etcd")
	s.stop()
	workDir := s.workDir
	switch {
	case interrupted.Load():
		if workDir != "" {
			_ = os.RemoveAll(workDir)
		}
		out.Raw("demo: INTERRUPTED\n")
		return 130
	case err != nil || !res.ok():
		if workDir != "" {
			out.Note("kept the work directory for a look: %s (operator.log, instances/*/log)", workDir)
		}
		if err != nil {
			out.Raw("demo: FAIL %s\n", oneLine(err.Error()))
			return 1
		}
		out.Raw("%s\n", res.line())
		return 1
	}
	if keep {
		out.Note("work directory: %s", workDir)
	} else if workDir != "" {
		_ = os.RemoveAll(workDir)
	}
	out.Raw("%s\n", out.c(bold+green, res.line()))
	return 0
}

func intro(out *printer, vm bool) {
	if vm {
		introVM(out)
		return
	}
	out.Raw("%s\n", out.c(bold, "xdrive demo: a Workstation on spot instances with a persistent XDrive, on this machine only"))
	out.Raw(`
  Real:       the xdrive operator (both controllers, the SSH agent with pinned host keys, the
              interruption receiver), a kube-apiserver + etcd (envtest), the instance bootstrap
              (the user-data the operator rendered, xdrive-bootstrap, xdrive-ctl, xdrive-watch)
              and one OpenSSH sshd per instance.
  Simulated:  AWS is moto (EC2, SSM, SQS, EventBridge) behind a fault proxy that sets spot prices
              and counts calls. An instance is a sandbox directory (XDRIVE_ROOT) with fake NVMe
              disks and shims for docker, systemctl, mkfs, mount and friends; its sshd listens on
              127.0.0.1 and its IMDS is a loopback server. moto stores no data, so the demo keeps
              each EBS volume as a directory and copies it along moto's snapshot lineage.
              No VM boots, nothing reaches the internet, and moto's 10.x/54.x instance IPs are never
              dialled: operator.Options.SSHResolver maps them to the loopback sshd.
`)
	out.Raw("  Network:    %s\n\n", networkNote())
}

func introVM(out *printer) {
	out.Raw("%s\n", out.c(bold, "xdrive demo on real instances: a Workstation on spot instances with a persistent XDrive, each instance a Linux VM"))
	out.Raw(`
  Real:       the xdrive operator (both controllers, the SSH agent with pinned host keys, the
              interruption receiver), a kube-apiserver + etcd (envtest), and each instance: a Debian
              VM under QEMU (test/instancevm) booted with the user-data the operator rendered, read
              back from EC2, run by cloud-init and systemd: the real kernel, ext4, Docker, sshd and
              xdrive-watch. Its drive is an NVMe disk whose serial is the EBS volume ID.
  Simulated:  AWS is moto (EC2, SSM, SQS, EventBridge) behind a fault proxy that sets spot prices
              and counts calls. moto stores no data: each EBS volume is a file here, and a volume
              restored from a snapshot starts as a copy of the file of the volume the snapshot came
              from. Instance metadata is amazon-ec2-metadata-mock, reached by the guest at
              169.254.169.254; it shows the spot notice. moto's instance IPs are never dialled:
              operator.Options.SSHResolver maps them to each VM's forwarded sshd on 127.0.0.1.
              Each boot under software emulation (TCG) takes minutes: the whole run takes about
              half an hour to an hour on a loaded 2-core machine.
`)
	out.Raw("  Network:    %s\n\n", networkNote())
}

// networkNote says whether the demo runs in a loopback-only network namespace.
func networkNote() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return "unknown"
	}
	var names []string
	for _, i := range ifs {
		names = append(names, i.Name)
	}
	if len(ifs) == 1 && ifs[0].Flags&net.FlagLoopback != 0 {
		return "loopback only (" + names[0] + "): any stray dial fails with \"network is unreachable\""
	}
	return "the host's network (" + strings.Join(names, ", ") + "); everything still listens on 127.0.0.1 only"
}

func preflight() error {
	var missing []string
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		missing = append(missing, "KUBEBUILDER_ASSETS is unset (run hack/demo.sh, or export KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh))")
	}
	if _, err := exec.LookPath("moto_server"); err != nil {
		missing = append(missing, "moto_server is not on PATH")
	}
	if _, err := os.Stat(sshd.Binary); err != nil {
		missing = append(missing, sshd.Binary+" is missing (apt-get install -y openssh-server)")
	}
	for _, tool := range []string{"bash", "curl", "flock", "ssh-keygen", "tar", "base64"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool+" is not on PATH")
		}
	}
	if len(missing) > 0 {
		return errors.New("cannot run: " + strings.Join(missing, "; "))
	}
	return nil
}

// diagnose prints what the operator last reported, for a failed run.
func diagnose(out *printer, s *setup, v *view) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if v != nil {
		v.Refresh(ctx)
	}
	var wsList v1alpha1.WorkstationList
	var xdList v1alpha1.XDriveList
	if s.env != nil {
		_ = s.env.Client.List(ctx, &wsList, client.InNamespace(namespace))
		_ = s.env.Client.List(ctx, &xdList, client.InNamespace(namespace))
	}
	for _, w := range wsList.Items {
		for _, c := range w.Status.Conditions {
			out.Note("Workstation %s %s=%s %s: %s", w.Name, c.Type, c.Status, c.Reason, c.Message)
		}
	}
	for _, d := range xdList.Items {
		for _, c := range d.Status.Conditions {
			out.Note("XDrive %s %s=%s %s: %s", d.Name, c.Type, c.Status, c.Reason, c.Message)
		}
		if meta.FindStatusCondition(d.Status.Conditions, v1alpha1.ConditionReady) == nil {
			out.Note("XDrive %s has no Ready condition", d.Name)
		}
	}
	if s.logPath != "" {
		out.Note("last lines of the operator log %s:", s.logPath)
		log, _ := os.ReadFile(s.logPath)
		lines := strings.Split(strings.TrimSpace(string(log)), "\n")
		if len(lines) > 25 {
			lines = lines[len(lines)-25:]
		}
		for _, l := range lines {
			out.Raw("      %s\n", l)
		}
	}
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// terminalWidth returns the columns of the terminal f, or 0.
func terminalWidth(f *os.File) int {
	var ws struct{ rows, cols, x, y uint16 }
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TIOCGWINSZ, uintptr(unsafe.Pointer(&ws)))
	if errno != 0 {
		return 0
	}
	return int(ws.cols)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
