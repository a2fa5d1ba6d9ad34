package doccheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
)

// Declarations are what a Go source tree declares, for resolving the
// names the documents use.
type Declarations struct {
	// Packages maps a package name to the top-level names of its non-test
	// files ("Store", "ErrNotFound") and its methods ("Store.InTx").
	// Packages of the same name are merged.
	Packages map[string]map[string]bool
	// Tests are the Test…, Benchmark… and Fuzz… functions of every
	// _test.go file.
	Tests map[string]bool
}

// ReadDeclarations parses every .go file under root (testdata and hidden
// directories skipped) for its declarations.
func ReadDeclarations(root string) (*Declarations, error) {
	d := &Declarations{Packages: map[string]map[string]bool{}, Tests: map[string]bool{}}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if p != root && (strings.HasPrefix(e.Name(), ".") || e.Name() == "testdata" || e.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("doccheck: %w", err)
		}
		d.add(f, strings.HasSuffix(p, "_test.go"))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Declarations) add(f *ast.File, test bool) {
	if test {
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Recv == nil {
				d.Tests[fn.Name.Name] = true
			}
		}
		return
	}
	names := d.Packages[f.Name.Name]
	if names == nil {
		names = map[string]bool{}
		d.Packages[f.Name.Name] = names
	}
	for _, decl := range f.Decls {
		switch decl := decl.(type) {
		case *ast.FuncDecl:
			if decl.Recv == nil {
				names[decl.Name.Name] = true
				continue
			}
			if recv := receiverType(decl.Recv.List[0].Type); recv != "" {
				names[recv+"."+decl.Name.Name] = true
			}
		case *ast.GenDecl:
			for _, s := range decl.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					names[s.Name.Name] = true
					addFields(names, s)
				case *ast.ValueSpec:
					for _, n := range s.Names {
						names[n.Name] = true
					}
				}
			}
		}
	}
}

// addFields records a struct's fields as Type.Field, which the documents
// name as they name methods (`db.Error.Constraint`).
func addFields(names map[string]bool, s *ast.TypeSpec) {
	st, ok := s.Type.(*ast.StructType)
	if !ok {
		return
	}
	for _, f := range st.Fields.List {
		for _, n := range f.Names {
			names[s.Name.Name+"."+n.Name] = true
		}
	}
}

// receiverType is a method receiver's type name: T, *T, T[K], *T[K].
func receiverType(e ast.Expr) string {
	for {
		switch t := e.(type) {
		case *ast.StarExpr:
			e = t.X
		case *ast.IndexExpr:
			e = t.X
		case *ast.IndexListExpr:
			e = t.X
		case *ast.Ident:
			return t.Name
		default:
			return ""
		}
	}
}

// Has reports whether a qualified name ("pkg.Name", "pkg.Type.Method")
// is declared. known is false when no package has that name, so the
// caller can tell a foreign package (`errors.Is`) from a missing name.
func (d *Declarations) Has(qualified string) (found, known bool) {
	pkg, name, _ := strings.Cut(qualified, ".")
	names, ok := d.Packages[pkg]
	if !ok {
		return false, false
	}
	return names[name], true
}
