package gridctl

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/node/flistd"
	"github.com/grid4/grid4/oci/ocitest"
)

// TestHubPushImageE2E converts and publishes container images with gridctl
// processes: the URL it prints is one a node's flistd accepts, the image
// metadata reaches the node, a layer shared with an image published before
// is not uploaded again, and bad archives are refused in one line.
func TestHubPushImageE2E(t *testing.T) {
	e := newHubE2E(t)
	keyArgs := []string{"--mnemonic-file", e.keyFile}
	lib := make([]byte, 1<<20+5000) // two blocks
	for i := range lib {
		lib[i] = byte(i * 31 / 17)
	}
	libFile := filepath.Join(e.dir, "libshared.so")
	if err := os.WriteFile(libFile, lib, 0o644); err != nil {
		t.Fatal(err)
	}
	base := ocitest.Layer{
		"bin/":               ocitest.Dir(0o755),
		"bin/hello":          ocitest.Text("#!/bin/sh\necho \"hello from $(cat \"$(dirname \"$0\")/../etc/greeting\")\"\n", 0o755),
		"lib/libshared.so":   ocitest.FileFrom(libFile, 0o644),
		"lib/libshared.so.1": ocitest.Symlink("/lib/libshared.so"),
		"dev/null":           ocitest.Device(),
	}
	web := ocitest.Archive(t, e.dir, ocitest.Image{
		Name:   "web:1.0",
		Layers: []ocitest.Layer{base, {"etc/greeting": ocitest.Text("web", 0o644)}},
		Config: ocitest.Config{Entrypoint: []string{"/bin/hello"}, Env: []string{"PATH=/bin"}, WorkingDir: "/"},
	})

	// docker save archive: text output, progress on a pipe, notes.
	p := e.ok(nil, append([]string{"hub", "push-image", "tf/apps", "web", web}, keyArgs...)...)
	url := e.url + "/api/v1/repos/tf/apps/flists/web"
	for _, want := range []string{
		`(?m)^url:\s+` + regexp.QuoteMeta(url) + `$`,
		`(?m)^flist:\s+[0-9a-f]{64}$`,
		`(?m)^image:\s+web:1\.0 \(docker-save, 2 layers\)$`,
		`(?m)^blocks:\s+4 \(4 uploaded, .*; 0 already on the hub\)$`,
		`(?m)^entrypoint:\s+\["/bin/hello"\]$`,
		`(?m)^env:\s+\["PATH=/bin"\]$`,
		`(?m)^workdir:\s+/$`,
	} {
		if !regexp.MustCompile(want).MatchString(p.stdout) {
			t.Fatalf("push-image output lacks %s:\n%s", want, p.stdout)
		}
	}
	for _, want := range []string{
		"converting web from " + web + "\n",
		"layer 1 of 2: sha256:",
		"uploading web: 4 of 4 blocks to upload",
		"note: device nodes, FIFOs and sockets skipped (an flist cannot hold them; the runtime provides /dev): 1 (dev/null)\n",
	} {
		if !strings.Contains(p.stderr, want) {
			t.Fatalf("push-image stderr lacks %q:\n%s", want, p.stderr)
		}
	}

	// Another image on the same base, as a gzip'd OCI archive on standard
	// input: only its own layer's block goes up.
	api := ocitest.Archive(t, e.dir, ocitest.Image{
		Format: ocitest.OCIArchive, Gzip: true,
		Layers: []ocitest.Layer{base, {"etc/greeting": ocitest.Text("api", 0o644)}},
		Config: ocitest.Config{Entrypoint: []string{"/bin/hello"}},
	})
	archive, err := os.ReadFile(api)
	if err != nil {
		t.Fatal(err)
	}
	var view pushImageView
	p = e.okWith(bytes.NewReader(archive), nil, append([]string{"hub", "push-image", "tf/apps", "api", "-", "-o", "json"}, keyArgs...)...)
	if err := json.Unmarshal([]byte(p.stdout), &view); err != nil {
		t.Fatal(err)
	}
	if view.Blocks != 4 || view.Uploaded != 1 || view.URL != e.url+"/api/v1/repos/tf/apps/flists/api" || view.Image.Format != "oci-layout" || view.Image.Entrypoint[0] != "/bin/hello" {
		t.Fatalf("second image: %+v", view)
	}
	if !strings.Contains(p.stderr, "1 of 4 blocks to upload") {
		t.Fatalf("second image progress:\n%s", p.stderr)
	}
	// The same image again under another name: nothing to upload.
	p = e.ok(nil, append([]string{"hub", "push-image", "tf/apps", "web-copy", web}, keyArgs...)...)
	if !strings.Contains(p.stderr, "uploading web-copy: all 4 blocks already on the hub") {
		t.Fatalf("same image again:\n%s", p.stderr)
	}

	// A node mounts it by the printed URL: flistd accepts it, the image
	// metadata comes with the document, and the tree runs.
	pub, repo, name, _, err := flistd.ParseFlistURL(e.url, url)
	if err != nil || pub != "tf" || repo != "apps" || name != "web" {
		t.Fatalf("ParseFlistURL(%s): %s %s %s %v", url, pub, repo, name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := flistd.New(flistd.Config{HubURL: e.url, CacheDir: filepath.Join(e.dir, "node-cache")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	f, err := m.Fetch(ctx, view.Flist.Flist)
	if err != nil {
		t.Fatal(err)
	}
	if f.Image == nil || f.Image.Entrypoint[0] != "/bin/hello" {
		t.Fatalf("image metadata on the node: %+v", f.Image)
	}
	root := filepath.Join(e.dir, "api-root")
	if err := m.Materialize(ctx, f, root); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(root, f.Image.Entrypoint[0])).Output()
	if err != nil || string(out) != "hello from api\n" {
		t.Fatalf("running the image's entrypoint: %q %v", out, err)
	}
	if target, _ := os.Readlink(filepath.Join(root, "lib/libshared.so.1")); target != "libshared.so" {
		t.Fatalf("absolute symlink made relative: %q", target)
	}

	// Refusals, one line each.
	bad := filepath.Join(e.dir, "bad.tar")
	if err := os.WriteFile(bad, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.fails(`^gridctl: invalid image archive: `+regexp.QuoteMeta(bad)+`: not a tar archive or an OCI layout directory: .*\n$`,
		nil, append([]string{"hub", "push-image", "tf/apps", "bad", bad}, keyArgs...)...)
	damaged := filepath.Join(e.dir, "damaged.tar")
	data, err := os.ReadFile(web)
	if err != nil {
		t.Fatal(err)
	}
	data[bytes.Index(data, []byte("hello from"))] ^= 1
	if err := os.WriteFile(damaged, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// Found while reading the layers, after their progress lines: the
	// reason is the last line.
	p = e.run(nil, append([]string{"hub", "push-image", "tf/apps", "damaged", damaged}, keyArgs...)...)
	if want := `(?m)\Alayer 1 of 2: .*\ngridctl: ` + regexp.QuoteMeta(damaged) + `: digest mismatch: layer 1 content \(diff_id\) has digest sha256:[0-9a-f]{64}, want sha256:[0-9a-f]{64}\n\z`; p.code != 1 || p.stdout != "" ||
		!regexp.MustCompile(want).MatchString(strings.TrimPrefix(p.stderr, "converting damaged from "+damaged+"\n")) {
		t.Fatalf("damaged archive: exit %d\n%s", p.code, p.stderr)
	}
	two := filepath.Join(e.dir, "two.tar")
	if err := ocitest.Write(two, ocitest.DockerSave, false, ocitest.Image{Name: "a:1", Layers: []ocitest.Layer{base}}, ocitest.Image{Name: "b:1", Layers: []ocitest.Layer{base}}); err != nil {
		t.Fatal(err)
	}
	e.fails(`^gridctl: .*two\.tar: no such image in the archive: the archive holds 2 images \(a:1, b:1\): choose one by name\n$`,
		nil, append([]string{"hub", "push-image", "tf/apps", "two", two}, keyArgs...)...)
	p = e.ok(nil, append([]string{"hub", "push-image", "tf/apps", "b", two, "--image", "b:1"}, keyArgs...)...)
	if !regexp.MustCompile(`(?m)^image:\s+b:1 \(docker-save, 1 layer\)$`).MatchString(p.stdout) {
		t.Fatalf("--image b:1:\n%s", p.stdout)
	}
	e.fails(`^gridctl: stat .*none\.tar: no such file or directory\n$`, nil, append([]string{"hub", "push-image", "tf/apps", "x", filepath.Join(e.dir, "none.tar")}, keyArgs...)...)
}
