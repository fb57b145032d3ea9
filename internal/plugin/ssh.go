package plugin

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

func (o *Options) workstation(ctx context.Context, name string) (*v1alpha1.Workstation, error) {
	ws := &v1alpha1.Workstation{}
	if err := o.Client.Get(ctx, types.NamespacedName{Namespace: o.Namespace, Name: name}, ws); err != nil {
		return nil, fmt.Errorf("reading Workstation %s/%s: %w", o.Namespace, name, err)
	}
	return ws, nil
}

// target is how ssh reaches one Workstation's instance.
type target struct {
	alias, host, port, hostKey string
}

// alias names a Workstation in known_hosts and ssh config: stable across
// instances and addresses, so the pin never lands on another host's entry.
func alias(ws *v1alpha1.Workstation) string { return ws.Name + "." + ws.Namespace + ".xdrive" }

// parseAlias reads NAME.NAMESPACE.xdrive; a plain NAME is in the current namespace.
func (o *Options) parseAlias(host string) (name, namespace string) {
	if rest, ok := strings.CutSuffix(host, ".xdrive"); ok {
		if name, ns, ok := strings.Cut(rest, "."); ok {
			return name, ns
		}
	}
	return host, o.Namespace
}

// addresses is the address map, read again from its file if it has one
// (a relaunch gets a new address).
func (o *Options) addresses() map[string]string {
	if strings.HasPrefix(o.addressMap, "@") {
		if m, err := ParseAddressMap(o.addressMap); err == nil {
			return m
		}
	}
	return o.AddressMap
}

// hasAccess reports whether the Workstation runs an instance whose host key is published.
func hasAccess(ws *v1alpha1.Workstation) bool {
	st := ws.Status
	return st.Phase == v1alpha1.WorkstationPhaseRunning && st.SSH != nil && st.SSH.InstanceID == st.InstanceID && st.InstanceID != ""
}

func (o *Options) target(ws *v1alpha1.Workstation) (target, error) {
	st := ws.Status
	if !hasAccess(ws) {
		return target{}, fmt.Errorf("workstation %s is %s: no running instance with a published host key yet (kubectl xdrive start %s --wait)",
			ws.Name, orDash(string(st.Phase)), ws.Name)
	}
	addr := st.PublicIP
	if addr == "" {
		addr = st.PrivateIP
	}
	t := target{alias: alias(ws), host: addr, port: "22", hostKey: st.SSH.HostPublicKey}
	if to, ok := o.addresses()[addr]; ok {
		t.host, t.port, _ = net.SplitHostPort(to)
	}
	if t.host == "" {
		return target{}, fmt.Errorf("workstation %s has no IP address", ws.Name)
	}
	return t, nil
}

// knownHostsLine pins t's host key under its alias.
func (t target) knownHostsLine() string { return t.alias + " " + strings.TrimSpace(t.hostKey) + "\n" }

// user is who ssh logs in as: --user; with the operator's key, the user
// the operator publishes (root); else the class's sshUser, the image's
// default user, which has the user's own key (keyName).
func (o *Options) user(ctx context.Context, ws *v1alpha1.Workstation, operatorKey bool, flag string) string {
	switch {
	case flag != "":
		return flag
	case operatorKey && ws.Status.SSH != nil:
		return ws.Status.SSH.User
	case ws.Status.Class != nil && ws.Status.Class.SSHUser != "":
		return ws.Status.Class.SSHUser
	}
	// An operator older than status.class.sshUser: the class, if readable.
	if ws.Status.Class != nil {
		cls := &v1alpha1.WorkstationClass{}
		if err := o.Client.Get(ctx, types.NamespacedName{Name: ws.Status.Class.Name}, cls); err == nil && cls.Spec.SSHUser != "" {
			return cls.Spec.SSHUser
		}
	}
	return v1alpha1.DefaultSSHUser
}

// pinOptions make ssh check the host key against the pinned file only.
func pinOptions(alias, knownHosts string) ([]string, error) {
	kh, err := sshPath(knownHosts)
	if err != nil {
		return nil, err
	}
	return []string{
		"-o", "HostKeyAlias=" + alias, "-o", "UserKnownHostsFile=" + kh, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes", "-o", "UpdateHostKeys=no", "-o", "CheckHostIP=no",
	}, nil
}

