// Package srccheck type-checks this module's packages for tests that
// check how the controllers' code is written (no cross-reads, one way to
// change a phase).
package srccheck

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
	"strings"
	"testing"
)

// APIPackage is the import path of the API types.
const APIPackage = "github.com/xdrive-io/xdrive/api/v1alpha1"

// Package is a type-checked package: its files and what they use.
type Package struct {
	Fset  *token.FileSet
	Files []*ast.File
	Info  *types.Info
}

// Load type-checks the non-test files of a package of this module against
// the export data that `go list -export` builds.
func Load(t *testing.T, pkgPath string) Package {
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
	return Package{Fset: fset, Files: files, Info: info}
}

// IsAPIType reports whether t is the API type name (or a pointer to it).
func IsAPIType(t types.Type, name string) bool {
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem()
	}
	n, ok := t.(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == APIPackage && n.Obj().Name() == name
}
