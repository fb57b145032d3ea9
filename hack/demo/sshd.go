package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	testsshd "github.com/xdrive-io/xdrive/test/sshd"
)

// sshdBinary is Debian's OpenSSH server (apt-get install -y openssh-server).
const sshdBinary = "/usr/sbin/sshd"

// sshdOptions configures one instance's sshd, all of it inside the instance's sandbox.
type sshdOptions struct {
	Dir            string // where its config, wrapper, pid file and log go
	HostKeyFile    string // the host key the bootstrap installed
	AuthorizedKeys string // the authorized keys file the bootstrap installed
	// Wrapper is the ForceCommand: every command runs through it.
	Wrapper string
}

// sshd is a running OpenSSH server on 127.0.0.1.
type sshd struct {
	Addr string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startSSHD runs sshd -D -e on a free loopback port, retrying when another
// process takes the port between probing and binding.
func startSSHD(o sshdOptions) (*sshd, error) {
	if _, err := os.Stat(sshdBinary); err != nil {
		return nil, fmt.Errorf("%s not found (apt-get install -y openssh-server): %w", sshdBinary, err)
	}
	if err := testsshd.PrepareHost(); err != nil {
		return nil, err
	}
	var last error
	for try := 0; try < 3; try++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		conf := filepath.Join(o.Dir, "sshd_config")
		if err := os.WriteFile(conf, []byte(sshdConfig(port, o)), 0o600); err != nil {
			return nil, err
		}
		if out, err := exec.Command(sshdBinary, "-t", "-f", conf).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("sshd rejects %s: %w\n%s", conf, err, out)
		}
		s, err := runSSHD(o.Dir, conf, port)
		if err == nil {
			return s, nil
		}
		last = err
	}
	return nil, last
}

func sshdConfig(port int, o sshdOptions) string {
	return testsshd.Config(port, o.Dir, o.HostKeyFile, o.AuthorizedKeys, o.Wrapper,
		"HostKeyAlgorithms ssh-ed25519",
		"PermitTTY no",
		// bash, root's login shell, skips ~/.bashrc for commands from sshd when SHLVL starts at 1.
		"SetEnv SHLVL=1",
	)
}

func runSSHD(dir, conf string, port int) (*sshd, error) {
	logPath := filepath.Join(dir, "sshd.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(sshdBinary, "-D", "-e", "-f", conf)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", sshdBinary, err)
	}
	s := &sshd{dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	ready := fmt.Sprintf("Server listening on 127.0.0.1 port %d.", port)
	deadline := time.After(15 * time.Second)
	for {
		select {
		case <-s.done:
			return nil, fmt.Errorf("sshd exited before listening: %s", bytes.TrimSpace(readFile(logPath)))
		case <-deadline:
			s.Stop()
			return nil, fmt.Errorf("sshd not listening after 15s: %s", bytes.TrimSpace(readFile(logPath)))
		case <-time.After(20 * time.Millisecond):
			if bytes.Contains(readFile(logPath), []byte(ready)) {
				s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
				return s, nil
			}
		}
	}
}

// Stop ends sshd and every session it runs.
func (s *sshd) Stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func readFile(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
