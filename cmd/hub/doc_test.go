package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	hubapi "github.com/grid4/grid4/hub/api"
)

// TestDocWalkthrough runs the publishing walkthrough of docs/hub.md as a
// shell script with freshly built hub and gridctl binaries, so the
// documented commands keep working.
func TestDocWalkthrough(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	md, err := os.ReadFile("../../docs/hub.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)<!-- walkthrough -->\n```sh\n(.*?)```").FindAllStringSubmatch(string(md), -1)
	if len(blocks) < 3 {
		t.Fatalf("docs/hub.md has %d walkthrough blocks", len(blocks))
	}
	bin := t.TempDir()
	for _, pkg := range []string{".", "../gridctl"} {
		if out, err := exec.Command("go", "build", "-o", bin+"/", pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	var script strings.Builder
	// Stop the background hub whatever happens.
	script.WriteString("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n")
	for _, b := range blocks {
		script.WriteString(strings.ReplaceAll(b[1], "127.0.0.1:8090", addr))
	}
	work := t.TempDir()
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = work
	cmd.Env = append(cleanEnv(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		hubLog, _ := os.ReadFile(filepath.Join(work, "hub.log"))
		t.Fatalf("walkthrough failed: %v\n%s\nhub log:\n%s", err, out, hubLog)
	}
	for _, want := range []string{`(?m)^signature:\s+valid \(ed25519, key `, `(?m)^link:\s+production -> v4\.1\.2$`, `(?m)^tf/zos\s+2\s+1\s+1$`} {
		if !regexp.MustCompile(want).Match(out) {
			t.Errorf("walkthrough output lacks %s:\n%s", want, out)
		}
	}
	var listing hubapi.RepoListing
	raw, err := os.ReadFile(filepath.Join(work, "tf-zos.json"))
	if err != nil || json.Unmarshal(raw, &listing) != nil || len(listing.Flists) != 2 || len(listing.Tags) != 1 {
		t.Fatalf("tf-zos.json: %v\n%s", err, raw)
	}
}
