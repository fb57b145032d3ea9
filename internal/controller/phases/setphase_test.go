package phases

import (
	"go/ast"
	"path/filepath"
	"testing"

	"github.com/xdrive-io/xdrive/internal/controller/srccheck"
)

// TestOneWayToChangePhase: the controllers assign their kind's phase in
// setPhase only, which checks the change against the table.
func TestOneWayToChangePhase(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks the controllers with go list")
	}
	for pkg, status := range map[string]string{
		"github.com/xdrive-io/xdrive/internal/controller/xdrive":      "XDriveStatus",
		"github.com/xdrive-io/xdrive/internal/controller/workstation": "WorkstationStatus",
	} {
		c := srccheck.Load(t, pkg)
		for _, f := range c.Files {
			for _, d := range f.Decls {
				fn, ok := d.(*ast.FuncDecl)
				if !ok || fn.Body == nil || fn.Name.Name == "setPhase" {
					continue
				}
				ast.Inspect(fn.Body, func(n ast.Node) bool {
					as, ok := n.(*ast.AssignStmt)
					if !ok {
						return true
					}
					for _, lhs := range as.Lhs {
						sel, ok := lhs.(*ast.SelectorExpr)
						if !ok || sel.Sel.Name != "Phase" {
							continue
						}
						if valueParam(fn, sel.X) {
							continue // a copy passed by value, compared, never written back
						}
						if tv, ok := c.Info.Types[sel.X]; ok && srccheck.IsAPIType(tv.Type, status) {
							p := c.Fset.Position(sel.Pos())
							t.Errorf("%s:%d: %s assigns the phase outside setPhase, unchecked by the table", filepath.Base(p.Filename), p.Line, fn.Name.Name)
						}
					}
					return true
				})
			}
		}
	}
}

// valueParam reports whether x names a parameter of fn passed by value (not a pointer).
func valueParam(fn *ast.FuncDecl, x ast.Expr) bool {
	id, ok := x.(*ast.Ident)
	if !ok {
		return false
	}
	for _, f := range fn.Type.Params.List {
		if _, ptr := f.Type.(*ast.StarExpr); ptr {
			continue
		}
		for _, n := range f.Names {
			if n.Name == id.Name {
				return true
			}
		}
	}
	return false
}
