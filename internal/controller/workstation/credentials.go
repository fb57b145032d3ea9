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
	"github.com/xdrive-io/xdrive/internal/instances"
	"github.com/xdrive-io/xdrive/internal/sshx"
)

// Keys of the per-Workstation SSH Secret.
const (
	secretClientKey = "client-key"
	secretClientPub = "client-key.pub"
	secretHostKey   = "host-key"
	secretHostPub   = "host-key.pub"
)

// Credentials are the operator's SSH identity for one Workstation and the
// host key it hands to, and pins for, the Workstation's instances.
type Credentials struct {
	ClientKey     []byte
	AuthorizedKey string
	HostKey       []byte
	HostPublicKey string
}

func (c Credentials) target(inst instances.Instance) agent.Target {
	addr := inst.PublicIP
	if addr == "" {
		addr = inst.PrivateIP
	}
	return agent.Target{Address: addr, HostKey: c.HostPublicKey, ClientKey: c.ClientKey}
}

// SSHSecretName is the Secret that holds a Workstation's SSH keys.
func SSHSecretName(ws string) string { return ws + "-xdrive-ssh" }

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
	key := types.NamespacedName{Namespace: ws.Namespace, Name: SSHSecretName(ws.Name)}
	secret := &corev1.Secret{}
	err := r.Get(ctx, key, secret)
	if apierrors.IsNotFound(err) {
		secret, err = r.createSSHSecret(ctx, ws, key)
	}
	if err != nil {
		return Credentials{}, err
	}
	c = Credentials{
		ClientKey: secret.Data[secretClientKey], AuthorizedKey: string(secret.Data[secretClientPub]),
		HostKey: secret.Data[secretHostKey], HostPublicKey: string(secret.Data[secretHostPub]),
	}
	if len(c.ClientKey) == 0 || len(c.HostKey) == 0 {
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
		return nil, err
	}
	hostKey, hostPub, err := sshx.GenerateKey()
	if err != nil {
		return nil, err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
			Labels: map[string]string{SecretLabelKey: SecretLabelValue}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			secretClientKey: clientKey, secretClientPub: []byte(clientPub),
			secretHostKey: hostKey, secretHostPub: []byte(hostPub),
		},
	}
	if err := controllerutil.SetControllerReference(ws, secret, r.Scheme()); err != nil {
		return nil, err
	}
	if err := r.Create(ctx, secret); err != nil {
		if apierrors.IsAlreadyExists(err) {
			// Ours and not cached yet (the next try finds it), or someone
			// else's, without our label, which the operator cannot read.
			return nil, fmt.Errorf("secret %s exists but is not among the Secrets labelled %s=%s that the operator reads; "+
				"if it was not made by xdrive, delete it to have it made again", key, SecretLabelKey, SecretLabelValue)
		}
		return nil, err
	}
	return secret, nil
}

func (r *Reconciler) forgetCredentials(uid types.UID) {
	r.credsMu.Lock()
	delete(r.creds, uid)
	r.credsMu.Unlock()
}
