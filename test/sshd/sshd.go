// Package sshd runs a real OpenSSH server (Debian's openssh-server,
// /usr/sbin/sshd) on 127.0.0.1: for the SSH tests, and for every instance
// that test/instancesim simulates.
//
// StartServer returns errors, so any program can use it. Start is its
// adapter for tests: when sshd is not installed the test is skipped (or
// failed when CI=true), and the server stops when the test ends.
// Install sshd with: apt-get install -y openssh-server
package sshd

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/xdrive-io/xdrive/internal/sshx"
)

// Binary is the sshd that StartServer runs.
const Binary = "/usr/sbin/sshd"

// PrivsepDir must exist for sshd to start. Debian creates it only through
// systemd, so a machine without systemd lacks it until something makes it.
const PrivsepDir = "/run/sshd"

// ErrUnavailable is wrapped by StartServer's error when this machine cannot
// run sshd at all (not installed, or no privilege separation directory).
var ErrUnavailable = errors.New("sshd is unavailable")

// PrepareHost makes what sshd needs on this machine: its privilege
// separation directory. Everything that runs sshd, even only `sshd -t`,
// calls it, so that nothing depends on another test having run first.
func PrepareHost() error {
	if err := os.MkdirAll(PrivsepDir, 0o755); err != nil {
		return fmt.Errorf("sshd needs its privilege separation dir %s: %w", PrivsepDir, err)
	}
	return nil
}

// Options configures a server. Every field is optional.
type Options struct {
	// Dir holds the config, the generated keys, the pid file and the log.
	// When empty, StartServer makes a temporary directory and Stop removes it.
	Dir string
	// HostKeyFile is the private host key to serve (OpenSSH format). When
	// empty, a fresh ed25519 key is generated into Dir.
	HostKeyFile string
	// AuthorizedKeys are authorized_keys lines allowed to log in as the
	// current user.
	AuthorizedKeys []string
	// AuthorizedKeysFile is sshd's AuthorizedKeysFile (it may hold tokens
	// such as %u); it replaces AuthorizedKeys.
	AuthorizedKeysFile string
	// PathPrefix, if set, is put in front of PATH for commands run through
	// the server (e.g. a directory of shims): each command then runs as
	// /bin/sh -c "$SSH_ORIGINAL_COMMAND" with
	// PATH=PathPrefix:/usr/local/bin:/usr/bin:/bin, via a ForceCommand
	// wrapper. (sshd's SetEnv PATH=... is not enough: Debian's bash sources
	// ~/.bashrc for commands run by sshd, and a .bashrc may prepend to PATH.)
	PathPrefix string
	// ForceCommand is a script that runs instead of every command (the
	// command is in $SSH_ORIGINAL_COMMAND). It cannot be combined with
	// PathPrefix.
	ForceCommand string
	// ExtraConfig are more sshd_config lines.
	ExtraConfig []string
}

// Server is a running sshd.
type Server struct {
	Addr    string // "127.0.0.1:port"
	HostKey string // the server's public host key, authorized_keys format: pin this
	User    string // the user that can log in (the one running this process)
	Dir     string // config, keys, pid file and log

	stopMu    sync.Mutex
	removeDir bool
	cmd       *exec.Cmd
	exited    chan struct{}
}

