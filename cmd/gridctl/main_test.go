package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const devPhrase = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"

// buildGridctl compiles this command into a temporary directory.
func buildGridctl(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	bin := filepath.Join(t.TempDir(), "gridctl")
	build := exec.Command(goTool, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type procResult struct {
	code           int
	stdout, stderr string
}

func runBinary(t *testing.T, bin string, env []string, stdin string, args ...string) procResult {
	t.Helper()
	cmd := exec.Command(bin, args...)
	// Only what the test gives: no GRID_MNEMONIC leaking in from the caller.
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("running gridctl: %v", err)
	}
	return procResult{code, out.String(), errOut.String()}
}

func TestBinary(t *testing.T) {
	bin := buildGridctl(t)
	dev := []string{"GRID_MNEMONIC=" + devPhrase}

	r := runBinary(t, bin, dev, "", "keys", "show", "--scheme", "sr25519", "--path", "//Alice")
	if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY") {
		t.Fatalf("show //Alice: %+v", r)
	}

	// Sign on stdin, verify through a pipe of processes.
	r = runBinary(t, bin, dev, "payload", "keys", "sign", "--path", "//Bob")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("sign: %+v", r)
	}
	sig := strings.TrimSpace(r.stdout)
	r = runBinary(t, bin, nil, "payload", "keys", "verify", "--public-key", "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty", "--signature", sig)
	if r.code != 0 || r.stdout != "valid\n" || r.stderr != "" {
		t.Fatalf("verify: %+v", r)
	}
	r = runBinary(t, bin, nil, "tampered", "keys", "verify", "--public-key", "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty", "--signature", sig)
	if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, "gridctl: invalid signature") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("verify of a tampered message: %+v", r)
	}

	// Missing identity and usage errors: one line, no usage dump, exit 1.
	for _, args := range [][]string{{"keys", "show"}, {"keys", "show", "--bogus"}, {"nope"}} {
		r = runBinary(t, bin, nil, "", args...)
		if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, "gridctl: ") || strings.Count(r.stderr, "\n") != 1 {
			t.Fatalf("%v: %+v", args, r)
		}
	}

	// Help is not an error.
	r = runBinary(t, bin, nil, "", "keys", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "verify") {
		t.Fatalf("help: %+v", r)
	}
}
