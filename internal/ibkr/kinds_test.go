package ibkr

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"
)

// TestEveryKindHasACode reads the Kind constants from errors.go, so that a
// kind added there without an entry in kindCodes fails here.
func TestEveryKindHasACode(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []Kind
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Kind" {
				continue
			}
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					t.Fatalf("%s: not a string literal", name.Name)
				}
				kinds = append(kinds, Kind(lit.Value[1:len(lit.Value)-1]))
			}
		}
	}
	if len(kinds) < 16 {
		t.Fatalf("found %d Kind constants in errors.go, want at least 16: is the parse right?", len(kinds))
	}
	for _, k := range kinds {
		if _, ok := kindCodes[k]; !ok {
			t.Errorf("ibkr.Kind %q has no errs code in kindCodes", k)
		}
	}
	if len(kindCodes) != len(kinds) {
		t.Errorf("kindCodes has %d entries for %d kinds: remove the stale ones", len(kindCodes), len(kinds))
	}
}
