package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/hub/api"
	"github.com/grid4/grid4/keys"
)

// maxMissingListed bounds the missing block IDs named in a 409 answer.
const maxMissingListed = 100

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	if err := s.store.check(); err != nil {
		s.log.Error("health check: data dir not writable", "error", err)
		return errorf(http.StatusServiceUnavailable, "data directory not writable")
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	s.promh.ServeHTTP(w, r)
	return nil
}

func (s *Server) listPublishers(w http.ResponseWriter, _ *http.Request) error {
	out := make([]api.PublisherInfo, 0, len(s.cfg.Publishers))
	for _, p := range s.cfg.Publishers {
		out = append(out, api.PublisherInfo{
			Name: p.Name, ID: p.ID, PublicKey: fmt.Sprintf("0x%x", p.PublicKey),
			SS58: keys.SS58Encode(p.PublicKey, keys.GenericSS58Prefix),
		})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// pathNames reads and checks the named path values.
func pathNames(r *http.Request, names ...string) ([]string, error) {
	out := make([]string, len(names))
	for i, n := range names {
		v := r.PathValue(n)
		if err := flist.ValidName(v); err != nil {
			return nil, errorf(http.StatusBadRequest, "%s: %v", n, err)
		}
		out[i] = v
	}
	return out, nil
}

func pathID(r *http.Request) (flist.ID, error) {
	id, err := flist.ParseID(r.PathValue("id"))
	if err != nil {
		return id, errorf(http.StatusBadRequest, "%v", err)
	}
	return id, nil
}

// authorize checks that the signer owns the repository's publisher name.
func (s *Server) authorize(r *http.Request, pub string) error {
	p, ok := publisherFrom(r.Context())
	if !ok {
		return errors.New("hub: authenticated route without a publisher")
	}
	if p.Name != pub {
		return errorf(http.StatusForbidden, "publisher %s may not publish under %s", p.Name, pub)
	}
	return nil
}

func (s *Server) listRepos(w http.ResponseWriter, r *http.Request) error {
	pub := r.PathValue("publisher")
	if pub == "" {
		pub = r.URL.Query().Get("publisher")
	}
	if pub != "" {
		if err := flist.ValidName(pub); err != nil {
			return errorf(http.StatusBadRequest, "publisher: %v", err)
		}
	}
	repos, err := s.store.repos(pub)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, repos)
	return nil
}

func (s *Server) getRepo(w http.ResponseWriter, r *http.Request) error {
	n, err := pathNames(r, "publisher", "repo")
	if err != nil {
		return err
	}
	l, err := s.store.listing(n[0], n[1])
	if errors.Is(err, errNotFound) {
		return errorf(http.StatusNotFound, "no repository %s/%s", n[0], n[1])
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}

func (s *Server) getFlistName(w http.ResponseWriter, r *http.Request) error {
	n, err := pathNames(r, "publisher", "repo", "name")
	if err != nil {
		return err
	}
	var fi api.FlistInfo
	if err := s.store.readRecord(n[0], n[1], kindFlists, n[2], &fi); errors.Is(err, errNotFound) {
		return errorf(http.StatusNotFound, "no flist %s in %s/%s", n[2], n[0], n[1])
	} else if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, fi)
	return nil
}

// putFlist stores an flist document (the body) and names it in the
// repository. Every block it uses must already be on the hub.
func (s *Server) putFlist(w http.ResponseWriter, r *http.Request) error {
	n, err := pathNames(r, "publisher", "repo", "name")
	if err != nil {
		return err
	}
	if err := s.authorize(r, n[0]); err != nil {
		return err
	}
	doc, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	f, err := flist.Parse(doc)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	id := flist.Sum(doc)
	blocks := f.Blocks()
	var missing []flist.ID
	for _, b := range blocks {
		if !s.store.hasBlock(b.ID) {
			missing = append(missing, b.ID)
		}
	}
	if len(missing) > 0 {
		e := errorf(http.StatusConflict, "%d of the flist's %d blocks are not on the hub; upload them first", len(missing), len(blocks))
		e.extra = map[string]any{"missing": missing[:min(len(missing), maxMissingListed)]}
		return e
	}
	if err := s.store.docs.PutBlock(r.Context(), id, doc); err != nil {
		return err
	}
	fi := api.FlistInfo{
		Name: n[2], Flist: id, Size: f.Size(), Entries: len(f.Entries), Blocks: len(blocks),
		DocumentSize: len(doc), Updated: s.now().UTC().Truncate(time.Second),
	}
	if err := s.store.writeRecord(n[0], n[1], kindFlists, n[2], fi); err != nil {
		return err
	}
	s.metrics.published.WithLabelValues("flist").Inc()
	s.log.Info("flist published", "repo", n[0]+"/"+n[1], "name", n[2], "flist", id.String(), "size", fi.Size)
	writeJSON(w, http.StatusOK, fi)
	return nil
}

func (s *Server) deleteFlistName(w http.ResponseWriter, r *http.Request) error {
	n, err := pathNames(r, "publisher", "repo", "name")
	if err != nil {
		return err
	}
	if err := s.authorize(r, n[0]); err != nil {
		return err
	}
	if err := s.store.deleteRecord(n[0], n[1], kindFlists, n[2]); errors.Is(err, errNotFound) {
		return errorf(http.StatusNotFound, "no flist %s in %s/%s", n[2], n[0], n[1])
	} else if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getTag(w http.ResponseWriter, r *http.Request) error {
	n, err := pathNames(r, "publisher", "repo", "tag")
	if err != nil {
		return err
	}
	var rec tagRecord
	if err := s.store.readRecord(n[0], n[1], kindTags, n[2], &rec); errors.Is(err, errNotFound) {
		return errorf(http.StatusNotFound, "no tag %s in %s/%s", n[2], n[0], n[1])
	} else if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rec.Signed)
	return nil
}

// putTag stores a signed tag. The tag must be signed by the repository's
// publisher, name this repository and tag, and list only flists on the
// hub. Tags are immutable: publishing the same document again is a no-op,
// another document under an existing name a 409.
func (s *Server) putTag(w http.ResponseWriter, r *http.Request) error {
	n, err := pathNames(r, "publisher", "repo", "tag")
	if err != nil {
		return err
	}
	if err := s.authorize(r, n[0]); err != nil {
		return err
	}
	var st flist.SignedTag
	if err := json.NewDecoder(r.Body).Decode(&st); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errorf(http.StatusBadRequest, "%v", err)
	}
	t, err := flist.VerifyTag(st, s.byName[n[0]].PublicKey)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	if t.Publisher != n[0] || t.Repo != n[1] || t.Name != n[2] {
		return errorf(http.StatusBadRequest, "the tag document is %s/%s:%s, not %s/%s:%s", t.Publisher, t.Repo, t.Name, n[0], n[1], n[2])
	}
	for _, e := range t.Entries {
		if !s.store.hasFlist(e.Flist) {
			return errorf(http.StatusConflict, "entry %s: flist %s is not on the hub; publish it first", e.Name, e.Flist)
		}
	}
	rec, created, err := s.store.createTag(n[0], n[1], n[2], tagRecord{Signed: st, Published: s.now().UTC().Truncate(time.Second)})
	if errors.Is(err, errExists) {
		return errorf(http.StatusConflict, "tag %s/%s:%s exists with other content; tags are immutable, publish a new one", n[0], n[1], n[2])
	}
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		s.metrics.published.WithLabelValues("tag").Inc()
		s.log.Info("tag published", "repo", n[0]+"/"+n[1], "tag", n[2], "hash", st.Hash().String(), "entries", len(t.Entries))
	}
	writeJSON(w, status, tagInfo(rec, t))
	return nil
}

