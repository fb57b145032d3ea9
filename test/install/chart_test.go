package install_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The Kubernetes version of the tests' API server, for lint and templates.
var kubeVersion = chartutil.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"}

// chartValues are the values every test passes: clusterName is required.
func chartValues(extra map[string]any) map[string]any {
	v := map[string]any{"clusterName": "test"}
	for k, x := range extra {
		v[k] = x
	}
	return v
}

// helmTemplate renders the chart as `helm template --include-crds` does:
// the CRDs of crds/, then every template through Helm's engine with the
// release's values (checked against values.schema.json), in install order.
func helmTemplate(release, namespace string, values map[string]any) ([]*unstructured.Unstructured, error) {
	chrt, err := loader.Load(chartDir())
	if err != nil {
		return nil, err
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = kubeVersion
	if !chartutil.IsCompatibleRange(chrt.Metadata.KubeVersion, kubeVersion.Version) {
		return nil, fmt.Errorf("chart requires kubeVersion %s, not %s", chrt.Metadata.KubeVersion, kubeVersion.Version)
	}
	vals, err := chartutil.ToRenderValues(chrt, values,
		chartutil.ReleaseOptions{Name: release, Namespace: namespace, Revision: 1, IsInstall: true}, caps)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(chrt, vals)
	if err != nil {
		return nil, err
	}
	for name := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			delete(files, name)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, caps.APIVersions, releaseutil.InstallOrder)
	if err != nil {
		return nil, err
	}
	if len(hooks) > 0 {
		return nil, fmt.Errorf("the chart has %d hooks; install.yaml could not match it", len(hooks))
	}
	var out bytes.Buffer
	for _, crd := range chrt.CRDObjects() {
		fmt.Fprintf(&out, "---\n%s\n", crd.File.Data)
	}
	for _, m := range manifests {
		fmt.Fprintf(&out, "---\n%s\n", m.Content)
	}
	return decodeDocsErr(out.Bytes())
}

func mustTemplate(t *testing.T, release, namespace string, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	objs, err := helmTemplate(release, namespace, values)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	return objs
}

// TestChartLint: helm lint --strict passes with the required value, and
// rendering without it fails with a message that names it.
func TestChartLint(t *testing.T) {
	linter := lint.AllWithKubeVersion(chartDir(), chartValues(nil), "xdrive-system", &kubeVersion)
	for _, m := range linter.Messages {
		if m.Severity >= support.WarningSev {
			t.Errorf("helm lint: %s", m)
		} else {
			t.Logf("helm lint: %s", m)
		}
	}
	if _, err := helmTemplate("xdrive", "xdrive-system", nil); err == nil || !strings.Contains(err.Error(), "clusterName is required") {
		t.Errorf("rendering without clusterName: %v, want a clusterName error", err)
	}
	if _, err := helmTemplate("xdrive", "xdrive-system", chartValues(map[string]any{"imge": map[string]any{}})); err == nil {
		t.Error("a misspelt value passed values.schema.json")
	}
	if _, err := helmTemplate("xdrive", "xdrive-system", chartValues(map[string]any{"region": "us-east-1a"})); err == nil {
		t.Error("a zone as the region passed values.schema.json")
	}
	for _, region := range []string{"us-east-1", "ap-southeast-7", "us-gov-west-1", "cn-northwest-1", "eusc-de-east-1", "us-isob-east-1"} {
		if _, err := helmTemplate("xdrive", "xdrive-system", chartValues(map[string]any{"region": region})); err != nil {
			t.Errorf("the region %s: %v", region, err)
		}
	}
	if _, err := helmTemplate("xdrive", "xdrive-system", chartValues(map[string]any{"operatorCIDRs": []any{"198.51.100.7"}})); err == nil {
		t.Error("an operatorCIDRs entry without a prefix length passed values.schema.json")
	}
}

