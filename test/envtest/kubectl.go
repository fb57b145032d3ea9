package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Kubectl runs the kubectl that hack/envtest-assets.sh builds next to
// kube-apiserver (in KUBEBUILDER_ASSETS, the same version) against an Env, as
// a user would: through a kubeconfig, with its own HOME (so its own discovery
// cache and no kuberc) and nothing else from the caller's environment.
type Kubectl struct {
	// Path is the kubectl binary.
	Path string
	// Kubeconfig is the kubeconfig file it uses.
	Kubeconfig string
	// Home is its HOME: its discovery cache lives there, shared by its runs.
	Home string
}

// KubectlPath returns $KUBEBUILDER_ASSETS/kubectl. When it is missing the test
// is skipped, or failed when CI=true. The kubectl on the PATH is never used:
// its version need not match the API server's.
func KubectlPath(t testing.TB) string {
	t.Helper()
	RequireAssets(t)
	path := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return path
	}
	msg := path + " is missing; run hack/envtest-assets.sh, which builds it next to kube-apiserver"
	if InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// WriteKubeconfig writes a kubeconfig for cfg (a client-certificate or token
// config, as envtest gives) to path, with namespace as its default namespace.
func WriteKubeconfig(cfg *rest.Config, namespace, path string) error {
	server := cfg.Host
	if !strings.Contains(server, "://") {
		server = "https://" + server
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{
		Server:                   server + cfg.APIPath,
		CertificateAuthorityData: cfg.CAData,
		CertificateAuthority:     cfg.CAFile,
		InsecureSkipTLSVerify:    cfg.Insecure,
	}
	kc.AuthInfos["envtest"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData,
		ClientCertificate:     cfg.CertFile,
		ClientKeyData:         cfg.KeyData,
		ClientKey:             cfg.KeyFile,
		Token:                 cfg.BearerToken,
	}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "envtest", Namespace: namespace}
	kc.CurrentContext = "envtest"
	return clientcmd.WriteToFile(*kc, path)
}

// Kubectl returns a kubectl for e's admin user whose default namespace is
// namespace. It skips t (or fails it in CI) when kubectl was not built.
func (e *Env) Kubectl(t testing.TB, namespace string) *Kubectl {
	t.Helper()
	k := &Kubectl{Path: KubectlPath(t), Home: t.TempDir()}
	k.Kubeconfig = filepath.Join(k.Home, "kubeconfig")
	if err := WriteKubeconfig(e.Config, namespace, k.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	return k
}

// Run runs kubectl with args and the extra environment variables env
// ("NAME=value"), and returns its stdout and stderr. err is set when kubectl
// fails or takes more than a minute.
func (k *Kubectl) Run(env []string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.Path, args...)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + k.Home,
		"KUBECONFIG=" + k.Kubeconfig,
		"LANG=C",
		"TMPDIR=" + k.Home, // kubectl edit writes its files there
	}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err = cmd.Run(); err != nil {
		err = fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), errOut.String(), err
}

// MustRun runs kubectl with args and returns its stdout; it fails t if kubectl fails.
func (k *Kubectl) MustRun(t testing.TB, args ...string) string {
	t.Helper()
	out, _, err := k.Run(nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Table is one table of `kubectl get` output.
type Table struct {
	// Header holds the column names: NAME, READY...
	Header []string
	// Rows map each column name to the row's cell.
	Rows []map[string]string
}

// ParseTables reads the tables `kubectl get` prints, one per resource type,
// separated by blank lines. kubectl aligns every cell with its column's
// header, so an empty cell reads as "".
func ParseTables(out string) ([]Table, error) {
	var tables []Table
	var starts []int
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" {
			starts = nil
			continue
		}
		if starts == nil {
			// A header is one word; its column starts where it does.
			for i := range line {
				if line[i] != ' ' && (i == 0 || line[i-1] == ' ') {
					starts = append(starts, i)
				}
			}
			tables = append(tables, Table{Header: strings.Fields(line)})
			continue
		}
		tb := &tables[len(tables)-1]
		row := map[string]string{}
		for j, start := range starts {
			if start > 0 && start < len(line) && line[start-1] != ' ' {
				return nil, fmt.Errorf("a cell of column %s does not start where its header does:\n%s", tb.Header[j], out)
			}
			end := len(line)
			if j+1 < len(starts) {
				end = min(end, starts[j+1])
			}
			row[tb.Header[j]] = ""
			if start < end {
				row[tb.Header[j]] = strings.TrimSpace(line[start:end])
			}
		}
		tb.Rows = append(tb.Rows, row)
	}
	return tables, nil
}

// Get runs `kubectl get args...` and returns its tables; it fails t if kubectl fails.
func (k *Kubectl) Get(t testing.TB, args ...string) ([]Table, string) {
	t.Helper()
	out := k.MustRun(t, append([]string{"get"}, args...)...)
	tables, err := ParseTables(out)
	if err != nil {
		t.Fatal(err)
	}
	return tables, out
}

var age = regexp.MustCompile(`^[0-9]+(s|m[0-9]*s?)$`)

// ExpectRow fails t unless tb's columns are columns, which end in AGE, and
// it holds one row, whose cells before AGE are want and whose AGE is a few
// seconds or minutes.
func ExpectRow(t testing.TB, tb Table, columns, want []string) {
	t.Helper()
	if !slices.Equal(tb.Header, columns) || columns[len(columns)-1] != "AGE" {
		t.Errorf("columns = %q, want %q", tb.Header, columns)
		return
	}
	if len(tb.Rows) != 1 {
		t.Errorf("%d rows, want 1", len(tb.Rows))
		return
	}
	row := tb.Rows[0]
	var got []string
	for _, c := range columns[:len(columns)-1] {
		got = append(got, row[c])
	}
	if !slices.Equal(got, want) {
		t.Errorf("row = %q, want %q (columns %q)", got, want, columns[:len(columns)-1])
	}
	if !age.MatchString(row["AGE"]) {
		t.Errorf("AGE = %q", row["AGE"])
	}
}
