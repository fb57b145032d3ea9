package integration_test

import (
	"testing"

	testenv "github.com/xdrive-io/xdrive/test/envtest"
	"github.com/xdrive-io/xdrive/test/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

func requireEnv(t *testing.T) *testenv.Env { return harness.Env(t) }
