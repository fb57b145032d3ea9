package handoff

import (
	"fmt"
	"go/ast"
	"go/types"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/xdrive-io/xdrive/api/v1alpha1"
	"github.com/xdrive-io/xdrive/internal/controller/srccheck"
)

// otherKind is, for each controller package, the kind whose status it must
// read through this package only.
var otherKind = map[string]string{
	"github.com/xdrive-io/xdrive/internal/controller/xdrive":      "Workstation",
	"github.com/xdrive-io/xdrive/internal/controller/workstation": "XDrive",
}

// crossReads lists each use of the other kind's status in the package:
// a selector .Status on that kind, or any value of its status type.
func crossReads(t *testing.T, pkgPath, kind string) []string {
	c := srccheck.Load(t, pkgPath)
	seen := map[string]bool{}
	for _, f := range c.Files {
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			tv, ok := c.Info.Types[sel.X]
			if !ok {
				return true
			}
			if (sel.Sel.Name == "Status" && srccheck.IsAPIType(tv.Type, kind)) || srccheck.IsAPIType(tv.Type, kind+"Status") {
				p := c.Fset.Position(sel.Pos())
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
	c := srccheck.Load(t, "github.com/xdrive-io/xdrive/internal/controller/handoff")
	seen := map[string]bool{}
	for _, f := range c.Files {
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if tv, ok := c.Info.Types[sel.X]; ok && srccheck.IsAPIType(tv.Type, "WorkstationStatus") {
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
