package sshx_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/xdrive-io/xdrive/internal/sshx"
	"github.com/xdrive-io/xdrive/test/sshd"
)

// fakeInstance is an instance address that must never be dialed: every
// test resolves it to a listener on 127.0.0.1.
const fakeInstance = "10.66.0.7"

type env struct {
	srv       *sshd.Server
	clientPEM []byte
	shimDir   string
	shimLog   string
}

// setup starts sshd with PATH shims for docker, umount and sync that append
// their argv to shimLog instead of doing anything.
func setup(t *testing.T) *env {
	t.Helper()
	clientPEM, clientPub, err := sshx.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	shimDir := t.TempDir()
	shimLog := filepath.Join(t.TempDir(), "shim.log")
	for _, name := range []string{"docker", "umount", "sync"} {
		script := "#!/bin/sh\nprintf '%s\\n' \"" + name + " $*\" >> '" + shimLog + "'\n"
		if err := os.WriteFile(filepath.Join(shimDir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	srv := sshd.Start(t, sshd.Options{AuthorizedKeys: []string{clientPub}, PathPrefix: shimDir})
	return &env{srv: srv, clientPEM: clientPEM, shimDir: shimDir, shimLog: shimLog}
}

// fixedResolver sends every instance to target and records what it was asked.
type fixedResolver struct {
	target string
	mu     sync.Mutex
	seen   []string
}

func (r *fixedResolver) Resolve(_ context.Context, addr string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, addr)
	return r.target, nil
}

func (r *fixedResolver) Seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

func (e *env) client(t *testing.T, target string, mutate func(*sshx.Config)) *sshx.Client {
	t.Helper()
	r := &fixedResolver{target: target}
	cfg := sshx.Config{
		PrivateKeyPEM: e.clientPEM,
		User:          e.srv.User,
		HostKey:       e.srv.HostKey,
		Resolver:      r.Resolve,
		DialTimeout:   10 * time.Second,
		Retry: sshx.RetryPolicy{
			InitialBackoff: 10 * time.Millisecond,
			MaxBackoff:     50 * time.Millisecond,
			MaxElapsed:     30 * time.Second,
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := sshx.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) shimCalls(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(e.shimLog)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestRunTeardownSequenceInOrder(t *testing.T) {
	e := setup(t)
	c := e.client(t, e.srv.Addr, nil)
	ctx := ctxTimeout(t, time.Minute)

	steps := []string{
		"docker stop xdrive-agent",
		"sync",
		"umount /xdrive-test/does-not-exist",
		"docker rm -f xdrive-agent && sync",
	}
	for _, cmd := range steps {
		if _, err := c.Run(ctx, fakeInstance, cmd); err != nil {
			t.Fatalf("Run(%q): %v", cmd, err)
		}
	}
	want := []string{
		"docker stop xdrive-agent",
		"sync ",
		"umount /xdrive-test/does-not-exist",
		"docker rm -f xdrive-agent",
		"sync ",
	}
	if got := e.shimCalls(t); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("shim log:\n got %q\nwant %q", got, want)
	}

	out, err := c.Run(ctx, fakeInstance, "command -v sync")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(e.shimDir, "sync") + "\n"; string(out) != want {
		t.Fatalf("sync resolves to %q, want the shim %q", out, want)
	}

	out, err = c.Run(ctx, fakeInstance, "echo hello; echo ignored >&2")
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "hello\n" {
		t.Fatalf("stdout = %q, want %q", out, "hello\n")
	}
}

func TestHostKeyMismatchRefusedAndNotRetried(t *testing.T) {
	e := setup(t)
	p := startProxy(t, &proxy{target: e.srv.Addr})
	c := e.client(t, p.Addr, func(cfg *sshx.Config) { _, cfg.HostKey = sshd.GenerateKey(t) })

	_, err := c.Run(ctxTimeout(t, time.Minute), fakeInstance, "docker stop xdrive-agent")
	expectError(t, err, sshx.ErrHostKeyMismatch, new(*sshx.RetryError))
	e.expectOneAttempt(t, p, "despite host key mismatch")
}

func TestAuthFailureNotRetried(t *testing.T) {
	e := setup(t)
	p := startProxy(t, &proxy{target: e.srv.Addr})
	c := e.client(t, p.Addr, func(cfg *sshx.Config) { cfg.PrivateKeyPEM, _ = sshd.GenerateKey(t) })

	_, err := c.Run(ctxTimeout(t, time.Minute), fakeInstance, "sync")
	if err == nil {
		t.Fatal("Run with an unauthorized key succeeded")
	}
	var re *sshx.RetryError
	if errors.As(err, &re) || errors.Is(err, sshx.ErrHostKeyMismatch) {
		t.Fatalf("unexpected error kind: %v", err)
	}
	e.expectOneAttempt(t, p, "without authentication")
}

func TestResetConnectionsAreRetried(t *testing.T) {
	e := setup(t)
	const resets = 3
	p := startProxy(t, &proxy{target: e.srv.Addr, resetFirst: resets})
	c := e.client(t, p.Addr, nil)

	if _, err := c.Run(ctxTimeout(t, time.Minute), fakeInstance, "sync"); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := p.Count(); n != resets+1 {
		t.Fatalf("proxy saw %d connections, want %d", n, resets+1)
	}
	if got := e.shimCalls(t); len(got) != 1 || got[0] != "sync " {
		t.Fatalf("shim log = %q, want one sync", got)
	}
}

func TestResetsPastDeadlineFailWithRetryError(t *testing.T) {
	e := setup(t)
	p := startProxy(t, &proxy{target: e.srv.Addr, resetFirst: -1})
	c := e.client(t, p.Addr, nil)

	_, err := c.Run(ctxTimeout(t, time.Second), fakeInstance, "sync")
	var re *sshx.RetryError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want *RetryError", err)
	}
	// The deadline may cut the last attempt before its reset arrives.
	var netErr net.Error
	cut := errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout()
	if !errors.Is(err, syscall.ECONNRESET) && !cut {
		t.Fatalf("err = %v, want it to wrap ECONNRESET or the deadline", err)
	}
	if re.Attempts < 2 || p.Count() < re.Attempts-1 || p.Count() > re.Attempts {
		t.Fatalf("Attempts = %d, proxy saw %d connections; want > 1 and all but the cut one seen", re.Attempts, p.Count())
	}
	if calls := e.shimCalls(t); len(calls) != 0 {
		t.Fatalf("command ran: %q", calls)
	}
}

func TestMaxElapsedBoundsRetriesWithoutCtxDeadline(t *testing.T) {
	e := setup(t)
	p := startProxy(t, &proxy{target: e.srv.Addr, resetFirst: -1})
	c := e.client(t, p.Addr, func(cfg *sshx.Config) { cfg.Retry.MaxElapsed = 500 * time.Millisecond })

	_, err := c.Run(context.Background(), fakeInstance, "sync")
	var re *sshx.RetryError
	if !errors.As(err, &re) || re.Attempts < 2 {
		t.Fatalf("err = %v, want a *RetryError after several attempts", err)
	}
	// The last attempt may be cut by MaxElapsed itself (a dial timeout) rather than by a reset.
	var netErr net.Error
	timedOut := errors.As(err, &netErr) && netErr.Timeout()
	if !errors.Is(err, syscall.ECONNRESET) && !timedOut {
		t.Fatalf("err = %v, want it to wrap ECONNRESET or a timeout", err)
	}
}

func TestNonZeroExitIsExitErrorAndNotRetried(t *testing.T) {
	e := setup(t)
	p := startProxy(t, &proxy{target: e.srv.Addr})
	c := e.client(t, p.Addr, nil)

	out, err := c.Run(ctxTimeout(t, time.Minute), fakeInstance, "echo partial; echo 'device is busy' >&2; exit 3")
	var ee *sshx.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("err = %v, want *ExitError", err)
	}
	if ee.ExitStatus != 3 || ee.Signal != "" {
		t.Fatalf("ExitStatus = %d, Signal = %q; want 3, \"\"", ee.ExitStatus, ee.Signal)
	}
	if string(ee.Stderr) != "device is busy\n" {
		t.Fatalf("Stderr = %q", ee.Stderr)
	}
	if string(out) != "partial\n" {
		t.Fatalf("stdout = %q, want %q", out, "partial\n")
	}
	if !strings.Contains(err.Error(), "device is busy") {
		t.Fatalf("error message lacks stderr: %v", err)
	}
	if n := p.Count(); n != 1 {
		t.Fatalf("proxy saw %d connections, want 1 (no retry)", n)
	}
}

func TestResolverOverrideIsUsed(t *testing.T) {
	e := setup(t)
	p := startProxy(t, &proxy{target: e.srv.Addr})
	r := &fixedResolver{target: p.Addr}
	c := e.client(t, "", func(cfg *sshx.Config) { cfg.Resolver = r.Resolve })

	out, err := c.Run(ctxTimeout(t, time.Minute), fakeInstance, "echo ok")
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "ok\n" {
		t.Fatalf("stdout = %q", out)
	}
	if seen := r.Seen(); len(seen) != 1 || seen[0] != fakeInstance {
		t.Fatalf("resolver saw %q, want [%q]", seen, fakeInstance)
	}
	if host, _, _ := net.SplitHostPort(p.Addr); host != "127.0.0.1" {
		t.Fatalf("proxy listens on %s", p.Addr)
	}
	if n := p.Count(); n != 1 {
		t.Fatalf("proxy on 127.0.0.1 saw %d connections, want 1", n)
	}
}

func TestCancelDuringHandshakeReturnsPromptly(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The proxy accepts and never answers; cancel once it has the connection.
	p := startProxy(t, &proxy{hold: true, onAccept: cancel})
	c := e.client(t, p.Addr, func(cfg *sshx.Config) { cfg.DialTimeout = time.Hour })

	_, err := c.Run(ctx, fakeInstance, "sync")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := p.Count(); n != 1 {
		t.Fatalf("proxy saw %d connections, want 1", n)
	}
}

func TestCommandTimeout(t *testing.T) {
	e := setup(t)
	c := e.client(t, e.srv.Addr, func(cfg *sshx.Config) { cfg.CommandTimeout = 200 * time.Millisecond })

	_, err := c.Run(ctxTimeout(t, time.Minute), fakeInstance, "sleep 3")
	expectError(t, err, context.DeadlineExceeded, new(*sshx.ExitError))
}

func TestDefaultResolver(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.2.3":      "10.1.2.3:22",
		"10.1.2.3:2222": "10.1.2.3:2222",
		"fd00::1":       "[fd00::1]:22",
		"ip-10-1-2-3":   "ip-10-1-2-3:22",
	} {
		got, err := sshx.DefaultResolver(context.Background(), in)
		if err != nil || got != want {
			t.Errorf("DefaultResolver(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	privPEM, pub, err := sshx.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(privPEM), "-----BEGIN OPENSSH PRIVATE KEY-----") {
		t.Fatalf("not OpenSSH format: %.40q", privPEM)
	}
	signer, err := ssh.ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pub))
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Type() != ssh.KeyAlgoED25519 || string(parsed.Marshal()) != string(signer.PublicKey().Marshal()) {
		t.Fatalf("public key %q does not match private key", pub)
	}
	if _, pub2, _ := sshx.GenerateKey(); pub2 == pub {
		t.Fatal("two calls returned the same key")
	}
}

func TestNewValidatesConfig(t *testing.T) {
	privPEM, pub, err := sshx.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]sshx.Config{
		"no key":       {HostKey: pub},
		"no host key":  {PrivateKeyPEM: privPEM},
		"bad host key": {PrivateKeyPEM: privPEM, HostKey: "ssh-ed25519 nonsense"},
		"bad key":      {PrivateKeyPEM: []byte("nope"), HostKey: pub},
	} {
		if _, err := sshx.New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	if _, err := sshx.New(sshx.Config{PrivateKeyPEM: privPEM, HostKey: pub}); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

// expectOneAttempt fails the test unless the proxy saw one connection (no
// retry) and no command ran; why says what should have stopped it.
func (e *env) expectOneAttempt(t *testing.T, p *proxy, why string) {
	t.Helper()
	if n := p.Count(); n != 1 {
		t.Fatalf("proxy saw %d connections, want 1 (no retry)", n)
	}
	if calls := e.shimCalls(t); len(calls) != 0 {
		t.Fatalf("command ran %s: %q", why, calls)
	}
}

// expectError fails the test unless err is want and is not also a notAs
// (a pointer to an error type, as errors.As takes).
func expectError(t *testing.T, err, want error, notAs any) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	if errors.As(err, notAs) {
		t.Fatalf("err = %v is also a %T", err, notAs)
	}
}
