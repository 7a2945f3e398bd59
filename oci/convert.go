package oci

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"unicode/utf8"

	"github.com/grid4/grid4/flist"
)

// Options tune Convert.
type Options struct {
	// Image chooses the image of an archive holding several: a name as
	// `docker save` records it (busybox:latest; the tag latest and the
	// registry docker.io are implied), or an OCI layout's
	// org.opencontainers.image.ref.name annotation. "": the archive's only
	// image.
	Image string
	// Platform chooses among the images of a multi-platform index, and
	// must be the image configuration's: OS/ARCH[/VARIANT] ("":
	// DefaultPlatform).
	Platform string
	// KeepMtimes records the files' modification times. Off by default,
	// like flist.Builder: the same content gives the same flist.
	KeepMtimes bool
	// Workers compress blocks in parallel (0: GOMAXPROCS).
	Workers int
	// TempDir is where a gzip-compressed archive file is decompressed
	// ("": the system's temporary directory).
	TempDir string
	// OnLayer, if set, is called before each layer is read.
	OnLayer func(Layer)
	// MaxSize, if positive, bounds the bytes of file content read from
	// all the layers together (uncompressed, sparse files' holes
	// included): a program converting archives it does not trust sets it.
	MaxSize int64
}

// Layer describes one layer of the image.
type Layer struct {
	// Index counts from 1 to Count, in the order layers are applied.
	Index, Count int
	// Digest is the blob's ("sha256:..."), "" when the archive does not
	// say (a docker save layer.tar; DiffID checks it).
	Digest string
	// DiffID is the digest of the uncompressed layer.
	DiffID string
	// Size is the blob's length in bytes (-1: unknown).
	Size int64
}

// Result is what Convert made.
type Result struct {
	// Flist is the image's tree, with Flist.Image set from its
	// configuration. Its blocks went to the sink.
	Flist *flist.Flist
	// Name is the image's name in the archive ("" if it has none).
	Name string
	// Format is FormatDockerSave or FormatOCILayout.
	Format string
	// Layers are the layers applied, in order.
	Layers []Layer
	// Notes say what the image holds that the flist does not keep (device
	// nodes, owners, setuid bits, ...), one line each.
	Notes []string
}

// Convert reads the image archive at archivePath (a `docker save` tar, an
// OCI image layout directory or tar, either tar possibly gzip-compressed)
// and builds the flist of its root file system, handing each new block to
// sink. Errors wrap ErrInvalidArchive, ErrDigestMismatch, ErrUnsafePath,
// ErrUnsupported or ErrNoImage, or come from the sink or the file system.
func Convert(ctx context.Context, archivePath string, sink flist.BlockSink, opts Options) (*Result, error) {
	want, err := parsePlatform(opts.Platform)
	if err != nil {
		return nil, fmt.Errorf("oci: %w", err)
	}
	a, err := openArchive(archivePath, opts.TempDir)
	if err != nil {
		return nil, fmt.Errorf("oci: %w", err)
	}
	defer a.close()
	img, err := selectImage(a, opts)
	if err != nil {
		return nil, fmt.Errorf("oci: %w", err)
	}
	cfg, diffs, err := readConfig(a, img, want)
	if err != nil {
		return nil, fmt.Errorf("oci: %w", err)
	}
	c := &converter{files: a, opts: opts, tree: newTree(), cut: flist.NewCutter(ctx, sink, opts.Workers), notes: newNotes()}
	res := &Result{Name: img.name, Format: img.format}
	for i, ref := range img.layers {
		l := Layer{Index: i + 1, Count: len(img.layers), DiffID: diffs[i].String(), Size: ref.size}
		if ref.digest != nil {
			l.Digest = ref.digest.String()
		}
		if l.Size < 0 {
			l.Size = a.size(ref.name)
		}
		if opts.OnLayer != nil {
			opts.OnLayer(l)
		}
		c.layer, c.plnk = i+1, map[string]*node{}
		if err = c.readLayer(ctx, ref, diffs[i]); err != nil {
			break
		}
		res.Layers = append(res.Layers, l)
	}
	if werr := c.cut.Wait(); werr != nil {
		return nil, fmt.Errorf("oci: %w", werr)
	}
	if err != nil {
		return nil, fmt.Errorf("oci: %w", err)
	}
	loops, long := c.tree.fixSymlinks()
	for _, p := range loops {
		c.notes.add(noteLoop, p)
	}
	for _, p := range long {
		c.notes.add(noteLongLink, p)
	}
	res.Flist = &flist.Flist{Entries: c.tree.entries(), Image: c.image(cfg)}
	if err := res.Flist.Validate(); err != nil {
		return nil, fmt.Errorf("oci: the image cannot be an flist: %w", err)
	}
	res.Notes = c.notes.list()
	return res, nil
}

