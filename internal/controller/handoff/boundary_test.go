package handoff

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
)

const apiPkg = "github.com/xdrive-io/xdrive/api/v1alpha1"

// otherKind is, for each controller package, the kind whose status it must
// read through this package only.
var otherKind = map[string]string{
	"github.com/xdrive-io/xdrive/internal/controller/xdrive":      "Workstation",
	"github.com/xdrive-io/xdrive/internal/controller/workstation": "XDrive",
}

// checked is a type-checked package: its files and what they use.
type checked struct {
	fset  *token.FileSet
	files []*ast.File
	info  *types.Info
}

// load type-checks the non-test files of a package of this module against
// the export data that `go list -export` builds.
func load(t *testing.T, pkgPath string) checked {
	t.Helper()
	cmd := exec.Command("go", "list", "-export", "-deps", "-json=ImportPath,Export,Dir,GoFiles", pkgPath)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkgPath, err)
	}
	exports := map[string]string{}
	var dir string
	var goFiles []string
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			ImportPath, Export, Dir string
			GoFiles                 []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding go list: %v", err)
		}
		exports[p.ImportPath] = p.Export
		if p.ImportPath == pkgPath {
			dir, goFiles = p.Dir, p.GoFiles
		}
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range goFiles {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parsing %s: %v", name, err)
		}
		files = append(files, f)
	}
	lookup := func(path string) (io.ReadCloser, error) {
		if exports[path] == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(exports[path])
	}
	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Selections: map[*ast.SelectorExpr]*types.Selection{}}
	conf := types.Config{Importer: importer.ForCompiler(fset, "gc", lookup)}
	if _, err := conf.Check(pkgPath, fset, files, info); err != nil {
		t.Fatalf("type-checking %s: %v", pkgPath, err)
	}
	return checked{fset: fset, files: files, info: info}
}

// isKind reports whether t is the API type name (or a pointer to it).
func isKind(t types.Type, name string) bool {
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem()
	}
	n, ok := t.(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == apiPkg && n.Obj().Name() == name
}

// crossReads lists each use of the other kind's status in the package:
// a selector .Status on that kind, or any value of its status type.
func crossReads(t *testing.T, pkgPath, kind string) []string {
	c := load(t, pkgPath)
	seen := map[string]bool{}
	for _, f := range c.files {
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			tv, ok := c.info.Types[sel.X]
			if !ok {
				return true
			}
			if (sel.Sel.Name == "Status" && isKind(tv.Type, kind)) || isKind(tv.Type, kind+"Status") {
				p := c.fset.Position(sel.Pos())
				seen[fmt.Sprintf("%s:%d: %s.%s", filepath.Base(p.Filename), p.Line, types.ExprString(sel.X), sel.Sel.Name)] = true
			}
			return true
		})
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestNoCrossReads fails when a controller reads the other kind's status
// outside this package: the hand-off between them is the functions here.
func TestNoCrossReads(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks the controllers with go list")
	}
	for pkg, kind := range otherKind {
		for _, r := range crossReads(t, pkg, kind) {
			t.Errorf("%s reads %s status outside internal/controller/handoff: %s", filepath.Base(pkg), kind, r)
		}
	}
}

// holderReads lists the Workstation status fields this package reads.
func holderReads(t *testing.T) []string {
	c := load(t, "github.com/xdrive-io/xdrive/internal/controller/handoff")
	seen := map[string]bool{}
	for _, f := range c.files {
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if tv, ok := c.info.Types[sel.X]; ok && isKind(tv.Type, "WorkstationStatus") {
					seen[sel.Sel.Name] = true
				}
			}
			return true
		})
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// nonZero sets v to a value other than its zero value.
func nonZero(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		nonZero(k)
		v.SetMapIndex(k, e)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				nonZero(v.Field(i))
				return
			}
		}
	}
}

// TestHolderChangedCoversReads: the drive's wake-up predicate fires for a
// change of every Workstation status field the functions here read, so a
// new question about the holder cannot miss its wake-up.
func TestHolderChangedCoversReads(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks this package with go list")
	}
	reads := holderReads(t)
	if len(reads) == 0 {
		t.Fatal("found no read of WorkstationStatus: the check is broken")
	}
	for _, field := range reads {
		old := &v1alpha1.Workstation{}
		changed := old.DeepCopy()
		f := reflect.ValueOf(&changed.Status).Elem().FieldByName(field)
		if !f.IsValid() {
			t.Fatalf("WorkstationStatus has no field %s", field)
		}
		nonZero(f)
		if !HolderChanged(old, changed) {
			t.Errorf("status.%s is read by the hand-off, but a change of it does not wake the drive (add it to holderView)", field)
		}
	}
	t.Logf("the drive reads %v of its holder's status", reads)
}
