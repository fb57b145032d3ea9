// Package install_test checks what users install: the container image, the
// Helm chart, dist/install.yaml, and that the generated RBAC is enough for the
// manager to run a lifecycle as its ServiceAccount.
package install_test

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	testenv "github.com/xdrive-io/xdrive/test/envtest"
)

func repoRoot() string { return testenv.RepoRoot() }

// chartDir is the Helm chart.
func chartDir() string { return filepath.Join(repoRoot(), "charts", "xdrive") }

// chartAppVersion is the chart's appVersion: the version the manager, the
// image and the chart share.
func chartAppVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir(), "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(b, &meta); err != nil || meta.AppVersion == "" {
		t.Fatalf("charts/xdrive/Chart.yaml: appVersion %q: %v", meta.AppVersion, err)
	}
	return meta.AppVersion
}