// converter applies layers to a tree.
type converter struct {
	files files
	opts  Options
	tree  *tree
	cut   *flist.Cutter
	notes *notes
	layer int   // the layer being applied, from 1
	read  int64 // bytes of file content read so far
	// plnk holds the AUFS hard link files (.wh..wh.plnk/...) of the
	// layer being applied.
	plnk map[string]*node
}

func (c *converter) image(cfg *imageConfig) *flist.Image {
	im := &flist.Image{
		Entrypoint: cfg.Config.Entrypoint, Cmd: cfg.Config.Cmd,
		WorkingDir: cfg.Config.WorkingDir, User: cfg.Config.User,
	}
	for _, kv := range cfg.Config.Env {
		if k, _, ok := strings.Cut(kv, "="); ok && k != "" {
			im.Env = append(im.Env, kv)
		} else {
			c.notes.add(noteEnv, kv)
		}
	}
	return im
}

// readLayer applies one layer, checking its blob's digest and size and
// its content's diff_id.
func (c *converter) readLayer(ctx context.Context, ref blobRef, diff digest) error {
	what := fmt.Sprintf("layer %d", c.layer)
	r, err := c.files.open(ref.name)
	if err != nil {
		return missing(what, ref.name, err)
	}
	defer r.Close()
	blob := newVerifier(r, what+" ("+ref.name+")", ref.digest, ref.size)
	br := bufio.NewReaderSize(blob, 64<<10)
	magic, _ := br.Peek(4)
	var content io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return c.layerError(blob, err)
		}
		content = zr
	case bytes.Equal(magic, zstdMagic):
		return fmt.Errorf("%w: %s is zstd-compressed; only plain and gzip layers are read", ErrUnsupported, what)
	}
	diffV := newVerifier(content, what+" content (diff_id)", &diff, -1)
	err = c.applyTar(ctx, tar.NewReader(diffV))
	if err == nil {
		// The tar ends before its padding: the digests cover all of it.
		err = diffV.drain()
	}
	if err == nil {
		err = blob.drain()
	}
	if err != nil {
		return c.layerError(blob, err)
	}
	return nil
}

// layerError words a failure reading a layer. Damaged data often shows as
// bad gzip or tar data first: when the blob's digest does not match
// either, that is the reason given.
func (c *converter) layerError(blob *verifier, err error) error {
	if errors.Is(err, ErrDigestMismatch) {
		return err
	}
	if derr := blob.drain(); errors.Is(derr, ErrDigestMismatch) {
		return derr
	}
	var known = []error{ErrInvalidArchive, ErrUnsafePath, ErrUnsupported, context.Canceled, context.DeadlineExceeded}
	for _, k := range known {
		if errors.Is(err, k) {
			return fmt.Errorf("layer %d: %w", c.layer, err)
		}
	}
	return fmt.Errorf("%w: layer %d: %w", ErrInvalidArchive, c.layer, err)
}

// applyTar applies the entries of one layer's tar.
func (c *converter) applyTar(ctx context.Context, tr *tar.Reader) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := c.apply(hdr, tr); err != nil {
			return fmt.Errorf("%q: %w", trunc(hdr.Name), err)
		}
	}
}

