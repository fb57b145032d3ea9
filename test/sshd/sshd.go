// Package sshd starts a real OpenSSH server (Debian's openssh-server,
// /usr/sbin/sshd) on 127.0.0.1 for tests.
//
// When sshd is not installed the test is skipped, or failed when CI=true.
// Install it with: apt-get install -y openssh-server
package sshd

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xdrive-io/xdrive/internal/sshx"
)

// Binary is the sshd that Start runs.
const Binary = "/usr/sbin/sshd"

// PrivsepDir must exist for sshd to start. Debian creates it only through
// systemd, so a machine without systemd lacks it until something makes it.
const PrivsepDir = "/run/sshd"

// PrepareHost makes what sshd needs on this machine: its privilege
// separation directory. Every test that runs sshd, even only `sshd -t`,
// calls it, so that no test depends on another having run first.
func PrepareHost() error {
	if err := os.MkdirAll(PrivsepDir, 0o755); err != nil {
		return fmt.Errorf("sshd needs its privilege separation dir %s: %w", PrivsepDir, err)
	}
	return nil
}

// Options configures Start.
type Options struct {
	// AuthorizedKeys are authorized_keys lines allowed to log in as User.
	AuthorizedKeys []string
	// PathPrefix, if set, is put in front of PATH for commands run through
	// the server (e.g. a directory of shims): each command then runs as
	// /bin/sh -c "$SSH_ORIGINAL_COMMAND" with
	// PATH=PathPrefix:/usr/local/bin:/usr/bin:/bin, via a ForceCommand
	// wrapper. (sshd's SetEnv PATH=... is not enough: Debian's bash sources
	// ~/.bashrc for commands run by sshd, and a .bashrc may prepend to PATH.)
	PathPrefix string
}

// Server is a running sshd.
type Server struct {
	Addr    string // "127.0.0.1:port"
	HostKey string // the server's public host key, authorized_keys format: pin this
	User    string // the user that can log in (the one running the test)
	Dir     string // temp dir with config, keys, pid file and log

	cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts sshd -D -e on a free port of 127.0.0.1 with a throwaway
// ed25519 host key and stops it on tb.Cleanup.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if _, err := os.Stat(Binary); err != nil {
		unavailable(tb, "%s not found (apt-get install -y openssh-server): %v", Binary, err)
	}
	if err := PrepareHost(); err != nil {
		unavailable(tb, "%v", err)
	}
	u, err := user.Current()
	if err != nil {
		tb.Fatalf("sshd: current user: %v", err)
	}

	dir := tb.TempDir()
	hostPEM, hostPub, err := sshx.GenerateKey()
	if err != nil {
		tb.Fatalf("sshd: %v", err)
	}
	hostKeyFile := filepath.Join(dir, "ssh_host_ed25519_key")
	authFile := filepath.Join(dir, "authorized_keys")
	writeFile(tb, hostKeyFile, hostPEM)
	writeFile(tb, authFile, []byte(strings.Join(opts.AuthorizedKeys, "\n")+"\n"))

	wrapper := ""
	if opts.PathPrefix != "" {
		wrapper = filepath.Join(dir, "path-wrapper.sh")
		script := "#!/bin/sh\n" +
			"# Written by test/sshd: run the client's command with a fixed PATH.\n" +
			"PATH=" + shellQuote(opts.PathPrefix+":/usr/local/bin:/usr/bin:/bin") + "\n" +
			"export PATH\n" +
			"exec /bin/sh -c \"$SSH_ORIGINAL_COMMAND\"\n"
		writeFile(tb, wrapper, []byte(script))
		if err := os.Chmod(wrapper, 0o700); err != nil {
			tb.Fatalf("sshd: %v", err)
		}
	}

	s := &Server{HostKey: hostPub, User: u.Username, Dir: dir}
	// The port is picked by binding :0 and releasing it, so another process
	// may grab it before sshd does; try a few times.
	for try := 1; ; try++ {
		port := freePort(tb)
		conf := filepath.Join(dir, "sshd_config")
		writeFile(tb, conf, []byte(Config(port, dir, hostKeyFile, authFile, wrapper)))
		if out, err := exec.Command(Binary, "-t", "-f", conf).CombinedOutput(); err != nil {
			tb.Fatalf("sshd: invalid config %s: %v\n%s", conf, err, out)
		}
		err := s.start(conf, port)
		if err == nil {
			break
		}
		if try == 3 {
			tb.Fatalf("sshd: %v", err)
		}
		tb.Logf("sshd: retrying with another port: %v", err)
	}
	tb.Cleanup(func() {
		s.stop()
		if tb.Failed() {
			tb.Logf("sshd log:\n%s", s.Log())
		}
	})
	return s
}

func unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("sshd: "+format, args...)
	}
	tb.Skipf("sshd: "+format, args...)
}

// Config renders a loopback-only, key-only sshd_config; extra lines are appended.
func Config(port int, dir, hostKeyFile, authFile, wrapper string, extra ...string) string {
	lines := []string{
		"Port " + strconv.Itoa(port),
		"ListenAddress 127.0.0.1",
		"HostKey " + hostKeyFile,
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"AuthorizedKeysFile " + authFile,
		"PermitRootLogin prohibit-password",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"StrictModes no",
		"UsePAM no",
		"PermitUserRC no",
		"PermitUserEnvironment no",
		"AllowTcpForwarding no",
		"AllowAgentForwarding no",
		"X11Forwarding no",
		"PrintMotd no",
		"LogLevel VERBOSE",
	}
	lines = append(lines, extra...)
	if wrapper != "" {
		lines = append(lines, "ForceCommand "+wrapper)
	}
	return strings.Join(lines, "\n") + "\n"
}

func (s *Server) start(conf string, port int) error {
	logFile, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own copy
	cmd := exec.Command(Binary, "-D", "-e", "-f", conf)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", Binary, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited

	ready := fmt.Sprintf("Server listening on 127.0.0.1 port %d.", port)
	timeout := time.After(15 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			return fmt.Errorf("sshd exited before listening: %s\n%s", cmd.ProcessState, s.Log())
		case <-timeout:
			s.stop()
			return fmt.Errorf("sshd not listening after 15s:\n%s", s.Log())
		case <-tick.C:
			if strings.Contains(s.Log(), ready) {
				s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
				return nil
			}
		}
	}
}

func (s *Server) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// Log returns what sshd has logged so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath())
	return string(bytes.TrimSpace(b))
}

func (s *Server) logPath() string { return filepath.Join(s.Dir, "sshd.log") }

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("sshd: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func writeFile(tb testing.TB, name string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		tb.Fatalf("sshd: %v", err)
	}
}
