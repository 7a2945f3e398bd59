package upgrader

import (
	"context"

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
func (p FlistdPackages) Release(ctx context.Context, publisher, repo, tag string, key []byte) (*flist.Tag, flist.ID, error) {
	t, st, err := p.Manager.VerifiedTag(ctx, publisher, repo, tag, key)
	if err != nil {
		return nil, flist.ID{}, err
	}
	return t, st.Hash(), nil
}

// Install fetches flist id and materialises it into dir.
func (p FlistdPackages) Install(ctx context.Context, id flist.ID, dir string) error {
	f, err := p.Manager.Fetch(ctx, id)
	if err != nil {
		return err
	}
	return p.Manager.Materialize(ctx, f, dir)
}
