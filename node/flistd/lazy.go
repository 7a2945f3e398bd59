package flistd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/grid4/grid4/flist"
)

// lazyTimeout is how long the kernel may keep names and attributes of a
// lazy tree: an flist never changes, so as long as it likes.
const lazyTimeout = 24 * time.Hour

// lazyFS is the read-only FUSE file system of one flist: the tree comes
// from the flist's document, known whole when mounting; a file's content
// is read block by block from src (the Manager: the verified cache, the
// hub on a miss). Modes are those of a materialised tree (flist.ModeFile,
// flist.ModeExecutable, flist.ModeDir), owner root, so that a workload
// sees the same tree whichever way it is mounted.
type lazyFS struct {
	id     flist.ID
	f      *flist.Flist
	src    flist.BlockSource
	recent *blockMemo
	log    *slog.Logger
	// mtime is the time of entries without a recorded one (a
	// materialised tree has its materialisation time there).
	mtime time.Time
}

// lazyDir is a directory (the root too).
type lazyDir struct {
	fs.Inode
	fsys  *lazyFS
	entry *flist.Entry // nil for the root
}

// lazyFile is a regular file whose blocks are read on demand.
type lazyFile struct {
	fs.Inode
	fsys  *lazyFS
	entry *flist.Entry
	// starts[i] is the offset of block i; starts[len(blocks)] the size.
	starts []int64
}

var (
	_ fs.NodeOnAdder   = (*lazyDir)(nil)
	_ fs.NodeGetattrer = (*lazyDir)(nil)
	_ fs.NodeGetattrer = (*lazyFile)(nil)
	_ fs.NodeOpener    = (*lazyFile)(nil)
	_ fs.NodeReader    = (*lazyFile)(nil)
)

// OnAdd builds the whole inode tree when the root is mounted. Inode
// numbers follow the document's order (root 1, entry i is i+2), so they
// are the same at every mount of the flist.
func (d *lazyDir) OnAdd(ctx context.Context) {
	if d.entry != nil {
		return
	}
	dirs := map[string]*fs.Inode{"": &d.Inode}
	for i := range d.fsys.f.Entries {
		e := &d.fsys.f.Entries[i]
		parent, name := path.Split(e.Path)
		pi := dirs[path.Clean("/" + parent)[1:]]
		if pi == nil {
			// Validate guarantees parents come first; a missing one is
			// a bug, not something to serve half of.
			panic(fmt.Sprintf("flistd: lazy tree: %s has no parent", e.Path))
		}
		st := fs.StableAttr{Ino: uint64(i) + 2}
		var node fs.InodeEmbedder
		switch e.Type {
		case flist.TypeDir:
			st.Mode = syscall.S_IFDIR
			node = &lazyDir{fsys: d.fsys, entry: e}
		case flist.TypeFile:
			st.Mode = syscall.S_IFREG
			node = newLazyFile(d.fsys, e)
		case flist.TypeSymlink:
			st.Mode = syscall.S_IFLNK
			node = &fs.MemSymlink{Data: []byte(e.Target), Attr: d.fsys.attr(e, uint64(i)+2)}
		}
		ch := pi.NewPersistentInode(ctx, node, st)
		pi.AddChild(name, ch, false)
		if e.Type == flist.TypeDir {
			dirs[e.Path] = ch
		}
	}
}

// attr returns the attributes of entry e (nil: the root).
func (l *lazyFS) attr(e *flist.Entry, ino uint64) fuse.Attr {
	a := fuse.Attr{Ino: ino, Nlink: 1, Blksize: 4096}
	t := l.mtime
	switch {
	case e == nil || e.Type == flist.TypeDir:
		a.Mode, a.Nlink = syscall.S_IFDIR|uint32(flist.ModeDir), 2
	case e.Type == flist.TypeFile:
		a.Mode = syscall.S_IFREG | uint32(flist.ModeFile)
		if e.Mode&0o111 != 0 {
			a.Mode = syscall.S_IFREG | uint32(flist.ModeExecutable)
		}
		a.Size, a.Blocks = uint64(e.Size), uint64(e.Size+511)/512
	case e.Type == flist.TypeSymlink:
		a.Mode, a.Size = syscall.S_IFLNK|0o777, uint64(len(e.Target))
	}
	if e != nil && e.Mtime > 0 {
		t = time.Unix(e.Mtime, 0)
	}
	a.SetTimes(&t, &t, &t)
	return a
}

// Getattr gives a directory's attributes.
func (d *lazyDir) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Attr = d.fsys.attr(d.entry, d.StableAttr().Ino)
	out.SetTimeout(lazyTimeout)
	return fs.OK
}

