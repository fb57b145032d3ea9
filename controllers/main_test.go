package controllers_test

import (
	"fmt"
	"os"
	"testing"

	testenv "github.com/xdrive-io/xdrive/test/envtest"
	"github.com/xdrive-io/xdrive/test/moto"
)

// env is the control plane shared by this package's tests.
var env *testenv.Env

func TestMain(m *testing.M) {
	if os.Getenv("KUBEBUILDER_ASSETS") != "" {
		var err error
		if env, err = testenv.New(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := moto.Run(m)
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping control plane:", err)
	}
	os.Exit(code)
}

func requireEnv(t *testing.T) *testenv.Env {
	t.Helper()
	testenv.RequireAssets(t)
	if env == nil {
		t.Fatal("control plane did not start")
	}
	return env
}
