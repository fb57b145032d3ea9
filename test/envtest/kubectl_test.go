package testenv

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// category is the CRDs' category: `kubectl get xdrive-all` lists both kinds.
const category = "xdrive-all"

// kindNames is one kind as a user names it on kubectl's command line.
type kindNames struct {
	kind     string
	resource string // resource.group, as kubectl prints it: xdrive.xdrive.io
	object   string // the object the test makes
	spec     string
	// names are the singular, plural and short name, each tried with every verb.
	names []string
	// alsoGet are other spellings kubectl accepts, tried with get.
	alsoGet []string
	// field is the spec field the editor changes from value to edited (edit,
	// a sed expression) and back (revert).
	field         []string
	value, edited any
	edit, revert  string
}

var kubectlKinds = []kindNames{
	{
		kind: "XDrive", resource: "xdrive.xdrive.io", object: "home", spec: `{sizeGiB: 10}`,
		names:   []string{"xdrive", "xdrives", "xd"},
		alsoGet: []string{"XDrive", "xdrives.xdrive.io", "xdrive.xdrive.io", "xdrives.v1alpha1.xdrive.io", "xd.xdrive.io"},
		field:   []string{"spec", "deletionPolicy"}, value: "Retain", edited: "Delete",
		edit: `s/^\( *\)deletionPolicy: Retain$/\1deletionPolicy: Delete/`, revert: `s/^\( *\)deletionPolicy: Delete$/\1deletionPolicy: Retain/`,
	},
	{
		kind: "Workstation", resource: "workstation.xdrive.io", object: "dev",
		spec:    `{driveRef: {name: home}, instanceTypes: [t3.large]}`,
		names:   []string{"workstation", "workstations", "ws"},
		alsoGet: []string{"Workstation", "workstations.xdrive.io", "workstation.xdrive.io", "workstations.v1alpha1.xdrive.io", "ws.xdrive.io"},
		field:   []string{"spec", "state"}, value: "Running", edited: "Stopped",
		edit: `s/^\( *\)state: Running$/\1state: Stopped/`, revert: `s/^\( *\)state: Stopped$/\1state: Running/`,
	},
}

