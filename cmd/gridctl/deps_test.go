package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNoServer keeps gridctl a client: it talks to the registrar, the
// hub and nodes through their client packages, so it must not link their
// servers, the provisioning engine, nor the libraries only those need
// (bbolt, go-redis, Prometheus). Each of these once came in through a client that lived
// in its server's package; this test is what keeps them out.
func TestLinksNoServer(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const module = "github.com/grid4/grid4/"
	forbidden := []struct{ pkg, why string }{
		{"go.etcd.io/bbolt", "the engine's database"},
		{"github.com/redis/go-redis/v9", "the node's bus"},
		{"github.com/prometheus/client_golang", "servers' metrics"},
		{module + "hub", "the hub server (use hub/client)"},
		{module + "node/zosapi", "the zos-api-light server (use node/zosapi/client)"},
		{module + "node/provisiond", "the provisioning engine (use gridtypes)"},
		{module + "registrar", "the registrar server (use registrar/client)"},
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			// A package below a forbidden one is forbidden too, except the
			// client and wire packages that live there on purpose.
			if dep == f.pkg || strings.HasPrefix(dep, f.pkg+"/") && !allowedBelow(dep) {
				t.Errorf("gridctl links %s: %s", dep, f.why)
			}
		}
	}
}

// allowedBelow reports whether dep, under a server's path, is one of the
// packages meant for clients: its client and its wire types.
func allowedBelow(dep string) bool {
	for _, suffix := range []string{"/client", "/api"} {
		if strings.HasSuffix(dep, suffix) {
			return true
		}
	}
	return false
}
