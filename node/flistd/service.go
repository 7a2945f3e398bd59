package flistd

import (
	"context"
	"errors"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/flist"
	hubclient "github.com/grid4/grid4/hub/client"
)

// Object is the bus object flistd serves (docs/bus.md).
const Object = "flistd/manager@1.0"

// Error codes of Object's methods. Callers branch with errors.Is on the
// stub's errors: errors.Is(err, flistd.CodeCorrupt).
const (
	// CodeCorrupt: the hub keeps serving content that does not match
	// (ErrCorrupt).
	CodeCorrupt bus.Code = "corrupt"
	// CodeNotFound: the hub has no such flist, block, tag or link.
	CodeNotFound bus.Code = "not_found"
	// CodeInvalid: an flist or tag breaks the format's rules, or an
	// argument is malformed.
	CodeInvalid bus.Code = "invalid"
	// CodeBadSignature: a tag is not signed by the given publisher key.
	CodeBadSignature bus.Code = "bad_signature"
	// CodeTagMismatch: the hub served a tag of another name (ErrTagMismatch).
	CodeTagMismatch bus.Code = "tag_mismatch"
	// CodeExists: the materialisation target exists.
	CodeExists bus.Code = "exists"
	// CodeUnreachable: the hub could not be reached.
	CodeUnreachable bus.Code = "hub_unreachable"
	// CodeBadURL: a mount's flist URL is not one of the node's hub
	// (ErrBadFlistURL).
	CodeBadURL bus.Code = "bad_flist_url"
	// CodeBadTarget: a mount target is outside the mount root
	// (ErrBadTarget).
	CodeBadTarget bus.Code = "bad_target"
	// CodeTargetBusy: the target holds another flist (ErrTargetBusy).
	CodeTargetBusy bus.Code = "target_busy"
	// CodeNoHub: the node has no hub configured (ErrNoHub).
	CodeNoHub bus.Code = "no_hub"
)

// FlistInfo summarises an flist (the document itself can be large; it stays
// in flistd).
type FlistInfo struct {
	// ID is the flist's ID.
	ID flist.ID `json:"id"`
	// Entries counts its directories, files and symlinks.
	Entries int `json:"entries"`
	// Size is the total length of its files.
	Size int64 `json:"size"`
	// Blocks counts its distinct blocks.
	Blocks int `json:"blocks"`
	// Image is its container image metadata, nil for a plain flist.
	Image *flist.Image `json:"image,omitempty"`
}

// TagRequest names a tag and the publisher key to check it with.
type TagRequest struct {
	// Publisher, Repo and Tag name the tag: Publisher/Repo:Tag.
	Publisher string `json:"publisher"`
	// Repo is the publisher's repository.
	Repo string `json:"repo"`
	// Tag is the tag's name, e.g. a ZOS version.
	Tag string `json:"tag"`
	// PublisherKey is the 32-byte key the node trusts for Publisher.
	PublisherKey []byte `json:"publisher_key"`
}

// Release is a verified tag.
type Release struct {
	// Publisher, Repo and Tag name the release, as signed.
	Publisher string `json:"publisher"`
	// Repo is the publisher's repository.
	Repo string `json:"repo"`
	// Tag is the tag's name.
	Tag string `json:"tag"`
	// Created is when the publisher signed it (Unix seconds).
	Created int64 `json:"created"`
	// Hash is the release hash (SHA-256 of the signed tag document).
	Hash flist.ID `json:"hash"`
	// Entries are in installation order, the zos entry last.
	Entries []ReleaseEntry `json:"entries"`
	// Signed is the signed tag itself, which an installer keeps to
	// verify the release again without the network.
	Signed *flist.SignedTag `json:"signed,omitempty"`
}

// ReleaseEntry is one package of a release.
type ReleaseEntry struct {
	// Name is the package's name: the directory it is installed in.
	Name string `json:"name"`
	// Flist is the package's flist ID.
	Flist flist.ID `json:"flist"`
	// Role is dependency or zos.
	Role flist.Role `json:"role"`
}

// Methods returns the bus methods of Object, served by m.
func (m *Manager) Methods() bus.Methods {
	return bus.Methods{
		"Flist":       bus.Func1(m.busFlist),
		"Document":    bus.Func1(m.busDocument),
		"Download":    bus.Proc1(m.busDownload),
		"Materialize": bus.Proc2(m.busMaterialize),
		"ResolveLink": bus.Func3(m.busResolveLink),
		"VerifiedTag": bus.Func1(m.busVerifiedTag),
		"Stats":       bus.Func0(m.busStats),
	}
}

func (m *Manager) busFlist(ctx context.Context, id flist.ID) (FlistInfo, error) {
	f, err := m.Fetch(ctx, id)
	if err != nil {
		return FlistInfo{}, coded(err)
	}
	return FlistInfo{ID: id, Entries: len(f.Entries), Size: f.Size(), Blocks: len(f.Blocks()), Image: f.Image}, nil
}

func (m *Manager) busDocument(ctx context.Context, id flist.ID) ([]byte, error) {
	f, err := m.Fetch(ctx, id)
	if err != nil {
		return nil, coded(err)
	}
	return f.Encode(), nil
}

