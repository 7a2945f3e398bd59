package vmd

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docs/vmd.md lists exactly the methods the bus object serves.
func TestDocListsTheMethods(t *testing.T) {
	md, err := os.ReadFile("../../docs/vmd.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(md), "\n## The bus object `"+Object+"`\n")
	if !ok {
		t.Fatalf("docs/vmd.md has no section for %s", Object)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Z][A-Za-z]+)` \\|").FindAllStringSubmatch(sec, -1) {
		documented = append(documented, m[1])
	}
	slices.Sort(documented)
	served := slices.Sorted(maps.Keys((&Service{}).Methods()))
	if !slices.Equal(documented, served) {
		t.Errorf("docs/vmd.md documents %v; the object serves %v", documented, served)
	}
}
