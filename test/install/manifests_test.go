package install_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	testenv "github.com/xdrive-io/xdrive/test/envtest"
)

// installYAML is dist/install.yaml as `make build-installer` wrote it
// (XDRIVE_INSTALL_YAML, set by `make test`) or, without it, the same
// kustomize build of config/default with the image of the chart's appVersion.
func installYAML(t *testing.T) []byte {
	t.Helper()
	if path := os.Getenv("XDRIVE_INSTALL_YAML"); path != "" {
		if !filepath.IsAbs(path) {
			path = filepath.Join(repoRoot(), path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run `make build-installer`)", err)
		}
		return b
	}
	return kustomizeDefault(t, "xdrive-controller:"+chartAppVersion(t))
}

// kustomizeDefault builds config/default with the manager's image set to
// image, as hack/kustomize-image.sh does with the kustomize binary: an
// overlay (kustomize takes bases by relative path only) names the image.
func kustomizeDefault(t *testing.T, image string) []byte {
	t.Helper()
	overlay, err := os.MkdirTemp(filepath.Join(repoRoot(), "config"), ".overlay-")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(overlay) }()
	name, tag, _ := cutImage(image)
	k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../default\n"+
		"images:\n- name: xdrive-controller\n  newName: %s\n  newTag: %q\n", name, tag)
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionLegacy // what the kustomize binary does
	res, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), overlay)
	if err != nil {
		t.Fatalf("kustomize build config/default: %v", err)
	}
	b, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cutImage splits name:tag (a registry port is part of the name).
func cutImage(image string) (name, tag string, ok bool) {
	i := bytes.LastIndexByte([]byte(image), ':')
	if i < 0 || bytes.ContainsRune([]byte(image[i:]), '/') {
		return image, "", false
	}
	return image[:i], image[i+1:], true
}

// decodeDocs splits a multi-document YAML stream into objects.
func decodeDocs(t *testing.T, b []byte) []*unstructured.Unstructured {
	t.Helper()
	out, err := decodeDocsErr(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func decodeDocsErr(b []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("decoding YAML: %w", err)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

func ofKind(objs []*unstructured.Unstructured, kinds ...string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range objs {
		if slices.Contains(kinds, u.GetKind()) {
			out = append(out, u)
		}
	}
	return out
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// apply applies objects server-side as field manager xdrive-install-test.
func apply(ctx context.Context, c client.Client, u *unstructured.Unstructured, opts ...client.ApplyOption) error {
	opts = append(opts, client.FieldOwner("xdrive-install-test"), client.ForceOwnership)
	return c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()), opts...)
}

// dryRun applies every object with --server-side --dry-run=server, after
// creating its namespace for real (a dry run cannot create a namespace that
// namespaced objects then land in). It returns what was applied, by kind.
func dryRun(t *testing.T, env *testenv.Env, objs []*unstructured.Unstructured, namespace string) map[string]int {
	t.Helper()
	ctx := testCtx(t)
	if err := apply(ctx, env.Client, namespaceObject(namespace)); err != nil {
		t.Fatalf("creating namespace %s: %v", namespace, err)
	}
	kinds := map[string]int{}
	for _, u := range objs {
		id := u.GetKind() + "/" + u.GetName()
		namespaced, err := env.Client.IsObjectNamespaced(u)
		switch {
		case err != nil:
			t.Errorf("%s: %v", id, err)
			continue
		case namespaced && u.GetNamespace() == "":
			t.Errorf("%s: namespaced object without a namespace", id)
		case !namespaced && u.GetNamespace() != "":
			t.Errorf("%s: cluster-scoped object in namespace %q", id, u.GetNamespace())
		}
		if err := apply(ctx, env.Client, u, client.DryRunAll); err != nil {
			t.Errorf("%s: server-side dry run rejected it: %v", id, err)
			continue
		}
		kinds[u.GetKind()]++
	}
	return kinds
}

func namespaceObject(name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("Namespace")
	u.SetName(name)
	return u
}

// deployment returns the only Deployment and its only container.
func deployment(t *testing.T, objs []*unstructured.Unstructured) (*unstructured.Unstructured, map[string]any) {
	t.Helper()
	deps := ofKind(objs, "Deployment")
	if len(deps) != 1 {
		t.Fatalf("%d Deployments, want 1", len(deps))
	}
	containers, _, _ := unstructured.NestedSlice(deps[0].Object, "spec", "template", "spec", "containers")
	if len(containers) != 1 {
		t.Fatalf("%d containers, want 1", len(containers))
	}
	return deps[0], containers[0].(map[string]any)
}

// rulesOf returns the rules of the (Cluster)Role, as YAML for comparison.
func rulesOf(t *testing.T, u *unstructured.Unstructured) string {
	t.Helper()
	rules, _, _ := unstructured.NestedSlice(u.Object, "rules")
	b, err := yaml.Marshal(rules)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestInstallYAML: dist/install.yaml holds everything, in an order kubectl
// apply -f takes, and the API server accepts every object.
func TestInstallYAML(t *testing.T) {
	env := requireEnv(t)
	objs := decodeDocs(t, installYAML(t))
	if len(objs) == 0 || objs[0].GetKind() != "Namespace" {
		t.Fatalf("the first object is not the Namespace")
	}
	ns := objs[0].GetName()
	crds := ofKind(objs, "CustomResourceDefinition")
	if len(crds) != 3 {
		t.Errorf("%d CRDs, want 3", len(crds))
	}
	for i, u := range objs {
		if u.GetKind() == "CustomResourceDefinition" && i > len(crds) {
			t.Errorf("CRD %s comes after other objects", u.GetName())
		}
	}
	_, c := deployment(t, objs)
	if img, _, _ := unstructured.NestedString(c, "image"); img == "" || img == "controller:latest" {
		t.Errorf("manager image %q was not set", img)
	}
	kinds := dryRun(t, env, objs[1:], ns)
	for _, k := range []string{"CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment", "Service"} {
		if kinds[k] == 0 {
			t.Errorf("no %s accepted (kinds: %v)", k, kinds)
		}
	}
	// The same CRDs and manager rules as config/: a stale install.yaml fails here.
	roles := ofKind(objs, "ClusterRole")
	var found bool
	for _, r := range roles {
		if r.GetName() == "xdrive-manager-role" {
			found = true
			if got, want := rulesOf(t, r), configRules(t); got != want {
				t.Errorf("install.yaml's manager rules differ from config/rbac/role.yaml (run make build-installer):\n%s\nwant:\n%s", got, want)
			}
		}
	}
	if !found {
		t.Error("no ClusterRole xdrive-manager-role")
	}
}

// configRules are the rules of config/rbac/role.yaml, as YAML.
func configRules(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return rulesOf(t, decodeDocs(t, b)[0])
}
