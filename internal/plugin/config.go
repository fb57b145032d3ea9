package plugin

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

// operatorKey reads the operator's private key for a Workstation from its Secret.
func (o Options) operatorKey(ctx context.Context, name string) ([]byte, error) {
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

// sshConfig prints a Host block per running Workstation of the namespace and
// writes their pinned host keys to one known_hosts file.
func (o Options) sshConfig(ctx context.Context, args []string) error {
	home, _ := os.UserHomeDir()
	fs := flag.NewFlagSet("ssh-config", flag.ContinueOnError)
	knownHosts := fs.String("known-hosts", filepath.Join(home, ".ssh", "xdrive_known_hosts"), "file the pinned host keys are written to")
	keyDir := fs.String("operator-key-dir", "", "write the operator's keys here and use them (needs get on Secrets)")
	pos, _, err := parse(fs, args)
	if err != nil || len(pos) != 0 {
		return usageError("kubectl xdrive ssh-config [--known-hosts FILE] [--operator-key-dir DIR]", err)
	}
	var list v1alpha1.WorkstationList
	if err := o.Client.List(ctx, &list, client.InNamespace(o.Namespace)); err != nil {
		return fmt.Errorf("listing Workstations in %s: %w", o.Namespace, err)
	}
	slices.SortFunc(list.Items, func(a, b v1alpha1.Workstation) int { return strings.Compare(a.Name, b.Name) })
	kh, err := filepath.Abs(*knownHosts)
	if err != nil {
		return fmt.Errorf("--known-hosts: %w", err)
	}
	khQuoted, err := sshPath(kh)
	if err != nil {
		return fmt.Errorf("--known-hosts: %w", err)
	}
	pins := readPins(kh, o.Namespace)
	var b strings.Builder
	fmt.Fprintf(&b, "# kubectl xdrive ssh-config -n %s; host keys pinned in %s\n", o.Namespace, kh)
	for i := range list.Items {
		ws := &list.Items[i]
		t, err := o.target(ws)
		if err != nil {
			fmt.Fprintf(&b, "# %s: %v\n", ws.Name, err)
			continue
		}
		pins = append(pins, t.knownHostsLine())
		fmt.Fprintf(&b, "\nHost %s\n  HostName %s\n  Port %s\n  User %s\n  HostKeyAlias %s\n  UserKnownHostsFile %s\n"+
			"  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  UpdateHostKeys no\n  CheckHostIP no\n",
			t.alias, t.host, t.port, t.user, t.alias, khQuoted)
		if *keyDir != "" {
			id, err := o.writeOperatorKey(ctx, ws.Name, *keyDir)
			if err != nil {
				return err
			}
			if id, err = sshPath(id); err != nil {
				return fmt.Errorf("--operator-key-dir: %w", err)
			}
			fmt.Fprintf(&b, "  IdentityFile %s\n  IdentitiesOnly yes\n", id)
		}
	}
	if err := os.MkdirAll(filepath.Dir(kh), 0o700); err != nil {
		return fmt.Errorf("writing the pinned host keys: %w", err)
	}
	if err := os.WriteFile(kh, []byte(strings.Join(pins, "")), 0o600); err != nil {
		return fmt.Errorf("writing the pinned host keys: %w", err)
	}
	_, err = fmt.Fprint(o.Stdout, b.String())
	return err
}

// readPins keeps the known_hosts lines of other namespaces; this namespace's are written afresh.
func readPins(path, namespace string) []string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var keep []string
	for _, line := range strings.SplitAfter(string(raw), "\n") {
		host, _, _ := strings.Cut(line, " ")
		if strings.TrimSpace(line) != "" && !strings.HasSuffix(host, "."+namespace+".xdrive") {
			keep = append(keep, strings.TrimRight(line, "\n")+"\n")
		}
	}
	return keep
}

func (o Options) writeOperatorKey(ctx context.Context, name, dir string) (string, error) {
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
