// Package client is the Go client of the grid4 hub (package hub): reading
// flists, blocks (resumable, range requests), tags and links, and
// publishing them as a publisher (signed requests v2, package auth),
// including PublishDir, which uploads only the blocks the hub lacks.
//
// Errors wrap sentinels callers branch on with errors.Is (ErrNotFound,
// ErrConflict, ErrUnauthorized, ErrInvalid, ErrServer, ErrUnreachable,
// ErrBadResponse, ErrNotPublisher); errors.As gives the *APIError of a
// non-2xx answer. It imports only the wire types (hub/api), flist, auth and
// keys: never the server.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/hub/api"
	"github.com/grid4/grid4/keys"
)

// Client errors. Errors returned by a Client wrap at most one of them; an
// *APIError matches the one of its status.
var (
	// ErrNotFound: the hub answered 404.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the hub answered 409 (missing blocks or flists, a tag
	// that exists with other content, a link to a missing tag).
	ErrConflict = errors.New("conflict")
	// ErrUnauthorized: the hub answered 401 or 403 (unsigned or badly
	// signed request, or another publisher's repository).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrInvalid: the hub answered another 4xx.
	ErrInvalid = errors.New("invalid request")
	// ErrServer: the hub answered 5xx after every attempt.
	ErrServer = errors.New("hub error")
	// ErrUnreachable: no HTTP answer after every attempt.
	ErrUnreachable = errors.New("cannot reach hub")
	// ErrBadResponse: a 2xx answer the client cannot use, or content that
	// does not match the ID it was asked for.
	ErrBadResponse = errors.New("unexpected response from hub")
	// ErrNotPublisher: AsPublisher's key is not the named publisher's key
	// on this hub.
	ErrNotPublisher = errors.New("not a publisher of this hub")
)

// APIError is a non-2xx answer of the hub.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Message is the "error" member of the JSON body (or the status text).
	Message string
	// Method and Path name the request.
	Method, Path string
	// Missing lists block IDs the hub lacks (409 on PUT of an flist).
	Missing []flist.ID
}

// Error returns "hub: <method> <path>: <message> (<status>)".
func (e *APIError) Error() string {
	return fmt.Sprintf("hub: %s %s: %s (%d)", e.Method, e.Path, e.Message, e.Status)
}

// Is matches the sentinel of e.Status.
func (e *APIError) Is(target error) bool {
	switch {
	case e.Status == http.StatusNotFound:
		return target == ErrNotFound
	case e.Status == http.StatusConflict:
		return target == ErrConflict
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		return target == ErrUnauthorized
	case e.Status >= 500:
		return target == ErrServer
	case e.Status >= 400:
		return target == ErrInvalid
	}
	return false
}

// DefaultAttempts is how many times a Client sends a request that fails
// with a network error or a 5xx before giving up.
const DefaultAttempts = 3

// maxJSONAnswer bounds the JSON answers a Client reads.
const maxJSONAnswer = 16 << 20

// Client talks to a hub. Every request is idempotent (publishing the same
// thing twice is harmless), so each is retried on network errors and 5xx.
type Client struct {
	base     *url.URL
	hc       *http.Client
	attempts int
}

