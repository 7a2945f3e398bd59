package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/grid4/grid4/flist"
)

// node is a file of the image's tree, in memory: the layers are applied
// to it, never to a file system, so nothing an archive says can touch
// anything but this tree.
type node struct {
	typ    flist.EntryType
	mode   fs.FileMode
	mtime  int64
	size   int64
	blocks []flist.BlockRef
	target string
	// children of a directory, by name.
	children map[string]*node
	// layer is the last layer (from 1) that wrote the node, or made a
	// directory a parent of what it wrote: whiteouts and opaque markers
	// only hide what lower layers wrote.
	layer int
}

func newDir(mode fs.FileMode, layer int) *node {
	return &node{typ: flist.TypeDir, mode: mode, children: make(map[string]*node), layer: layer}
}

// tree is the image's root directory and the count of nodes below it.
type tree struct {
	root  *node
	count int
}

func newTree() *tree { return &tree{root: newDir(0o755, 0)} }

// maxLinkFollows bounds the symlinks followed to resolve one path, as
// Linux does (ELOOP).
const maxLinkFollows = 40

var errLoop = errors.New("too many levels of symbolic links")

// walked is where a walk ended.
type walked struct {
	// path are the components of the resolved path, from the root.
	path []string
	// node is the node at path; nil when the walk stopped at a name the
	// tree does not have, or at a non-directory used as one (then path
	// ends with the rest of the path, cleaned as text).
	node *node
	// clamped: a ".." was taken at the root (and stayed there, as the
	// kernel does in a chroot).
	clamped bool
}

// mkdirs says a walk creates the directories it misses (the last
// component included), marking every directory it passes as written by
// layer.
type mkdirs struct{ layer int }

// walk resolves comps from the root the way the kernel does in a chroot
// at the root: "." and empty components are skipped, ".." goes up (not
// above the root), a symlink is replaced by its target (an absolute one
// starting again at the root) — the last component's only when followLast.
// It fails only after maxLinkFollows symlinks.
func (t *tree) walk(comps []string, followLast bool, mk *mkdirs) (walked, error) {
	var w walked
	stack := []*node{t.root}
	todo := slices.Clone(comps)
	follows := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(w.path) == 0 {
				w.clamped = true
				continue
			}
			w.path = w.path[:len(w.path)-1]
			stack = stack[:len(stack)-1]
			continue
		}
		last := onlyDots(todo)
		dir := stack[len(stack)-1]
		child := dir.children[c]
		if child == nil && mk != nil {
			child = newDir(0o755, mk.layer)
			dir.children[c] = child
			t.count++
		}
		if child == nil || !last && child.typ == flist.TypeFile {
			w.path = append(w.path, c)
			w.path = append(w.path, cleanRest(todo)...)
			w.node = nil
			return w, nil
		}
		if child.typ == flist.TypeSymlink && (!last || followLast) {
			follows++
			if follows > maxLinkFollows {
				return w, errLoop
			}
			target := strings.Split(child.target, "/")
			if strings.HasPrefix(child.target, "/") {
				w.path, stack = w.path[:0], stack[:1]
			}
			todo = append(target, todo...)
			continue
		}
		if mk != nil && child.typ == flist.TypeDir {
			child.layer = mk.layer
		}
		w.path = append(w.path, c)
		stack = append(stack, child)
	}
	w.node = stack[len(stack)-1]
	return w, nil
}

func onlyDots(comps []string) bool {
	for _, c := range comps {
		if c != "" && c != "." {
			return false
		}
	}
	return true
}

