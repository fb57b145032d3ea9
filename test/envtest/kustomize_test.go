package testenv

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func inNamespace(ns string) client.ListOption { return client.InNamespace(ns) }

// decodeDocs splits a multi-document YAML stream into objects.
func decodeDocs(t *testing.T, b []byte) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatalf("decoding YAML: %v", err)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

// kustomize builds dir with `kubectl kustomize`.
func kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	kubectl := KubectlPath(t) // built with the API server, never the one on PATH
	// role.yaml appears once a controller has +kubebuilder:rbac markers.
	if _, err := os.Stat(filepath.Join(RepoRoot(), "config", "rbac", "role.yaml")); err != nil {
		msg := "config/rbac/role.yaml is missing: add +kubebuilder:rbac markers and run `make manifests`"
		if InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cmd := exec.Command(kubectl, "kustomize", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	return out
}

func TestKustomizeDefaultDryRun(t *testing.T) {
	e := sharedEnv(t)
	objs := decodeDocs(t, kustomize(t, filepath.Join(RepoRoot(), "config", "default")))
	ctx := testCtx(t)

	// The namespace is created for real so namespaced objects can be dry-run.
	var rest []*unstructured.Unstructured
	for _, u := range objs {
		if u.GetKind() != "Namespace" {
			rest = append(rest, u)
			continue
		}
		if u.GetName() != SystemNamespace {
			t.Errorf("namespace %q, want %q", u.GetName(), SystemNamespace)
		}
		if err := e.Client.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating namespace: %v", err)
		}
	}
	if err := e.Client.Get(ctx, client.ObjectKey{Name: SystemNamespace}, &corev1.Namespace{}); err != nil {
		t.Fatalf("namespace %s: %v", SystemNamespace, err)
	}

	kinds := map[string]int{}
	for _, u := range rest {
		id := u.GetKind() + "/" + u.GetName()
		kinds[u.GetKind()]++
		namespaced, err := e.Client.IsObjectNamespaced(u)
		if err != nil {
			t.Errorf("%s: %v", id, err)
			continue
		}
		switch {
		case namespaced && u.GetNamespace() != SystemNamespace:
			t.Errorf("%s: namespace %q, want %q", id, u.GetNamespace(), SystemNamespace)
		case !namespaced && u.GetNamespace() != "":
			t.Errorf("%s: cluster-scoped object has namespace %q", id, u.GetNamespace())
		}
		err = e.Client.Create(ctx, u.DeepCopy(), client.DryRunAll)
		if apierrors.IsAlreadyExists(err) {
			// The CRDs are already installed: dry-run apply them instead.
			err = e.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()),
				client.DryRunAll, client.FieldOwner("xdrive-test"), client.ForceOwnership)
		}
		if err != nil {
			t.Errorf("%s: dry-run rejected: %v", id, err)
		}
	}
	for _, k := range []string{"CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment", "Service"} {
		if kinds[k] == 0 {
			t.Errorf("no %s in config/default (kinds: %v)", k, kinds)
		}
	}
	if kinds["CustomResourceDefinition"] != 3 {
		t.Errorf("%d CRDs, want 3", kinds["CustomResourceDefinition"])
	}
}

// TestKustomizeManager checks the manager Deployment's settings.
func TestKustomizeManager(t *testing.T) {
	objs := decodeDocs(t, kustomize(t, filepath.Join(RepoRoot(), "config", "default")))
	var dep *unstructured.Unstructured
	for _, u := range objs {
		if u.GetKind() == "Deployment" {
			dep = u
		}
	}
	if dep == nil {
		t.Fatal("no Deployment")
	}
	if dep.GetName() != "xdrive-controller-manager" || dep.GetNamespace() != SystemNamespace {
		t.Errorf("deployment %s/%s, want %s/xdrive-controller-manager", dep.GetNamespace(), dep.GetName(), SystemNamespace)
	}
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	if len(containers) != 1 {
		t.Fatalf("%d containers, want 1", len(containers))
	}
	c := containers[0].(map[string]any)
	str := func(path ...string) string {
		s, _, _ := unstructured.NestedString(c, path...)
		return s
	}
	if got := str("image"); got != "xdrive-controller:dev" {
		t.Errorf("image = %q", got)
	}
	args, _, _ := unstructured.NestedStringSlice(c, "args")
	for _, want := range []string{"--leader-elect", "--health-probe-bind-address=:8081", "--metrics-bind-address=:8443",
		"--cluster-name=$(XDRIVE_CLUSTER_NAME)", "--operator-cidr=$(XDRIVE_OPERATOR_CIDRS)"} {
		found := false
		for _, a := range args {
			found = found || a == want
		}
		if !found {
			t.Errorf("args %v lack %s", args, want)
		}
	}
	// config/default/settings.yaml's values, copied into the environment the flags read.
	env, _, _ := unstructured.NestedSlice(c, "env")
	values := map[string]any{}
	for _, e := range env {
		m := e.(map[string]any)
		values[m["name"].(string)] = m["value"]
	}
	for name, want := range map[string]string{"XDRIVE_CLUSTER_NAME": "xdrive", "AWS_REGION": "us-east-1", "XDRIVE_OPERATOR_CIDRS": ""} {
		if got, ok := values[name]; !ok || got != want {
			t.Errorf("env %s = %v, want %q (config/default/settings.yaml)", name, got, want)
		}
	}
	if got := str("livenessProbe", "httpGet", "path"); got != "/healthz" {
		t.Errorf("liveness path = %q", got)
	}
	if got := str("readinessProbe", "httpGet", "path"); got != "/readyz" {
		t.Errorf("readiness path = %q", got)
	}
	if got := str("resources", "limits", "memory"); got != "128Mi" {
		t.Errorf("memory limit = %q", got)
	}
	ro, _, _ := unstructured.NestedBool(c, "securityContext", "readOnlyRootFilesystem")
	drop, _, _ := unstructured.NestedStringSlice(c, "securityContext", "capabilities", "drop")
	if !ro || len(drop) != 1 || drop[0] != "ALL" {
		t.Errorf("container securityContext: readOnlyRootFilesystem=%v drop=%v", ro, drop)
	}
	nonRoot, _, _ := unstructured.NestedBool(dep.Object, "spec", "template", "spec", "securityContext", "runAsNonRoot")
	seccomp, _, _ := unstructured.NestedString(dep.Object, "spec", "template", "spec", "securityContext", "seccompProfile", "type")
	if !nonRoot || seccomp != "RuntimeDefault" {
		t.Errorf("pod securityContext: runAsNonRoot=%v seccomp=%q", nonRoot, seccomp)
	}
	sa, _, _ := unstructured.NestedString(dep.Object, "spec", "template", "spec", "serviceAccountName")
	if sa != "xdrive-controller-manager" {
		t.Errorf("serviceAccountName = %q", sa)
	}
}
