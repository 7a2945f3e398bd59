package contd

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docs/contd.md lists exactly the methods the bus object serves.
func TestDocListsTheMethods(t *testing.T) {
	md, err := os.ReadFile("../../docs/contd.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(md), "\n## The bus object `"+Object+"`\n")
	if !ok {
		t.Fatalf("docs/contd.md has no section for %s", Object)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Z][A-Za-z]+)` \\|").FindAllStringSubmatch(sec, -1) {
		documented = append(documented, m[1])
	}
	slices.Sort(documented)
	served := slices.Sorted(maps.Keys((&Service{}).Methods()))
	if !slices.Equal(documented, served) {
		t.Errorf("docs/contd.md documents %v; the object serves %v", documented, served)
	}
}
