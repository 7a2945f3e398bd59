package hub

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grid4/grid4/hub/client"
	"github.com/grid4/grid4/oci"
	"github.com/grid4/grid4/oci/ocitest"
)

// TestPublishReuploadsBlocksLostMeanwhile removes blocks from the hub after
// the "which are missing" question and checks PublishDir recovers.
func TestPublishReuploadsBlocksLostMeanwhile(t *testing.T) {
	h := newTestHub(t)
	ctx := ctxT(t)
	dir := tree(t, map[string]string{"a": strings.Repeat("a", 1000), "b": strings.Repeat("b", 1000)})
	first, err := h.tf.PublishDir(ctx, "tf", "zos", "ab", dir, client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The progress hook runs between the question and the document: an
	// operator deletes the blocks there.
	lose := &loseBlocks{dir: filepath.Join(h.dataDir, "blocks")}
	res, err := h.tf.PublishDir(ctx, "tf", "zos", "ab2", dir, client.PublishOptions{Progress: lose})
	if err != nil {
		t.Fatalf("publish after losing blocks: %v", err)
	}
	if res.Uploaded != first.Blocks || res.Info.Flist != first.Info.Flist {
		t.Fatalf("re-uploaded %d blocks, want %d", res.Uploaded, first.Blocks)
	}
}

type loseBlocks struct {
	dir  string
	done bool
}

func (l *loseBlocks) Start(blocks, all int, bytes int64) {
	if l.done {
		return
	}
	l.done = true
	_ = os.RemoveAll(l.dir)
	_ = os.MkdirAll(l.dir, 0o755)
}

func (l *loseBlocks) Add(int64) {}

// TestPublishImageSharesLayers publishes two images that share a base
// layer: the second uploads only the blocks of its own layer (the hub
// stores no new block for the base), the same image under another name
// uploads nothing, and the hub serves the image metadata in the document.
func TestPublishImageSharesLayers(t *testing.T) {
	h := newTestHub(t)
	ctx := ctxT(t)
	base := make([]byte, 3<<20+100) // 4 blocks
	for i := range base {
		base[i] = byte(i * 13 / 7)
	}
	baseLayer := ocitest.Layer{"lib/libbig.so": ocitest.Bytes(base, 0o644), "bin/sh": ocitest.Text("#!sh", 0o755)}
	dir := t.TempDir()
	web := ocitest.Archive(t, dir, ocitest.Image{
		Layers: []ocitest.Layer{baseLayer, {"www/index.html": ocitest.Text("web", 0o644)}},
		Config: ocitest.Config{Entrypoint: []string{"/bin/sh"}, Env: []string{"A=1"}},
	})
	api := ocitest.Archive(t, dir, ocitest.Image{
		Format: ocitest.OCIArchive, Gzip: true,
		Layers: []ocitest.Layer{baseLayer, {"srv/api": ocitest.Text("api", 0o755)}},
		Config: ocitest.Config{Cmd: []string{"/srv/api"}},
	})
	first, err := h.tf.PublishImage(ctx, "tf", "apps", "web", web, oci.Options{}, client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if first.Blocks != 6 || first.Uploaded != 6 || first.Image == nil || first.Image.Format != oci.FormatDockerSave {
		t.Fatalf("first: %d blocks, %d uploaded, %+v", first.Blocks, first.Uploaded, first.Image)
	}
	stored := h.counter("hub_blocks_stored_total")
	second, err := h.tf.PublishImage(ctx, "tf", "apps", "api", api, oci.Options{}, client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if second.Blocks != 6 || second.Uploaded != 1 || h.counter("hub_blocks_stored_total") != stored+1 {
		t.Fatalf("second: %d blocks, %d uploaded, %v stored", second.Blocks, second.Uploaded, h.counter("hub_blocks_stored_total")-stored)
	}
	again, err := h.tf.PublishImage(ctx, "tf", "apps", "api-copy", api, oci.Options{}, client.PublishOptions{})
	if err != nil || again.Uploaded != 0 || again.Info.Flist != second.Info.Flist {
		t.Fatalf("again: %+v %v", again, err)
	}
	f, err := h.anon.Flist(ctx, first.Info.Flist)
	if err != nil {
		t.Fatal(err)
	}
	if f.Image == nil || f.Image.Entrypoint[0] != "/bin/sh" || f.Image.Env[0] != "A=1" {
		t.Fatalf("image served: %+v", f.Image)
	}
	if u := h.tf.FlistURL("tf", "apps", "web"); u != h.ts.URL+"/api/v1/repos/tf/apps/flists/web" {
		t.Fatalf("FlistURL: %s", u)
	}
	info, err := h.anon.FlistInfo(ctx, "tf", "apps", "web")
	if err != nil || info.Flist != first.Info.Flist {
		t.Fatalf("the name: %+v %v", info, err)
	}
	// A bad archive fails before anything is uploaded.
	bad := filepath.Join(dir, "bad.tar")
	_ = os.WriteFile(bad, []byte("not an archive"), 0o644)
	if _, err := h.tf.PublishImage(ctx, "tf", "apps", "bad", bad, oci.Options{}, client.PublishOptions{}); !errors.Is(err, oci.ErrInvalidArchive) {
		t.Fatalf("bad archive: %v", err)
	}
}
