package dbgen

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"
)

// TestFunctionsAreShort keeps every function of the package, tests
// included, at most 80 lines long, declaration to closing brace.
func TestFunctionsAreShort(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			ast.Inspect(f, func(n ast.Node) bool {
				if _, ok := n.(*ast.FuncDecl); !ok {
					if _, ok := n.(*ast.FuncLit); !ok {
						return true
					}
				}
				start, end := fset.Position(n.Pos()), fset.Position(n.End())
				if lines := end.Line - start.Line + 1; lines > 80 {
					t.Errorf("%s: a function of %d lines (at most 80)", start, lines)
				}
				return true
			})
		}
	}
}
