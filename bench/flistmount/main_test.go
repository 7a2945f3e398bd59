package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestMain lets this test binary be a lazy mount's server too: the
// benchmark runs its own executable as one (os.Executable is the test
// binary here), as main does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == serveArg {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestFlistMount runs the benchmark on a small image: both modes mount,
// read the file and start a container on it, and the lazy mount
// downloads less than the materialised one.
func TestFlistMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounts and containers need root")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Fatal("runc is not installed (make test-services installs it)")
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-size", "6", "-files", "2", "-runs", "1", "-dir", t.TempDir()}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "lazy ") || !strings.HasPrefix(lines[2], "materialized ") {
		t.Fatalf("output:\n%s", stdout.String())
	}
	downloaded := func(line string) float64 {
		f := strings.Fields(line)
		n, err := strconv.ParseFloat(f[len(f)-2], 64)
		if err != nil {
			t.Fatalf("downloaded in %q: %v", line, err)
		}
		return n
	}
	if lazy, full := downloaded(lines[1]), downloaded(lines[2]); lazy >= full || full < 6 {
		t.Fatalf("the lazy mount downloaded as much as the full one:\n%s", stdout.String())
	}
}

func TestFlistMountRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-size", "0"}, {"-runs", "0"}, {"extra"}} {
		if err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
