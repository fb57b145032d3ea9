package testenv

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// crdSchemas reads the v1alpha1 schema of each CRD in config/crd/bases, by singular name.
func crdSchemas(t *testing.T) map[string]apiextensionsv1.JSONSchemaProps {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(CRDDir(), "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in %s: %v", CRDDir(), err)
	}
	schemas := map[string]apiextensionsv1.JSONSchemaProps{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(b, &crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, v := range crd.Spec.Versions {
			if v.Name == "v1alpha1" && v.Schema != nil && v.Schema.OpenAPIV3Schema != nil {
				schemas[crd.Spec.Names.Singular] = *v.Schema.OpenAPIV3Schema
			}
		}
	}
	return schemas
}

// walkFields calls visit for every object of the schema that has fields
// (properties), with its dotted path as kubectl explain takes it: list items
// and map values are explained at the list's or map's own path.
func walkFields(path string, s apiextensionsv1.JSONSchemaProps, visit func(path string, s apiextensionsv1.JSONSchemaProps)) {
	if len(s.Properties) > 0 {
		visit(path, s)
	}
	for name, p := range s.Properties {
		walkFields(path+"."+name, p, visit)
	}
	if s.Items != nil && s.Items.Schema != nil {
		walkFields(path, *s.Items.Schema, visit)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		walkFields(path, *s.AdditionalProperties.Schema, visit)
	}
}

// TestCRDFieldDescriptions: every field of every kind's spec and status, at
// every depth, has a description in the CRD, so `kubectl explain` documents it.
func TestCRDFieldDescriptions(t *testing.T) {
	schemas := crdSchemas(t)
	if len(schemas) != 3 {
		t.Fatalf("CRDs = %d, want 3 (xdrive, workstation, workstationclass)", len(schemas))
	}
	for kind, s := range schemas {
		if strings.TrimSpace(s.Description) == "" {
			t.Errorf("%s has no description", kind)
		}
		fields := 0
		tops := []string{"spec", "status"}
		if kind == "workstationclass" {
			tops = tops[:1] // a class has no status
		}
		for _, top := range tops {
			root, ok := s.Properties[top]
			if !ok {
				t.Errorf("%s has no %s", kind, top)
				continue
			}
			if strings.TrimSpace(root.Description) == "" {
				t.Errorf("%s.%s has no description", kind, top)
			}
			walkFields(kind+"."+top, root, func(path string, o apiextensionsv1.JSONSchemaProps) {
				for name, p := range o.Properties {
					fields++
					if strings.TrimSpace(p.Description) == "" {
						t.Errorf("%s.%s has no description", path, name)
					}
				}
			})
		}
		t.Logf("%s: %d fields checked", kind, fields)
	}
}

var spaces = regexp.MustCompile(`\s+`)

func oneLine(s string) string { return strings.TrimSpace(spaces.ReplaceAllString(s, " ")) }

// TestKubectlExplain: `kubectl explain` prints every field of the spec, at
// every depth (xdrive.spec, workstation.spec.containers, ...), with its
// description, as the API server publishes it.
func TestKubectlExplain(t *testing.T) {
	e := sharedEnv(t)
	k := e.Kubectl(t, "default")
	for kind, s := range crdSchemas(t) {
		walkFields(kind+".spec", s.Properties["spec"], func(path string, o apiextensionsv1.JSONSchemaProps) {
			t.Run(path, func(t *testing.T) {
				out := k.MustRun(t, "explain", path)
				flat := oneLine(out)
				for name, p := range o.Properties {
					if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(name) + `\s+<`).MatchString(out) {
						t.Errorf("kubectl explain %s does not list the field %s:\n%s", path, name, out)
					}
					if d := oneLine(p.Description); d == "" || !strings.Contains(flat, d) {
						t.Errorf("kubectl explain %s does not print the description of %s (%q):\n%s", path, name, d, out)
					}
				}
			})
		})
	}
}
