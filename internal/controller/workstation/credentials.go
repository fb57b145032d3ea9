package workstation

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/agent"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/instances"
	"github.com/xdrive-io/xdrive/internal/sshx"
)

// Keys of the per-Workstation SSH Secret (v1alpha1.SSHSecretName).
const (
	secretClientKey = v1alpha1.SSHSecretClientKey
	secretClientPub = "client-key.pub"
)

// Credentials are the operator's SSH identity for one Workstation. Each
// launch gets its own host key, derived from the client key (which never
// leaves the operator), the Workstation's UID and the launch attempt.
type Credentials struct {
	ClientKey     []byte
	AuthorizedKey string
	uid           types.UID
}

// LaunchHostKey is the SSH host key of one launch attempt: the private key
// in OpenSSH PEM form and the public key the operator pins.
func (c Credentials) LaunchHostKey(attempt string) (privatePEM []byte, publicKey string, err error) {
	if c.uid == "" {
		return nil, "", fmt.Errorf("no Workstation UID to derive a host key from")
	}
	return sshx.DeriveKey(c.ClientKey, "host-key/"+string(c.uid)+"/"+attempt)
}

// target is how to reach inst: its host key is that of the launch attempt
// tagged on it. An instance without that tag has no key to pin, and the
// agent refuses to reach it.
func (c Credentials) target(inst instances.Instance) agent.Target {
	addr := inst.PublicIP
	if addr == "" {
		addr = inst.PrivateIP
	}
	var hostKey string
	if attempt, ok := inst.Tags[cloud.TagLaunchAttempt]; ok {
		if _, pub, err := c.LaunchHostKey(attempt); err == nil {
			hostKey = pub
		}
	}
	return agent.Target{Address: addr, HostKey: hostKey, ClientKey: c.ClientKey}
}

// statusTarget is target(inst) that also passes the drive's volume ID,
// which the instance's boot waits for.
func (c Credentials) statusTarget(inst instances.Instance, volumeID string) agent.Target {
	t := c.target(inst)
	t.DriveVolumeID = volumeID
	return t
}

// The label on every Secret the operator creates. The manager caches only
// Secrets that carry it (operator.CacheOptions), so it reads no other Secret
// and needs no unfiltered get (docs/security.md).
const (
	SecretLabelKey   = "app.kubernetes.io/managed-by"
	SecretLabelValue = "xdrive"
)

// credentials reads the Workstation's SSH Secret, creating it on first use.
// It reads through the manager's cache, which holds only Secrets labelled
// SecretLabelKey=SecretLabelValue.
func (r *Reconciler) credentials(ctx context.Context, ws *v1alpha1.Workstation) (Credentials, error) {
	r.credsMu.Lock()
	c, ok := r.creds[ws.UID]
	r.credsMu.Unlock()
	if ok {
		return c, nil
	}
	key := types.NamespacedName{Namespace: ws.Namespace, Name: v1alpha1.SSHSecretName(ws.Name)}
	secret := &corev1.Secret{}
	err := r.Get(ctx, key, secret)
	if apierrors.IsNotFound(err) {
		secret, err = r.createSSHSecret(ctx, ws, key)
	}
	if err != nil {
		return Credentials{}, fmt.Errorf("read the SSH keys of Workstation %s/%s (secret %s): %w", ws.Namespace, ws.Name, key.Name, err)
	}
	if !metav1.IsControlledBy(secret, ws) {
		// Name and label are not ownership: a Secret planted by someone who can
		// write Secrets here, or left from an earlier Workstation, is not used.
		return Credentials{}, fmt.Errorf("secret %s is not controlled by Workstation %s (UID %s), so its keys are not used; "+
			"if it was not made by xdrive for this Workstation, delete it to have it made again", key, ws.Name, ws.UID)
	}
	c = Credentials{
		ClientKey: secret.Data[secretClientKey], AuthorizedKey: string(secret.Data[secretClientPub]), uid: ws.UID,
	}
	if len(c.ClientKey) == 0 {
		return Credentials{}, fmt.Errorf("secret %s lacks SSH keys; delete it to have it made again", key)
	}
	r.credsMu.Lock()
	if r.creds == nil {
		r.creds = map[types.UID]Credentials{}
	}
	r.creds[ws.UID] = c
	r.credsMu.Unlock()
	return c, nil
}

func (r *Reconciler) createSSHSecret(ctx context.Context, ws *v1alpha1.Workstation, key types.NamespacedName) (*corev1.Secret, error) {
	clientKey, clientPub, err := sshx.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("generate an SSH key: %w", err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
			Labels: map[string]string{SecretLabelKey: SecretLabelValue}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			secretClientKey: clientKey, secretClientPub: []byte(clientPub),
		},
	}
	if err := controllerutil.SetControllerReference(ws, secret, r.Scheme()); err != nil {
		return nil, fmt.Errorf("make Workstation %s/%s the owner of secret %s: %w", ws.Namespace, ws.Name, key.Name, err)
	}
	if err := r.Create(ctx, secret); err != nil {
		if apierrors.IsAlreadyExists(err) {
			// Ours and not cached yet (the next try finds it), or someone
			// else's, without our label, which the operator cannot read.
			return nil, fmt.Errorf("secret %s exists but is not among the Secrets labelled %s=%s that the operator reads; "+
				"if it was not made by xdrive, delete it to have it made again", key, SecretLabelKey, SecretLabelValue)
		}
		return nil, fmt.Errorf("create secret %s: %w", key, err)
	}
	return secret, nil
}

func (r *Reconciler) forgetCredentials(uid types.UID) {
	r.credsMu.Lock()
	delete(r.creds, uid)
	r.credsMu.Unlock()
}
