package devnet

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProgress: plain lines without escape codes elsewhere than on a
// terminal; a failure names the component and its log.
func TestProgress(t *testing.T) {
	var out bytes.Buffer
	p := NewProgress(&out, false)
	if err := p.Step("registrar", "starting", "/d/logs/registrar.log", func() (string, error) { return "running at http://x", nil }); err != nil {
		t.Fatal(err)
	}
	err := p.Step("node2", "starting", "/d/logs/node2.log", func() (string, error) { return "", errors.New("exited") })
	if err == nil || err.Error() != "node2: exited (log: /d/logs/node2.log)" {
		t.Fatalf("failure: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "registrar  running at http://x (") ||
		lines[1] != "node2      FAILED: node2: exited (log: /d/logs/node2.log)" || strings.ContainsAny(out.String(), "\r\x1b") {
		t.Fatalf("plain progress:\n%q", out.String())
	}

	// On a terminal: the spinner's line (its first frame is drawn
	// whatever the step's length), rewritten with the outcome.
	out.Reset()
	p = NewProgress(&out, true)
	p.now = func() time.Time { return time.Unix(0, 0) }
	p.Step("hub", "starting", "", func() (string, error) { return "running", nil })
	if s := out.String(); !strings.HasPrefix(s, "\r⠋ hub        starting\x1b[K") || !strings.HasSuffix(s, "\r\x1b[K✓ hub        running (0s)\n") {
		t.Fatalf("terminal progress:\n%q", s)
	}
}

// TestMarkers: a node's marker is not part of another's (node1, node10).
func TestMarkers(t *testing.T) {
	d := Dir("/d")
	if strings.Contains(d.nodeData("node10")+"/", d.marker("node1")) || d.marker(Registrar) == d.marker(Hub) {
		t.Fatalf("markers overlap: %q %q", d.marker("node1"), d.nodeData("node10"))
	}
}

// TestMissingBinary names the program missing and how to get it.
func TestMissingBinary(t *testing.T) {
	dir := t.TempDir()
	for _, b := range []string{BinRegistrar, BinHub} {
		os.WriteFile(filepath.Join(dir, b), []byte("#!/bin/sh\n"), 0o755)
	}
	_, err := checkBinaries(dir)
	if err == nil || !strings.HasPrefix(err.Error(), "zosd is missing in "+dir+": build the binaries with 'make build'") {
		t.Fatalf("got %v", err)
	}
}

// TestLogs: one component's log by name or number, complete lines only;
// every log prefixed with its component; an unknown one named.
func TestLogs(t *testing.T) {
	d := Dir(t.TempDir())
	st := &State{Tag: "abc", Host: "127.0.0.1", Nodes: []Node{{Name: "node1"}, {Name: "node2"}}}
	if err := d.saveState(st); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(d.Path("logs"), 0o700)
	os.WriteFile(d.Log("node2"), []byte("one\ntwo\nhalf"), 0o600)
	os.WriteFile(d.Log(Registrar), []byte("reg\n"), 0o600)
	var out bytes.Buffer
	if err := Logs(context.Background(), LogsConfig{Dir: string(d), Component: "2", Out: &out}); err != nil || out.String() != "one\ntwo\n" {
		t.Fatalf("logs 2: %q %v", out.String(), err)
	}
	out.Reset()
	if err := Logs(context.Background(), LogsConfig{Dir: string(d), Out: &out}); err != nil ||
		out.String() != "registrar | reg\nnode2     | one\nnode2     | two\n" {
		t.Fatalf("all logs: %q %v", out.String(), err)
	}
	err := Logs(context.Background(), LogsConfig{Dir: string(d), Component: "node3", Out: &out})
	if err == nil || !strings.Contains(err.Error(), `no component "node3" in this devnet`) {
		t.Fatalf("logs node3: %v", err)
	}
	if _, _, err := open(t.TempDir()); !errors.Is(err, ErrNoDevnet) {
		t.Fatalf("an empty directory: %v", err)
	}
}

// TestBusy: commands that change a devnet take turns.
func TestBusy(t *testing.T) {
	d := Dir(t.TempDir())
	if err := d.saveState(&State{Tag: "abc", Host: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	unlock, err := d.lock()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if err := Down(context.Background(), DownConfig{Dir: string(d)}); !errors.Is(err, ErrBusy) {
		t.Fatalf("down while another command runs: %v", err)
	}
}

// TestChildEnv: the programs' own settings in the user's environment do
// not reach them; the rest does.
func TestChildEnv(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", "ZOSD_REDIS=redis://x", "REGISTRAR_DB=x", "HUB_LISTEN=:1", "BOOTSTRAP_DATA=/x", "GRID_HUB=h", "HOME=/root"})
	if strings.Join(got, " ") != "PATH=/bin GRID_HUB=h HOME=/root" {
		t.Fatalf("got %q", got)
	}
}

// TestReleaseRefusedEarly: a malformed version, or one the devnet has
// released already, is refused before anything runs, without pointing
// at the hub's log.
func TestReleaseRefusedEarly(t *testing.T) {
	d := Dir(t.TempDir())
	if err := d.saveState(&State{Tag: "abc", Host: "127.0.0.1", Releases: []string{"v4.1.0", "v4.1.1"}}); err != nil {
		t.Fatal(err)
	}
	for version, want := range map[string]string{
		"4.1.2":  `version "4.1.2": want vMAJOR.MINOR.PATCH, such as v4.1.1`,
		"v4.1.1": "v4.1.1 is already released on this devnet (releases: v4.1.0, v4.1.1); a hub's tags are immutable: release a new version",
	} {
		var out bytes.Buffer
		err := Release(context.Background(), ReleaseConfig{Dir: string(d), BinDir: t.TempDir(), Version: version, Progress: NewProgress(&out, false)})
		if err == nil || err.Error() != want || out.Len() != 0 {
			t.Fatalf("release %s: %v (progress %q)", version, err, out.String())
		}
	}
}
