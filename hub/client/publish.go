package client

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/hub/api"
	"github.com/grid4/grid4/oci"
)

// PublishOptions tune PublishDir and PublishImage.
type PublishOptions struct {
	// KeepMtimes records modification times in the flist (off: the same
	// tree always gives the same flist).
	KeepMtimes bool
	// ScratchDir is where blocks wait for upload ("": the system's
	// temporary directory). It needs room for the tree's compressed size
	// (and, for PublishImage, a gzip-compressed archive's uncompressed
	// size).
	ScratchDir string
	// Uploads is how many blocks are uploaded at once (0: 4).
	Uploads int
	// Progress, if set, is told the total once the missing blocks are known
	// (Start), then after each uploaded block (Add). Calls are serialised.
	Progress Progress
}

// Progress follows an upload.
type Progress interface {
	// Start announces blocks blocks of bytes stored bytes to upload (of
	// all the flist's blocks, the rest being on the hub already).
	Start(blocks, all int, bytes int64)
	// Add reports one more block of n stored bytes uploaded.
	Add(n int64)
}

// PublishResult says what PublishDir or PublishImage did.
type PublishResult struct {
	// Info is the flist as the hub named it.
	Info api.FlistInfo
	// Flist is what was built.
	Flist *flist.Flist
	// Blocks is the flist's number of distinct blocks.
	Blocks int
	// Uploaded of them were sent (the others were on the hub).
	Uploaded int
	// UploadedBytes is the stored size of the uploaded blocks.
	UploadedBytes int64
	// Image is what PublishImage read from the archive (nil for
	// PublishDir).
	Image *oci.Result
}

// PublishDir builds an flist of dir and publishes it as name in
// publisher/repo: it asks the hub which blocks it lacks, uploads only
// those, then uploads the document. c must be signed (AsPublisher).
func (c *Client) PublishDir(ctx context.Context, publisher, repo, name, dir string, opts PublishOptions) (PublishResult, error) {
	return c.publish(ctx, publisher, repo, name, opts, func(store *flist.DirStore) (*flist.Flist, error) {
		return flist.Builder{KeepMtimes: opts.KeepMtimes}.Build(ctx, dir, store)
	})
}

// PublishImage converts the container image archive at archive (a `docker
// save` tar, an OCI image layout directory or tar: oci.Convert with img,
// whose KeepMtimes and TempDir come from opts) and publishes it as name in
// publisher/repo, like PublishDir: blocks the hub has — layers shared with
// images published before — are not uploaded again. Result.Image says
// what was read, with the notes on what the flist does not keep.
func (c *Client) PublishImage(ctx context.Context, publisher, repo, name, archive string, img oci.Options, opts PublishOptions) (PublishResult, error) {
	var conv *oci.Result
	res, err := c.publish(ctx, publisher, repo, name, opts, func(store *flist.DirStore) (*flist.Flist, error) {
		img.KeepMtimes, img.TempDir = opts.KeepMtimes, opts.ScratchDir
		var err error
		if conv, err = oci.Convert(ctx, archive, store, img); err != nil {
			return nil, err
		}
		return conv.Flist, nil
	})
	res.Image = conv
	return res, err
}

// FlistURL is the address of the flist published as name in
// publisher/repo, the form a deployment names a machine's image by (the
// node resolves the name when it mounts it).
func (c *Client) FlistURL(publisher, repo, name string) string {
	return c.URL() + repoPath(publisher, repo) + "/flists/" + url.PathEscape(name)
}

// publish builds an flist with build into a scratch block store, asks the
// hub which of its blocks it lacks, uploads those and the document.
func (c *Client) publish(ctx context.Context, publisher, repo, name string, opts PublishOptions, build func(*flist.DirStore) (*flist.Flist, error)) (PublishResult, error) {
	for _, n := range []string{publisher, repo, name} {
		if err := flist.ValidName(n); err != nil {
			return PublishResult{}, err
		}
	}
	scratch, err := os.MkdirTemp(opts.ScratchDir, "hub-publish-")
	if err != nil {
		return PublishResult{}, fmt.Errorf("hub: publish: %w", err)
	}
	defer os.RemoveAll(scratch)
	store, err := flist.NewDirStore(scratch)
	if err != nil {
		return PublishResult{}, err
	}
	store.NoSync = true
	f, err := build(store)
	if err != nil {
		return PublishResult{}, err
	}
	res := PublishResult{Flist: f}
	blocks := f.Blocks()
	res.Blocks = len(blocks)
	ids := make([]flist.ID, len(blocks))
	for i, b := range blocks {
		ids[i] = b.ID
	}
	missing, err := c.MissingBlocks(ctx, ids)
	if err != nil {
		return res, err
	}
	doc := f.Encode()
	for round := 0; ; round++ {
		n, bytes, err := c.upload(ctx, store, missing, len(blocks), opts)
		res.Uploaded += n
		res.UploadedBytes += bytes
		if err != nil {
			return res, err
		}
		res.Info, err = c.PutFlist(ctx, publisher, repo, name, doc)
		var ae *APIError
		// Blocks can go missing between the question and the document
		// (another hub process, an operator cleaning up): ask again and
		// upload what is missing now, once. (The 409 names at most 100.)
		if round == 0 && errors.As(err, &ae) && ae.Status == 409 && len(ae.Missing) > 0 {
			if missing, err = c.MissingBlocks(ctx, ids); err != nil {
				return res, err
			}
			continue
		}
		return res, err
	}
}

// upload sends the given blocks from store.
func (c *Client) upload(ctx context.Context, store *flist.DirStore, ids []flist.ID, all int, opts PublishOptions) (int, int64, error) {
	var total int64
	for _, id := range ids {
		st, err := os.Stat(store.Path(id))
		if err != nil {
			return 0, 0, fmt.Errorf("hub: publish: block %s: %w", id, err)
		}
		total += st.Size()
	}
	prog := opts.Progress
	if prog != nil {
		prog.Start(len(ids), all, total)
	}
	workers := opts.Uploads
	if workers <= 0 {
		workers = 4
	}
	var (
		done  atomic.Int64
		bytes atomic.Int64
		mu    = make(chan struct{}, 1)
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for _, id := range ids {
		g.Go(func() error {
			stored, err := store.Stored(id)
			if err != nil {
				return err
			}
			if err := c.PutBlock(gctx, id, stored); err != nil {
				return fmt.Errorf("uploading block %s: %w", id, err)
			}
			done.Add(1)
			bytes.Add(int64(len(stored)))
			if prog != nil {
				mu <- struct{}{}
				prog.Add(int64(len(stored)))
				<-mu
			}
			return nil
		})
	}
	err := g.Wait()
	return int(done.Load()), bytes.Load(), err
}
