package registrar

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash/fnv"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/grid4/grid4/internal/strictb64"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// compatVersion is the JSON that the public registrar's GET /zos/version
// carries base64-encoded in a JSON string. TestFarms is grid4's; readers
// of the public format ignore it, and it is left out when empty so the
// common case is byte for byte what the public registrar sends.
type compatVersion struct {
	Version       string   `json:"version"`
	SafeToUpgrade bool     `json:"safe_to_upgrade"`
	TestFarms     []uint64 `json:"test_farms,omitempty"`
}

// encodeCompatVersion is base64(JSON{version, safe_to_upgrade[, test_farms]}).
func encodeCompatVersion(v api.ZosVersion) string {
	b, _ := json.Marshal(compatVersion{Version: v.Version, SafeToUpgrade: v.SafeToUpgrade, TestFarms: v.TestFarms})
	return base64.StdEncoding.EncodeToString(b)
}

// decodeCompatVersion parses the base64 form a PUT /zos/version carries:
// standard base64 of {"version": ..., "safe_to_upgrade": ...}, where
// single quotes stand for double quotes (as every public consumer
// tolerates).
func decodeCompatVersion(s string) (compatVersion, error) {
	var v compatVersion
	raw, err := strictb64.Std(s)
	if err != nil {
		return v, invalid("version", `%q is neither a version with "safe_to_upgrade" nor standard base64 of {"version":"v4.1.2","safe_to_upgrade":true}`, truncate(s, 80))
	}
	raw = bytes.ReplaceAll(raw, []byte("'"), []byte(`"`))
	if err := decodeJSON(raw, &v); err != nil {
		return v, invalid("version", `the base64 does not hold {"version":"v4.1.2","safe_to_upgrade":true}: %v`, err)
	}
	return v, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// versionBody is the body of PUT /zos/version and POST /zos/versions.
// SafeToUpgrade is a pointer so that the PUT can tell the typed form
// {"version":"v4.1.2","safe_to_upgrade":true} from the base64 form
// {"version":"<base64>"}. A nil TestFarms keeps the current test farms; []
// clears them.
type versionBody struct {
	Version       string   `json:"version"`
	SafeToUpgrade *bool    `json:"safe_to_upgrade"`
	TestFarms     []uint64 `json:"test_farms"`
}

// requireAdmin refuses callers that are not admin twins, and everybody
// when none is configured.
func (s *Server) requireAdmin(r *http.Request) error {
	c := caller(r)
	if len(s.cfg.AdminTwins) == 0 {
		return notAuthorized("no admin twin is configured on this registrar (start it with --admin-twin or REGISTRAR_ADMIN_TWIN), so the ZOS version cannot be set")
	}
	if !s.cfg.isAdmin(c) {
		return notAuthorized("twin %d is not an admin twin of this registrar; only admins set the ZOS version", c)
	}
	return nil
}

// versionFromBody validates a version request into the value to store.
func (s *Server) versionFromBody(r *http.Request, b versionBody, allowBase64 bool) (api.ZosVersion, error) {
	v := api.ZosVersion{TestFarms: b.TestFarms, SetBy: caller(r)}
	switch {
	case b.SafeToUpgrade != nil:
		v.Version, v.SafeToUpgrade = b.Version, *b.SafeToUpgrade
	case allowBase64:
		cv, err := decodeCompatVersion(b.Version)
		if err != nil {
			return v, err
		}
		v.Version, v.SafeToUpgrade = cv.Version, cv.SafeToUpgrade
		if cv.TestFarms != nil {
			v.TestFarms = cv.TestFarms
		}
	}
	if err := validateVersion("version", v.Version, true); err != nil {
		return v, err
	}
	if v.TestFarms == nil {
		cur, err := s.store.CurrentZosVersion(r.Context())
		switch {
		case err == nil:
			v.TestFarms = cur.TestFarms
		case !errors.Is(err, store.ErrNotFound):
			return v, err
		}
	}
	tf, err := normalizeTestFarms(v.TestFarms)
	if err != nil {
		return v, err
	}
	v.TestFarms = tf
	return v, nil
}

// getZosVersionCompat is GET /zos/version: a JSON string holding
// base64(JSON{version, safe_to_upgrade}), the public registrar's format,
// which every existing node and SDK decodes. See serveVersion.
func (s *Server) getZosVersionCompat(w http.ResponseWriter, r *http.Request) error {
	return s.serveVersion(w, r, true)
}

// setZosVersionCompat is PUT /zos/version (admins only): the body is
// {"version": "<base64 of the JSON>"} or the typed
// {"version": "v4.1.2", "safe_to_upgrade": true}. 200 with an empty body,
// 409 when nothing changes.
func (s *Server) setZosVersionCompat(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireAdmin(r); err != nil {
		return err
	}
	var b versionBody
	if err := decodeBody(r, &b); err != nil {
		return err
	}
	v, err := s.versionFromBody(r, b, true)
	if err != nil {
		return err
	}
	if _, err := s.storeVersion(r, v); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) storeVersion(r *http.Request, v api.ZosVersion) (api.ZosVersion, error) {
	saved, err := s.store.SetZosVersion(r.Context(), v)
	if errors.Is(err, store.ErrNotChanged) {
		return saved, conflict("version already set")
	}
	if err == nil {
		s.log.Info("zos version set", "version", saved.Version, "safe_to_upgrade", saved.SafeToUpgrade,
			"test_farms", saved.TestFarms, "serial", saved.Serial, "by_twin", saved.SetBy)
	}
	return saved, err
}

// getZosVersion is GET /zos/versions/current: the version as plain JSON
// with its test farms and serial. See serveVersion.
func (s *Server) getZosVersion(w http.ResponseWriter, r *http.Request) error {
	return s.serveVersion(w, r, false)
}

// renderedVersion is the current version with both its answers encoded,
// so that the route every node polls costs no encoding: the store serves
// the version from memory (invalidated when any registrar process changes
// it), and the bodies are rendered again only when it differs.
type renderedVersion struct {
	v                     api.ZosVersion
	compat, current       []byte // bodies, as writeJSON writes them
	compatTag, currentTag string // their entity tags
	// compatTagHeader and currentTagHeader are the tags as header values,
	// shared by every answer (see versionHeaders).
	compatTagHeader, currentTagHeader []string
}

// Header values shared by every answer of serveVersion, set into the
// header map by their canonical keys: Header.Set would canonicalize the
// key and allocate a value for each of them on every request of the route
// every node polls. Each has its capacity at its length, so that an Add
// to the same key elsewhere copies it rather than writing into it.
var (
	noCacheHeader     = []string{"no-cache"}[:1:1]
	jsonTypeHeader    = []string{"application/json"}[:1:1]
	noSniffHeader     = []string{"nosniff"}[:1:1]
	headerETag        = http.CanonicalHeaderKey("ETag")
	headerCache       = http.CanonicalHeaderKey("Cache-Control")
	headerContentType = http.CanonicalHeaderKey("Content-Type")
	headerNoSniff     = http.CanonicalHeaderKey("X-Content-Type-Options")
)

// renderVersion returns the rendering of v, reusing the last one while v
// is the same.
func (s *Server) renderVersion(v api.ZosVersion) *renderedVersion {
	if rv := s.version.Load(); rv != nil && rv.v.Serial == v.Serial && rv.v.Version == v.Version &&
		rv.v.SafeToUpgrade == v.SafeToUpgrade && slices.Equal(rv.v.TestFarms, v.TestFarms) && rv.v.CreatedAt.Equal(v.CreatedAt) {
		return rv
	}
	rv := &renderedVersion{v: v}
	rv.compat, _ = json.Marshal(encodeCompatVersion(v))
	rv.current, _ = json.Marshal(v)
	rv.compat, rv.current = append(rv.compat, '\n'), append(rv.current, '\n')
	rv.compatTag, rv.currentTag = entityTag(rv.compat), entityTag(rv.current)
	rv.compatTagHeader, rv.currentTagHeader = []string{rv.compatTag}[:1:1], []string{rv.currentTag}[:1:1]
	s.version.Store(rv)
	return rv
}

// entityTag is a strong entity tag of body: its FNV-1a hash.
func entityTag(body []byte) string {
	h := fnv.New64a()
	_, _ = h.Write(body)
	return `"` + strconv.FormatUint(h.Sum64(), 36) + `"`
}

// serveVersion answers GET /zos/version (compat) or /zos/versions/current
// with an ETag, and 304 Not Modified when If-None-Match names it: a node
// that keeps the tag it last saw gets an empty answer until the version
// changes.
func (s *Server) serveVersion(w http.ResponseWriter, r *http.Request, compat bool) error {
	v, err := s.store.CurrentZosVersion(r.Context())
	if errors.Is(err, store.ErrNotFound) {
		return notFound("zos version not set")
	}
	if err != nil {
		return err
	}
	rv := s.renderVersion(v)
	body, tag, tagHeader := rv.current, rv.currentTag, rv.currentTagHeader
	if compat {
		body, tag, tagHeader = rv.compat, rv.compatTag, rv.compatTagHeader
	}
	h := w.Header()
	h[headerETag] = tagHeader
	// Caches must ask again each time (the version may change at any
	// moment); the ETag makes asking cheap.
	h[headerCache] = noCacheHeader
	if inm := r.Header["If-None-Match"]; len(inm) > 0 && etagMatch(inm, tag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h[headerContentType] = jsonTypeHeader
	h[headerNoSniff] = noSniffHeader
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}

// etagMatch reports whether If-None-Match values name tag, by the weak
// comparison RFC 9110 prescribes for If-None-Match ("*" matches any).
func etagMatch(values []string, tag string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == tag {
				return true
			}
		}
	}
	return false
}

// listZosVersions is GET /zos/versions: the history, newest first.
func (s *Server) listZosVersions(w http.ResponseWriter, r *http.Request) error {
	page, err := parsePage(r.URL.Query())
	if err != nil {
		return err
	}
	vs, err := s.store.ZosVersionHistory(r.Context(), page)
	if err != nil {
		return err
	}
	if vs == nil {
		vs = []api.ZosVersion{}
	}
	writeJSON(w, http.StatusOK, vs)
	return nil
}

// setZosVersion is POST /zos/versions (admins only): the typed body
// {"version", "safe_to_upgrade", "test_farms"}; 201 with the stored
// version and its serial.
func (s *Server) setZosVersion(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireAdmin(r); err != nil {
		return err
	}
	var b versionBody
	if err := decodeBody(r, &b); err != nil {
		return err
	}
	if b.SafeToUpgrade == nil {
		f := false
		b.SafeToUpgrade = &f
	}
	if strings.TrimSpace(b.Version) == "" {
		return invalid("version", "required, e.g. v4.1.2")
	}
	v, err := s.versionFromBody(r, b, false)
	if err != nil {
		return err
	}
	saved, err := s.storeVersion(r, v)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, saved)
	return nil
}
