package gridctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/hub"
	hubapi "github.com/grid4/grid4/hub/api"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/flistd"
)

// hubE2E is a hub on loopback whose publisher "tf" is a fresh mnemonic,
// and the gridctl processes run against it.
type hubE2E struct {
	t        *testing.T
	url      string
	dir      string
	mnemonic string
	keyFile  string
	pubKey   []byte
}

func newHubE2E(t *testing.T) *hubE2E {
	t.Helper()
	if gridctlBin == "" {
		t.Fatal(buildErr)
	}
	m, err := keys.NewMnemonic()
	if err != nil {
		t.Fatal(err)
	}
	kp, err := keys.FromSecretURI(keys.Sr25519, m)
	if err != nil {
		t.Fatal(err)
	}
	e := &hubE2E{t: t, dir: t.TempDir(), mnemonic: m, pubKey: kp.Public().Key}
	e.keyFile = filepath.Join(e.dir, "publisher.mnemonic")
	if err := os.WriteFile(e.keyFile, []byte(m+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := hub.DefaultConfig()
	cfg.DataDir = filepath.Join(e.dir, "hub")
	cfg.Publishers = []hub.Publisher{{Name: "tf", ID: hub.PublisherID("tf"), PublicKey: kp.Public().Key}}
	srv, err := hub.New(cfg, hub.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	e.url = ts.URL
	return e
}

// run runs gridctl with GRID_HUB set and extra environment.
func (e *hubE2E) run(env []string, args ...string) proc {
	e.t.Helper()
	return e.runWith(nil, env, args...)
}

// runWith is run with stdin as the standard input.
func (e *hubE2E) runWith(stdin io.Reader, env []string, args ...string) proc {
	e.t.Helper()
	cmd := exec.Command(gridctlBin, args...)
	cmd.Stdin = stdin
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), HubEnv + "=" + e.url, "TMPDIR=" + e.dir}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		e.t.Fatalf("running gridctl %v: %v", args, err)
	}
	return proc{code: code, stdout: out.String(), stderr: errOut.String(), args: args}
}

func (e *hubE2E) ok(env []string, args ...string) proc {
	e.t.Helper()
	return e.okWith(nil, env, args...)
}

func (e *hubE2E) okWith(stdin io.Reader, env []string, args ...string) proc {
	e.t.Helper()
	p := e.runWith(stdin, env, args...)
	if p.code != 0 {
		e.t.Fatalf("gridctl %s: exit %d\nstderr: %s\nstdout: %s", strings.Join(args, " "), p.code, p.stderr, p.stdout)
	}
	if strings.ContainsAny(p.stdout+p.stderr, "\r\x1b") {
		e.t.Fatalf("gridctl %s: terminal control characters on a pipe:\n%q\n%q", strings.Join(args, " "), p.stdout, p.stderr)
	}
	return p
}

func (e *hubE2E) okJSON(v any, env []string, args ...string) proc {
	e.t.Helper()
	p := e.ok(env, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(p.stdout), v); err != nil {
		e.t.Fatalf("gridctl %s -o json: %v\n%s", strings.Join(args, " "), err, p.stdout)
	}
	return p
}

