package install_test

import (
	"fmt"
	"os"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	testenv "github.com/xdrive-io/xdrive/test/envtest"
	"github.com/xdrive-io/xdrive/test/moto"
)

var shared *testenv.Env

// TestMain shares one control plane and one moto server among the tests. The
// API server also runs OwnerReferencesPermissionEnforcement (as OpenShift
// does): an owner reference that blocks the owner's deletion then needs
// update on the owner's finalizers, which the RBAC test must see granted.
func TestMain(m *testing.M) {
	var stop func() error
	if os.Getenv("KUBEBUILDER_ASSETS") != "" {
		var err error
		if shared, stop, err = startEnv(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := moto.Run(m)
	if stop != nil {
		if err := stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping control plane:", err)
		}
	}
	os.Exit(code)
}

func startEnv() (*testenv.Env, func() error, error) {
	scheme := testenv.NewScheme()
	env := &envtest.Environment{Scheme: scheme, CRDDirectoryPaths: []string{testenv.CRDDir()}, ErrorIfCRDPathMissing: true}
	api := env.ControlPlane.GetAPIServer()
	api.Configure().Set("advertise-address", "127.0.0.1")
	api.Configure().Set("endpoint-reconciler-type", "none")
	api.Configure().Set("enable-admission-plugins", "OwnerReferencesPermissionEnforcement")
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		return nil, nil, fmt.Errorf("starting envtest: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		return nil, nil, err
	}
	return &testenv.Env{Config: cfg, Client: c, Scheme: scheme}, env.Stop, nil
}

// requireEnv returns the control plane; without one the test is skipped, or fails in CI.
func requireEnv(t *testing.T) *testenv.Env {
	t.Helper()
	testenv.RequireAssets(t)
	if shared == nil {
		t.Fatal("control plane did not start")
	}
	return shared
}