// New returns a client of the hub at baseURL (http or https, no
// query), sending with hc (nil: http.DefaultClient). Reading needs no
// signature; for publishing use AsPublisher.
func New(baseURL string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(baseURL), "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("hub: %q is not an http(s) URL of a hub (e.g. https://hub.example.org)", baseURL)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: u, hc: hc, attempts: DefaultAttempts}, nil
}

// URL returns the hub's base URL.
func (c *Client) URL() string { return c.base.String() }

// WithAttempts returns a copy of c that sends each request at most n times
// (at least once).
func (c *Client) WithAttempts(n int) *Client {
	c2 := *c
	c2.attempts = max(n, 1)
	return &c2
}

// Signed returns a copy of c whose requests are signed (signed requests
// v2) with kp as publisher id.
func (c *Client) Signed(kp keys.KeyPair, publisherID uint64) *Client {
	c2 := *c
	hc := *c.hc
	hc.Transport = auth.NewTransport(c.hc.Transport, kp, publisherID)
	c2.hc = &hc
	return &c2
}

// AsPublisher returns a copy of c that publishes as the publisher called
// name with kp: it looks the publisher up on the hub and checks that kp is
// its key (ErrNotPublisher otherwise).
func (c *Client) AsPublisher(ctx context.Context, name string, kp keys.KeyPair) (*Client, error) {
	pubs, err := c.Publishers(ctx)
	if err != nil {
		return nil, err
	}
	mine := fmt.Sprintf("0x%x", kp.Public().Key)
	for _, p := range pubs {
		if p.Name != name {
			continue
		}
		if !strings.EqualFold(p.PublicKey, mine) {
			return nil, fmt.Errorf("%w: publisher %s has key %s on %s, this identity is %s (%s; check --scheme and --path)",
				ErrNotPublisher, name, p.SS58, c.URL(), keys.SS58Encode(kp.Public().Key, keys.GenericSS58Prefix), kp.Scheme())
		}
		return c.Signed(kp, p.ID), nil
	}
	return nil, fmt.Errorf("%w: %s has no publisher called %s", ErrNotPublisher, c.URL(), name)
}

// Publishers lists the hub's publishers.
func (c *Client) Publishers(ctx context.Context) ([]api.PublisherInfo, error) {
	var out []api.PublisherInfo
	return out, c.getJSON(ctx, "/api/v1/publishers", &out)
}

// Repos lists the repositories of publisher, or of every publisher when
// publisher is "".
func (c *Client) Repos(ctx context.Context, publisher string) ([]api.RepoInfo, error) {
	p := "/api/v1/repos"
	if publisher != "" {
		p += "/" + url.PathEscape(publisher)
	}
	var out []api.RepoInfo
	return out, c.getJSON(ctx, p, &out)
}

// Repo lists a repository's flists, tags and links.
func (c *Client) Repo(ctx context.Context, publisher, repo string) (api.RepoListing, error) {
	var out api.RepoListing
	return out, c.getJSON(ctx, repoPath(publisher, repo), &out)
}

// FlistInfo returns the named flist of a repository.
func (c *Client) FlistInfo(ctx context.Context, publisher, repo, name string) (api.FlistInfo, error) {
	var out api.FlistInfo
	return out, c.getJSON(ctx, repoPath(publisher, repo)+"/flists/"+url.PathEscape(name), &out)
}

// FlistDocument downloads flist id's document and checks it hashes to id
// (ErrBadResponse otherwise). It does not parse it.
func (c *Client) FlistDocument(ctx context.Context, id flist.ID) ([]byte, error) {
	var doc []byte
	err := c.do(ctx, http.MethodGet, "/api/v1/flists/"+id.String(), nil, "", func(res *http.Response) error {
		b, err := io.ReadAll(io.LimitReader(res.Body, flist.MaxDocumentSize+1))
		if err != nil {
			return err
		}
		doc = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	if got := flist.Sum(doc); got != id {
		return nil, fmt.Errorf("%w: flist %s: the hub sent a document hashing to %s", ErrBadResponse, id, got)
	}
	return doc, nil
}

// Flist downloads, checks and parses flist id.
func (c *Client) Flist(ctx context.Context, id flist.ID) (*flist.Flist, error) {
	doc, err := c.FlistDocument(ctx, id)
	if err != nil {
		return nil, err
	}
	f, err := flist.Parse(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: flist %s: %w", ErrBadResponse, id, err)
	}
	return f, nil
}

// Tag returns a signed tag as the hub serves it, unverified: check it
// with flist.VerifyTag and the publisher's key.
func (c *Client) Tag(ctx context.Context, publisher, repo, tag string) (flist.SignedTag, error) {
	var out flist.SignedTag
	return out, c.getJSON(ctx, repoPath(publisher, repo)+"/tags/"+url.PathEscape(tag), &out)
}

// Link returns a tag link.
func (c *Client) Link(ctx context.Context, publisher, repo, link string) (api.LinkInfo, error) {
	var out api.LinkInfo
	return out, c.getJSON(ctx, repoPath(publisher, repo)+"/links/"+url.PathEscape(link), &out)
}

// missingBatch is how many IDs MissingBlocks asks about per request (the
// hub's default limit is 10 000).
const missingBatch = 1000

// MissingBlocks returns the IDs among ids the hub does not have, each once,
// in the order given.
func (c *Client) MissingBlocks(ctx context.Context, ids []flist.ID) ([]flist.ID, error) {
	out := []flist.ID{}
	for start := 0; start < len(ids); start += missingBatch {
		body, _ := json.Marshal(api.MissingRequest{Blocks: ids[start:min(start+missingBatch, len(ids))]})
		var resp api.MissingResponse
		if err := c.sendJSON(ctx, http.MethodPost, "/api/v1/blocks/missing", body, &resp); err != nil {
			return nil, err
		}
		out = append(out, resp.Missing...)
	}
	return out, nil
}

// PutBlock uploads a block in its stored form (flist.EncodeBlock). The hub
// refuses a block whose content does not hash to id.
func (c *Client) PutBlock(ctx context.Context, id flist.ID, stored []byte) error {
	return c.do(ctx, http.MethodPut, "/api/v1/blocks/"+id.String(), stored, "application/octet-stream", nil)
}

// PutFlist uploads an flist document and names it in a repository. Its
// blocks must be on the hub already (ErrConflict with APIError.Missing).
func (c *Client) PutFlist(ctx context.Context, publisher, repo, name string, doc []byte) (api.FlistInfo, error) {
	var out api.FlistInfo
	return out, c.sendJSON(ctx, http.MethodPut, repoPath(publisher, repo)+"/flists/"+url.PathEscape(name), doc, &out)
}

// DeleteFlist removes a name from a repository (the flist's document and
// blocks stay: tags may use them).
func (c *Client) DeleteFlist(ctx context.Context, publisher, repo, name string) error {
	return c.do(ctx, http.MethodDelete, repoPath(publisher, repo)+"/flists/"+url.PathEscape(name), nil, "", nil)
}

// PutTag publishes a signed tag under the publisher, repository and name
// its document says.
func (c *Client) PutTag(ctx context.Context, st flist.SignedTag) (api.TagInfo, error) {
	t, err := st.Tag()
	if err != nil {
		return api.TagInfo{}, err
	}
	body, err := json.Marshal(st)
	if err != nil {
		return api.TagInfo{}, err
	}
	var out api.TagInfo
	return out, c.sendJSON(ctx, http.MethodPut, repoPath(t.Publisher, t.Repo)+"/tags/"+url.PathEscape(t.Name), body, &out)
}

// PutLink points a link at a tag of the same repository.
func (c *Client) PutLink(ctx context.Context, publisher, repo, link, tag string) (api.LinkInfo, error) {
	body, _ := json.Marshal(api.LinkRequest{Tag: tag})
	var out api.LinkInfo
	return out, c.sendJSON(ctx, http.MethodPut, repoPath(publisher, repo)+"/links/"+url.PathEscape(link), body, &out)
}

// DeleteLink removes a link.
func (c *Client) DeleteLink(ctx context.Context, publisher, repo, link string) error {
	return c.do(ctx, http.MethodDelete, repoPath(publisher, repo)+"/links/"+url.PathEscape(link), nil, "", nil)
}

// BlockBody is a block download in progress.
type BlockBody struct {
	// Body is the stored block from Offset on; close it.
	io.ReadCloser
	// Offset is where Body starts: the offset asked for when the hub
	// honoured the range, 0 when it sent the whole block.
	Offset int64
	// Total is the length of the whole stored block, -1 if unknown.
	Total int64
}

// OpenBlock starts downloading a stored block from offset (0: all of it),
// once (no retry: the caller resumes from what it got). An offset at or
// beyond the end gives an *APIError with status 416.
func (c *Client) OpenBlock(ctx context.Context, id flist.ID, offset int64) (*BlockBody, error) {
	p := "/api/v1/blocks/" + id.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+p, nil)
	if err != nil {
		return nil, err
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	switch res.StatusCode {
	case http.StatusOK:
		return &BlockBody{ReadCloser: res.Body, Offset: 0, Total: res.ContentLength}, nil
	case http.StatusPartialContent:
		start, total, ok := parseContentRange(res.Header.Get("Content-Range"))
		if !ok || start != offset {
			res.Body.Close()
			return nil, fmt.Errorf("%w: block %s: Content-Range %q for a range from %d", ErrBadResponse, id, res.Header.Get("Content-Range"), offset)
		}
		return &BlockBody{ReadCloser: res.Body, Offset: start, Total: total}, nil
	}
	defer res.Body.Close()
	return nil, apiError(res, http.MethodGet, p)
}

// parseContentRange parses "bytes START-END/TOTAL" (TOTAL may be "*").
func parseContentRange(v string) (start, total int64, ok bool) {
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, false
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, false
	}
	s, _, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(s, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, total, true
}

func repoPath(publisher, repo string) string {
	return "/api/v1/repos/" + url.PathEscape(publisher) + "/" + url.PathEscape(repo)
}

func (c *Client) getJSON(ctx context.Context, p string, out any) error {
	return c.sendJSON(ctx, http.MethodGet, p, nil, out)
}

// sendJSON sends body (JSON, or nothing) and decodes a JSON answer.
func (c *Client) sendJSON(ctx context.Context, method, p string, body []byte, out any) error {
	ct := ""
	if body != nil {
		ct = "application/json"
	}
	return c.do(ctx, method, p, body, ct, func(res *http.Response) error {
		if out == nil {
			return nil
		}
		b, err := io.ReadAll(io.LimitReader(res.Body, maxJSONAnswer))
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%w: %s %s: %w", ErrBadResponse, method, p, err)
		}
		return nil
	})
}

// do sends a request, retrying network errors and 5xx answers, and hands
// a 2xx answer to read (which may be nil).
func (c *Client) do(ctx context.Context, method, p string, body []byte, contentType string, read func(*http.Response) error) error {
	var last error
	for attempt := range c.attempts {
		if attempt > 0 {
			t := time.NewTimer(time.Duration(100<<attempt) * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("hub: %s %s: %w (last error: %w)", method, p, context.Cause(ctx), last)
			case <-t.C:
			}
		}
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, c.base.String()+p, rd)
		if err != nil {
			return fmt.Errorf("hub: %w", err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		req.Header.Set("Accept", "application/json")
		res, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("hub: %s %s: %w", method, p, err)
			}
			last = fmt.Errorf("%w: %s %s: %w", ErrUnreachable, method, p, err)
			continue
		}
		if res.StatusCode >= 200 && res.StatusCode < 300 {
			var err error
			if read != nil {
				err = read(res)
			}
			res.Body.Close()
			if err != nil && !errors.Is(err, ErrBadResponse) {
				// The answer was cut: try again.
				last = fmt.Errorf("%w: %s %s: reading the answer: %w", ErrUnreachable, method, p, err)
				continue
			}
			return err
		}
		last = apiError(res, method, p)
		res.Body.Close()
		if res.StatusCode < 500 {
			return last
		}
	}
	return last
}

// apiError reads an error answer.
func apiError(res *http.Response, method, p string) *APIError {
	e := &APIError{Status: res.StatusCode, Method: method, Path: p}
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	var body struct {
		Error   string     `json:"error"`
		Missing []flist.ID `json:"missing"`
	}
	if json.Unmarshal(b, &body) == nil && body.Error != "" {
		e.Message, e.Missing = body.Error, body.Missing
	} else if s := strings.TrimSpace(string(b)); s != "" && len(s) < 200 {
		e.Message = s
	} else {
		e.Message = http.StatusText(res.StatusCode)
	}
	return e
}
