package harness

import (
	"fmt"
	"os"
	"testing"

	testenv "github.com/xdrive-io/xdrive/test/envtest"
	"github.com/xdrive-io/xdrive/test/moto"
)

var sharedEnv *testenv.Env

// Main runs a test package with one control plane and one moto server, shared by its tests.
func Main(m *testing.M) {
	if os.Getenv("KUBEBUILDER_ASSETS") != "" {
		var err error
		if sharedEnv, err = testenv.New(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := moto.Run(m)
	if err := sharedEnv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping control plane:", err)
	}
	os.Exit(code)
}

// Env returns the package's control plane; without one the test is skipped, or fails in CI.
func Env(t testing.TB) *testenv.Env {
	t.Helper()
	testenv.RequireAssets(t)
	if sharedEnv == nil {
		t.Fatal("control plane did not start")
	}
	return sharedEnv
}
