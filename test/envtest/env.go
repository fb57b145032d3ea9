// Package testenv starts a real kube-apiserver and etcd (controller-runtime
// envtest) with the xdrive CRDs from config/crd/bases installed.
//
// The binaries come from KUBEBUILDER_ASSETS (see hack/envtest-assets.sh).
// When it is unset, tests are skipped, or failed when CI=true.
package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	xdrivev1alpha1 "github.com/xdrive-io/xdrive/api/v1alpha1"
)

// SystemNamespace is the namespace config/default deploys the manager into.
const SystemNamespace = "xdrive-system"

// Env is a running control plane with the xdrive CRDs installed.
type Env struct {
	// Config is an admin (system:masters) config for the API server.
	Config *rest.Config
	// Client is a plain (uncached) client using Scheme.
	Client client.Client
	// Scheme holds the built-in, apiextensions and xdrive types.
	Scheme *runtime.Scheme

	env *envtest.Environment
}

// NewScheme returns a scheme with the built-in, apiextensions/v1 and xdrive.io/v1alpha1 types.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme,
		apiextensionsv1.AddToScheme,
		xdrivev1alpha1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

// RepoRoot returns the module root (the directory holding go.mod).
func RepoRoot() string {
	if dir, err := os.Getwd(); err == nil {
		for d := dir; ; d = filepath.Dir(d) {
			if isModuleRoot(d) {
				return d
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func isModuleRoot(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	return err == nil && strings.Contains(string(b), "module github.com/xdrive-io/xdrive\n")
}

// CRDDir is config/crd/bases.
func CRDDir() string { return filepath.Join(RepoRoot(), "config", "crd", "bases") }

// InCI reports whether CI=true.
func InCI() bool { return os.Getenv("CI") == "true" }

// RequireAssets skips t when KUBEBUILDER_ASSETS is unset, or fails it when
// CI=true. With -short (make test-unit) it always skips t.
func RequireAssets(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no control plane")
	}
	if os.Getenv("KUBEBUILDER_ASSETS") != "" {
		return
	}
	const msg = "KUBEBUILDER_ASSETS is unset; run `make test` or set it to the output of hack/envtest-assets.sh"
	if InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// New starts a control plane and installs the CRDs. Call Stop when done.
func New() (*Env, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, fmt.Errorf("KUBEBUILDER_ASSETS is unset")
	}
	scheme := NewScheme()
	env := &envtest.Environment{
		Scheme:                scheme,
		CRDDirectoryPaths:     []string{CRDDir()},
		ErrorIfCRDPathMissing: true,
	}
	// Works in a loopback-only network namespace (no default route).
	api := env.ControlPlane.GetAPIServer()
	api.Configure().Set("advertise-address", "127.0.0.1")
	api.Configure().Set("endpoint-reconciler-type", "none")
	if os.Getenv("XDRIVE_BENCH_APISERVER_PROFILE") != "" {
		api.Configure().Set("profiling", "true")
	}

	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("starting envtest: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("creating client: %w", err)
	}
	return &Env{Config: cfg, Client: c, Scheme: scheme, env: env}, nil
}

// Stop stops the API server and etcd.
func (e *Env) Stop() error {
	if e == nil || e.env == nil {
		return nil
	}
	return e.env.Stop()
}

// StartEnv starts a control plane for t and stops it when t ends.
func StartEnv(t testing.TB) *Env {
	t.Helper()
	RequireAssets(t)
	e, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	return e
}

// Start starts a control plane for t and returns its config and a plain client.
func Start(t testing.TB) (*rest.Config, client.Client) {
	t.Helper()
	e := StartEnv(t)
	return e.Config, e.Client
}

// CreateNamespace creates a fresh namespace and deletes it when t ends.
func CreateNamespace(t testing.TB, c client.Client) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), ns) })
	return ns.Name
}
