package docgen_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdrive-io/xdrive/internal/docgen"
)

// TestAPIDoc: docs/api.md is generated from the CRDs (make docs rewrites
// it after make manifests), so it shows every field of the API served.
func TestAPIDoc(t *testing.T) {
	files, err := filepath.Glob("../../config/crd/bases/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in config/crd/bases: %v", err)
	}
	crds := map[string][]byte{}
	for _, f := range files {
		if crds[filepath.Base(f)], err = os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
	}
	doc, err := docgen.API(crds)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## XDrive (`xdrive.io/v1alpha1`)", "## Workstation (", "## WorkstationClass (",
		"| `spec.sizeGiB` |", "| `spec.containers[].image` |"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/api.md would lack %q", want)
		}
	}
	if err := docgen.Sync("../../docs/api.md", doc); err != nil {
		t.Error(err)
	}
}
