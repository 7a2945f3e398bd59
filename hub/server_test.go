package hub

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/hub/api"
	"github.com/grid4/grid4/hub/client"
	"github.com/grid4/grid4/keys"
)

func TestPublishAndRead(t *testing.T) {
	h := newTestHub(t)
	ctx := ctxT(t)
	dir := tree(t, map[string]string{"bin/zos": "zos binary", "etc/": "", "README": strings.Repeat("x", 5000)})
	res, err := h.tf.PublishDir(ctx, "tf", "zos", "zos", dir, client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Uploaded != res.Blocks || res.Blocks != 2 {
		t.Fatalf("uploaded %d of %d blocks, want 2 of 2", res.Uploaded, res.Blocks)
	}
	id := res.Flist.ID()
	if res.Info.Flist != id || res.Info.Name != "zos" || res.Info.Size != int64(len("zos binary")+5000) {
		t.Fatalf("info %+v", res.Info)
	}
	f, err := h.anon.Flist(ctx, id)
	if err != nil || f.ID() != id {
		t.Fatalf("Flist: %v", err)
	}
	fi, err := h.anon.FlistInfo(ctx, "tf", "zos", "zos")
	if err != nil || fi.Flist != id {
		t.Fatalf("FlistInfo: %+v %v", fi, err)
	}
	repos, err := h.anon.Repos(ctx, "")
	if err != nil || len(repos) != 1 || repos[0] != (api.RepoInfo{Publisher: "tf", Repo: "zos", Flists: 1}) {
		t.Fatalf("Repos: %+v %v", repos, err)
	}
	// Publishing the same tree again uploads nothing.
	again, err := h.tf.PublishDir(ctx, "tf", "zos", "zos-copy", dir, client.PublishOptions{})
	if err != nil || again.Uploaded != 0 {
		t.Fatalf("second publish uploaded %d blocks (%v)", again.Uploaded, err)
	}
	if _, err := h.anon.Flist(ctx, flist.Sum([]byte("nope"))); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("unknown flist: %v", err)
	}
}

func TestDedupUploadsOnlyNewBlocks(t *testing.T) {
	h := newTestHub(t)
	ctx := ctxT(t)
	shared := strings.Repeat("shared library ", 10000)
	one := tree(t, map[string]string{"lib/a.so": shared, "lib/b.so": shared, "bin/one": "one"})
	two := tree(t, map[string]string{"lib/a.so": shared, "bin/two": "two"})
	r1, err := h.tf.PublishDir(ctx, "tf", "zos", "one", one, client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// a.so and b.so are the same block: uploaded once.
	if r1.Blocks != 2 || r1.Uploaded != 2 {
		t.Fatalf("first: %d blocks, %d uploaded; want 2, 2", r1.Blocks, r1.Uploaded)
	}
	var prog recProgress
	r2, err := h.tf.PublishDir(ctx, "tf", "zos", "two", two, client.PublishOptions{Progress: &prog})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Blocks != 2 || r2.Uploaded != 1 {
		t.Fatalf("second: %d blocks, %d uploaded; want 2, 1 (only bin/two)", r2.Blocks, r2.Uploaded)
	}
	if prog.blocks != 1 || prog.all != 2 || prog.added != prog.bytes || prog.bytes != r2.UploadedBytes {
		t.Fatalf("progress %+v, uploaded bytes %d", prog, r2.UploadedBytes)
	}
	if n := h.counter("hub_blocks_stored_total"); n != 3 {
		t.Fatalf("hub stored %v blocks, want 3", n)
	}
}

type recProgress struct {
	blocks, all  int
	bytes, added int64
}

func (p *recProgress) Start(blocks, all int, bytes int64) {
	p.blocks, p.all, p.bytes = blocks, all, bytes
}
func (p *recProgress) Add(n int64) { p.added += n }

func TestPublishingNeedsAPublisherSignature(t *testing.T) {
	h := newTestHub(t)
	ctx := ctxT(t)
	data := []byte("block")
	id := flist.Sum(data)
	stored := flist.EncodeBlock(data)

	// Unsigned.
	err := h.anon.PutBlock(ctx, id, stored)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("unsigned: %v, want 401", err)
	}
	// Signed by a key that is not a publisher's, under a publisher's id.
	stranger, _ := keys.Generate(keys.Ed25519)
	forged := h.anon.Signed(stranger, PublisherID("tf"))
	if err := forged.PutBlock(ctx, id, stored); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("wrong key: %v, want 401", err)
	}
	// Under an id nobody has.
	if err := h.anon.Signed(stranger, 12345).PutBlock(ctx, id, stored); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("unknown id: %v, want 401", err)
	}
	if _, err := h.anon.AsPublisher(ctx, "tf", stranger); !errors.Is(err, client.ErrNotPublisher) {
		t.Fatalf("AsPublisher with another key: %v", err)
	}
	if h.srv.store.hasBlock(id) {
		t.Fatal("a refused upload stored the block")
	}
	// Alice cannot publish into tf's repositories.
	if err := h.alice.PutBlock(ctx, id, stored); err != nil {
		t.Fatalf("alice uploading a block: %v", err)
	}
	f := &flist.Flist{Entries: []flist.Entry{{Path: "b", Type: flist.TypeFile, Mode: 0o644, Size: 5, Blocks: []flist.BlockRef{{ID: id, Size: 5}}}}}
	if _, err := h.alice.PutFlist(ctx, "tf", "zos", "x", f.Encode()); !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
		t.Fatalf("alice into tf/zos: %v, want 403", err)
	}
	if _, err := h.alice.PutFlist(ctx, "alice", "tools", "x", f.Encode()); err != nil {
		t.Fatalf("alice into alice/tools: %v", err)
	}
	if h.counter("hub_auth_failures_total") != 3 {
		t.Fatalf("auth failures %v, want 3", h.counter("hub_auth_failures_total"))
	}
}