// Whiteout names (OCI image spec, "Representing Changes").
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// apply applies one entry of a layer.
func (c *converter) apply(hdr *tar.Header, r io.Reader) error {
	comps, err := splitName(hdr.Name)
	if err != nil {
		return err
	}
	if len(comps) == 0 {
		// The root itself: its mode is not recorded.
		return nil
	}
	for _, comp := range comps {
		if err := checkComponent(comp); err != nil {
			return err
		}
	}
	parent, name := comps[:len(comps)-1], comps[len(comps)-1]
	if strings.HasPrefix(comps[0], whiteoutMeta) {
		return c.aufsMeta(comps, hdr, r)
	}
	if strings.HasPrefix(name, whiteoutPrefix) {
		return c.whiteout(parent, name)
	}
	w, err := c.tree.walk(parent, true, &mkdirs{layer: c.layer})
	if err != nil {
		return fmt.Errorf("%w: its parent directory: %w", ErrInvalidArchive, err)
	}
	if w.node == nil || w.node.typ != flist.TypeDir {
		return fmt.Errorf("%w: its parent /%s is not a directory", ErrInvalidArchive, strings.Join(w.path, "/"))
	}
	dir := w.node
	if n := len(strings.Join(w.path, "/")) + 1 + len(name); n > flist.MaxPathLength {
		return fmt.Errorf("%w: its path is %d bytes long, more than %d", ErrUnsupported, n, flist.MaxPathLength)
	}
	mode := fs.FileMode(hdr.Mode) & fs.ModePerm
	var mtime int64
	if c.opts.KeepMtimes {
		mtime = max(hdr.ModTime.Unix(), 0)
	}
	c.noteMetadata(hdr)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if old := dir.children[name]; old != nil && old.typ == flist.TypeDir {
			// A directory over a directory merges with it.
			old.mode, old.mtime, old.layer = mode, mtime, c.layer
			return nil
		}
		n := newDir(mode, c.layer)
		n.mtime = mtime
		return c.set(dir, name, n)
	case tar.TypeReg, tar.TypeGNUSparse:
		blocks, size, err := c.content(r)
		if err != nil {
			return err
		}
		return c.set(dir, name, &node{typ: flist.TypeFile, mode: mode, mtime: mtime, size: size, blocks: blocks, layer: c.layer})
	case tar.TypeSymlink:
		if err := checkTarget(hdr.Linkname); err != nil {
			return err
		}
		return c.set(dir, name, &node{typ: flist.TypeSymlink, target: hdr.Linkname, layer: c.layer})
	case tar.TypeLink:
		return c.hardlink(dir, name, hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		c.notes.add(noteDevice, strings.Join(comps, "/"))
		c.tree.remove(dir, name)
		return nil
	case tar.TypeXGlobalHeader:
		return nil
	}
	c.notes.add(noteUnknown, fmt.Sprintf("%s (type %q)", strings.Join(comps, "/"), hdr.Typeflag))
	return nil
}

// content cuts a file's content into blocks, within Options.MaxSize.
func (c *converter) content(r io.Reader) ([]flist.BlockRef, int64, error) {
	if c.opts.MaxSize <= 0 {
		return c.cut.Cut(r)
	}
	left := c.opts.MaxSize - c.read
	blocks, size, err := c.cut.Cut(io.LimitReader(r, left+1))
	c.read += size
	if err == nil && size > left {
		err = fmt.Errorf("%w: the image holds more than %d bytes of files (MaxSize)", ErrUnsupported, c.opts.MaxSize)
	}
	return blocks, size, err
}

// set puts n as dir's child name, replacing what was there (a directory
// with everything below it).
func (c *converter) set(dir *node, name string, n *node) error {
	c.tree.remove(dir, name)
	if c.tree.count >= flist.MaxEntries {
		return fmt.Errorf("%w: the image has more than %d files", ErrUnsupported, flist.MaxEntries)
	}
	dir.children[name] = n
	c.tree.count++
	return nil
}

// hardlink makes name in dir a copy of the file or symlink target names:
// the content is shared as blocks, so a copy costs nothing.
func (c *converter) hardlink(dir *node, name, target string) error {
	comps, err := splitName(target)
	if err != nil {
		return fmt.Errorf("hard link: %w", err)
	}
	if len(comps) == 0 {
		return fmt.Errorf("%w: hard link to the root directory", ErrInvalidArchive)
	}
	if n := c.plnk[strings.Join(comps, "/")]; n != nil {
		cp := *n
		cp.layer = c.layer
		return c.set(dir, name, &cp)
	}
	w, err := c.tree.walk(comps, false, nil)
	if err != nil {
		return fmt.Errorf("%w: hard link to %q: %w", ErrInvalidArchive, trunc(target), err)
	}
	switch {
	case w.node == nil:
		return fmt.Errorf("%w: hard link to %q, which does not exist", ErrInvalidArchive, trunc(target))
	case w.node.typ == flist.TypeDir:
		return fmt.Errorf("%w: hard link to %q, a directory", ErrInvalidArchive, trunc(target))
	}
	cp := *w.node
	cp.layer = c.layer
	return c.set(dir, name, &cp)
}

// aufsMeta handles an entry below a top-level .wh..wh.* directory: AUFS
// metadata, not part of the image. Files of .wh..wh.plnk are kept aside
// for the layer's hard links to them.
func (c *converter) aufsMeta(comps []string, hdr *tar.Header, r io.Reader) error {
	if comps[0] != whiteoutMeta+"plnk" || len(comps) < 2 || hdr.Typeflag != tar.TypeReg {
		return nil
	}
	blocks, size, err := c.content(r)
	if err != nil {
		return err
	}
	if len(c.plnk) >= maxPlnk {
		return fmt.Errorf("%w: more than %d AUFS hard link files", ErrUnsupported, maxPlnk)
	}
	c.plnk[strings.Join(comps, "/")] = &node{typ: flist.TypeFile, mode: fs.FileMode(hdr.Mode) & fs.ModePerm, size: size, blocks: blocks}
	return nil
}

// maxPlnk bounds the AUFS hard link files of one layer held in memory.
const maxPlnk = 1 << 16