// editorEnv returns the environment for a non-interactive `kubectl edit`:
// KUBE_EDITOR is a script that applies the sed expression to the file.
func editorEnv(t *testing.T, k *Kubectl, expr string) []string {
	t.Helper()
	script := filepath.Join(k.Home, "editor.sh")
	if _, err := os.Stat(script); err != nil {
		if err := os.WriteFile(script, []byte("#!/bin/sh\nexec sed -i -e \"$XDRIVE_TEST_EDIT\" \"$1\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"KUBE_EDITOR=" + script, "XDRIVE_TEST_EDIT=" + expr}
}

// kubectlObjects makes the XDrive home and the Workstation dev in a fresh
// namespace, and returns a kubectl whose default namespace it is.
func kubectlObjects(t *testing.T) (*Env, *Kubectl, string) {
	t.Helper()
	e := sharedEnv(t)
	ns := CreateNamespace(t, e.Client)
	k := e.Kubectl(t, ns)
	for _, kn := range kubectlKinds {
		if err := e.Client.Create(testCtx(t), newObject(t, kn.kind, ns, kn.object, kn.spec)); err != nil {
			t.Fatal(err)
		}
	}
	return e, k, ns
}

// stored returns the field of the stored object, and fails t unless the
// object exists and is not being deleted.
func stored(t *testing.T, c client.Client, ns string, kn kindNames) any {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("xdrive.io/v1alpha1")
	u.SetKind(kn.kind)
	if err := c.Get(testCtx(t), client.ObjectKey{Namespace: ns, Name: kn.object}, u); err != nil {
		t.Fatalf("%s %s: %v", kn.kind, kn.object, err)
	}
	if u.GetDeletionTimestamp() != nil {
		t.Fatalf("%s %s is being deleted", kn.kind, kn.object)
	}
	v, _, _ := unstructured.NestedFieldNoCopy(u.Object, kn.field...)
	return v
}

// expectStored fails t unless the stored object's field is want.
func expectStored(t *testing.T, c client.Client, ns string, kn kindNames, want any, after string) {
	t.Helper()
	if got := stored(t, c, ns, kn); got != want {
		t.Fatalf("after %s: %s %s %s = %v, want %v", after, kn.kind, kn.object, strings.Join(kn.field, "."), got, want)
	}
}

// kubectlEdit runs `kubectl edit args...` with an editor that applies the sed
// expression, and checks that kubectl reports every object in want edited.
func kubectlEdit(t *testing.T, k *Kubectl, expr string, want []string, args ...string) {
	t.Helper()
	stdout, stderr, err := k.Run(editorEnv(t, k, expr), append([]string{"edit"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(stdout), "\n")
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("kubectl edit %s (sed %s) = %q, want %q\n%s", strings.Join(args, " "), expr, got, want, stderr)
	}
}

func lines(s string) []string { return strings.Fields(s) }

// TestKubectlNames runs every verb with every name a user can type for each
// kind, with a real kubectl against the API server. Issue #14: the category
// used to be "xdrive", the XDrive kind's singular name; kubectl expands a
// category first, so `kubectl get xdrive home` failed and `kubectl get xdrive`
// listed Workstations too.
func TestKubectlNames(t *testing.T) {
	e, k, ns := kubectlObjects(t)
	for _, kn := range kubectlKinds {
		qualified := kn.resource + "/" + kn.object
		for _, name := range kn.names {
			t.Run(name, func(t *testing.T) {
				if got := lines(k.MustRun(t, "get", name, kn.object, "-o", "name")); !slices.Equal(got, []string{qualified}) {
					t.Errorf("get %s %s -o name = %q, want %q", name, kn.object, got, qualified)
				}
				if got := lines(k.MustRun(t, "get", name+"/"+kn.object, "-o", "name")); !slices.Equal(got, []string{qualified}) {
					t.Errorf("get %s/%s -o name = %q, want %q", name, kn.object, got, qualified)
				}
				// The list holds this kind only.
				if got := lines(k.MustRun(t, "get", name, "-o", "name")); !slices.Equal(got, []string{qualified}) {
					t.Errorf("get %s -o name = %q, want only %q", name, got, qualified)
				}
				if tables, _ := k.Get(t, name); len(tables) != 1 || len(tables[0].Rows) != 1 || tables[0].Rows[0]["NAME"] != kn.object {
					t.Errorf("get %s: want one table with one row, %s, got %+v", name, kn.object, tables)
				}

				out := k.MustRun(t, "describe", name, kn.object)
				for _, re := range []string{`(?m)^Name:\s+` + kn.object + `$`, `(?m)^Kind:\s+` + kn.kind + `$`, `(?m)^API Version:\s+xdrive\.io/v1alpha1$`} {
					if !regexp.MustCompile(re).MatchString(out) {
						t.Errorf("describe %s %s: no line matching %s in\n%s", name, kn.object, re, out)
					}
				}
				if n := strings.Count(out, "\nName:"); !strings.HasPrefix(out, "Name:") || n != 0 {
					t.Errorf("describe %s %s described more than one object:\n%s", name, kn.object, out)
				}

				out = k.MustRun(t, "explain", name)
				for _, re := range []string{`(?m)^GROUP:\s+xdrive\.io$`, `(?m)^KIND:\s+` + kn.kind + `$`, `(?m)^VERSION:\s+v1alpha1$`, `(?m)^\s+spec\s+<Object> -required-$`} {
					if !regexp.MustCompile(re).MatchString(out) {
						t.Errorf("explain %s: no line matching %s in\n%s", name, re, out)
					}
				}

				// kubectl edit has no --dry-run: edit for real, then back.
				edited := []string{kn.resource + "/" + kn.object + " edited"}
				kubectlEdit(t, k, kn.edit, edited, name, kn.object)
				expectStored(t, e.Client, ns, kn, kn.edited, "kubectl edit "+name)
				kubectlEdit(t, k, kn.revert, edited, name+"/"+kn.object)
				expectStored(t, e.Client, ns, kn, kn.value, "kubectl edit "+name+"/"+kn.object)

				want := kn.resource + ` "` + kn.object + `" deleted from ` + ns + ` namespace (server dry run)`
				if out := k.MustRun(t, "delete", name, kn.object, "--dry-run=server"); strings.TrimSpace(out) != want {
					t.Errorf("delete %s %s --dry-run=server = %q, want %q", name, kn.object, out, want)
				}
				expectStored(t, e.Client, ns, kn, kn.value, "kubectl delete --dry-run=server")
			})
		}
		for _, name := range kn.alsoGet {
			t.Run(name, func(t *testing.T) {
				if got := lines(k.MustRun(t, "get", name, kn.object, "-o", "name")); !slices.Equal(got, []string{qualified}) {
					t.Errorf("get %s %s -o name = %q, want %q", name, kn.object, got, qualified)
				}
			})
		}
	}
}

// TestKubectlCategory: `kubectl get xdrive-all` and the other verbs that take a
// category act on both kinds.
func TestKubectlCategory(t *testing.T) {
	e, k, ns := kubectlObjects(t)
	var all, edits, reverts []string
	for _, kn := range kubectlKinds {
		all = append(all, kn.resource+"/"+kn.object)
		edits = append(edits, kn.edit)
		reverts = append(reverts, kn.revert)
	}
	slices.Sort(all)

	got := lines(k.MustRun(t, "get", category, "-o", "name"))
	slices.Sort(got)
	if !slices.Equal(got, all) {
		t.Errorf("get %s -o name = %q, want %q", category, got, all)
	}
	tables, _ := k.Get(t, category)
	if len(tables) != len(kubectlKinds) {
		t.Errorf("get %s printed %d tables, want one per kind", category, len(tables))
	}

	out := k.MustRun(t, "describe", category)
	for _, kn := range kubectlKinds {
		if !regexp.MustCompile(`(?m)^Name:\s+`+kn.object+`$`).MatchString(out) || !regexp.MustCompile(`(?m)^Kind:\s+`+kn.kind+`$`).MatchString(out) {
			t.Errorf("describe %s does not describe %s %s:\n%s", category, kn.kind, kn.object, out)
		}
	}

	var edited []string
	for _, kn := range kubectlKinds {
		edited = append(edited, kn.resource+"/"+kn.object+" edited")
	}
	slices.Sort(edited)
	kubectlEdit(t, k, strings.Join(edits, ";"), edited, category)
	for _, kn := range kubectlKinds {
		expectStored(t, e.Client, ns, kn, kn.edited, "kubectl edit "+category)
	}
	kubectlEdit(t, k, strings.Join(reverts, ";"), edited, category)
	for _, kn := range kubectlKinds {
		expectStored(t, e.Client, ns, kn, kn.value, "kubectl edit "+category)
	}

	got = strings.Split(strings.TrimSpace(k.MustRun(t, "delete", category, "--all", "--dry-run=server")), "\n")
	slices.Sort(got)
	var want []string
	for _, kn := range kubectlKinds {
		want = append(want, kn.resource+` "`+kn.object+`" deleted from `+ns+` namespace (server dry run)`)
		expectStored(t, e.Client, ns, kn, kn.value, "kubectl delete "+category+" --all --dry-run=server")
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("delete %s --all --dry-run=server = %q, want %q", category, got, want)
	}
}

// TestCategoryShadowsNoResource: kubectl expands a category before it looks
// up a resource, so no category of the xdrive.io resources may be any
// resource's name, singular name, short name or kind, among every resource
// the API server serves.
func TestCategoryShadowsNoResource(t *testing.T) {
	e := sharedEnv(t)
	dc, err := discovery.NewDiscoveryClientForConfig(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	_, lists, err := dc.ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}
	categories := map[string][]string{} // category -> xdrive.io resources in it
	names := map[string]string{}        // every name kubectl resolves -> resource
	for _, l := range lists {
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") {
				continue // a subresource
			}
			for _, n := range append([]string{r.Name, r.SingularName, strings.ToLower(r.Kind)}, r.ShortNames...) {
				names[strings.ToLower(n)] = r.Name + " (" + l.GroupVersion + ")"
			}
			if strings.HasPrefix(l.GroupVersion, "xdrive.io/") {
				for _, c := range r.Categories {
					categories[c] = append(categories[c], r.Name)
				}
			}
		}
	}
	for c := range categories {
		if r, ok := names[strings.ToLower(c)]; ok {
			t.Errorf("category %q shadows the resource %s: kubectl would list the category instead", c, r)
		}
	}
	if got := categories[category]; len(got) != len(kubectlKinds) || len(categories) != 1 {
		t.Errorf("categories of xdrive.io = %v, want only %s, holding %d resources", categories, category, len(kubectlKinds))
	}
}