// sshPath quotes a file path as ssh_config (and ssh -o) reads it: in double
// quotes, since a space would split it into two, with % doubled, since ssh
// expands %-tokens in these paths. ssh_config cannot quote a double quote or
// a line break, so a path with one is refused.
func sshPath(p string) (string, error) {
	if strings.ContainsAny(p, "\"\n\r") {
		return "", fmt.Errorf("path %q holds a double quote or a line break, which ssh's configuration cannot hold", p)
	}
	return `"` + strings.ReplaceAll(p, "%", "%%") + `"`, nil
}

// commandArg quotes one word of a ProxyCommand (run by the shell) or a
// KnownHostsCommand (split by ssh itself) so that both read it back as is:
// double quotes, and nothing either would expand inside them.
func commandArg(s string) (string, error) {
	// ssh expands % in these commands more than once, so no quoting of it holds.
	if strings.ContainsAny(s, "\"\\$`!%\n\r") {
		return "", fmt.Errorf("%q holds a character that an ssh command line cannot hold", s)
	}
	if s == "" || strings.ContainsAny(s, " \t'&|;<>()*?[]#~{}") {
		return `"` + s + `"`, nil
	}
	return s, nil
}

// session is a private temporary directory with the pinned known_hosts
// entry and, with --operator-key, the operator's key for the Workstation.
type session struct {
	dir  string
	args []string
}

type sessionFlags struct {
	operatorKey bool
	user        string
}

func (f *sessionFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.operatorKey, "operator-key", false,
		"log in as root with the operator's key for the Workstation, read from its Secret (needs get on Secrets)")
	cmd.Flags().StringVarP(&f.user, "user", "l", "",
		"user to log in as; default: the class's sshUser (e.g. ec2-user) with your own key, or root with --operator-key")
}

func (o *Options) session(ctx context.Context, ws *v1alpha1.Workstation, f sessionFlags) (*session, target, error) {
	t, err := o.target(ws)
	if err != nil {
		return nil, t, err
	}
	dir, err := os.MkdirTemp("", "kubectl-xdrive-")
	if err != nil {
		return nil, t, err
	}
	s := &session{dir: dir}
	if err := s.init(ctx, o, ws, t, f); err != nil {
		s.close()
		return nil, t, err
	}
	return s, t, nil
}

func (s *session) init(ctx context.Context, o *Options, ws *v1alpha1.Workstation, t target, f sessionFlags) error {
	kh := filepath.Join(s.dir, "known_hosts")
	if err := os.WriteFile(kh, []byte(t.knownHostsLine()), 0o600); err != nil {
		return err
	}
	pins, err := pinOptions(t.alias, kh)
	if err != nil {
		return err
	}
	s.args = append(pins, "-p", t.port, "-l", o.user(ctx, ws, f.operatorKey, f.user))
	if !f.operatorKey {
		return nil
	}
	key, err := o.operatorKey(ctx, ws.Name)
	if err != nil {
		return err
	}
	id := filepath.Join(s.dir, "id")
	if err := os.WriteFile(id, key, 0o600); err != nil {
		return err
	}
	quoted, err := sshPath(id)
	if err != nil {
		return err
	}
	s.args = append(s.args, "-o", "IdentityFile="+quoted, "-o", "IdentitiesOnly=yes")
	return nil
}

func (s *session) close() { _ = os.RemoveAll(s.dir) }

// operatorKey reads the operator's private key for a Workstation from its Secret.
func (o *Options) operatorKey(ctx context.Context, name string) ([]byte, error) {
	secret := &corev1.Secret{}
	key := types.NamespacedName{Namespace: o.Namespace, Name: v1alpha1.SSHSecretName(name)}
	if err := o.Client.Get(ctx, key, secret); err != nil {
		return nil, fmt.Errorf("reading the operator's key for %s (--operator-key): %w", name, err)
	}
	k := secret.Data[v1alpha1.SSHSecretClientKey]
	if len(k) == 0 {
		return nil, fmt.Errorf("secret %s has no %s", key, v1alpha1.SSHSecretClientKey)
	}
	return k, nil
}

func (o *Options) runSSH(ctx context.Context, args []string) error {
	c := exec.CommandContext(ctx, o.SSH, args...)
	c.Stdin, c.Stdout, c.Stderr = o.Stdin, o.Stdout, o.Stderr
	// Cancelled (a signal to the plugin), ssh is asked to end, then killed.
	c.Cancel = func() error { return c.Process.Signal(syscall.SIGTERM) }
	c.WaitDelay = 5 * time.Second
	return c.Run()
}

