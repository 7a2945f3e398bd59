package upgrader

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/internal/walkthrough"
)

// TestDocWalkthrough runs the rollout walkthrough of docs/upgrade.md as a
// shell script with hub, registrar, gridctl and zosd built from this
// repository: three zosd nodes (each with its private redis-server and
// its modules as processes) upgrade to a release published with gridctl,
// test farm first, and roll back a broken one.
func TestDocWalkthrough(t *testing.T) {
	begin := time.Now()
	for _, p := range []string{"bash", "redis-server"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("no %s: %v", p, err)
		}
	}
	blocks := walkthrough.Blocks(t, "../../docs/upgrade.md", 6)
	bin := walkthrough.Build(t, "github.com/grid4/grid4/cmd/hub", "github.com/grid4/grid4/cmd/registrar",
		"github.com/grid4/grid4/cmd/gridctl", "github.com/grid4/grid4/cmd/zosd")
	t.Logf("built hub, registrar, gridctl and zosd in %.1fs", time.Since(begin).Seconds())
	for i, s := range blocks {
		s = strings.ReplaceAll(s, "127.0.0.1:8090", freeAddr(t))
		s = strings.ReplaceAll(s, "127.0.0.1:8080", freeAddr(t))
		// The nodes' API ports (127.0.0.1:202$i): a free range of three.
		blocks[i] = strings.ReplaceAll(s, "127.0.0.1:202$i", "127.0.0.1:"+freePorts(t, 3)+"$i")
	}
	work := t.TempDir()
	out, parts, err := walkthrough.Script{
		Blocks: blocks, Bin: bin, Dir: work, Timeout: 80 * time.Second,
		// The test's machine may have no default route nor reach a
		// geoip service: nodes take the loopback interface and no
		// location; little disk may be free.
		Env: []string{"ZOSD_INTERFACE=lo", "ZOSD_GEOIP_URL=none", "ZOSD_MIN_FREE_DISK=1MiB"},
	}.Run()
	logs := func() string {
		var b strings.Builder
		for _, f := range []string{"hub.log", "registrar.log", "node1.log", "node2.log"} {
			l, _ := os.ReadFile(filepath.Join(work, f))
			lines := strings.Split(strings.TrimSpace(string(l)), "\n")
			b.WriteString("\n--- " + f + " (end)\n" + strings.Join(lines[max(0, len(lines)-25):], "\n"))
		}
		return b.String()
	}
	if err != nil {
		t.Fatalf("walkthrough failed: %v\n%s\n%s", err, out, logs())
	}
	count := func(part int, re string) int {
		return len(regexp.MustCompile(re).FindAllString(parts[part], -1))
	}
	for _, c := range []struct {
		part int
		re   string
		n    int
	}{
		{1, `(?m)^\d+\s+[12]\s+\d+\s.* v4\.1\.0$`, 3}, // three nodes on v4.1.0
		{3, `(?m)^\d+\s+1\s+\d+\s.* v4\.1\.1$`, 1},    // the test farm's node moved
		{3, `(?m)^\d+\s+2\s+\d+\s.* v4\.1\.0$`, 2},    // the others did not
		{3, `(?m)^version\s+v4\.1\.1 \(generation 1, release [0-9a-f]{12}, installed`, 1},
		{3, `(?m)^  registrar   v4\.1\.1 \(record 1\), test farms \[1\] only$`, 1},
		{4, `(?m)^\d+\s+[12]\s+\d+\s.* v4\.1\.1$`, 3}, // everyone
		{5, `(?m)^  rolled back v4\.1\.2 \(record 3, .*not healthy within 6s: .*cannot start`, 1},
		{5, `(?m)^version\s+v4\.1\.1 \(generation 1,`, 1},
		{5, `(?m)^\d+\s+[12]\s+\d+\s.* v4\.1\.1$`, 3}, // still everyone on v4.1.1
	} {
		if len(parts) != 7 || count(c.part, c.re) != c.n {
			t.Errorf("walkthrough block %d: want %d lines like %s:\n%s", c.part+1, c.n, c.re, out)
		}
	}
	// The modules of node1 ran the generation's zosd.
	if b, _ := os.ReadFile(filepath.Join(work, "node1.log")); !strings.Contains(string(b), "restarting on request") {
		t.Errorf("node1 never restarted its modules:%s", logs())
	}
	if testing.Verbose() {
		t.Logf("output:\n%s", out)
	}
	t.Logf("walkthrough in %.1fs", time.Since(begin).Seconds())
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// freePorts returns a port prefix P (1000 to 6499) such that ports P1 to
// Pn are free on loopback: the walkthrough gives node i port 202i.
func freePorts(t *testing.T, n int) string {
	t.Helper()
	for p := 1000 + rand.IntN(5500); ; p = 1000 + rand.IntN(5500) {
		ok := true
		for i := 1; i <= n && ok; i++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d%d", p, i))
			if err != nil {
				ok = false
				continue
			}
			ln.Close()
		}
		if ok {
			return fmt.Sprint(p)
		}
	}
}
