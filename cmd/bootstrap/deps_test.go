package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNoNetwork keeps the bootstrap small and offline: it verifies
// generations from the disk alone, so it must link no network package,
// neither the bus nor the modules nor the upgrader (which fetches
// releases).
func TestLinksNoNetwork(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == "net" || strings.HasPrefix(dep, "net/"), dep == "crypto/tls":
			t.Errorf("the bootstrap links %s: network code", dep)
		case strings.HasPrefix(dep, "github.com/grid4/grid4/") && !allowed[strings.TrimPrefix(dep, "github.com/grid4/grid4/")]:
			t.Errorf("the bootstrap links %s: only the upgrade directory's code and plumbing belong in it", dep)
		}
	}
}

// allowed are the module's packages the bootstrap may link.
var allowed = map[string]bool{
	"cmd/bootstrap": true, "node/bootstrap": true, "node/upgrader/generation": true,
	"flist": true, "keys": true,
	"internal/atomicfile": true, "internal/strictb64": true, "internal/envflag": true, "internal/logflag": true, "internal/jsonstr": true,
	"internal/lockfile": true, "internal/sdnotify": true, "node/internal/lastline": true,
}