func TestBlockUploadIsChecked(t *testing.T) {
	h := newTestHub(t)
	ctx := ctxT(t)
	data := []byte("the real content")
	id := flist.Sum(data)
	var ae *client.APIError
	err := h.tf.PutBlock(ctx, id, flist.EncodeBlock([]byte("other content")))
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, "corrupt block") {
		t.Fatalf("mismatching block: %v, want 400 corrupt block", err)
	}
	if h.srv.store.hasBlock(id) || h.counter("hub_blocks_refused_total") != 1 {
		t.Fatal("a mismatching block was stored or not counted")
	}
	err = h.tf.PutBlock(ctx, id, append([]byte{flist.CodecRaw}, bytes.Repeat([]byte("x"), flist.MaxStoredBlockSize+10)...))
	if !errors.As(err, &ae) || ae.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized block: %v, want 413", err)
	}
	if err := h.tf.PutBlock(ctx, id, flist.EncodeBlock(data)); err != nil {
		t.Fatal(err)
	}
	// An flist whose blocks are not all there is refused, naming them.
	other := flist.Sum([]byte("absent"))
	f := &flist.Flist{Entries: []flist.Entry{
		{Path: "a", Type: flist.TypeFile, Mode: 0o644, Size: int64(len(data)), Blocks: []flist.BlockRef{{ID: id, Size: int64(len(data))}}},
		{Path: "b", Type: flist.TypeFile, Mode: 0o644, Size: 6, Blocks: []flist.BlockRef{{ID: other, Size: 6}}},
	}}
	_, err = h.tf.PutFlist(ctx, "tf", "zos", "x", f.Encode())
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict || len(ae.Missing) != 1 || ae.Missing[0] != other {
		t.Fatalf("flist with a missing block: %v (%+v)", err, ae)
	}
	// A document that is not a valid flist is refused.
	bad := strings.Replace(string(f.Encode()), `"path":"b"`, `"path":"../b"`, 1)
	if _, err := h.tf.PutFlist(ctx, "tf", "zos", "x", []byte(bad)); !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		t.Fatalf("traversal in a document: %v, want 400", err)
	}
	missing, err := h.anon.MissingBlocks(ctx, []flist.ID{id, other, other})
	if err != nil || len(missing) != 1 || missing[0] != other {
		t.Fatalf("MissingBlocks: %v %v", missing, err)
	}
}

