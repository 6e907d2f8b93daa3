package allocator

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// TestExportedNamesHaveDocComments keeps the package's surface documented:
// every exported type, function, method, constant and variable (or its
// group) has a doc comment that starts with its name or says what the group is.
func TestExportedNamesHaveDocComments(t *testing.T) {
	fset := token.NewFileSet()
	files := map[string]*ast.File{}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if n := e.Name(); strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			f, err := parser.ParseFile(fset, n, nil, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			files[n] = f
		}
	}
	pkg, err := doc.NewFromFiles(fset, mapValues(files), "github.com/kvcp-dev/kube-vip-cloud-provider/allocator")
	if err != nil {
		t.Fatal(err)
	}
	if pkg.Doc == "" {
		t.Error("the package has no doc comment")
	}
	check := func(name, text string) {
		if strings.TrimSpace(text) == "" {
			t.Errorf("%s has no doc comment", name)
		}
	}
	values := func(vs []*doc.Value) {
		for _, v := range vs {
			check(strings.Join(v.Names, ", "), v.Doc)
		}
	}
	funcs := func(recv string, fs []*doc.Func) {
		for _, f := range fs {
			check(recv+f.Name, f.Doc)
			if !strings.HasPrefix(f.Doc, f.Name+" ") {
				t.Errorf("the doc comment of %s%s does not start with its name", recv, f.Name)
			}
		}
	}
	values(pkg.Consts)
	values(pkg.Vars)
	funcs("", pkg.Funcs)
	for _, ty := range pkg.Types {
		check(ty.Name, ty.Doc)
		values(ty.Consts)
		values(ty.Vars)
		funcs("", ty.Funcs)
		funcs(ty.Name+".", ty.Methods)
	}
}

func mapValues(m map[string]*ast.File) []*ast.File {
	out := make([]*ast.File, 0, len(m))
	for _, f := range m {
		out = append(out, f)
	}
	return out
}
