package generation

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/internal/atomicfile"
)

// ErrUnverified: a generation does not verify (Verify): its release is
// not signed by the publisher's key, or its files are not the ones the
// release names.
var ErrUnverified = errors.New("generation does not verify")

// Proof is what a generation keeps to be verified without the network:
// the signed release and each package's flist document.
type Proof struct {
	// Release is the signed tag the generation was installed from.
	Release flist.SignedTag
	// Flists are the packages' flist documents by flist id.
	Flists map[flist.ID][]byte
}

// writeProof writes p into the generation being built at dir.
func writeProof(dir string, p Proof) error {
	b, err := p.Release.MarshalJSON()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadRelease, err)
	}
	// Each file synced (atomicfile), the directories by Build.
	if err := atomicfile.WriteFile(filepath.Join(dir, ReleaseFile), b, 0o644); err != nil {
		return err
	}
	docs := filepath.Join(dir, FlistsDir)
	if err := os.Mkdir(docs, 0o755); err != nil {
		return err
	}
	for id, doc := range p.Flists {
		if err := atomicfile.WriteFile(filepath.Join(docs, id.String()), doc, 0o644); err != nil {
			return err
		}
	}
	return atomicfile.SyncDir(docs)
}

// Verify checks generation n as the upgrader checked the release it
// installed, with the files on disk only: the release (ReleaseFile) is a
// tag signed by publisherKey (flist.VerifyTag) whose hash, name and
// packages are the manifest's; each package's flist document hashes to
// its flist id (flist.Sum) and is valid (flist.Parse); each package's tree
// is exactly that flist's, every block of every file hashing to its id
// (flist.VerifyTree); and the generation's links name those trees. Errors
// wrap ErrUnverified (or ErrDamaged: no readable manifest).
func (l Dir) Verify(n uint64, publisherKey []byte) (Manifest, error) {
	m, err := l.ReadManifest(n)
	if err != nil {
		return m, err
	}
	fail := func(format string, args ...any) (Manifest, error) {
		return m, fmt.Errorf("%w: generation %d (%s): %s", ErrUnverified, n, m.Version, fmt.Sprintf(format, args...))
	}
	gen := l.GenDir(n)
	b, err := os.ReadFile(filepath.Join(gen, ReleaseFile))
	if err != nil {
		return fail("the signed release: %v", err)
	}
	var st flist.SignedTag
	if err := json.Unmarshal(b, &st); err != nil {
		return fail("the signed release: %v", err)
	}
	tag, err := flist.VerifyTag(st, publisherKey)
	if err != nil {
		return fail("%v", err)
	}
	if st.Hash() != m.Release || tag.Publisher != m.Publisher || tag.Repo != m.Repo || tag.Name != m.Tag || len(tag.Entries) != len(m.Packages) {
		return fail("the signed release %s/%s:%s (%s) is not the one the manifest names", tag.Publisher, tag.Repo, tag.Name, st.Hash())
	}
	zos := ""
	for i, e := range tag.Entries {
		if p := m.Packages[i]; p.Name != e.Name || p.Flist != e.Flist || p.Role != e.Role {
			return fail("package %d is %s (%s), the signed release says %s (%s)", i, p.Name, p.Flist, e.Name, e.Flist)
		}
		if e.Role == flist.RoleZos {
			zos = e.Name
		}
		if err := l.verifyPackage(gen, e); err != nil {
			return fail("%v", err)
		}
	}
	if target, err := os.Readlink(filepath.Join(gen, ZosLink)); err != nil || zos == "" || target != PackageLinks+"/"+zos {
		return fail("%s does not name the zos package", ZosLink)
	}
	return m, nil
}

// verifyPackage checks package e of the generation at gen.
func (l Dir) verifyPackage(gen string, e flist.TagEntry) error {
	want := filepath.Join("..", "..", "..", PackagesDir, e.Flist.String())
	if target, err := os.Readlink(filepath.Join(gen, PackageLinks, e.Name)); err != nil || target != want {
		return fmt.Errorf("%s/%s does not link to package %s", PackageLinks, e.Name, e.Flist)
	}
	doc, err := os.ReadFile(filepath.Join(gen, FlistsDir, e.Flist.String()))
	if err != nil {
		return fmt.Errorf("package %s: its flist document: %w", e.Name, err)
	}
	if flist.Sum(doc) != e.Flist {
		return fmt.Errorf("package %s: its flist document does not hash to %s", e.Name, e.Flist)
	}
	f, err := flist.Parse(doc)
	if err != nil {
		return fmt.Errorf("package %s: %w", e.Name, err)
	}
	if err := flist.VerifyTree(f, l.PkgDir(e.Flist)); err != nil {
		return fmt.Errorf("package %s (%s): %w", e.Name, e.Flist, err)
	}
	return nil
}