func TestBlockRanges(t *testing.T) {
	h := newTestHub(t)
	ctx := ctxT(t)
	data := make([]byte, 100_000)
	_, _ = rand.Read(data)
	id := flist.Sum(data)
	stored := flist.EncodeBlock(data)
	if err := h.tf.PutBlock(ctx, id, stored); err != nil {
		t.Fatal(err)
	}
	b, err := h.anon.OpenBlock(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := io.ReadAll(b)
	b.Close()
	if !bytes.Equal(all, stored) || b.Total != int64(len(stored)) {
		t.Fatalf("whole block differs (total %d)", b.Total)
	}
	b, err = h.anon.OpenBlock(ctx, id, 1000)
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(b)
	b.Close()
	if b.Offset != 1000 || !bytes.Equal(rest, stored[1000:]) || b.Total != int64(len(stored)) {
		t.Fatalf("range from 1000: offset %d, %d bytes", b.Offset, len(rest))
	}
	var ae *client.APIError
	if _, err := h.anon.OpenBlock(ctx, id, int64(len(stored))); !errors.As(err, &ae) || ae.Status != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("range at the end: %v, want 416", err)
	}
	if _, err := h.anon.OpenBlock(ctx, flist.Sum(nil), 0); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("missing block: %v", err)
	}
	// The errors http.ServeContent answers are JSON like every other.
	for _, c := range []struct {
		header, value string
		status        int
	}{
		{"Range", fmt.Sprintf("bytes=%d-", len(stored)), http.StatusRequestedRangeNotSatisfiable},
		{"If-Match", `"other"`, http.StatusPreconditionFailed},
	} {
		req, _ := http.NewRequest(http.MethodGet, h.ts.URL+"/api/v1/blocks/"+id.String(), nil)
		req.Header.Set(c.header, c.value)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Error string }
		decErr := json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != c.status || res.Header.Get("Content-Type") != "application/json" || decErr != nil || body.Error == "" {
			t.Fatalf("%s: %s: %d %s, body %+v (%v), want %d with a JSON error", c.header, c.value, res.StatusCode, res.Header.Get("Content-Type"), body, decErr, c.status)
		}
		if c.status == http.StatusRequestedRangeNotSatisfiable && res.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", len(stored)) {
			t.Fatalf("416 without Content-Range: %v", res.Header)
		}
	}
	res, err := http.Get(h.ts.URL + "/api/v1/blocks/" + id.String())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.Header.Get("ETag") != `"`+id.String()+`"` || !strings.Contains(res.Header.Get("Cache-Control"), "immutable") || res.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("headers %v", res.Header)
	}
	// The counter is updated when the handler returns, which can be just
	// after the client has read the last byte.
	want := float64(3*len(stored) - 1000)
	for deadline := time.Now().Add(5 * time.Second); h.counter("hub_block_download_bytes_total") < want; {
		if time.Now().After(deadline) {
			t.Fatalf("served bytes %v, want at least %v", h.counter("hub_block_download_bytes_total"), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func publishTag(t *testing.T, h *testHub, c *client.Client, kp keys.KeyPair, pub, repo, name string, entries []flist.TagEntry) (flist.SignedTag, error) {
	t.Helper()
	st, err := flist.SignTag(&flist.Tag{Publisher: pub, Repo: repo, Name: name, Created: time.Now().Unix(), Entries: entries}, kp)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.PutTag(ctxT(t), st)
	return st, err
}

func TestTagsAndLinks(t *testing.T) {
	h := newTestHub(t)
	ctx := ctxT(t)
	dep, err := h.tf.PublishDir(ctx, "tf", "zos", "containerd", tree(t, map[string]string{"bin/containerd": "c"}), client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	zos, err := h.tf.PublishDir(ctx, "tf", "zos", "zos", tree(t, map[string]string{"bin/zos": "z"}), client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	entries := []flist.TagEntry{
		{Name: "containerd", Flist: dep.Info.Flist, Role: flist.RoleDependency},
		{Name: "zos", Flist: zos.Info.Flist, Role: flist.RoleZos},
	}
	st, err := publishTag(t, h, h.tf, h.tfKey, "tf", "zos", "v4.1.2", entries)
	if err != nil {
		t.Fatal(err)
	}
	got, err := h.anon.Tag(ctx, "tf", "zos", "v4.1.2")
	if err != nil {
		t.Fatal(err)
	}
	tg, err := flist.VerifyTag(got, h.tfKey.Public().Key)
	if err != nil || got.Hash() != st.Hash() || len(tg.Entries) != 2 {
		t.Fatalf("served tag: %v", err)
	}
	var ae *client.APIError
	// Same document again: fine. Another document under the same name: 409.
	if _, err := h.tf.PutTag(ctx, st); err != nil {
		t.Fatalf("republishing the same tag: %v", err)
	}
	if _, err := publishTag(t, h, h.tf, h.tfKey, "tf", "zos", "v4.1.2", entries[1:]); !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Fatalf("changing a tag: %v, want 409", err)
	}
	// A tag signed by another key than the publisher's (the request itself
	// being correctly signed) is refused.
	other, _ := keys.Generate(keys.Ed25519)
	if _, err := publishTag(t, h, h.tf, other, "tf", "zos", "v4.1.3", entries); !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		t.Fatalf("tag signed by another key: %v, want 400", err)
	}
	// A tag naming a flist the hub does not have.
	bad := []flist.TagEntry{{Name: "zos", Flist: flist.Sum([]byte("?")), Role: flist.RoleZos}}
	if _, err := publishTag(t, h, h.tf, h.tfKey, "tf", "zos", "v4.1.4", bad); !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Fatalf("tag of a missing flist: %v, want 409", err)
	}
	// A tag document for another repository sent to this one.
	st2, _ := flist.SignTag(&flist.Tag{Publisher: "tf", Repo: "other", Name: "v1", Entries: entries}, h.tfKey)
	body, _ := json.Marshal(st2)
	if status := h.putAsTF(ctx, "/api/v1/repos/tf/zos/tags/v1", body); status != http.StatusBadRequest {
		t.Fatalf("tag of another repo: %d, want 400", status)
	}

	li, err := h.tf.PutLink(ctx, "tf", "zos", "production", "v4.1.2")
	if err != nil || li.Tag != "v4.1.2" {
		t.Fatalf("PutLink: %+v %v", li, err)
	}
	if li, err := h.anon.Link(ctx, "tf", "zos", "production"); err != nil || li.Tag != "v4.1.2" {
		t.Fatalf("Link: %+v %v", li, err)
	}
	if _, err := h.tf.PutLink(ctx, "tf", "zos", "testing", "v9"); !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Fatalf("link to a missing tag: %v, want 409", err)
	}
	l, err := h.anon.Repo(ctx, "tf", "zos")
	if err != nil || len(l.Flists) != 2 || len(l.Tags) != 1 || len(l.Links) != 1 || l.Tags[0].Hash != st.Hash() {
		t.Fatalf("Repo: %+v %v", l, err)
	}
	if err := h.tf.DeleteLink(ctx, "tf", "zos", "production"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.anon.Link(ctx, "tf", "zos", "production"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("deleted link: %v", err)
	}
	if _, err := h.anon.Repo(ctx, "tf", "nothing"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("missing repo: %v", err)
	}
}

func TestJSONErrorsAndOps(t *testing.T) {
	h := newTestHub(t)
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/nothing", 404},
		{"DELETE", "/api/v1/publishers", 405},
		{"GET", "/api/v1/blocks/xyz", 400},
		{"GET", "/api/v1/repos/tf/a%2Fb", 400},
		{"POST", "/api/v1/blocks/missing", 400},
	} {
		req, _ := http.NewRequest(c.method, h.ts.URL+c.path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		err = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != c.status || err != nil || body["error"] == nil {
			t.Errorf("%s %s: %d %v %v, want %d with a JSON error", c.method, c.path, res.StatusCode, body, err, c.status)
		}
	}
	for _, p := range []string{"/healthz", "/metrics"} {
		res, err := http.Get(h.ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("%s: %d", p, res.StatusCode)
		}
		if p == "/metrics" && !strings.Contains(string(b), "hub_http_requests_total") {
			t.Errorf("metrics lack hub_http_requests_total")
		}
	}
	// Too many ids at once.
	ids := make([]flist.ID, 10_001)
	body, _ := json.Marshal(api.MissingRequest{Blocks: ids})
	res, err := http.Post(h.ts.URL+"/api/v1/blocks/missing", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("10001 ids: %d, want 413", res.StatusCode)
	}
	pubs, err := h.anon.Publishers(ctxT(t))
	if err != nil || len(pubs) != 2 || pubs[0].ID != PublisherID("tf") {
		t.Fatalf("Publishers: %+v %v", pubs, err)
	}
}

func TestParseConfig(t *testing.T) {
	kp, _ := keys.Generate(keys.Ed25519)
	ss58 := keys.SS58Encode(kp.Public().Key, 42)
	env := map[string]string{"HUB_PUBLISHER": "tf=" + ss58 + ",bob=" + ss58, "HUB_LISTEN": ":9999"}
	c, err := ParseConfig([]string{"--data-dir", "/tmp/x"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":9999" || c.DataDir != "/tmp/x" || len(c.Publishers) != 2 || c.Publishers[1].Name != "bob" {
		t.Fatalf("config %+v", c)
	}
	// A flag wins over the variable.
	c, err = ParseConfig([]string{"--publisher", "alice=" + ss58}, func(k string) string { return env[k] }, io.Discard)
	if err != nil || len(c.Publishers) != 1 || c.Publishers[0].Name != "alice" {
		t.Fatalf("flag over env: %+v %v", c.Publishers, err)
	}
	for _, args := range [][]string{
		{"--publisher", "noequals"},
		{"--publisher", "a/b=" + ss58},
		{"--publisher", "a=notakey"},
		{"--publisher", "a=" + ss58, "--publisher", "a=" + ss58},
		{"--log-format", "xml"},
		{"extra"},
	} {
		if _, err := ParseConfig(args, nil, io.Discard); err == nil {
			t.Errorf("ParseConfig(%v) succeeded", args)
		}
	}
	var usage bytes.Buffer
	if _, err := ParseConfig([]string{"--help"}, nil, &usage); !errors.Is(err, ErrHelp) || !strings.Contains(usage.String(), "HUB_PUBLISHER") {
		t.Fatalf("--help: %v\n%s", err, usage.String())
	}
}
