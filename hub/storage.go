package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/hub/api"
	"github.com/grid4/grid4/internal/atomicfile"
)

// Storage errors the handlers branch on.
var (
	errNotFound = errors.New("not found")
	errExists   = errors.New("already exists with other content")
)

// storage keeps everything as files under one directory:
//
//	blocks/ab/<id>                         stored blocks (flist.DirStore)
//	flists/ab/<id>                         flist documents
//	repos/<publisher>/<repo>/flists/<name>.json
//	repos/<publisher>/<repo>/tags/<tag>.json
//	repos/<publisher>/<repo>/links/<link>.json
//
// Every write is atomic (a temporary file renamed or linked into place),
// and immutable things (blocks, documents, tags) are linked, which never
// replaces: several hub processes may share the directory.
type storage struct {
	root   string
	blocks *flist.DirStore
	docs   *flist.DirStore
}

// tagRecord is the stored form of a tag.
type tagRecord struct {
	Signed    flist.SignedTag `json:"signed"`
	Published time.Time       `json:"published"`
}

// tagInfo summarises a stored tag.
func tagInfo(rec tagRecord, t *flist.Tag) api.TagInfo {
	info := api.TagInfo{
		Tag: t.Name, Hash: rec.Signed.Hash(), Created: time.Unix(t.Created, 0).UTC(), Published: rec.Published,
		Entries: make([]api.TagEntryInfo, len(t.Entries)),
	}
	for i, e := range t.Entries {
		info.Entries[i] = api.TagEntryInfo(e)
	}
	return info
}

func openStorage(dir string) (*storage, error) {
	for _, sub := range []string{"blocks", "flists", "repos"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("hub: data dir: %w", err)
		}
	}
	blocks, err := flist.NewDirStore(filepath.Join(dir, "blocks"))
	if err != nil {
		return nil, err
	}
	docs, err := flist.NewDirStore(filepath.Join(dir, "flists"))
	if err != nil {
		return nil, err
	}
	return &storage{root: dir, blocks: blocks, docs: docs}, nil
}

// check reports whether the data directory is usable (for /healthz).
func (s *storage) check() error {
	f, err := os.CreateTemp(filepath.Join(s.root, "repos"), ".health-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

func (s *storage) hasBlock(id flist.ID) bool { return s.blocks.Has(id) }

func (s *storage) openBlock(id flist.ID) (*os.File, error) {
	f, err := os.Open(s.blocks.Path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNotFound
	}
	return f, err
}

func (s *storage) hasFlist(id flist.ID) bool { return s.docs.Has(id) }

func (s *storage) openFlist(id flist.ID) (*os.File, error) {
	f, err := os.Open(s.docs.Path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNotFound
	}
	return f, err
}

func (s *storage) repoDir(pub, repo string) string {
	return filepath.Join(s.root, "repos", pub, repo)
}

// kinds of named things in a repository.
const (
	kindFlists = "flists"
	kindTags   = "tags"
	kindLinks  = "links"
)

func (s *storage) recordPath(pub, repo, kind, name string) string {
	return filepath.Join(s.repoDir(pub, repo), kind, name+".json")
}

// readRecord decodes a stored JSON record into v.
func (s *storage) readRecord(pub, repo, kind, name string, v any) error {
	b, err := os.ReadFile(s.recordPath(pub, repo, kind, name))
	if errors.Is(err, fs.ErrNotExist) {
		return errNotFound
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("hub: stored %s %s/%s/%s is damaged: %w", kind, pub, repo, name, err)
	}
	return nil
}

// writeRecord stores v, replacing the previous record.
func (s *storage) writeRecord(pub, repo, kind, name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	p := s.recordPath(pub, repo, kind, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return replaceFile(p, b)
}

// createTag stores a tag unless one of that name exists. Tags are
// immutable: an existing tag with the same document is success (created
// false, the stored record returned), another document errExists.
func (s *storage) createTag(pub, repo, name string, rec tagRecord) (tagRecord, bool, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return rec, false, err
	}
	p := s.recordPath(pub, repo, kindTags, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return rec, false, err
	}
	created, err := createFile(p, b)
	if err != nil || created {
		return rec, created, err
	}
	var old tagRecord
	if err := s.readRecord(pub, repo, kindTags, name, &old); err != nil {
		return rec, false, err
	}
	if !bytes.Equal(old.Signed.Document, rec.Signed.Document) {
		return old, false, errExists
	}
	return old, false, nil
}

func (s *storage) deleteRecord(pub, repo, kind, name string) error {
	err := os.Remove(s.recordPath(pub, repo, kind, name))
	if errors.Is(err, fs.ErrNotExist) {
		return errNotFound
	}
	if err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Join(s.repoDir(pub, repo), kind))
}

// names lists the records of one kind, sorted.
func (s *storage) names(pub, repo, kind string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.repoDir(pub, repo), kind))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if name, ok := strings.CutSuffix(e.Name(), ".json"); ok && !strings.HasPrefix(name, ".") {
			out = append(out, name)
		}
	}
	return out, nil
}