func (m *Manager) busDownload(ctx context.Context, id flist.ID) error {
	f, err := m.Fetch(ctx, id)
	if err != nil {
		return coded(err)
	}
	return coded(m.Download(ctx, f))
}

func (m *Manager) busMaterialize(ctx context.Context, id flist.ID, dir string) error {
	f, err := m.Fetch(ctx, id)
	if err != nil {
		return coded(err)
	}
	return coded(m.Materialize(ctx, f, dir))
}

func (m *Manager) busResolveLink(ctx context.Context, publisher, repo, link string) (string, error) {
	tag, err := m.ResolveLink(ctx, publisher, repo, link)
	return tag, coded(err)
}

func (m *Manager) busVerifiedTag(ctx context.Context, req TagRequest) (Release, error) {
	t, st, err := m.VerifiedTag(ctx, req.Publisher, req.Repo, req.Tag, req.PublisherKey)
	if err != nil {
		return Release{}, coded(err)
	}
	r := Release{Publisher: t.Publisher, Repo: t.Repo, Tag: t.Name, Created: t.Created, Hash: st.Hash(), Entries: make([]ReleaseEntry, len(t.Entries)), Signed: &st}
	for i, e := range t.Entries {
		r.Entries[i] = ReleaseEntry(e)
	}
	return r, nil
}

func (m *Manager) busStats(context.Context) (Stats, error) { return m.Stats(), nil }

// coded gives err the bus code callers branch on (nil stays nil).
func coded(err error) error {
	if err == nil {
		return nil
	}
	for _, c := range []struct {
		target error
		code   bus.Code
	}{
		{ErrCorrupt, CodeCorrupt},
		{ErrTagMismatch, CodeTagMismatch},
		{flist.ErrBadSignature, CodeBadSignature},
		{flist.ErrInvalid, CodeInvalid},
		{flist.ErrExist, CodeExists},
		{hubclient.ErrNotFound, CodeNotFound},
		{hubclient.ErrUnreachable, CodeUnreachable},
		{ErrBadFlistURL, CodeBadURL},
		{ErrBadTarget, CodeBadTarget},
		{ErrTargetBusy, CodeTargetBusy},
		{ErrNoHub, CodeNoHub},
	} {
		if errors.Is(err, c.target) {
			return bus.Errorf(c.code, "%w", err)
		}
	}
	return err
}

// Stub calls flistd over the bus.
type Stub struct{ c *bus.Client }

// NewStub returns a stub calling flistd through c.
func NewStub(c *bus.Client) Stub { return Stub{c: c} }

// Flist fetches flist id (into flistd's cache) and summarises it.
func (s Stub) Flist(ctx context.Context, id flist.ID) (FlistInfo, error) {
	return bus.Call[FlistInfo](ctx, s.c, Object, "Flist", id)
}

// Document returns flist id's document (checked against id by flistd;
// the caller checks it again: flist.Sum).
func (s Stub) Document(ctx context.Context, id flist.ID) ([]byte, error) {
	return bus.Call[[]byte](ctx, s.c, Object, "Document", id)
}

// Download puts every block of flist id in the cache.
func (s Stub) Download(ctx context.Context, id flist.ID) error {
	return s.c.Invoke(ctx, Object, "Download", nil, id)
}

// Materialize writes flist id into dir (which must not exist) as a
// read-only tree, atomically.
func (s Stub) Materialize(ctx context.Context, id flist.ID, dir string) error {
	return s.c.Invoke(ctx, Object, "Materialize", nil, id, dir)
}

// ResolveLink returns the tag a link points at.
func (s Stub) ResolveLink(ctx context.Context, publisher, repo, link string) (string, error) {
	return bus.Call[string](ctx, s.c, Object, "ResolveLink", publisher, repo, link)
}

// VerifiedTag fetches a tag and checks it with the publisher key.
func (s Stub) VerifiedTag(ctx context.Context, req TagRequest) (Release, error) {
	return bus.Call[Release](ctx, s.c, Object, "VerifiedTag", req)
}

// Stats returns flistd's counters.
func (s Stub) Stats(ctx context.Context) (Stats, error) {
	return bus.Call[Stats](ctx, s.c, Object, "Stats")
}

// Mount mounts the flist at flistURL on target with a writable layer of its
// own (see Mounter.Mount). It implements the machines' flist mounter.
func (s Stub) Mount(ctx context.Context, flistURL, target string) (MountInfo, error) {
	return bus.Call[MountInfo](ctx, s.c, Object, "Mount", flistURL, target)
}

// Unmount removes the mount on target and its writable layer (see
// Mounter.Unmount).
func (s Stub) Unmount(ctx context.Context, target string) error {
	_, err := bus.Call[struct{}](ctx, s.c, Object, "Unmount", target)
	return err
}

// Mounts lists flistd's mounts.
func (s Stub) Mounts(ctx context.Context) ([]MountInfo, error) {
	return bus.Call[[]MountInfo](ctx, s.c, Object, "Mounts")
}
