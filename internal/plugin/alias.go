package plugin

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// The ssh alias: `Host NAME.NS.xdrive` reaches the Workstation's current
// instance through `kubectl xdrive proxy`, and checks its host key against
// the one `kubectl xdrive known-hosts` reads from status.ssh at connect
// time, strictly. A relaunch changes the address and the host key; the
// alias follows both, with nothing to run again.

type sshConfigFlags struct {
	keyDir  string
	user    string
	start   bool
	kubectl string
}

func (o *Options) sshConfigCmd() *cobra.Command {
	var f sshConfigFlags
	cmd := &cobra.Command{
		Use:   "ssh-config [NAME...]",
		Short: "Print ssh Host blocks (NAME.NAMESPACE.xdrive) that follow relaunches",
		Long: `Print an ssh_config Host block per Workstation of the namespace (or per NAME):
Host NAME.NAMESPACE.xdrive reaches the current instance through
"kubectl xdrive proxy" and checks its host key, strictly, against the one the
operator published for the current launch ("kubectl xdrive known-hosts").
The blocks stay valid across stops, interruptions and relaunches; VS Code
Remote-SSH and plain ssh keep working with nothing to run again.

Append the output to ~/.ssh/config, or save it and Include it.`,
		Example: `  kubectl xdrive ssh-config >> ~/.ssh/config && ssh dev.default.xdrive
  # once, at the top of ~/.ssh/config (before any Host line): Include xdrive-*
  kubectl xdrive ssh-config --start -n team-a > ~/.ssh/xdrive-team-a`,
		ValidArgsFunction: o.workstationArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.sshConfig(cmd.Context(), f, args)
		},
	}
	cmd.Flags().StringVar(&f.keyDir, "operator-key-dir", "",
		"write the operator's keys here and log in with them as root (needs get on Secrets)")
	cmd.Flags().StringVarP(&f.user, "user", "l", "", "user to log in as; default: the class's sshUser, or root with --operator-key-dir")
	cmd.Flags().BoolVar(&f.start, "start", false, "connecting starts a stopped Workstation and waits until it is Ready (proxy --start)")
	cmd.Flags().StringVar(&f.kubectl, "kubectl", "kubectl", "the kubectl that ssh runs for the proxy and the host key (looked up on PATH now; ssh needs an absolute path)")
	return cmd
}

func (o *Options) sshConfig(ctx context.Context, f sshConfigFlags, names []string) error {
	var list v1alpha1.WorkstationList
	if err := o.Client.List(ctx, &list, client.InNamespace(o.Namespace)); err != nil {
		return fmt.Errorf("listing Workstations in %s: %w", o.Namespace, err)
	}
	slices.SortFunc(list.Items, func(a, b v1alpha1.Workstation) int { return strings.Compare(a.Name, b.Name) })
	if len(names) > 0 {
		list.Items = slices.DeleteFunc(list.Items, func(ws v1alpha1.Workstation) bool { return !slices.Contains(names, ws.Name) })
		for _, n := range names {
			if !slices.ContainsFunc(list.Items, func(ws v1alpha1.Workstation) bool { return ws.Name == n }) {
				return fmt.Errorf("workstation %s/%s not found", o.Namespace, n)
			}
		}
	}
	// ssh runs a KnownHostsCommand only by an absolute path; the ProxyCommand
	// gets the same, so that an IDE's environment finds the same kubectl.
	kubectlPath, err := exec.LookPath(f.kubectl)
	if err == nil {
		kubectlPath, err = filepath.Abs(kubectlPath)
	}
	if err != nil {
		return fmt.Errorf("finding kubectl for the ssh alias (--kubectl): %w", err)
	}
	base := []string{kubectlPath, "xdrive"}
	base = append(base, o.kubeconfigArgs()...)
	quoted := make([]string, 0, len(base))
	for _, a := range base {
		q, err := commandArg(a)
		if err != nil {
			return fmt.Errorf("the ssh alias's command: %w", err)
		}
		quoted = append(quoted, q)
	}
	kubectl := strings.Join(quoted, " ")
	proxy := kubectl + " proxy"
	if f.start {
		proxy += " --start"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# kubectl xdrive ssh-config -n %s: each host key is read from the Workstation's status at connect time.\n", o.Namespace)
	for i := range list.Items {
		ws := &list.Items[i]
		user := o.user(ctx, ws, f.keyDir != "", f.user)
		if f.keyDir != "" && f.user == "" {
			user = "root" // the operator's key logs in as status.ssh.user, which a stopped Workstation lacks
		}
		a := alias(ws)
		fmt.Fprintf(&b, "\nHost %s\n  User %s\n  ProxyCommand %s %%h %%p\n  KnownHostsCommand %s known-hosts %%H\n"+
			"  HostKeyAlias %s\n  UserKnownHostsFile /dev/null\n  GlobalKnownHostsFile /dev/null\n"+
			"  StrictHostKeyChecking yes\n  UpdateHostKeys no\n  CheckHostIP no\n",
			a, user, proxy, kubectl, a)
		if f.keyDir != "" {
			id, err := o.writeOperatorKey(ctx, ws.Name, f.keyDir)
			if err != nil {
				return err
			}
			if id, err = sshPath(id); err != nil {
				return fmt.Errorf("--operator-key-dir: %w", err)
			}
			fmt.Fprintf(&b, "  IdentityFile %s\n  IdentitiesOnly yes\n", id)
		}
	}
	_, err = fmt.Fprint(o.Stdout, b.String())
	return err
}

func (o *Options) writeOperatorKey(ctx context.Context, name, dir string) (string, error) {
	key, err := o.operatorKey(ctx, name)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("--operator-key-dir: %w", err)
	}
	path, err := filepath.Abs(filepath.Join(dir, name+"."+o.Namespace+".key"))
	if err != nil {
		return "", fmt.Errorf("--operator-key-dir: %w", err)
	}
	if err := os.WriteFile(path, key, 0o600); err != nil {
		return "", fmt.Errorf("writing the operator's key for %s: %w", name, err)
	}
	return path, nil
}

