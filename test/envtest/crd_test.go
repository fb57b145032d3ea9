package testenv

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

func TestPrinterColumnsAndShortNames(t *testing.T) {
	e := sharedEnv(t)
	for _, tc := range []struct {
		crd       string
		shortName string
		columns   []string
	}{
		{"xdrives.xdrive.io", "xd", []string{"PHASE", "SIZE", "WORKSTATION", "READY*", "ZONE*", "VOLUME*", "INITIALIZED*", "SNAPSHOT*", "AGE"}},
		{"workstations.xdrive.io", "ws", []string{"PHASE", "$/H", "IDLE", "READY*", "STATUS*", "SPENT*", "CLASS*", "DRIVE*", "TYPE*", "CAPACITY*", "ZONE*", "IP*", "ENDPOINT*", "AGE"}},
	} {
		t.Run(tc.crd, func(t *testing.T) {
			var crd apiextensionsv1.CustomResourceDefinition
			if err := e.Client.Get(testCtx(t), types.NamespacedName{Name: tc.crd}, &crd); err != nil {
				t.Fatal(err)
			}
			if crd.Spec.Scope != apiextensionsv1.NamespaceScoped {
				t.Errorf("scope = %s, want Namespaced", crd.Spec.Scope)
			}
			if !slices.Contains(crd.Spec.Names.ShortNames, tc.shortName) {
				t.Errorf("shortNames = %v, want %q", crd.Spec.Names.ShortNames, tc.shortName)
			}
			if !slices.Equal(crd.Spec.Names.Categories, []string{"xdrive-all"}) {
				t.Errorf("categories = %v, want [xdrive-all]", crd.Spec.Names.Categories)
			}
			var served *apiextensionsv1.CustomResourceDefinitionVersion
			for i := range crd.Spec.Versions {
				if crd.Spec.Versions[i].Name == "v1alpha1" {
					served = &crd.Spec.Versions[i]
				}
			}
			if served == nil || !served.Served || !served.Storage {
				t.Fatalf("v1alpha1 is not the served storage version")
			}
			if served.Subresources == nil || served.Subresources.Status == nil {
				t.Errorf("status subresource missing")
			}
			var got []string
			for _, c := range served.AdditionalPrinterColumns {
				name := strings.ToUpper(c.Name)
				if c.Priority > 0 {
					name += "*" // shown with -o wide only
				}
				got = append(got, name)
			}
			if !slices.Equal(got, tc.columns) {
				t.Errorf("printer columns = %v, want %v", got, tc.columns)
			}
		})
	}
}

// sampleFiles returns the files listed in config/samples/kustomization.yaml,
// and checks that every sample on disk is listed.
func sampleFiles(t *testing.T) []string {
	t.Helper()
	dir := filepath.Join(RepoRoot(), "config", "samples")
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	onDisk, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range onDisk {
		if base := filepath.Base(f); base != "kustomization.yaml" && !slices.Contains(k.Resources, base) {
			t.Errorf("%s is not listed in config/samples/kustomization.yaml", base)
		}
	}
	if len(k.Resources) == 0 {
		t.Fatal("no samples listed")
	}
	files := make([]string, len(k.Resources))
	for i, r := range k.Resources {
		files[i] = filepath.Join(dir, r)
	}
	return files
}

func TestSamplesAccepted(t *testing.T) {
	e := sharedEnv(t)
	ns := CreateNamespace(t, e.Client)
	kinds := map[string]int{}
	parent := t
	for _, f := range sampleFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			objs := decodeDocs(t, b)
			if len(objs) == 0 {
				t.Fatal("no objects")
			}
			for _, u := range objs {
				if u.GetNamespace() != "" {
					t.Errorf("%s/%s: samples should not set a namespace", u.GetKind(), u.GetName())
				}
				u.SetNamespace(ns)
				if err := e.Client.Create(testCtx(t), u); err != nil {
					t.Errorf("%s/%s rejected: %v", u.GetKind(), u.GetName(), err)
				}
				if u.GetKind() == "WorkstationClass" { // cluster-scoped: other tests share it
					parent.Cleanup(func() { _ = e.Client.Delete(context.Background(), u) })
				}
				kinds[u.GetKind()]++
			}
		})
	}
	if kinds["XDrive"] == 0 || kinds["Workstation"] == 0 || kinds["WorkstationClass"] == 0 {
		t.Errorf("samples by kind = %v, want XDrive, Workstation and WorkstationClass", kinds)
	}
	// Every Workstation's drive is among the samples, and no drive is shared.
	var drives, workstations unstructured.UnstructuredList
	drives.SetAPIVersion("xdrive.io/v1alpha1")
	drives.SetKind("XDriveList")
	workstations.SetAPIVersion("xdrive.io/v1alpha1")
	workstations.SetKind("WorkstationList")
	ctx := testCtx(t)
	if err := e.Client.List(ctx, &drives, inNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if err := e.Client.List(ctx, &workstations, inNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var classes unstructured.UnstructuredList
	classes.SetAPIVersion("xdrive.io/v1alpha1")
	classes.SetKind("WorkstationClassList")
	if err := e.Client.List(ctx, &classes); err != nil {
		t.Fatal(err)
	}
	sampleClasses := map[string]bool{}
	for _, c := range classes.Items {
		sampleClasses[c.GetName()] = c.GetLabels()["app.kubernetes.io/managed-by"] == "kustomize"
	}
	names := map[string]bool{}
	for _, d := range drives.Items {
		names[d.GetName()] = true
	}
	used := map[string]string{}
	for _, w := range workstations.Items {
		ref, _, _ := unstructured.NestedString(w.Object, "spec", "driveRef", "name")
		if !names[ref] {
			t.Errorf("workstation %s uses drive %q, which is not a sample", w.GetName(), ref)
		}
		if class, _, _ := unstructured.NestedString(w.Object, "spec", "className"); class == "" || !sampleClasses[class] {
			t.Errorf("workstation %s uses class %q, which is not a sample", w.GetName(), class)
		}
		if other, ok := used[ref]; ok {
			t.Errorf("workstations %s and %s share drive %q", other, w.GetName(), ref)
		}
		used[ref] = w.GetName()
	}
}
