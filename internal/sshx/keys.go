package sshx

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// GenerateKey creates a fresh ed25519 key pair. privatePEM is the private key
// in OpenSSH format ("-----BEGIN OPENSSH PRIVATE KEY-----"), usable both as a
// client key (Config.PrivateKeyPEM) and as an sshd HostKey file.
// authorizedKey is the public key in authorized_keys format without a
// trailing newline ("ssh-ed25519 AAAA..."), usable as an authorized_keys
// line and as a pinned Config.HostKey.
func GenerateKey() (privatePEM []byte, authorizedKey string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("sshx: generate ed25519 key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, "", fmt.Errorf("sshx: marshal private key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, "", fmt.Errorf("sshx: public key: %w", err)
	}
	authorizedKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	return pem.EncodeToMemory(block), authorizedKey, nil
}
