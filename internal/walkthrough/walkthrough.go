// Package walkthrough runs the walkthroughs of the docs as tests: the
// shell blocks of a page marked <!-- walkthrough -->, run in order as one
// bash script with the repository's programs on the PATH, so a page
// cannot drift from what the programs do.
package walkthrough

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// blockRE finds the marked shell blocks.
var blockRE = regexp.MustCompile("(?s)<!-- walkthrough -->\n```sh\n(.*?)```")

// Blocks returns the walkthrough blocks of the markdown file at path;
// the test fails unless there are exactly want.
func Blocks(t testing.TB, path string, want int) []string {
	t.Helper()
	md, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range blockRE.FindAllStringSubmatch(string(md), -1) {
		out = append(out, m[1])
	}
	if len(out) != want {
		t.Fatalf("%s has %d walkthrough blocks, want %d", path, len(out), want)
	}
	return out
}

// Build builds the commands (import paths) into a temporary directory
// and returns it.
func Build(t testing.TB, cmds ...string) string {
	t.Helper()
	bin := t.TempDir()
	out, err := exec.Command("go", append([]string{"build", "-o", bin + "/"}, cmds...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// Script is a walkthrough ready to run.
type Script struct {
	// Blocks are the shell blocks, in order.
	Blocks []string
	// Bin is put first on the PATH.
	Bin string
	// Dir is the working directory (and HOME and TMPDIR).
	Dir string
	// Env is added to the environment (PATH, HOME, TMPDIR).
	Env []string
	// Timeout bounds the whole run.
	Timeout time.Duration
}

// separator ends each block's output.
const separator = "--- block done\n"

// Run runs the blocks as one script with `set -euo pipefail` whose exit
// kills and waits for what the blocks started in the background. It
// returns the whole output and its part per block (one more, after the
// last block, normally empty).
func (s Script) Run() (out string, parts []string, err error) {
	var b strings.Builder
	b.WriteString("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT\n")
	for _, blk := range s.Blocks {
		b.WriteString(blk)
		b.WriteString("echo '" + strings.TrimSuffix(separator, "\n") + "'\n")
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", b.String())
	cmd.Dir = s.Dir
	cmd.Env = append([]string{
		"PATH=" + s.Bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + s.Dir, "TMPDIR=" + s.Dir,
	}, s.Env...)
	cmd.WaitDelay = 10 * time.Second
	o, err := cmd.CombinedOutput()
	return string(o), strings.Split(string(o), separator), err
}