// repos lists the repositories of pub, or of everyone when pub is "".
func (s *storage) repos(pub string) ([]api.RepoInfo, error) {
	pubs := []string{pub}
	if pub == "" {
		ents, err := os.ReadDir(filepath.Join(s.root, "repos"))
		if err != nil {
			return nil, err
		}
		pubs = pubs[:0]
		for _, e := range ents {
			if e.IsDir() && flist.ValidName(e.Name()) == nil {
				pubs = append(pubs, e.Name())
			}
		}
	}
	out := []api.RepoInfo{}
	for _, p := range pubs {
		ents, err := os.ReadDir(filepath.Join(s.root, "repos", p))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if !e.IsDir() || flist.ValidName(e.Name()) != nil {
				continue
			}
			info := api.RepoInfo{Publisher: p, Repo: e.Name()}
			for _, k := range []struct {
				kind string
				n    *int
			}{{kindFlists, &info.Flists}, {kindTags, &info.Tags}, {kindLinks, &info.Links}} {
				names, err := s.names(p, e.Name(), k.kind)
				if err != nil {
					return nil, err
				}
				*k.n = len(names)
			}
			out = append(out, info)
		}
	}
	return out, nil
}

// listing returns everything in a repository; errNotFound when it has
// never been published to.
func (s *storage) listing(pub, repo string) (api.RepoListing, error) {
	if _, err := os.Stat(s.repoDir(pub, repo)); errors.Is(err, fs.ErrNotExist) {
		return api.RepoListing{}, errNotFound
	}
	l := api.RepoListing{Publisher: pub, Repo: repo, Flists: []api.FlistInfo{}, Tags: []api.TagInfo{}, Links: []api.LinkInfo{}}
	names, err := s.names(pub, repo, kindFlists)
	if err != nil {
		return l, err
	}
	for _, n := range names {
		var fi api.FlistInfo
		if err := s.readRecord(pub, repo, kindFlists, n, &fi); err == nil {
			l.Flists = append(l.Flists, fi)
		} else if !errors.Is(err, errNotFound) {
			return l, err
		}
	}
	if names, err = s.names(pub, repo, kindTags); err != nil {
		return l, err
	}
	for _, n := range names {
		var rec tagRecord
		if err := s.readRecord(pub, repo, kindTags, n, &rec); err != nil {
			if errors.Is(err, errNotFound) {
				continue
			}
			return l, err
		}
		t, err := rec.Signed.Tag()
		if err != nil {
			return l, fmt.Errorf("hub: stored tag %s/%s:%s: %w", pub, repo, n, err)
		}
		l.Tags = append(l.Tags, tagInfo(rec, t))
	}
	// Newest first reads best for releases.
	slices.SortStableFunc(l.Tags, func(a, b api.TagInfo) int { return b.Published.Compare(a.Published) })
	if names, err = s.names(pub, repo, kindLinks); err != nil {
		return l, err
	}
	for _, n := range names {
		var li api.LinkInfo
		if err := s.readRecord(pub, repo, kindLinks, n, &li); err == nil {
			l.Links = append(l.Links, li)
		} else if !errors.Is(err, errNotFound) {
			return l, err
		}
	}
	return l, nil
}

// replaceFile writes data to p atomically, replacing any previous file.
func replaceFile(p string, data []byte) error { return atomicfile.WriteFile(p, data, 0o644) }

// createFile writes data to p atomically unless p exists (created false).
func createFile(p string, data []byte) (bool, error) { return atomicfile.Create(p, data, 0o644) }
