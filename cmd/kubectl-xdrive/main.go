// Command kubectl-xdrive is the kubectl plugin `kubectl xdrive`: ssh,
// port-forward and ssh-config with the host key the operator pins, start,
// stop and status of Workstations. Install: go install ./cmd/kubectl-xdrive
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/plugin"
)

func main() {
	err := run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		os.Exit(exit.ExitCode()) // ssh's own status; it said why on stderr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubectl xdrive:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("kubectl-xdrive", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, plugin.Usage) }
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	overrides := &clientcmd.ConfigOverrides{}
	fs.StringVar(&rules.ExplicitPath, "kubeconfig", "", "path to the kubeconfig file")
	fs.StringVar(&overrides.CurrentContext, "context", "", "kubeconfig context")
	fs.StringVar(&overrides.Context.Namespace, "namespace", "", "namespace")
	fs.StringVar(&overrides.Context.Namespace, "n", "", "namespace (short)")
	addressMap := fs.String("address-map", os.Getenv(plugin.AddressMapEnv), "ADDR=HOST:PORT,... dial HOST:PORT instead of an instance address (tests, demos); default $"+plugin.AddressMapEnv)
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if args := fs.Args(); len(args) == 0 || args[0] == "help" {
		fmt.Print(plugin.Usage)
		return nil
	}
	addrs, err := plugin.ParseAddressMap(*addressMap)
	if err != nil {
		return err
	}
	cfg := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	ns, _, err := cfg.Namespace()
	if err != nil {
		return err
	}
	rest, err := cfg.ClientConfig()
	if err != nil {
		return err
	}
	scheme := clientgoscheme.Scheme
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	c, err := client.New(rest, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	// A hang-up or kill ends ssh and the command, whose deferred clean-up
	// then removes the session's files (with --operator-key, a root key).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	return plugin.Run(ctx, plugin.Options{
		Client: c, Namespace: ns, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, AddressMap: addrs,
	}, fs.Args())
}