// TestChartValues: every value lands where it should.
func TestChartValues(t *testing.T) {
	objs := mustTemplate(t, "xdrive", "xdrive-system", chartValues(map[string]any{
		"clusterName":       "prod",
		"region":            "eu-west-1",
		"operatorCIDRs":     []any{"198.51.100.7/32", "203.0.113.0/24"},
		"otherRegions":      []any{"us-west-2", "eu-central-1"},
		"interruptionQueue": map[string]any{"name": "xdrive-events", "create": true},
		"image":             map[string]any{"repository": "registry.example/xdrive-controller", "tag": "1.2.3"},
		"serviceAccount": map[string]any{"annotations": map[string]any{
			"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/xdrive-controller"}},
		"resources":      map[string]any{"limits": map[string]any{"memory": "256Mi"}},
		"nodeSelector":   map[string]any{"kubernetes.io/os": "linux"},
		"tolerations":    []any{map[string]any{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}},
		"extraArgs":      []any{"--instance-poll-interval=1m"},
		"serviceMonitor": map[string]any{"enabled": true, "labels": map[string]any{"release": "prometheus"}},
	}))
	dep, c := deployment(t, objs)
	str := func(obj map[string]any, path ...string) string {
		s, _, _ := unstructured.NestedFieldNoCopy(obj, path...)
		return fmt.Sprint(s)
	}
	if got := str(c, "image"); got != "registry.example/xdrive-controller:1.2.3" {
		t.Errorf("image %s", got)
	}
	args, _, _ := unstructured.NestedStringSlice(c, "args")
	for _, want := range []string{"--cluster-name=prod", "--leader-elect=true", "--health-probe-bind-address=:8081",
		"--metrics-bind-address=:8443", "--interruption-queue=xdrive-events", "--create-interruption-queue", "--instance-poll-interval=1m",
		"--operator-cidr=198.51.100.7/32", "--operator-cidr=203.0.113.0/24", "--regions=us-west-2,eu-central-1"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %q lack %s", args, want)
		}
	}
	if got := str(c, "env"); !strings.Contains(got, "AWS_REGION") || !strings.Contains(got, "eu-west-1") {
		t.Errorf("env %s lacks AWS_REGION=eu-west-1", got)
	}
	for path, want := range map[string]string{
		"livenessProbe.httpGet.path":             "/healthz",
		"readinessProbe.httpGet.path":            "/readyz",
		"resources.limits.memory":                "256Mi",
		"securityContext.readOnlyRootFilesystem": "true",
	} {
		if got := str(c, strings.Split(path, ".")...); got != want {
			t.Errorf("container %s = %s, want %s", path, got, want)
		}
	}
	spec := dep.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	if got := str(spec, "nodeSelector", "kubernetes.io/os"); got != "linux" {
		t.Errorf("nodeSelector %s", got)
	}
	if got := str(spec, "tolerations"); !strings.Contains(got, "dedicated") {
		t.Errorf("tolerations %s", got)
	}
	sa := ofKind(objs, "ServiceAccount")[0]
	if sa.GetAnnotations()["eks.amazonaws.com/role-arn"] == "" || str(spec, "serviceAccountName") != sa.GetName() {
		t.Errorf("ServiceAccount %s with annotations %v; the pod runs as %s", sa.GetName(), sa.GetAnnotations(), str(spec, "serviceAccountName"))
	}
	// The ServiceMonitor selects the metrics Service by its labels and port.
	monitors, services := ofKind(objs, "ServiceMonitor"), ofKind(objs, "Service")
	if len(monitors) != 1 || len(services) != 1 {
		t.Fatalf("%d ServiceMonitors and %d Services, want 1 and 1", len(monitors), len(services))
	}
	selector, _, _ := unstructured.NestedStringMap(monitors[0].Object, "spec", "selector", "matchLabels")
	for k, v := range selector {
		if services[0].GetLabels()[k] != v {
			t.Errorf("the ServiceMonitor selects %s=%s; the Service has %v", k, v, services[0].GetLabels())
		}
	}
	if monitors[0].GetLabels()["release"] != "prometheus" || str(monitors[0].Object, "spec", "endpoints") == "" ||
		!strings.Contains(str(services[0].Object, "spec", "ports"), "name:https") {
		t.Errorf("ServiceMonitor %v / Service ports %s", monitors[0].Object, str(services[0].Object, "spec", "ports"))
	}

	// Without leader election or metrics.
	objs = mustTemplate(t, "xdrive", "xdrive-system", chartValues(map[string]any{
		"leaderElection": map[string]any{"enabled": false}, "metrics": map[string]any{"enabled": false}}))
	_, c = deployment(t, objs)
	args, _, _ = unstructured.NestedStringSlice(c, "args")
	if !slices.Contains(args, "--leader-elect=false") || !slices.Contains(args, "--metrics-bind-address=0") || len(ofKind(objs, "Service")) != 0 {
		t.Errorf("with leader election and metrics off: args %q, %d Services", args, len(ofKind(objs, "Service")))
	}
}

