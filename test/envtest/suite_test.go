package testenv

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	xdrivev1alpha1 "github.com/xdrive-io/xdrive/api/v1alpha1"
)

// One control plane is shared by every test in this package.
var shared struct {
	once sync.Once
	env  *Env
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.env != nil {
		if err := shared.env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}
	os.Exit(code)
}

// sharedEnv returns the package's control plane, starting it on first use.
func sharedEnv(t *testing.T) *Env {
	t.Helper()
	RequireAssets(t)
	shared.once.Do(func() { shared.env, shared.err = New() })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.env
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newObject builds an xdrive.io/v1alpha1 object of kind with the spec given as YAML.
func newObject(t *testing.T, kind, ns, name, spec string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(xdrivev1alpha1.GroupVersion.String())
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	setSpec(t, u, spec)
	return u
}

// setSpec replaces the object's spec with the given YAML.
func setSpec(t *testing.T, u *unstructured.Unstructured, spec string) {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(spec), &m); err != nil {
		t.Fatalf("bad spec YAML %q: %v", spec, err)
	}
	if m == nil {
		m = map[string]any{}
	}
	u.Object["spec"] = m
}
