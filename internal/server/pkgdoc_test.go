package server

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestPackagesHaveDocComments checks that every package under internal/ and
// cmd/ has a package doc comment in at least one of its non-test files.
func TestPackagesHaveDocComments(t *testing.T) {
	// packages maps a folder to whether some file documents its package.
	packages := map[string]bool{}
	for _, root := range []string{"../../internal", "../../cmd"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if name := d.Name(); path != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				return err
			}
			dir := filepath.Dir(path)
			packages[dir] = packages[dir] || (f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "")
			return nil
		})
		if err != nil {
			t.Fatalf("walk %s: %v", root, err)
		}
	}
	if len(packages) < 5 {
		wd, _ := os.Getwd()
		t.Fatalf("found only %d packages from %s; is the layout as expected?", len(packages), wd)
	}
	dirs := make([]string, 0, len(packages))
	for dir := range packages {
		dirs = append(dirs, dir)
	}
	sort.Strings(dirs)
	for _, dir := range dirs {
		t.Run(filepath.ToSlash(strings.TrimPrefix(dir, "../../")), func(t *testing.T) {
			if !packages[dir] {
				t.Errorf("package in %s has no package doc comment", dir)
			}
		})
	}
}