// TestChartMatchesConfig: the chart's CRDs and RBAC rules are config/'s, its
// appVersion is the Makefile's VERSION, and a release named xdrive installs
// the same objects, by kind and name, as install.yaml.
func TestChartMatchesConfig(t *testing.T) {
	for _, name := range []string{"xdrive.io_xdrives.yaml", "xdrive.io_workstations.yaml"} {
		want, err1 := os.ReadFile(filepath.Join(repoRoot(), "config", "crd", "bases", name))
		got, err2 := os.ReadFile(filepath.Join(chartDir(), "crds", name))
		if err1 != nil || err2 != nil || !bytes.Equal(got, want) {
			t.Errorf("charts/xdrive/crds/%s differs from config/crd/bases (run make chart): %v %v", name, err1, err2)
		}
	}
	makefile, err := os.ReadFile(filepath.Join(repoRoot(), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^VERSION \?= (\S+)$`).FindSubmatch(makefile)
	if m == nil || string(m[1]) != chartAppVersion(t) {
		t.Errorf("the chart's appVersion %s is not the Makefile's VERSION %q (run make chart)", chartAppVersion(t), m)
	}

	chart := mustTemplate(t, "xdrive", "xdrive-system", chartValues(nil))
	install := decodeDocs(t, installYAML(t))
	index := func(objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
		out := map[string]*unstructured.Unstructured{}
		for _, u := range objs {
			if u.GetKind() != "Namespace" {
				out[u.GetKind()+" "+u.GetNamespace()+"/"+u.GetName()] = u
			}
		}
		return out
	}
	fromChart, fromInstall := index(chart), index(install)
	for id, u := range fromInstall {
		c, ok := fromChart[id]
		switch {
		case !ok:
			t.Errorf("install.yaml has %s; the chart does not", id)
		case u.GetKind() == "ClusterRole" || u.GetKind() == "Role":
			if got, want := rulesOf(t, c), rulesOf(t, u); got != want {
				t.Errorf("%s: the chart's rules differ from config/rbac's (run make chart):\n%s\nwant:\n%s", id, got, want)
			}
		}
	}
	for id := range fromChart {
		if _, ok := fromInstall[id]; !ok {
			t.Errorf("the chart has %s; install.yaml does not", id)
		}
	}
}

// TestChartDryRun: the API server accepts every object of the chart
// (--server-side --dry-run=server), CRDs included.
func TestChartDryRun(t *testing.T) {
	env := requireEnv(t)
	const ns = "xdrive-chart"
	objs := mustTemplate(t, "xdrive", ns, chartValues(map[string]any{
		"region": "us-east-1", "interruptionQueue": map[string]any{"name": "q"},
		"serviceAccount": map[string]any{"annotations": map[string]any{"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/x"}},
	}))
	kinds := dryRun(t, env, objs, ns)
	for k, n := range map[string]int{"CustomResourceDefinition": 3, "ServiceAccount": 1, "ClusterRole": 3, "ClusterRoleBinding": 2,
		"Role": 1, "RoleBinding": 1, "Deployment": 1, "Service": 1} {
		if kinds[k] != n {
			t.Errorf("%d %s accepted, want %d (all: %v)", kinds[k], k, n, kinds)
		}
	}
}
