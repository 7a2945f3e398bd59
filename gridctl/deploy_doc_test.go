package gridctl

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/grid4/grid4/node/provisiond/zmachine"
)

// TestZosAPIWalkthrough runs the gridctl commands of docs/zos-api.md's
// walkthrough, with its files, against a registrar and a node with the
// real managers, in the order the page shows them.
func TestZosAPIWalkthrough(t *testing.T) {
	page, err := os.ReadFile("../docs/zos-api.md")
	if err != nil {
		t.Fatal(err)
	}
	machinesDir := t.TempDir()
	machines, err := zmachine.New(zmachine.Config{Dir: filepath.Join(machinesDir, "machines"), LogDir: filepath.Join(machinesDir, "logs")})
	if err != nil {
		t.Fatal(err)
	}
	r := newDeployRig(t, machines)
	env := r.identity()
	delete(env, RegistrarEnv) // the walkthrough gives GRID_TWIN instead
	if env[TwinEnv] != "1" {
		t.Fatalf("the walkthrough assumes twin 1, got %s", env[TwinEnv])
	}
	files := map[string]string{}
	blocks := regexp.MustCompile("(?s)<!-- (walkthrough(?:-file: ([^ ]+))?) -->\n```\\w*\n(.*?)\n```").FindAllStringSubmatch(string(page), -1)
	ran := 0
	for _, b := range blocks {
		if name := b[2]; name != "" {
			files[name] = r.file(name, b[3])
			continue
		}
		for _, line := range strings.Split(b[3], "\n") {
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			cmd, fails, _ := strings.Cut(line, "# fails:")
			args := strings.Fields(cmd)
			if args[0] != "gridctl" {
				t.Fatalf("walkthrough line %q is not a gridctl command", line)
			}
			args = args[1:]
			for i, a := range args {
				if p, ok := files[a]; ok {
					args[i] = p
				}
			}
			code, out, errOut := r.run(env, args...)
			fails = strings.TrimSpace(fails)
			switch {
			case fails == "" && code != 0:
				t.Fatalf("%s: exit %d\n%s%s", line, code, out, errOut)
			case fails != "" && (code != 1 || !strings.Contains(errOut, fails)):
				t.Fatalf("%s: exit %d, want a failure with %q\n%s%s", line, code, fails, out, errOut)
			}
			t.Logf("$ %s\n%s%s", line, out, errOut)
			ran++
		}
	}
	if ran < 8 || len(files) != 3 {
		t.Fatalf("found %d commands and %d files in the walkthrough", ran, len(files))
	}
	// The end state the page shows: both deployments deleted, disk gone.
	out := r.ok(env, "deployment", "list")
	if strings.Count(out, "deleted") != 2 {
		t.Fatalf("final list:\n%s", out)
	}
	if entries, _ := filepath.Glob(filepath.Join(r.nodeDir, "storage", "pools", "*", "zmount", "*")); len(entries) != 0 {
		t.Fatalf("disks left: %v", entries)
	}
}
