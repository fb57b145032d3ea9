package quickstart_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	testenv "github.com/xdrive-io/xdrive/test/envtest"
)

var yamlBlock = regexp.MustCompile("(?ms)^```yaml\n(.*?)\n```$")

// TestWhatYouWriteValid: every object of the README's "What you write" is
// one the API server accepts (a server-side dry run: the schemas and the
// CEL rules), so the reference cannot drift from the API.
func TestWhatYouWriteValid(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## What you write\n")
	if !ok {
		t.Fatal(`README.md has no section "What you write"`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var objs []*unstructured.Unstructured
	for _, m := range yamlBlock.FindAllStringSubmatch(section, -1) {
		for _, doc := range strings.Split(m[1], "\n---\n") {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
				t.Fatalf("a YAML block of \"What you write\": %v\n%s", err, doc)
			}
			objs = append(objs, u)
		}
	}
	kinds := map[string]int{}
	for _, u := range objs {
		kinds[u.GetKind()]++
	}
	if kinds["WorkstationClass"] == 0 || kinds["XDrive"] == 0 || kinds["Workstation"] == 0 {
		t.Fatalf("\"What you write\" shows %v; want a class, a drive and a Workstation", kinds)
	}
	env := testenv.StartEnv(t)
	ns := testenv.CreateNamespace(t, env.Client)
	for _, u := range objs {
		if u.GetKind() != "WorkstationClass" {
			u.SetNamespace(ns)
		}
		if err := env.Client.Create(context.Background(), u, client.DryRunAll); err != nil {
			t.Errorf("the API server refuses the %s %s of \"What you write\": %v", u.GetKind(), u.GetName(), err)
		}
	}
}
