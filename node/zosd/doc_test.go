package zosd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestNodeWalkthrough runs the walkthrough of docs/node.md as a shell
// script with registrar, gridctl and zosd built from this repository: a
// node started with one command hosts a user's volume, disk and network
// deployed by node id, brings them back after a restart and removes them.
func TestNodeWalkthrough(t *testing.T) {
	begin := time.Now()
	md, err := os.ReadFile("../../docs/node.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)<!-- walkthrough -->\n```sh\n(.*?)```").FindAllStringSubmatch(string(md), -1)
	if len(blocks) != 4 {
		t.Fatalf("docs/node.md has %d walkthrough blocks, want 4", len(blocks))
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "github.com/grid4/grid4/cmd/registrar",
		"github.com/grid4/grid4/cmd/gridctl", "github.com/grid4/grid4/cmd/zosd")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	api := freeAddr(t)
	var script strings.Builder
	script.WriteString("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT\n")
	for _, b := range blocks {
		s := strings.ReplaceAll(b[1], "127.0.0.1:8080", freeAddr(t))
		s = strings.ReplaceAll(s, "127.0.0.1:2021", api)
		script.WriteString(s)
		script.WriteString("echo '--- block done'\n")
	}
	work := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = work
	cmd.Env = []string{
		"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + work, "TMPDIR=" + work,
		// The test's machine may have no default route nor reach a
		// geoip service; other tests' nodes share this host's network
		// names.
		"ZOSD_INTERFACE=lo", "ZOSD_GEOIP_URL=none", "ZOSD_MIN_FREE_DISK=1MiB",
		"ZOSD_NET_SALT=walk" + filepath.Base(work),
	}
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		l, _ := os.ReadFile(filepath.Join(work, "node.log"))
		t.Fatalf("walkthrough failed: %v\n%s\n--- node.log\n%s", err, out, l)
	}
	parts := strings.Split(string(out), "--- block done\n")
	for _, c := range []struct {
		part int
		re   string
		n    int
	}{
		{1, `(?m)^online:\s+yes$`, 1},
		{1, `(?m)^api:\s+http://` + regexp.QuoteMeta(api) + `/api/v1/rpc$`, 1}, // found by id
		{2, `(?m)^1\s+0\s+3 ok\s+-\s+storage and a network`, 1},
		{2, `(?m)^workloads\s+API on ` + regexp.QuoteMeta(api) + `; deployments 1, twins 1; workloads 3 ok; queued 0$`, 1},
		{3, `(?m)^1\s+0\s+3 ok\s+-\s+storage and a network`, 1}, // back after the restart
		{3, `(?m)^1\s+0\s+deleted\s+-\s+storage and a network`, 1},
	} {
		if len(parts) != 5 || len(regexp.MustCompile(c.re).FindAllString(parts[c.part], -1)) != c.n {
			t.Errorf("walkthrough block %d: want %d lines like %s:\n%s", c.part+1, c.n, c.re, out)
		}
	}
	if testing.Verbose() {
		t.Logf("output:\n%s", out)
	}
	t.Logf("walkthrough in %.1fs", time.Since(begin).Seconds())
}
