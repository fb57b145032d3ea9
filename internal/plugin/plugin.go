// Package plugin is `kubectl xdrive` (cmd/kubectl-xdrive): ssh, port-forward
// and ssh-config with the host key the operator publishes in
// status.ssh.hostPublicKey (pinned, never trusted on first use), start, stop
// and status. It runs the system's OpenSSH client.
package plugin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// AddressMapEnv holds address=host:port pairs, comma-separated: ssh dials
// host:port instead of an instance address (tests and the demo: 127.0.0.1).
const AddressMapEnv = "XDRIVE_ADDRESS_MAP"

// Usage is the plugin's help text.
const Usage = `kubectl xdrive: reach and control xdrive Workstations.

Commands:
  ssh NAME [--operator-key] [--user U] [-- SSH ARGS]
                                            ssh to the instance, its host key pinned from status.ssh
  port-forward NAME PORT[:LOCALPORT]        forward a port of the instance over ssh (same flags)
  ssh-config [--known-hosts FILE]           Host blocks for every Workstation in the namespace
  start NAME                                spec.state=Running, and the xdrive.io/resume annotation
  stop NAME                                 spec.state=Stopped
  status NAME                               phase, drive, snapshot age, price, cost so far, endpoints

Global flags: -n/--namespace, --kubeconfig, --context, --address-map ADDR=HOST:PORT,...
--operator-key logs in with the operator's per-Workstation key, read from its
Secret (needs get on Secrets in the namespace); otherwise ssh uses your own
keys (the class's or the Workstation's keyName).
`

// Options are what a command runs with.
type Options struct {
	Client    client.Client
	Namespace string
	Stdin     io.Reader
	Stdout    io.Writer
	Stderr    io.Writer
	// AddressMap maps an instance address to the host:port dialled instead.
	AddressMap map[string]string
	// SSH is the ssh binary; "ssh" if empty.
	SSH string
	// Now is the clock of start and status; time.Now if nil.
	Now func() time.Time
}

// ParseAddressMap parses "addr=host:port,addr2=host2:port2".
func ParseAddressMap(s string) (map[string]string, error) {
	m := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		addr, to, ok := strings.Cut(pair, "=")
		if _, _, err := net.SplitHostPort(to); !ok || addr == "" || err != nil {
			return nil, fmt.Errorf("address map entry %q: want ADDRESS=HOST:PORT", pair)
		}
		m[addr] = to
	}
	return m, nil
}

// Run runs one command: args[0] is its name.
func Run(ctx context.Context, o Options, args []string) error {
	if len(args) == 0 {
		return errors.New("no command given; see kubectl xdrive help")
	}
	if o.SSH == "" {
		o.SSH = "ssh"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "ssh":
		return o.sshCommand(ctx, args)
	case "port-forward":
		return o.portForward(ctx, args)
	case "ssh-config":
		return o.sshConfig(ctx, args)
	case "start", "stop":
		return o.setState(ctx, cmd, args)
	case "status":
		return o.status(ctx, args)
	case "help", "-h", "--help":
		_, err := io.WriteString(o.Stdout, Usage)
		return err
	}
	return fmt.Errorf("unknown command %q; see kubectl xdrive help", cmd)
}

// parse parses flags anywhere before "--"; it returns the positional
// arguments and those after "--".
func parse(fs *flag.FlagSet, args []string) (positional, rest []string, err error) {
	fs.SetOutput(io.Discard)
	if i := slices.Index(args, "--"); i >= 0 {
		args, rest = args[:i], args[i+1:]
	}
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return nil, nil, err
		}
		args = fs.Args()
		if len(args) > 0 {
			positional = append(positional, args[0])
			args = args[1:]
		}
	}
	return positional, rest, nil
}

func usageError(usage string, err error) error {
	if err != nil {
		return fmt.Errorf("usage: %s: %w", usage, err)
	}
	return errors.New("usage: " + usage)
}

func (o Options) workstation(ctx context.Context, name string) (*v1alpha1.Workstation, error) {
	ws := &v1alpha1.Workstation{}
	if err := o.Client.Get(ctx, types.NamespacedName{Namespace: o.Namespace, Name: name}, ws); err != nil {
		return nil, fmt.Errorf("reading Workstation %s/%s: %w", o.Namespace, name, err)
	}
	return ws, nil
}

// target is how ssh reaches one Workstation's instance.
type target struct {
	alias, host, port, user, hostKey string
}

// alias names a Workstation in known_hosts and ssh config: stable across
// instances and addresses, so the pin never lands on another host's entry.
func alias(ws *v1alpha1.Workstation) string { return ws.Name + "." + ws.Namespace + ".xdrive" }

