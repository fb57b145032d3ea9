package sshd_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xdrive-io/xdrive/internal/sshx"
	"github.com/xdrive-io/xdrive/test/sshd"
)

// TestStartServer uses the error-returning API, as a plain program would:
// a given host key, a command run through it, and Stop.
func TestStartServer(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "host_key")
	hostKey, hostPub := sshd.GenerateKey(t)
	clientKey, clientPub := sshd.GenerateKey(t)
	if err := os.WriteFile(keyFile, hostKey, 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := sshd.StartServer(sshd.Options{HostKeyFile: keyFile, AuthorizedKeys: []string{clientPub}})
	if errors.Is(err, sshd.ErrUnavailable) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	if srv.HostKey != hostPub {
		t.Errorf("HostKey = %q, want the given key's %q", srv.HostKey, hostPub)
	}
	c, err := sshx.New(sshx.Config{PrivateKeyPEM: clientKey, HostKey: srv.HostKey, User: srv.User})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := c.Run(ctx, srv.Addr, "echo hello"); err != nil || string(out) != "hello\n" {
		t.Fatalf("Run = %q, %v\n%s", out, err, srv.Log())
	}

	srv.Stop()
	if _, err := os.Stat(srv.Dir); !os.IsNotExist(err) {
		t.Errorf("Stop left its temporary directory %s: %v", srv.Dir, err)
	}
	if conn, err := net.DialTimeout("tcp", srv.Addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("sshd still listens on %s after Stop", srv.Addr)
	}
}
