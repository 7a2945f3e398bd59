//go:build ignore

// Funclen fails when a function outside tests is longer than the house
// limit (README: no function over 100 lines outside tests). `make lint`
// runs it:
//
//	go run scripts/funclen.go [-max 100] [DIR]
//
// A function's length counts from its func line to its closing brace;
// function literals count on their own and inside their function.
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	max := flag.Int("max", 100, "the most lines a function may have")
	flag.Parse()
	root := "."
	if flag.NArg() > 0 {
		root = flag.Arg(0)
	}
	long, err := longFunctions(root, *max)
	if err != nil {
		fmt.Fprintf(os.Stderr, "funclen: %v\n", err)
		os.Exit(2)
	}
	for _, l := range long {
		fmt.Println(l)
	}
	if len(long) > 0 {
		fmt.Fprintf(os.Stderr, "funclen: %d function(s) over %d lines outside tests: split them by responsibility\n", len(long), *max)
		os.Exit(1)
	}
}

// longFunctions lists, as "file:line: name is N lines", the functions of
// the non-test Go files below root (testdata and hidden directories
// aside) that have more than max lines.
func longFunctions(root string, max int) ([]string, error) {
	fset := token.NewFileSet()
	var long []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			name, body := function(n)
			if body == nil {
				return true
			}
			start := fset.Position(n.Pos())
			if lines := fset.Position(body.End()).Line - start.Line + 1; lines > max {
				long = append(long, fmt.Sprintf("%s:%d: %s is %d lines", start.Filename, start.Line, name, lines))
			}
			return true
		})
		return nil
	})
	return long, err
}

// function returns the name and body of a function declaration or
// literal, and a nil body for any other node.
func function(n ast.Node) (string, *ast.BlockStmt) {
	switch fn := n.(type) {
	case *ast.FuncDecl:
		return fn.Name.Name, fn.Body
	case *ast.FuncLit:
		return "a function literal", fn.Body
	}
	return "", nil
}
