// Package plugin is `kubectl xdrive` (cmd/kubectl-xdrive): ssh, port-forward,
// an ssh alias and its proxy, with the host key the operator publishes in
// status.ssh.hostPublicKey (pinned, never trusted on first use); start, stop,
// status, list, logs and open. It runs the system's OpenSSH client, and
// takes kubectl's flags (-n, --context, --kubeconfig...) anywhere.
package plugin

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// AddressMapEnv holds address=host:port pairs, comma-separated: ssh dials
// host:port instead of an instance address (tests and the demo: 127.0.0.1).
// A value starting with @ names a file holding such pairs, read at each use.
const AddressMapEnv = "XDRIVE_ADDRESS_MAP"

// Options are what a command runs with. Run and NewCommand fill in what is
// left empty: the client and namespace from kubectl's flags, the streams
// from the process, ssh from PATH, the clock.
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
	// Poll is how often --wait and --watch read the objects; 1s if zero.
	Poll time.Duration
	// Version is what --version prints.
	Version string

	// flags are kubectl's own, when the client is made from them.
	flags *genericclioptions.ConfigFlags
	// addressMap is the --address-map flag.
	addressMap string
}

// ParseAddressMap parses "addr=host:port,addr2=host2:port2", or "@FILE"
// holding such pairs separated by commas or lines.
func ParseAddressMap(s string) (map[string]string, error) {
	if file, ok := strings.CutPrefix(s, "@"); ok {
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading the address map: %w", err)
		}
		s = strings.ReplaceAll(string(raw), "\n", ",")
	}
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

// Run runs one command line (without the program's name) to its end.
func Run(ctx context.Context, o Options, args []string) error {
	cmd := NewCommand(&o)
	cmd.SetArgs(args)
	return cmd.ExecuteContext(ctx)
}

// NewCommand is `kubectl xdrive` and its subcommands.
func NewCommand(o *Options) *cobra.Command {
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.SSH == "" {
		o.SSH = "ssh"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	root := &cobra.Command{
		Use:   "kubectl-xdrive",
		Short: "Reach and control xdrive Workstations",
		Long: `kubectl xdrive reaches and controls xdrive Workstations: ssh with the host key
the operator pins, an ssh alias that follows relaunches, start and stop with
progress, status, list, logs and open.`,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl xdrive"},
		Version:       o.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return o.complete(cmd)
		},
	}
	root.SetIn(o.Stdin)
	root.SetOut(o.Stdout)
	root.SetErr(o.Stderr)
	// Not persistent: a loader made before the flags are parsed (completion) would keep their defaults.
	o.flags = genericclioptions.NewConfigFlags(false)
	// --user is ssh's login user here, as in ssh -l; the kubeconfig's user is --context's.
	o.flags.AuthInfoName = nil
	o.flags.AddFlags(root.PersistentFlags())
	root.PersistentFlags().StringVar(&o.addressMap, "address-map", os.Getenv(AddressMapEnv),
		"ADDR=HOST:PORT,... (or @FILE): dial HOST:PORT instead of an instance's address (tests, demos); default $"+AddressMapEnv)
	_ = root.PersistentFlags().MarkHidden("address-map")
	_ = root.RegisterFlagCompletionFunc("namespace", o.completeNamespaces)
	root.AddCommand(o.sshCmd(), o.portForwardCmd(), o.sshConfigCmd(), o.proxyCmd(), o.knownHostsCmd(),
		o.startCmd(), o.stopCmd(), o.statusCmd(), o.listCmd(), o.logsCmd(), o.openCmd(), o.snapshotsCmd(), o.rollbackCmd(), o.costCmd(), optionsCmd(root))
	// As kubectl's: each command's help lists its own flags; "options" lists kubectl's.
	root.SetUsageTemplate(usageTemplate)
	return root
}

const usageTemplate = `Usage:{{if .Runnable}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [command]{{end}}{{if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Available Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalNonPersistentFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}

Use "kubectl xdrive options" for a list of global command-line options (applies to all commands).{{if .HasAvailableSubCommands}}
Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}
`

// optionsCmd prints kubectl's flags, which every command takes.
func optionsCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "options",
		Short: "Print the flags every command takes (kubectl's: -n, --context, --kubeconfig...)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "The following options can be passed to any command:\n\n%s", root.PersistentFlags().FlagUsages())
			return err
		},
	}
}

// complete makes the client and reads the namespace, from kubectl's flags,
// unless the Options came with them (a flag given still wins).
func (o *Options) complete(cmd *cobra.Command) error {
	if o.addressMap != "" {
		m, err := ParseAddressMap(o.addressMap)
		if err != nil {
			return err
		}
		o.AddressMap = m
	}
	if o.Client != nil && !cmd.Flags().Changed("namespace") {
		return nil
	}
	loader := o.flags.ToRawKubeConfigLoader()
	ns, _, err := loader.Namespace()
	if err != nil {
		return fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	o.Namespace = ns
	if o.Client != nil {
		return nil
	}
	rest, err := o.flags.ToRESTConfig()
	if err != nil {
		return fmt.Errorf("reading the kubeconfig: %w", err)
	}
	if o.Client, err = client.New(rest, client.Options{Scheme: scheme()}); err != nil {
		return fmt.Errorf("making a client for %s: %w", rest.Host, err)
	}
	return nil
}

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = v1alpha1.AddToScheme(s)
	return s
}

// kubeconfigArgs are the flags that point another `kubectl xdrive` (an ssh
// ProxyCommand) at the same cluster and namespace as this one.
func (o *Options) kubeconfigArgs() []string {
	var args []string
	if f := o.flags; f != nil {
		kubeconfig := ""
		if f.KubeConfig != nil {
			kubeconfig = *f.KubeConfig
		}
		// $KUBECONFIG too, when it names one file: an IDE that runs ssh may not have it.
		if env := os.Getenv("KUBECONFIG"); kubeconfig == "" && env != "" && !strings.Contains(env, string(os.PathListSeparator)) {
			kubeconfig = env
		}
		if kubeconfig != "" {
			if abs, err := filepath.Abs(kubeconfig); err == nil {
				kubeconfig = abs
			}
			args = append(args, "--kubeconfig", kubeconfig)
		}
		ctx := ""
		if f.Context != nil {
			ctx = *f.Context
		}
		if ctx == "" {
			if raw, err := f.ToRawKubeConfigLoader().RawConfig(); err == nil {
				ctx = raw.CurrentContext
			}
		}
		if ctx != "" {
			args = append(args, "--context", ctx)
		}
	}
	return args
}

// workstationArg completes a command's first argument with the namespace's Workstations.
func (o *Options) workstationArg(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	if err := o.complete(cmd); err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var list v1alpha1.WorkstationList
	if err := o.Client.List(cmd.Context(), &list, client.InNamespace(o.Namespace)); err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	names := make([]string, 0, len(list.Items))
	for _, ws := range list.Items {
		names = append(names, ws.Name+"\t"+string(ws.Status.Phase))
	}
	slices.Sort(names)
	return names, cobra.ShellCompDirectiveNoFileComp
}

func (o *Options) completeNamespaces(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	if err := o.complete(cmd); err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var list corev1.NamespaceList
	if err := o.Client.List(cmd.Context(), &list); err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var names []string
	for _, ns := range list.Items {
		names = append(names, ns.Name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