func newLazyFile(l *lazyFS, e *flist.Entry) *lazyFile {
	starts := make([]int64, len(e.Blocks)+1)
	for i, b := range e.Blocks {
		starts[i+1] = starts[i] + b.Size
	}
	return &lazyFile{fsys: l, entry: e, starts: starts}
}

// Getattr gives a file's attributes.
func (f *lazyFile) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Attr = f.fsys.attr(f.entry, f.StableAttr().Ino)
	out.SetTimeout(lazyTimeout)
	return fs.OK
}

// Open lets the kernel keep the file's pages across opens: they never
// change.
func (f *lazyFile) Open(_ context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC) != 0 {
		return nil, 0, syscall.EROFS
	}
	return nil, fuse.FOPEN_KEEP_CACHE, fs.OK
}

// Read copies [off, off+len(dest)) from the blocks covering it, fetching
// each on first use. A block that cannot be had intact fails the read
// with EIO (and a log record naming it): never other bytes.
func (f *lazyFile) Read(ctx context.Context, _ fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	size := f.entry.Size
	if off >= size || len(dest) == 0 {
		return fuse.ReadResultData(nil), fs.OK
	}
	end := min(off+int64(len(dest)), size)
	// The first block ending after off.
	i := sort.Search(len(f.entry.Blocks), func(i int) bool { return f.starts[i+1] > off })
	n := 0
	for pos := off; pos < end; i++ {
		ref := f.entry.Blocks[i]
		data, err := f.fsys.block(ctx, ref)
		if err != nil {
			if ctx.Err() != nil {
				return nil, syscall.EINTR
			}
			f.fsys.log.Error("flist block read failed: EIO", "flist", f.fsys.id.String(), "path", f.entry.Path, "block", ref.ID.String(), "err", err)
			return nil, syscall.EIO
		}
		n += copy(dest[n:end-off], data[pos-f.starts[i]:])
		pos = f.starts[i+1]
	}
	return fuse.ReadResultData(dest[:n]), fs.OK
}

// block returns the checked content of ref, from the recent blocks when
// a read before this one decoded it (the kernel reads a block in pieces
// of 128 KiB: decoding and hashing it once instead of eight times).
func (l *lazyFS) block(ctx context.Context, ref flist.BlockRef) ([]byte, error) {
	if data, ok := l.recent.get(ref.ID); ok {
		return data, nil
	}
	data, err := l.src.Block(ctx, ref)
	if err != nil {
		return nil, err
	}
	l.recent.put(ref.ID, data)
	return data, nil
}

// blockMemo keeps the last few decoded blocks in memory. Blocks in it
// were checked when they were put there.
type blockMemo struct {
	mu    sync.Mutex
	max   int
	order []flist.ID // oldest first
	data  map[flist.ID][]byte
}

func newBlockMemo(max int) *blockMemo {
	return &blockMemo{max: max, data: map[flist.ID][]byte{}}
}

func (b *blockMemo) get(id flist.ID) ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d, ok := b.data[id]
	return d, ok
}

func (b *blockMemo) put(id flist.ID, data []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.data[id]; ok {
		return
	}
	if len(b.order) >= b.max {
		delete(b.data, b.order[0])
		b.order = b.order[1:]
	}
	b.order = append(b.order, id)
	b.data[id] = data
}

// fuseAvailable reports whether FUSE can be used: /dev/fuse opens.
func fuseAvailable() error {
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// mountLazy mounts f read-only on dir over FUSE, served by this process
// (a lazy mount's server, ServeLazy) until unmounted, or until the
// process ends: then the mount answers ENOTCONN.
func mountLazy(dir string, f *flist.Flist, id flist.ID, src flist.BlockSource, recent *blockMemo, log *slog.Logger) (*fuse.Server, error) {
	root := &lazyDir{fsys: &lazyFS{id: id, f: f, src: src, recent: recent, log: log, mtime: time.Now()}}
	timeout := lazyTimeout
	opts := &fs.Options{
		MountOptions: fuse.MountOptions{
			// Workloads run as other users than the one serving the
			// mount; the kernel checks the modes (default_permissions).
			AllowOther:  true,
			FsName:      "grid4-flist-" + id.String()[:16],
			Name:        "grid4flist",
			DirectMount: true,
			// Read-only for the kernel too, never setuid or devices.
			DirectMountFlags: syscall.MS_RDONLY | syscall.MS_NOSUID | syscall.MS_NODEV,
			Options:          []string{"ro", "default_permissions"},
			DisableXAttrs:    true,
			Logger:           slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
		RootStableAttr:  &fs.StableAttr{Ino: 1, Mode: syscall.S_IFDIR},
		Logger:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv, err := fs.Mount(dir, root, opts)
	if err != nil {
		return nil, fmt.Errorf("flistd: mounting flist %s lazily on %s: %w", id, dir, err)
	}
	return srv, nil
}