func (e *hubE2E) fails(pattern string, env []string, args ...string) {
	e.t.Helper()
	p := e.run(env, args...)
	if p.code != 1 || !regexp.MustCompile(pattern).MatchString(p.stderr) {
		e.t.Fatalf("gridctl %s: exit %d, stderr %q; want exit 1 and %s", strings.Join(args, " "), p.code, p.stderr, pattern)
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(content, "->") {
			if err := os.Symlink(content[2:], p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(content, "#!") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHubE2E publishes packages, a tag and a link with gridctl processes,
// lists them, and installs the release the way a node does.
func TestHubE2E(t *testing.T) {
	e := newHubE2E(t)
	keyArgs := []string{"--mnemonic-file", e.keyFile}
	shared := strings.Repeat("a shared library\n", 100_000) // 1.7 MB: two blocks
	dep := filepath.Join(e.dir, "containerd")
	writeFiles(t, dep, map[string]string{"bin/containerd": "#!/bin/sh\necho containerd\n", "lib/libc.so": shared})
	zos := filepath.Join(e.dir, "zos")
	writeFiles(t, zos, map[string]string{"bin/zos": "#!/bin/sh\necho zos\n", "lib/libc.so": shared, "etc/zos.conf": "x=1\n", "lib/libc.so.6": "->libc.so"})

	// publish: text output, plain progress lines on a pipe.
	p := e.ok(nil, append([]string{"hub", "publish", "tf/zos", "containerd", dep}, keyArgs...)...)
	for _, want := range []string{`(?m)^flist:\s+[0-9a-f]{64}$`, `(?m)^blocks:\s+3 \(3 uploaded, .*; 0 already on the hub\)$`, `(?m)^repo:\s+tf/zos$`} {
		if !regexp.MustCompile(want).MatchString(p.stdout) {
			t.Fatalf("publish output lacks %s:\n%s", want, p.stdout)
		}
	}
	if !strings.Contains(p.stderr, "uploading containerd: 3 of 3 blocks to upload") || !strings.Contains(p.stderr, "uploading containerd: done, 3 blocks") {
		t.Fatalf("publish progress on a pipe:\n%s", p.stderr)
	}
	// The second package shares libc.so's two blocks: only its own go up.
	var pub publishView
	p = e.okJSON(&pub, []string{MnemonicEnv + "=" + e.mnemonic}, "hub", "publish", "tf/zos", "zos", zos)
	if pub.Blocks != 4 || pub.Uploaded != 2 || pub.Flist.Name != "zos" {
		t.Fatalf("second publish: %+v", pub)
	}
	if !strings.Contains(p.stderr, "2 of 4 blocks to upload") {
		t.Fatalf("second publish progress:\n%s", p.stderr)
	}

	// tag and link.
	var tv tagView
	e.okJSON(&tv, nil, append([]string{"hub", "tag", "tf/zos", "v4.1.2", "--dep", "containerd", "--zos", "zos"}, keyArgs...)...)
	if !tv.Verified || tv.Tag.Tag != "v4.1.2" || len(tv.Tag.Entries) != 2 || tv.Tag.Entries[1].Flist != pub.Flist.Flist || tv.Tag.Entries[1].Role != flist.RoleZos {
		t.Fatalf("tag: %+v", tv)
	}
	// The same command again, in a later second (so another document, with
	// another created time): the tag is there with these flists already.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 50*time.Millisecond)))
	p = e.ok(nil, append([]string{"hub", "tag", "tf/zos", "v4.1.2", "--dep", "containerd", "--zos", "zos"}, keyArgs...)...)
	if p.stderr != "tag tf/zos:v4.1.2 was already published with these flists\n" || !strings.Contains(p.stdout, tv.Tag.Hash.String()) {
		t.Fatalf("tag again: %q\n%s", p.stderr, p.stdout)
	}
	p = e.ok(nil, append([]string{"hub", "link", "tf/zos", "production", "v4.1.2"}, keyArgs...)...)
	if !regexp.MustCompile(`(?m)^link:\s+production -> v4\.1\.2$`).MatchString(p.stdout) {
		t.Fatalf("link output:\n%s", p.stdout)
	}

	// ls at every level.
	p = e.ok(nil, "hub", "ls")
	if !regexp.MustCompile(`(?m)^tf/zos\s+2\s+1\s+1$`).MatchString(p.stdout) {
		t.Fatalf("ls:\n%s", p.stdout)
	}
	var listing hubapi.RepoListing
	e.okJSON(&listing, nil, "hub", "ls", "tf/zos")
	if len(listing.Flists) != 2 || len(listing.Tags) != 1 || listing.Links[0].Tag != "v4.1.2" {
		t.Fatalf("ls tf/zos: %+v", listing)
	}
	p = e.ok(nil, "hub", "ls", "tf/zos:production", "--publisher-key", keys.SS58Encode(e.pubKey, 42))
	for _, want := range []string{`(?m)^link:\s+production -> v4\.1\.2$`, `(?m)^signature:\s+valid \(sr25519, key `, `(?m)^2\s+zos\s+zos\s+` + pub.Flist.Flist.String() + `$`} {
		if !regexp.MustCompile(want).MatchString(p.stdout) {
			t.Fatalf("ls tf/zos:production lacks %s:\n%s", want, p.stdout)
		}
	}
	var pubs []hubapi.PublisherInfo
	e.okJSON(&pubs, nil, "hub", "ls", "--publishers")
	if len(pubs) != 1 || pubs[0].Name != "tf" {
		t.Fatalf("publishers: %+v", pubs)
	}

	// Refusals, one line each.
	other, _ := keys.NewMnemonic()
	e.fails(`^gridctl: publisher tf has key \S+ on http://127\.0\.0\.1:\d+, this identity is \S+ \(sr25519; check --scheme and --path\)\n$`,
		[]string{MnemonicEnv + "=" + other}, "hub", "publish", "tf/zos", "x", zos)
	e.fails(`^gridctl: no identity`, nil, "hub", "publish", "tf/zos", "x", zos)
	e.fails(`^gridctl: hub refused: tag tf/zos:v4\.1\.2 exists with other content; tags are immutable, publish a new one \(409\)\n$`,
		nil, append([]string{"hub", "tag", "tf/zos", "v4.1.2", "--zos", "zos"}, keyArgs...)...)
	e.fails(`^gridctl: entry "nope": no flist nope in tf/zos`, nil, append([]string{"hub", "tag", "tf/zos", "v5", "--dep", "nope"}, keyArgs...)...)
	e.fails(`^gridctl: tf/zos has no tag or link called v9\n$`, nil, "hub", "ls", "tf/zos:v9")
	e.fails(`^gridctl: cannot reach hub at http://127\.0\.0\.1:1: connection refused\n$`, nil, "hub", "ls", "--hub", "http://127.0.0.1:1")
	wrong, _ := keys.Generate(keys.Ed25519)
	e.fails(`^gridctl: tag tf/zos:v4\.1\.2: signature not verified: `, nil, "hub", "ls", "tf/zos:v4.1.2", "--publisher-key", keys.SS58Encode(wrong.Public().Key, 42))

	// A node installs the release: link -> tag, signature checked with the
	// key it is configured with, every package materialised.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := flistd.New(flistd.Config{HubURL: e.url, CacheDir: filepath.Join(e.dir, "node-cache")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tagName, err := m.ResolveLink(ctx, "tf", "zos", "production")
	if err != nil {
		t.Fatal(err)
	}
	release, _, err := m.VerifiedTag(ctx, "tf", "zos", tagName, e.pubKey)
	if err != nil {
		t.Fatal(err)
	}
	gen := filepath.Join(e.dir, "gen-1")
	if err := os.Mkdir(gen, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, en := range release.Entries {
		f, err := m.Fetch(ctx, en.Flist)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Materialize(ctx, f, filepath.Join(gen, en.Name)); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(filepath.Join(gen, "zos", "bin", "zos")).Output()
	if err != nil || string(out) != "zos\n" {
		t.Fatalf("running the installed zos: %q %v", out, err)
	}
	if target, _ := os.Readlink(filepath.Join(gen, "zos", "lib", "libc.so.6")); target != "libc.so" {
		t.Fatalf("symlink: %q", target)
	}
}
