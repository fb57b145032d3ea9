package sshx_test

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/xdrive-io/xdrive/internal/sshx"
)

func TestDeriveKey(t *testing.T) {
	secret := []byte("operator client key")
	priv, pub, err := sshx.DeriveKey(secret, "uid-1/1")
	if err != nil {
		t.Fatal(err)
	}
	again, pubAgain, err := sshx.DeriveKey(secret, "uid-1/1")
	if err != nil || !bytes.Equal(priv, again) || pub != pubAgain {
		t.Fatal("DeriveKey is not deterministic")
	}
	raw, err := ssh.ParseRawPrivateKey(priv)
	if err != nil {
		t.Fatalf("OpenSSH cannot parse the derived key: %v\n%s", err, priv)
	}
	key, ok := raw.(*ed25519.PrivateKey)
	if !ok {
		t.Fatalf("derived key is a %T", raw)
	}
	sshPub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))); got != pub {
		t.Errorf("public key %q does not match the private key's %q", pub, got)
	}
	seen := map[string]string{pub: "uid-1/1"}
	for _, c := range []struct {
		secret []byte
		label  string
	}{{secret, "uid-1/2"}, {secret, "uid-2/1"}, {[]byte("another client key"), "uid-1/1"}} {
		_, p, err := sshx.DeriveKey(c.secret, c.label)
		if err != nil {
			t.Fatal(err)
		}
		if other, dup := seen[p]; dup {
			t.Errorf("%q/%q gives the key of %s", c.secret, c.label, other)
		}
		seen[p] = c.label
	}
	if _, _, err := sshx.DeriveKey(nil, "x"); err == nil {
		t.Error("no secret: want an error")
	}
}
