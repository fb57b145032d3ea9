package plugin_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"sigs.k8s.io/yaml"

	testenv "github.com/xdrive-io/xdrive/test/envtest"
)

// TestKrewManifest: hack/krew.sh (make krew) writes a krew manifest whose
// platform names its tarball by URI and sha256, and the tarball holds the plugin.
func TestKrewManifest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin")
	}
	out := t.TempDir()
	cmd := exec.Command("hack/krew.sh", "1.2.3", "https://example.com/v1.2.3", out, "linux/amd64")
	cmd.Dir = testenv.RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/krew.sh: %v\n%s", err, b)
	}
	raw, err := os.ReadFile(filepath.Join(out, "xdrive.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Kind     string
		Metadata struct{ Name string }
		Spec     struct {
			Version   string
			Platforms []struct {
				URI, Sha256, Bin string
				Selector         struct{ MatchLabels map[string]string }
			}
		}
	}
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatalf("xdrive.yaml: %v\n%s", err, raw)
	}
	if m.Kind != "Plugin" || m.Metadata.Name != "xdrive" || m.Spec.Version != "v1.2.3" || len(m.Spec.Platforms) != 1 {
		t.Fatalf("xdrive.yaml:\n%s", raw)
	}
	p := m.Spec.Platforms[0]
	tarball := "kubectl-xdrive_1.2.3_linux_amd64.tar.gz"
	if p.URI != "https://example.com/v1.2.3/"+tarball || p.Bin != "kubectl-xdrive" || p.Selector.MatchLabels["os"] != "linux" {
		t.Errorf("platform %+v", p)
	}
	data, err := os.ReadFile(filepath.Join(out, tarball))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != p.Sha256 {
		t.Errorf("sha256 %s in the manifest, %x of the tarball", p.Sha256, sum)
	}
	list, err := exec.Command("tar", "-tzf", filepath.Join(out, tarball)).Output()
	if err != nil || !regexp.MustCompile(`(?m)^\./kubectl-xdrive$`).Match(list) || !regexp.MustCompile(`(?m)^\./kubectl_complete-xdrive$`).Match(list) {
		t.Errorf("tarball holds %q (%v)", list, err)
	}
}
