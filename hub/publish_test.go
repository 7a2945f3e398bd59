package hub

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grid4/grid4/hub/client"
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