func (o Options) target(ws *v1alpha1.Workstation) (target, error) {
	st := ws.Status
	if st.Phase != v1alpha1.WorkstationPhaseRunning || st.SSH == nil || st.SSH.InstanceID != st.InstanceID {
		return target{}, fmt.Errorf("workstation %s is %s: no running instance with a published host key yet (kubectl xdrive start %s)",
			ws.Name, orDash(string(st.Phase)), ws.Name)
	}
	addr := st.PublicIP
	if addr == "" {
		addr = st.PrivateIP
	}
	t := target{alias: alias(ws), host: addr, port: "22", user: st.SSH.User, hostKey: st.SSH.HostPublicKey}
	if to, ok := o.AddressMap[addr]; ok {
		t.host, t.port, _ = net.SplitHostPort(to)
	}
	if t.host == "" {
		return target{}, fmt.Errorf("workstation %s has no IP address", ws.Name)
	}
	return t, nil
}

// knownHostsLine pins t's host key under its alias.
func (t target) knownHostsLine() string { return t.alias + " " + strings.TrimSpace(t.hostKey) + "\n" }

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

// session is a private temporary directory with the pinned known_hosts
// entry and, with --operator-key, the operator's key for the Workstation.
type session struct {
	dir  string
	args []string
}

func (o Options) session(ctx context.Context, ws *v1alpha1.Workstation, operatorKey bool, user string) (*session, target, error) {
	t, err := o.target(ws)
	if err != nil {
		return nil, t, err
	}
	if user != "" {
		t.user = user
	}
	dir, err := os.MkdirTemp("", "kubectl-xdrive-")
	if err != nil {
		return nil, t, err
	}
	s := &session{dir: dir}
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, []byte(t.knownHostsLine()), 0o600); err != nil {
		s.close()
		return nil, t, err
	}
	pins, err := pinOptions(t.alias, kh)
	if err != nil {
		s.close()
		return nil, t, err
	}
	s.args = append(pins, "-p", t.port, "-l", t.user)
	if operatorKey {
		key, err := o.operatorKey(ctx, ws.Name)
		if err != nil {
			s.close()
			return nil, t, err
		}
		id := filepath.Join(dir, "id")
		if err := os.WriteFile(id, key, 0o600); err != nil {
			s.close()
			return nil, t, err
		}
		quoted, err := sshPath(id)
		if err != nil {
			s.close()
			return nil, t, err
		}
		s.args = append(s.args, "-o", "IdentityFile="+quoted, "-o", "IdentitiesOnly=yes")
	}
	return s, t, nil
}

func sessionFlags(fs *flag.FlagSet) (operatorKey *bool, user *string) {
	return fs.Bool("operator-key", false, "log in with the operator's key for the Workstation"),
		fs.String("user", "", "user to log in as (e.g. ec2-user with your keyName); status.ssh.user if empty")
}

func (s *session) close() { _ = os.RemoveAll(s.dir) }

func (o Options) run(ctx context.Context, args []string) error {
	c := exec.CommandContext(ctx, o.SSH, args...)
	c.Stdin, c.Stdout, c.Stderr = o.Stdin, o.Stdout, o.Stderr
	// Cancelled (a signal to the plugin), ssh is asked to end, then killed.
	c.Cancel = func() error { return c.Process.Signal(syscall.SIGTERM) }
	c.WaitDelay = 5 * time.Second
	return c.Run()
}

func (o Options) sshCommand(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ssh", flag.ContinueOnError)
	operatorKey, user := sessionFlags(fs)
	pos, rest, err := parse(fs, args)
	if err != nil || len(pos) != 1 {
		return usageError("kubectl xdrive ssh NAME [--operator-key] [--user USER] [-- SSH ARGS]", err)
	}
	ws, err := o.workstation(ctx, pos[0])
	if err != nil {
		return err
	}
	s, t, err := o.session(ctx, ws, *operatorKey, *user)
	if err != nil {
		return err
	}
	defer s.close()
	return o.run(ctx, append(append(s.args, t.host), rest...))
}

func (o Options) portForward(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("port-forward", flag.ContinueOnError)
	operatorKey, user := sessionFlags(fs)
	pos, rest, err := parse(fs, args)
	if err != nil || len(pos) != 2 {
		return usageError("kubectl xdrive port-forward NAME PORT[:LOCALPORT] [--operator-key] [--user USER]", err)
	}
	remote, local, _ := strings.Cut(pos[1], ":")
	if local == "" {
		local = remote
	}
	for _, p := range []string{remote, local} {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port-forward: bad port %q", p)
		}
	}
	ws, err := o.workstation(ctx, pos[0])
	if err != nil {
		return err
	}
	s, t, err := o.session(ctx, ws, *operatorKey, *user)
	if err != nil {
		return err
	}
	defer s.close()
	_, _ = fmt.Fprintf(o.Stderr, "Forwarding 127.0.0.1:%s to port %s of Workstation %s\n", local, remote, ws.Name)
	fwd := append(s.args, "-N", "-o", "ExitOnForwardFailure=yes", "-L", "127.0.0.1:"+local+":127.0.0.1:"+remote)
	return o.run(ctx, append(append(fwd, rest...), t.host))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
