package upgrader

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/node/flistd"
)

// FlistdPackages installs packages with a flistd.Manager: tags verified
// with the configured key, every block checked against its hash, and
// blocks shared by packages and releases downloaded once (flistd's cache).
type FlistdPackages struct {
	// Manager fetches, checks and materialises.
	Manager *flistd.Manager
}

// Release fetches and verifies publisher/repo:tag.
func (p FlistdPackages) Release(ctx context.Context, publisher, repo, tag string, key []byte) (*flist.Tag, flist.SignedTag, error) {
	return p.Manager.VerifiedTag(ctx, publisher, repo, tag, key)
}

// Document returns flist id's document (flistd checks it against id).
func (p FlistdPackages) Document(ctx context.Context, id flist.ID) ([]byte, error) {
	f, err := p.Manager.Fetch(ctx, id)
	if err != nil {
		return nil, err
	}
	return f.Encode(), nil
}

// Install fetches flist id and materialises it into dir.
func (p FlistdPackages) Install(ctx context.Context, id flist.ID, dir string) error {
	f, err := p.Manager.Fetch(ctx, id)
	if err != nil {
		return err
	}
	return p.Manager.Materialize(ctx, f, dir)
}

// FlistdModule is what SharedPackages needs of the flistd module (a
// flistd.Stub over the bus).
type FlistdModule interface {
	VerifiedTag(ctx context.Context, req flistd.TagRequest) (flistd.Release, error)
	Materialize(ctx context.Context, id flist.ID, dir string) error
	Document(ctx context.Context, id flist.ID) ([]byte, error)
}

// SharedPackages installs packages through the node's flistd module, so
// that releases and workloads share one verified block cache. When flistd
// does not answer within Probe it opens that cache itself for the call
// (flistd holds it locked only while it runs): a generation whose flistd
// is broken must not keep the node from fetching the release that fixes
// it.
type SharedPackages struct {
	// Flistd is the module over the bus.
	Flistd FlistdModule
	// Alive tells whether flistd answers (bus.Client.Alive for its
	// object).
	Alive func(ctx context.Context) error
	// Cache configures the Manager opened when flistd does not answer:
	// the same hub and cache directory as flistd's.
	Cache flistd.Config
	// HTTP is that Manager's client.
	HTTP *http.Client
	// Probe bounds Alive (default 5 s).
	Probe time.Duration
	// Logger receives a record when the cache is used directly.
	Logger *slog.Logger
}

// Release fetches and verifies publisher/repo:tag (the signature is
// checked against key whichever process does it).
func (p SharedPackages) Release(ctx context.Context, publisher, repo, tag string, key []byte) (*flist.Tag, flist.SignedTag, error) {
	if p.alive(ctx) {
		r, err := p.Flistd.VerifiedTag(ctx, flistd.TagRequest{Publisher: publisher, Repo: repo, Tag: tag, PublisherKey: key})
		if err != nil {
			return nil, flist.SignedTag{}, err
		}
		// A flistd of an older generation does not send the signed tag:
		// verify it here then.
		if r.Signed != nil {
			t, err := flist.VerifyTag(*r.Signed, key)
			if err == nil && r.Signed.Hash() == r.Hash {
				return t, *r.Signed, nil
			}
		}
	}
	var (
		t  *flist.Tag
		st flist.SignedTag
	)
	err := p.direct(func(local FlistdPackages) (err error) {
		t, st, err = local.Release(ctx, publisher, repo, tag, key)
		return err
	})
	return t, st, err
}

// Document returns flist id's document.
func (p SharedPackages) Document(ctx context.Context, id flist.ID) ([]byte, error) {
	if p.alive(ctx) {
		if doc, err := p.Flistd.Document(ctx, id); err == nil && flist.Sum(doc) == id {
			return doc, nil
		}
	}
	var doc []byte
	err := p.direct(func(local FlistdPackages) (err error) {
		doc, err = local.Document(ctx, id)
		return err
	})
	return doc, err
}

// Install materialises flist id into dir.
func (p SharedPackages) Install(ctx context.Context, id flist.ID, dir string) error {
	if p.alive(ctx) {
		return p.Flistd.Materialize(ctx, id, dir)
	}
	return p.direct(func(local FlistdPackages) error { return local.Install(ctx, id, dir) })
}

func (p SharedPackages) alive(ctx context.Context) bool {
	probe := p.Probe
	if probe <= 0 {
		probe = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, probe)
	defer cancel()
	return p.Alive(ctx) == nil
}

// direct runs f with a Manager on the shared cache, closed after.
func (p SharedPackages) direct(f func(FlistdPackages) error) error {
	if p.Logger != nil {
		p.Logger.Warn("flistd does not answer: using the flist cache directly")
	}
	m, err := flistd.New(p.Cache, p.HTTP)
	if err != nil {
		return fmt.Errorf("flistd does not answer, and its cache cannot be used: %w", err)
	}
	defer m.Close()
	return f(FlistdPackages{Manager: m})
}
