package gridtypes

import (
	"os/exec"
	"strings"
	"testing"
)

// goListDeps returns the packages outside the standard library that pkgs
// link, themselves included, as the go command resolves them.
func goListDeps(t *testing.T, pkgs ...string) []string {
	t.Helper()
	args := append([]string{"list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}"}, pkgs...)
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return strings.Fields(string(out))
}

// TestStandsAlone holds gridtypes to what its users are promised: a
// program that builds and signs deployments links the standard library,
// keys, auth and what those two need, and nothing of the node (no engine,
// no database, no bus). A new import that breaks this belongs in the
// engine, not here.
func TestStandsAlone(t *testing.T) {
	const module = "github.com/grid4/grid4/"
	allowed := map[string]bool{module + "gridtypes": true}
	for _, p := range goListDeps(t, module+"keys", module+"auth") {
		allowed[p] = true
	}
	for p := range allowed {
		if strings.HasPrefix(p, module) && p != module+"keys" && p != module+"auth" && p != module+"gridtypes" && !strings.HasPrefix(p, module+"internal/") {
			t.Errorf("keys or auth link %s: gridtypes would link it too", p)
		}
	}
	for _, p := range goListDeps(t, module+"gridtypes") {
		if !allowed[p] {
			t.Errorf("gridtypes links %s, which neither keys nor auth needs", p)
		}
	}
}
