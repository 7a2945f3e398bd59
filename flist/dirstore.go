package flist

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/grid4/grid4/internal/atomicfile"
)

// DirStore keeps stored blocks as files in a directory, sharded by the
// first two hex digits of the ID: <dir>/ab/ab12...ef. It is a BlockSink
// and a BlockSource. Writes are atomic (a block file is either absent or
// complete), so several processes may share one directory.
type DirStore struct {
	dir string
	// NoSync skips fsync on writes: for scratch stores (a build before
	// upload) where a crash loses nothing of value.
	NoSync bool
}

// NewDirStore opens (creating it if needed) a block directory.
func NewDirStore(dir string) (*DirStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("flist: block store: %w", err)
	}
	return &DirStore{dir: dir}, nil
}

// Dir returns the store's directory.
func (s *DirStore) Dir() string { return s.dir }

// Path returns the file holding block id (which may not exist).
func (s *DirStore) Path(id ID) string {
	h := id.String()
	return filepath.Join(s.dir, h[:2], h)
}

// Has reports whether block id is stored.
func (s *DirStore) Has(id ID) bool {
	_, err := os.Stat(s.Path(id))
	return err == nil
}

// PutBlock stores a block's encoded form unless the block is already
// there. It does not check the content: callers that do not trust the
// bytes decode them with DecodeBlock first.
func (s *DirStore) PutBlock(_ context.Context, id ID, stored []byte) error {
	final := s.Path(id)
	if _, err := os.Stat(final); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return fmt.Errorf("flist: block store: %w", err)
	}
	return writeNew(final, stored, !s.NoSync)
}

// Stored returns the encoded form of block id; the error wraps
// fs.ErrNotExist when it is absent.
func (s *DirStore) Stored(id ID) ([]byte, error) {
	b, err := os.ReadFile(s.Path(id))
	if err != nil {
		return nil, fmt.Errorf("flist: block %s: %w", id, err)
	}
	return b, nil
}

// Block returns the decoded, checked content of block ref.
func (s *DirStore) Block(_ context.Context, ref BlockRef) ([]byte, error) {
	stored, err := s.Stored(ref.ID)
	if err != nil {
		return nil, err
	}
	return DecodeBlock(ref.ID, stored, ref.Size)
}

// writeNew writes data to a temporary file next to final and links it to
// final, which must not exist yet (an existing final is left as is, and
// is not an error: content-addressed files with the same name are the same
// content). With sync, the data and the directory entry reach the disk.
func writeNew(final string, data []byte, sync bool) error {
	create := atomicfile.Create
	if !sync {
		create = atomicfile.CreateScratch
	}
	if _, err := create(final, data, 0o644); err != nil {
		return fmt.Errorf("flist: storing %s: %w", final, err)
	}
	return nil
}