func (s *Server) getLink(w http.ResponseWriter, r *http.Request) error {
	n, err := pathNames(r, "publisher", "repo", "link")
	if err != nil {
		return err
	}
	var li api.LinkInfo
	if err := s.store.readRecord(n[0], n[1], kindLinks, n[2], &li); errors.Is(err, errNotFound) {
		return errorf(http.StatusNotFound, "no link %s in %s/%s", n[2], n[0], n[1])
	} else if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, li)
	return nil
}

// putLink points a link at a tag of the same repository.
func (s *Server) putLink(w http.ResponseWriter, r *http.Request) error {
	n, err := pathNames(r, "publisher", "repo", "link")
	if err != nil {
		return err
	}
	if err := s.authorize(r, n[0]); err != nil {
		return err
	}
	var req api.LinkRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errorf(http.StatusBadRequest, "body: %v (want {\"tag\": \"NAME\"})", err)
	}
	if err := flist.ValidName(req.Tag); err != nil {
		return errorf(http.StatusBadRequest, "tag: %v", err)
	}
	var rec tagRecord
	if err := s.store.readRecord(n[0], n[1], kindTags, req.Tag, &rec); errors.Is(err, errNotFound) {
		return errorf(http.StatusConflict, "no tag %s in %s/%s to link to", req.Tag, n[0], n[1])
	} else if err != nil {
		return err
	}
	li := api.LinkInfo{Link: n[2], Tag: req.Tag, Updated: s.now().UTC().Truncate(time.Second)}
	if err := s.store.writeRecord(n[0], n[1], kindLinks, n[2], li); err != nil {
		return err
	}
	s.metrics.published.WithLabelValues("link").Inc()
	s.log.Info("link set", "repo", n[0]+"/"+n[1], "link", n[2], "tag", req.Tag)
	writeJSON(w, http.StatusOK, li)
	return nil
}