// StartServer starts `sshd -D -e` on a free port of 127.0.0.1. Stop it with Stop.
func StartServer(opts Options) (*Server, error) {
	if _, err := os.Stat(Binary); err != nil {
		return nil, fmt.Errorf("%w: %s not found (apt-get install -y openssh-server): %w", ErrUnavailable, Binary, err)
	}
	if err := PrepareHost(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if opts.PathPrefix != "" && opts.ForceCommand != "" {
		return nil, errors.New("sshd: PathPrefix and ForceCommand exclude each other")
	}
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("sshd: current user: %w", err)
	}
	s := &Server{User: u.Username, Dir: opts.Dir}
	if s.Dir == "" {
		if s.Dir, err = os.MkdirTemp("", "sshd-"); err != nil {
			return nil, fmt.Errorf("sshd: %w", err)
		}
		s.removeDir = true
	}
	if err := s.run(opts); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) run(opts Options) error {
	hostKeyFile, err := s.hostKey(opts.HostKeyFile)
	if err != nil {
		return err
	}
	authFile := opts.AuthorizedKeysFile
	if authFile == "" {
		authFile = filepath.Join(s.Dir, "authorized_keys")
		if err := os.WriteFile(authFile, []byte(strings.Join(opts.AuthorizedKeys, "\n")+"\n"), 0o600); err != nil {
			return fmt.Errorf("sshd: %w", err)
		}
	}
	force := opts.ForceCommand
	if opts.PathPrefix != "" {
		force = filepath.Join(s.Dir, "path-wrapper.sh")
		script := "#!/bin/sh\n" +
			"# Written by test/sshd: run the client's command with a fixed PATH.\n" +
			"PATH=" + ShellQuote(opts.PathPrefix+":/usr/local/bin:/usr/bin:/bin") + "\n" +
			"export PATH\n" +
			"exec /bin/sh -c \"$SSH_ORIGINAL_COMMAND\"\n"
		if err := os.WriteFile(force, []byte(script), 0o700); err != nil {
			return fmt.Errorf("sshd: %w", err)
		}
	}
	// The port is picked by binding :0 and releasing it, so another process
	// may grab it before sshd does; try a few times.
	var last error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return err
		}
		conf := filepath.Join(s.Dir, "sshd_config")
		text := config(port, s.Dir, hostKeyFile, authFile, force, opts.ExtraConfig)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			return fmt.Errorf("sshd: %w", err)
		}
		if out, err := exec.Command(Binary, "-t", "-f", conf).CombinedOutput(); err != nil {
			return fmt.Errorf("sshd: invalid config %s: %w\n%s", conf, err, out)
		}
		if last = s.start(conf, port); last == nil {
			return nil
		}
	}
	return fmt.Errorf("sshd: %w", last)
}

// hostKey returns the host key file, generating one when file is empty, and
// sets s.HostKey to its public half.
func (s *Server) hostKey(file string) (string, error) {
	if file == "" {
		priv, pub, err := sshx.GenerateKey()
		if err != nil {
			return "", fmt.Errorf("sshd: %w", err)
		}
		file = filepath.Join(s.Dir, "ssh_host_ed25519_key")
		s.HostKey = pub
		return file, os.WriteFile(file, priv, 0o600)
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("sshd: host key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return "", fmt.Errorf("sshd: host key %s: %w", file, err)
	}
	s.HostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	return file, nil
}

// Start starts a server for tb and stops it when tb ends; the log is printed
// if tb failed. Without sshd the test is skipped, or failed when CI=true.
// With -short (make test-unit) it is skipped.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if testing.Short() {
		tb.Skip("-short: no sshd")
	}
	if opts.Dir == "" {
		opts.Dir = tb.TempDir()
	}
	s, err := StartServer(opts)
	switch {
	case errors.Is(err, ErrUnavailable) && os.Getenv("CI") != "true":
		tb.Skip(err)
	case err != nil:
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		s.Stop()
		if tb.Failed() {
			tb.Logf("sshd log:\n%s", s.Log())
		}
	})
	return s
}

// config renders a loopback-only, key-only sshd_config.
func config(port int, dir, hostKeyFile, authFile, forceCommand string, extra []string) string {
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
	if forceCommand != "" {
		lines = append(lines, "ForceCommand "+forceCommand)
	}
	return strings.Join(lines, "\n") + "\n"
}

// start runs sshd in its own process group (killed with this process) and
// waits until it listens.
func (s *Server) start(conf string, port int) error {
	logFile, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own copy
	cmd := exec.Command(Binary, "-D", "-e", "-f", conf)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
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
			s.cmd = nil
			return fmt.Errorf("sshd exited before listening: %s\n%s", cmd.ProcessState, s.Log())
		case <-timeout:
			s.kill()
			return fmt.Errorf("sshd not listening after 15s:\n%s", s.Log())
		case <-tick.C:
			if strings.Contains(s.Log(), ready) {
				s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
				return nil
			}
		}
	}
}

// Stop ends sshd and what runs in its process group, and removes Dir if
// StartServer made it. It is safe to call more than once.
func (s *Server) Stop() {
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	s.kill()
	if s.removeDir {
		_ = os.RemoveAll(s.Dir)
		s.removeDir = false
	}
}

func (s *Server) kill() {
	if s.cmd == nil {
		return
	}
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.exited
	}
	s.cmd = nil
}

// Log returns what sshd has logged so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath())
	return string(bytes.TrimSpace(b))
}

func (s *Server) logPath() string { return filepath.Join(s.Dir, "sshd.log") }

// GenerateKey is sshx.GenerateKey for tests: it fails tb on an error.
func GenerateKey(tb testing.TB) (privatePEM []byte, authorizedKey string) {
	tb.Helper()
	privatePEM, authorizedKey, err := sshx.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	return privatePEM, authorizedKey
}

// ShellQuote quotes s as one word for sh.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("sshd: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