// whiteout applies a whiteout entry: .wh.NAME deletes NAME, .wh..wh..opq
// hides what lower layers have in its directory. Both act only on what
// lower layers wrote.
func (c *converter) whiteout(parent []string, name string) error {
	if name == whiteoutOpaque {
		w, err := c.tree.walk(parent, true, &mkdirs{layer: c.layer})
		if err != nil {
			return fmt.Errorf("%w: opaque whiteout: %w", ErrInvalidArchive, err)
		}
		if w.node == nil || w.node.typ != flist.TypeDir {
			return fmt.Errorf("%w: opaque whiteout in /%s, which is not a directory", ErrInvalidArchive, strings.Join(w.path, "/"))
		}
		c.tree.prune(w.node, c.layer)
		return nil
	}
	if strings.HasPrefix(name, whiteoutMeta) {
		// Other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): nothing to do.
		return nil
	}
	target := strings.TrimPrefix(name, whiteoutPrefix)
	if target == "" || target == "." || target == ".." {
		return fmt.Errorf("%w: whiteout %q names nothing", ErrInvalidArchive, name)
	}
	w, err := c.tree.walk(parent, true, nil)
	if err != nil || w.node == nil || w.node.typ != flist.TypeDir {
		// Nothing there to delete.
		return nil
	}
	if old := w.node.children[target]; old != nil && old.layer < c.layer {
		c.tree.remove(w.node, target)
	}
	return nil
}

// checkComponent refuses names an flist cannot hold (docs/flist.md, Rules).
func checkComponent(s string) error {
	if len(s) > flist.MaxComponentLength {
		return fmt.Errorf("%w: a name is longer than %d bytes", ErrUnsupported, flist.MaxComponentLength)
	}
	return checkText(s, "name")
}

func checkTarget(s string) error {
	if s == "" {
		return fmt.Errorf("%w: symlink with an empty target", ErrInvalidArchive)
	}
	if len(s) > flist.MaxPathLength {
		return fmt.Errorf("%w: symlink target longer than %d bytes", ErrUnsupported, flist.MaxPathLength)
	}
	return checkText(s, "symlink target")
}

func checkText(s, what string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s %q is not valid UTF-8 (flists hold UTF-8 names only)", ErrUnsupported, what, trunc(s))
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %s %q holds the control character %U (flists cannot hold it)", ErrUnsupported, what, trunc(s), r)
		}
	}
	return nil
}

// noteMetadata notes what of hdr an flist drops.
func (c *converter) noteMetadata(hdr *tar.Header) {
	name := strings.TrimPrefix(cleanName(hdr.Name), "/")
	if hdr.Typeflag == tar.TypeSymlink || hdr.Typeflag == tar.TypeLink {
		return
	}
	if hdr.Mode&0o7000 != 0 {
		c.notes.add(noteSpecialBits, name)
	}
	if hdr.Uid != 0 || hdr.Gid != 0 {
		c.notes.add(noteOwner, name)
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") {
			c.notes.add(noteXattr, name+" ("+strings.TrimPrefix(k, "SCHILY.xattr.")+")")
			break
		}
	}
}

// Kinds of notes.
const (
	noteDevice      = "device nodes, FIFOs and sockets skipped (an flist cannot hold them; the runtime provides /dev)"
	noteSpecialBits = "setuid, setgid and sticky bits dropped"
	noteOwner       = "owners other than root not kept (the tree belongs to root)"
	noteXattr       = "extended attributes (such as file capabilities) not kept"
	noteLoop        = "symlinks that loop (or nest more than 40 deep) dropped"
	noteLongLink    = "symlinks whose target, made relative, is longer than 4096 bytes dropped"
	noteEnv         = "env entries that are not KEY=VALUE dropped"
	noteUnknown     = "entries of unknown tar types skipped"
)

// notes counts what was dropped, by kind, with a few examples.
type notes struct {
	order    []string
	count    map[string]int
	examples map[string][]string
}

func newNotes() *notes {
	return &notes{count: make(map[string]int), examples: make(map[string][]string)}
}

const noteExamples = 3

func (n *notes) add(kind, example string) {
	if n.count[kind] == 0 {
		n.order = append(n.order, kind)
	}
	n.count[kind]++
	if len(n.examples[kind]) < noteExamples {
		n.examples[kind] = append(n.examples[kind], trunc(example))
	}
}

func (n *notes) list() []string {
	out := make([]string, 0, len(n.order))
	for _, kind := range n.order {
		ex := strings.Join(n.examples[kind], ", ")
		if n.count[kind] > noteExamples {
			ex += ", ..."
		}
		out = append(out, fmt.Sprintf("%s: %d (%s)", kind, n.count[kind], ex))
	}
	return out
}