func (s *Server) deleteLink(w http.ResponseWriter, r *http.Request) error {
	n, err := pathNames(r, "publisher", "repo", "link")
	if err != nil {
		return err
	}
	if err := s.authorize(r, n[0]); err != nil {
		return err
	}
	if err := s.store.deleteRecord(n[0], n[1], kindLinks, n[2]); errors.Is(err, errNotFound) {
		return errorf(http.StatusNotFound, "no link %s in %s/%s", n[2], n[0], n[1])
	} else if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// immutable marks content-addressed answers: they never change.
const immutable = "public, max-age=31536000, immutable"

func (s *Server) getFlistDocument(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	f, err := s.store.openFlist(id)
	if errors.Is(err, errNotFound) {
		return errorf(http.StatusNotFound, "no flist %s", id)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return serveImmutable(w, r, f, id, "application/json")
}

// getBlock serves a stored block with range support (http.ServeContent),
// so an interrupted download resumes where it stopped.
func (s *Server) getBlock(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	f, err := s.store.openBlock(id)
	if errors.Is(err, errNotFound) {
		return errorf(http.StatusNotFound, "no block %s", id)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	cw := &countingWriter{ResponseWriter: w}
	err = serveImmutable(cw, r, f, id, "application/octet-stream")
	s.metrics.blockBytesOut.Add(float64(cw.n))
	return err
}

// serveImmutable serves a content-addressed file: ETag is its ID,
// cacheable for ever, ranges and conditional requests handled by
// http.ServeContent. The errors ServeContent answers itself (416 for a
// range beyond the end, 412) come back as an *httpError, so that they are
// JSON like every other error of the hub, not ServeContent's plain text.
func serveImmutable(w http.ResponseWriter, r *http.Request, f *os.File, id flist.ID, contentType string) error {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("ETag", `"`+id.String()+`"`)
	h.Set("Cache-Control", immutable)
	h.Set("X-Content-Type-Options", "nosniff")
	var mod time.Time
	if st, err := f.Stat(); err == nil {
		mod = st.ModTime()
	}
	ew := &errorCatcher{ResponseWriter: w}
	http.ServeContent(ew, r, "", mod, f)
	if ew.status == 0 {
		return nil
	}
	h.Del("ETag")
	msg := strings.TrimSpace(ew.body.String())
	if msg == "" {
		msg = strings.ToLower(http.StatusText(ew.status))
	}
	return errorf(ew.status, "%s", msg)
}

// errorCatcher passes a successful answer through and holds back an error
// status (400 and up) and its body, for the caller to answer in JSON.
type errorCatcher struct {
	http.ResponseWriter
	status int
	body   strings.Builder
}

func (w *errorCatcher) WriteHeader(code int) {
	if code >= http.StatusBadRequest {
		w.status = code
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *errorCatcher) Write(b []byte) (int, error) {
	if w.status != 0 {
		if w.body.Len() < 512 {
			w.body.Write(b)
		}
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// putBlock stores a block after checking that its content hashes to its
// ID. Storing a block the hub has is a no-op (200; 201 when stored).
func (s *Server) putBlock(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	stored, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if s.store.hasBlock(id) {
		writeJSON(w, http.StatusOK, map[string]any{"block": id, "stored": false})
		return nil
	}
	if _, err := flist.DecodeBlock(id, stored, -1); err != nil {
		s.metrics.blocksRefused.Inc()
		return errorf(http.StatusBadRequest, "%v", err)
	}
	if err := s.store.blocks.PutBlock(r.Context(), id, stored); err != nil {
		return err
	}
	s.metrics.blocksStored.Inc()
	s.metrics.blockBytesIn.Add(float64(len(stored)))
	writeJSON(w, http.StatusCreated, map[string]any{"block": id, "stored": true})
	return nil
}

// missingBlocks answers which of the listed blocks the hub lacks, so a
// publisher uploads only those.
func (s *Server) missingBlocks(w http.ResponseWriter, r *http.Request) error {
	var req api.MissingRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, "at most %d block ids per request", s.cfg.MaxMissingQuery)
		}
		return errorf(http.StatusBadRequest, "body: %v (want {\"blocks\": [ID, ...]})", err)
	}
	if len(req.Blocks) > s.cfg.MaxMissingQuery {
		return errorf(http.StatusRequestEntityTooLarge, "%d block ids, at most %d per request", len(req.Blocks), s.cfg.MaxMissingQuery)
	}
	seen := make(map[flist.ID]bool, len(req.Blocks))
	resp := api.MissingResponse{Missing: []flist.ID{}}
	for _, id := range req.Blocks {
		if seen[id] {
			continue
		}
		seen[id] = true
		if !s.store.hasBlock(id) {
			resp.Missing = append(resp.Missing, id)
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// countingWriter counts the body bytes written.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}
