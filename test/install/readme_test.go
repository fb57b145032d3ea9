package install_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/strvals"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestReadmeHelmInstall: the README's `helm install` command, its --set
// flags read as Helm reads them, renders a manager with those settings.
func TestReadmeHelmInstall(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	// The command: the "helm install" line and those it continues onto.
	var lines []string
	for _, l := range strings.Split(string(raw), "\n") {
		if len(lines) == 0 && !strings.HasPrefix(strings.TrimSpace(l), "helm install ") {
			continue
		}
		lines = append(lines, strings.TrimSuffix(strings.TrimSpace(l), "\\"))
		if !strings.HasSuffix(l, "\\") {
			break
		}
	}
	if len(lines) == 0 {
		t.Fatal("README.md has no helm install command")
	}
	m := strings.Join(lines, " ")
	values := map[string]any{}
	sets := regexp.MustCompile(`--set (\S+)`).FindAllStringSubmatch(m, -1)
	for _, s := range sets {
		arg := strings.Trim(s[1], `'"`)
		arg = strings.ReplaceAll(arg, `"`, "") // the shell's quotes around the annotation's key
		if err := strvals.ParseInto(arg, values); err != nil {
			t.Fatalf("--set %s: %v", s[1], err)
		}
	}
	objs := mustTemplate(t, "xdrive", "xdrive-system", values)
	_, c := deployment(t, objs)
	args, _, _ := unstructured.NestedStringSlice(c, "args")
	for _, want := range []string{"--cluster-name=research", "--operator-cidr=198.51.100.7/32"} {
		if !slices.Contains(args, want) {
			t.Errorf("the README's helm install gives the manager %q, without %s", args, want)
		}
	}
	env, _, _ := unstructured.NestedSlice(c, "env")
	found := false
	for _, e := range env {
		found = found || e.(map[string]any)["name"] == "AWS_REGION" && e.(map[string]any)["value"] == "eu-west-1"
	}
	if !found {
		t.Errorf("the README's helm install sets no AWS_REGION=eu-west-1: %v", env)
	}
	sa := ofKind(objs, "ServiceAccount")[0]
	if sa.GetAnnotations()["eks.amazonaws.com/role-arn"] == "" {
		t.Errorf("the README's helm install does not annotate the ServiceAccount for IRSA: %v", sa.GetAnnotations())
	}
}
