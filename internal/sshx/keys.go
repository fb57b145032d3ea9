package sshx

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
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

// DeriveKey derives an ed25519 key pair from secret and label with
// HMAC-SHA256, in the forms GenerateKey returns. The same inputs always give
// the same bytes, so a retried launch renders the same user-data; a
// derived key reveals nothing of secret or of keys with other labels.
func DeriveKey(secret []byte, label string) (privatePEM []byte, authorizedKey string, err error) {
	if len(secret) == 0 {
		return nil, "", fmt.Errorf("sshx: derive key %q: no secret", label)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("xdrive.io/sshx.DeriveKey\x00" + label))
	seed := mac.Sum(nil)
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, "", fmt.Errorf("sshx: public key: %w", err)
	}
	// OpenSSH's "openssh-key-v1" format, unencrypted; its check integer
	// comes from the seed instead of a random source.
	str := func(b []byte) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...) }
	pubBlob := sshPub.Marshal()
	check := binary.BigEndian.Uint32(seed[:4])
	private := binary.BigEndian.AppendUint32(nil, check)
	private = binary.BigEndian.AppendUint32(private, check)
	private = append(private, str([]byte(ssh.KeyAlgoED25519))...)
	private = append(private, str(pub)...)
	private = append(private, str(priv)...)
	private = append(private, str(nil)...) // comment
	for i := byte(1); len(private)%8 != 0; i++ {
		private = append(private, i)
	}
	body := []byte("openssh-key-v1\x00")
	body = append(body, str([]byte("none"))...)
	body = append(body, str([]byte("none"))...)
	body = append(body, str(nil)...)
	body = binary.BigEndian.AppendUint32(body, 1)
	body = append(body, str(pubBlob)...)
	body = append(body, str(private)...)
	privatePEM = pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: body})
	return privatePEM, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))), nil
}
