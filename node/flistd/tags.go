package flistd

import (
	"context"
	"fmt"

	"github.com/grid4/grid4/flist"
)

// ResolveTag fetches the signed tag publisher/repo:tag from the hub and
// checks that its document is a valid tag naming exactly that publisher,
// repository and tag (ErrTagMismatch otherwise). It does not check the
// signature: use VerifyTag, or VerifiedTag for both steps.
func (m *Manager) ResolveTag(ctx context.Context, publisher, repo, tag string) (flist.SignedTag, error) {
	st, err := m.hub.Tag(ctx, publisher, repo, tag)
	if err != nil {
		return flist.SignedTag{}, fmt.Errorf("flistd: tag %s/%s:%s: %w", publisher, repo, tag, err)
	}
	t, err := st.Tag()
	if err != nil {
		return flist.SignedTag{}, fmt.Errorf("flistd: tag %s/%s:%s from the hub: %w", publisher, repo, tag, err)
	}
	if t.Publisher != publisher || t.Repo != repo || t.Name != tag {
		return flist.SignedTag{}, fmt.Errorf("flistd: asked for %s/%s:%s, the hub sent %s/%s:%s: %w",
			publisher, repo, tag, t.Publisher, t.Repo, t.Name, ErrTagMismatch)
	}
	return st, nil
}

// VerifiedTag fetches publisher/repo:tag and checks its signature with the
// publisher's public key, which the node knows from its own configuration,
// never from the hub. It returns the tag and its signed form (whose Hash is
// the release hash).
func (m *Manager) VerifiedTag(ctx context.Context, publisher, repo, tag string, publisherKey []byte) (*flist.Tag, flist.SignedTag, error) {
	st, err := m.ResolveTag(ctx, publisher, repo, tag)
	if err != nil {
		return nil, st, err
	}
	t, err := VerifyTag(st, publisherKey)
	if err != nil {
		return nil, st, err
	}
	return t, st, nil
}

// ResolveLink returns the tag a link of publisher/repo points at. Links
// are not signed: the hub is trusted for them, so verify the tag it names.
func (m *Manager) ResolveLink(ctx context.Context, publisher, repo, link string) (string, error) {
	li, err := m.hub.Link(ctx, publisher, repo, link)
	if err != nil {
		return "", fmt.Errorf("flistd: link %s/%s:%s: %w", publisher, repo, link, err)
	}
	if err := flist.ValidName(li.Tag); err != nil {
		return "", fmt.Errorf("flistd: link %s/%s:%s: %w", publisher, repo, link, err)
	}
	return li.Tag, nil
}

// VerifyTag checks a signed tag with the publisher's public key (see
// flist.VerifyTag): errors wrap flist.ErrBadSignature or flist.ErrInvalid.
func VerifyTag(st flist.SignedTag, publisherKey []byte) (*flist.Tag, error) {
	t, err := flist.VerifyTag(st, publisherKey)
	if err != nil {
		return nil, fmt.Errorf("flistd: %w", err)
	}
	return t, nil
}