// splitDash splits a command's arguments at "--".
func splitDash(cmd *cobra.Command, args []string) (before, after []string) {
	if i := cmd.ArgsLenAtDash(); i >= 0 {
		return args[:i], args[i:]
	}
	return args, nil
}

func (o *Options) sshCmd() *cobra.Command {
	var f sessionFlags
	cmd := &cobra.Command{
		Use:   "ssh NAME [-- SSH ARGS...]",
		Short: "ssh to a Workstation's instance, its host key pinned from status.ssh",
		Long: `ssh to a Workstation's instance with the system's OpenSSH client. The host key
is the one the operator made for this launch and published in status.ssh:
it is pinned, never trusted on first use.

By default ssh logs in as the class's sshUser (the image's default user, e.g.
ec2-user) with your own keys (the class's or the Workstation's keyName).`,
		Example: `  kubectl xdrive ssh dev
  kubectl xdrive ssh dev -- -A nvidia-smi
  kubectl xdrive ssh dev --operator-key -n team-a`,
		ValidArgsFunction: o.workstationArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			pos, rest := splitDash(cmd, args)
			if len(pos) != 1 {
				return fmt.Errorf("ssh takes one Workstation name before --, got %d; see kubectl xdrive ssh --help", len(pos))
			}
			return o.sshTo(cmd.Context(), pos[0], f, func(_ *v1alpha1.Workstation, host string) []string {
				return append([]string{host}, rest...)
			})
		},
	}
	f.add(cmd)
	return cmd
}

func (o *Options) portForwardCmd() *cobra.Command {
	var f sessionFlags
	cmd := &cobra.Command{
		Use:               "port-forward NAME PORT[:LOCALPORT] [-- SSH ARGS...]",
		Short:             "Forward a port of a Workstation's instance to 127.0.0.1 over the pinned ssh",
		Example:           "  kubectl xdrive port-forward dev 8888\n  kubectl xdrive port-forward dev 8888:18888",
		ValidArgsFunction: o.workstationArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			pos, rest := splitDash(cmd, args)
			if len(pos) != 2 {
				return fmt.Errorf("port-forward takes a Workstation name and PORT[:LOCALPORT], got %d arguments", len(pos))
			}
			remote, local, err := parsePorts(pos[1])
			if err != nil {
				return err
			}
			return o.forward(cmd.Context(), pos[0], remote, local, f, rest, "")
		},
	}
	f.add(cmd)
	return cmd
}

// parsePorts reads PORT[:LOCALPORT].
func parsePorts(s string) (remote, local string, err error) {
	remote, local, _ = strings.Cut(s, ":")
	if local == "" {
		local = remote
	}
	for _, p := range []string{remote, local} {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", "", fmt.Errorf("bad port %q: want a number from 1 to 65535", p)
		}
	}
	return remote, local, nil
}

// forward runs ssh -L from 127.0.0.1:local to the instance's port remote;
// it says where, and what to open there (url, with LOCAL for the port).
func (o *Options) forward(ctx context.Context, name, remote, local string, f sessionFlags, rest []string, url string) error {
	return o.sshTo(ctx, name, f, func(ws *v1alpha1.Workstation, host string) []string {
		_, _ = fmt.Fprintf(o.Stderr, "Forwarding 127.0.0.1:%s to port %s of Workstation %s\n", local, remote, ws.Name)
		if url != "" {
			_, _ = fmt.Fprintf(o.Stdout, "%s\n", url)
		}
		fwd := []string{"-N", "-o", "ExitOnForwardFailure=yes", "-L", "127.0.0.1:" + local + ":127.0.0.1:" + remote}
		return append(append(fwd, rest...), host)
	})
}

// sshTo runs ssh to Workstation name's current instance, with the pinned
// session's options and then what args returns (the host among them).
func (o *Options) sshTo(ctx context.Context, name string, f sessionFlags, args func(ws *v1alpha1.Workstation, host string) []string) error {
	ws, err := o.workstation(ctx, name)
	if err != nil {
		return err
	}
	s, t, err := o.session(ctx, ws, f)
	if err != nil {
		return err
	}
	defer s.close()
	return o.runSSH(ctx, append(s.args, args(ws, t.host)...))
}