func (o *Options) proxyCmd() *cobra.Command {
	var start bool
	cmd := &cobra.Command{
		Use:   "proxy HOST [PORT]",
		Short: "Connect stdin and stdout to a Workstation's sshd (an ssh ProxyCommand)",
		Long: `Connect stdin and stdout to the sshd of a Workstation's current instance: the
ProxyCommand of the Host blocks that ssh-config prints. HOST is
NAME.NAMESPACE.xdrive, or a Workstation's NAME in the current namespace.
With --start, a stopped Workstation is started first, and the proxy waits
until it is Ready; progress goes to stderr, which ssh shows.`,
		Example:           "  ssh -o 'ProxyCommand kubectl xdrive proxy --start %h %p' dev.default.xdrive",
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: o.workstationArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.proxy(cmd.Context(), args[0], start)
		},
	}
	cmd.Flags().BoolVar(&start, "start", false, "start a stopped Workstation and wait until it is Ready")
	return cmd
}

func (o *Options) proxy(ctx context.Context, host string, start bool) error {
	name, ns := o.parseAlias(host)
	o.Namespace = ns
	ws, err := o.workstation(ctx, name)
	if err != nil {
		return err
	}
	if !hasAccess(ws) && start {
		if ws, err = o.startAndWait(ctx, name, o.Stderr); err != nil {
			return err
		}
	}
	t, err := o.target(ws)
	if err != nil {
		return err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(t.host, t.port))
	if err != nil {
		return fmt.Errorf("connecting to Workstation %s: %w", ws.Name, err)
	}
	return pipe(conn, o.Stdin, o.Stdout)
}

// pipe copies in to conn and conn to out until conn's side ends.
func pipe(conn net.Conn, in io.Reader, out io.Writer) error {
	defer func() { _ = conn.Close() }()
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = io.Copy(conn, in)
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		}
	})
	_, err := io.Copy(out, conn)
	// ssh closed its side, or the server ended: either way the session is over.
	_ = conn.Close()
	return err
}

func (o *Options) knownHostsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "known-hosts HOST",
		Short: "Print the current launch's pinned host key (an ssh KnownHostsCommand)",
		Long: `Print a known_hosts line with the host key that the operator made for the
Workstation's current launch (status.ssh), for HOST, NAME.NAMESPACE.xdrive:
the KnownHostsCommand of the Host blocks that ssh-config prints. It prints
nothing while the Workstation has no running instance.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.workstationArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, ns := o.parseAlias(args[0])
			o.Namespace = ns
			ws, err := o.workstation(cmd.Context(), name)
			if err != nil {
				return err
			}
			t, err := o.target(ws)
			if err != nil {
				// No key to pin yet: ssh also asks before the proxy has started the Workstation.
				return nil
			}
			t.alias = args[0] // the name ssh looks up (%H)
			_, err = io.WriteString(o.Stdout, t.knownHostsLine())
			return err
		},
	}
}