// cleanRest is what is left of a path after a walk stopped, cleaned as
// text: ".." above its start is dropped.
func cleanRest(comps []string) []string {
	p := path.Clean("/" + strings.Join(comps, "/"))
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

// splitName checks and splits a path named by a layer (an entry's name or
// a hard link's target): relative (a leading "/" or "./" is ignored, as
// tar does), cleaned, and not leading above the root.
func splitName(name string) ([]string, error) {
	p := path.Clean("/" + name)
	if rel := path.Clean(strings.TrimLeft(name, "/")); rel == ".." || strings.HasPrefix(rel, "../") {
		return nil, fmt.Errorf("%w: %q leads outside the image's root", ErrUnsafePath, trunc(name))
	}
	if p == "/" {
		return nil, nil
	}
	return strings.Split(p[1:], "/"), nil
}

// remove deletes the child name of dir with everything below it.
func (t *tree) remove(dir *node, name string) {
	if c := dir.children[name]; c != nil {
		t.count -= 1 + countBelow(c)
		delete(dir.children, name)
	}
}

func countBelow(n *node) int {
	total := 0
	for _, c := range n.children {
		total += 1 + countBelow(c)
	}
	return total
}

// prune removes what lower layers than layer wrote below dir: the effect
// of an opaque whiteout.
func (t *tree) prune(dir *node, layer int) {
	for name, c := range dir.children {
		if c.layer < layer {
			t.remove(dir, name)
		} else if c.typ == flist.TypeDir {
			t.prune(c, layer)
		}
	}
}

// fixSymlinks makes every symlink's target one an flist accepts, with the
// meaning it had in the image: an absolute target, or one climbing above
// the root, is replaced by the relative path from the link's directory to
// where the kernel would resolve it in a chroot. It removes the links that
// loop, and those whose relative target would be too long, and returns
// their paths.
func (t *tree) fixSymlinks() (loops, long []string) {
	var visit func(dir *node, at []string)
	visit = func(dir *node, at []string) {
		for _, name := range sortedNames(dir) {
			c := dir.children[name]
			switch c.typ {
			case flist.TypeDir:
				visit(c, slices.Concat(at, []string{name}))
			case flist.TypeSymlink:
				comps := strings.Split(c.target, "/")
				if !strings.HasPrefix(c.target, "/") {
					comps = append(slices.Clone(at), comps...)
				}
				w, err := t.walk(comps, true, nil)
				if err != nil {
					loops = append(loops, strings.Join(append(at, name), "/"))
					t.remove(dir, name)
					continue
				}
				if !w.clamped && !strings.HasPrefix(c.target, "/") {
					continue
				}
				if w, err = t.walk(comps, false, nil); err == nil {
					c.target = relPath(at, w.path)
				}
				if len(c.target) > flist.MaxPathLength {
					long = append(long, strings.Join(append(at, name), "/"))
					t.remove(dir, name)
				}
			}
		}
	}
	visit(t.root, nil)
	return loops, long
}

// relPath is the relative path from directory from to to (components from
// the root).
func relPath(from, to []string) string {
	common := 0
	for common < len(from) && common < len(to) && from[common] == to[common] {
		common++
	}
	parts := make([]string, 0, len(from)-common+len(to)-common)
	for range len(from) - common {
		parts = append(parts, "..")
	}
	parts = append(parts, to[common:]...)
	if len(parts) == 0 {
		return "."
	}
	return strings.Join(parts, "/")
}

func sortedNames(dir *node) []string {
	names := make([]string, 0, len(dir.children))
	for name := range dir.children {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// entries lists the tree as flist entries, sorted by path.
func (t *tree) entries() []flist.Entry {
	out := make([]flist.Entry, 0, t.count)
	var visit func(dir *node, prefix string)
	visit = func(dir *node, prefix string) {
		for name, c := range dir.children {
			p := prefix + name
			e := flist.Entry{Path: p, Type: c.typ}
			switch c.typ {
			case flist.TypeDir:
				e.Mode, e.Mtime = c.mode, c.mtime
			case flist.TypeFile:
				e.Mode, e.Mtime, e.Size, e.Blocks = c.mode, c.mtime, c.size, c.blocks
			case flist.TypeSymlink:
				e.Target = c.target
			}
			out = append(out, e)
			if c.typ == flist.TypeDir {
				visit(c, p+"/")
			}
		}
	}
	visit(t.root, "")
	slices.SortFunc(out, func(a, b flist.Entry) int { return strings.Compare(a.Path, b.Path) })
	return out
}
