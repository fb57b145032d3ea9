package v1alpha1

// Names that the operator and its users (and the kubectl plugin) share. They
// live here, not in the controllers, so that the plugin can use them without
// linking the controllers or the AWS SDK.

// SSHSecretName is the Secret, in the Workstation's namespace, that holds the
// operator's SSH keys for the Workstation ws. The Workstation controller makes
// it; `kubectl xdrive ssh --operator-key` reads it.
func SSHSecretName(ws string) string { return ws + "-xdrive-ssh" }

// SSHSecretClientKey is the key of the operator's private SSH key in the
// Secret SSHSecretName.
const SSHSecretClientKey = "client-key"

// DefaultSSHUser is a WorkstationClass's sshUser when it sets none: Amazon Linux's default user.
const DefaultSSHUser = "ec2-user"
