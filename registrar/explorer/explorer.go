// Package explorer is the registrar's grid explorer: HTML pages rendered
// on the server (html/template, so every stored string is escaped) from
// the same store the API reads, with a small embedded style sheet and no
// script, so that it works offline and on a phone.
//
// Pages: the grid's totals (/), farms (/farms, /farms/{id}), nodes with
// filters and keyset paging (/nodes, /nodes/{id} with an uptime chart),
// the version rollout (/versions) and a search (/search). Every page's
// state is in its URL, so links can be shared. The totals and per-version
// and per-farm counts read whole tables; they are computed in the
// background and kept for a short TTL (see statsCache), so that a page
// answers in milliseconds at a million nodes.
//
// The registrar registers Routes on its mux beside the API; a bad query
// parameter is a 400 page saying which, an unknown farm or node a 404
// page.
package explorer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// Store is what the explorer reads: the store methods the API uses, and
// the grid's counts and totals. *store.DB implements it.
type Store interface {
	Farm(ctx context.Context, farmID uint64) (api.Farm, error)
	ListFarms(ctx context.Context, f store.FarmFilter, p store.Page) ([]api.Farm, error)
	CountFarms(ctx context.Context) (uint64, error)
	Node(ctx context.Context, nodeID uint64) (api.Node, error)
	ListNodes(ctx context.Context, f store.NodeFilter, p store.Page) ([]api.Node, error)
	NodeCounts(ctx context.Context, since time.Time) ([]store.NodeCount, error)
	NodeStatus(ctx context.Context, nodeID uint64, limit int) (*api.NodeStatus, []api.NodeStatus, error)
	StatusTotals(ctx context.Context, since time.Time) (store.StatusTotals, error)
	UptimeSessions(ctx context.Context, nodeID uint64, since, until time.Time, limit int) ([]api.UptimeSession, error)
	CurrentZosVersion(ctx context.Context) (api.ZosVersion, error)
	ZosVersionHistory(ctx context.Context, p store.Page) ([]api.ZosVersion, error)
}

// Deps are the explorer's dependencies.
type Deps struct {
	// Store is read for every page. Required.
	Store Store
	// OnlineCutoff is how long after its last report a node counts as
	// online and its status report as current: the registrar's, which
	// stretches with the fleet. Required.
	OnlineCutoff func(ctx context.Context) time.Duration
	// SetLiveness sets a node's Online and Healthy as the API serves
	// them, from LastSeen and StatusAt. Required.
	SetLiveness func(n *api.Node, now time.Time, cutoff time.Duration)
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Logger receives failures (nil: discarded).
	Logger *slog.Logger
	// StatsTTL is how long the grid's counts are served before they are
	// computed again (0: DefaultStatsTTL).
	StatsTTL time.Duration
}

// DefaultStatsTTL is how long the grid's counts and totals are kept: short
// enough that a node coming online shows within a minute, long enough
// that a million-node grid is counted a few times a minute at most.
const DefaultStatsTTL = 30 * time.Second

// Explorer serves the explorer's pages. Create it with New.
type Explorer struct {
	d       Deps
	stats   *statsCache
	pages   map[string]*template.Template
	css     []byte
	cssPath string // /assets/style.css?v=<hash>: cached for good by browsers
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets/style.css
var styleCSS []byte

// pageNames are the templates of the pages, each rendered inside
// layout.html.
var pageNames = []string{"overview", "farms", "farm", "nodes", "node", "versions", "search", "error"}

// New builds an explorer.
func New(d Deps) (*Explorer, error) {
	if d.Store == nil || d.OnlineCutoff == nil || d.SetLiveness == nil {
		return nil, errors.New("explorer: Deps.Store, OnlineCutoff and SetLiveness are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.StatsTTL <= 0 {
		d.StatsTTL = DefaultStatsTTL
	}
	sum := sha256.Sum256(styleCSS)
	e := &Explorer{d: d, pages: map[string]*template.Template{}, css: styleCSS,
		cssPath: "/assets/style.css?v=" + hex.EncodeToString(sum[:6])}
	e.stats = newStatsCache(e.loadStats, d.Now, d.StatsTTL, d.Logger)
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(templateFuncs()).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("explorer: template %s: %w", name, err)
		}
		e.pages[name] = t
	}
	return e, nil
}

// Route is one page of the explorer: a net/http.ServeMux pattern and its
// handler.
type Route struct {
	Pattern string
	Handler http.Handler
	// Asset routes serve embedded files and read no store: the
	// registrar does not rate-limit them.
	Asset bool
}

// Routes lists the explorer's pages. None of them is under the API's
// prefixes, so the API and its JSON 404s are unaffected.
func (e *Explorer) Routes() []Route {
	page := func(pattern string, h pageFunc) Route { return Route{Pattern: pattern, Handler: e.serve(h)} }
	return []Route{
		page("GET /{$}", e.overview),
		page("GET /farms", e.farmList),
		page("GET /farms/{farm_id}", e.farm),
		page("GET /nodes", e.nodeList),
		page("GET /nodes/{node_id}", e.node),
		page("GET /versions", e.versions),
		page("GET /search", e.search),
		{Pattern: "GET /assets/style.css", Handler: http.HandlerFunc(e.serveCSS), Asset: true},
	}
}

// WarmUp computes the grid's counts now, so that the first visitor does
// not wait for them. The registrar calls it when it starts serving.
func (e *Explorer) WarmUp(ctx context.Context) error {
	_, err := e.stats.get(ctx)
	return err
}

// pageFunc renders one page: it returns the template's name and data, or
// an error (a *pageError for the visitor's mistakes).
type pageFunc func(r *http.Request) (name string, data any, err error)

// pageError is a page's refusal: its status and what to tell the visitor.
type pageError struct {
	status int
	msg    string
}

func (e *pageError) Error() string { return e.msg }

// badParam is the 400 of a bad query parameter.
func badParam(name, format string, args ...any) error {
	return &pageError{http.StatusBadRequest, "invalid " + name + ": " + fmt.Sprintf(format, args...)}
}

// notFound is the 404 of an unknown farm or node.
func notFound(format string, args ...any) error {
	return &pageError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

// redirect is a page's answer that sends the visitor elsewhere (search).
type redirect struct{ to string }

func (r redirect) Error() string { return "redirect to " + r.to }

// layout is what every page's layout reads beside the page's own data.
type layout struct {
	Title   string
	Nav     string // the section highlighted in the navigation
	Query   string // the search box's text
	CSSPath string
	Now     time.Time
	Page    any
}

// titled is implemented by page data that names the page and its
// section.
type titled interface{ title() (title, nav string) }

// serve renders a page into a buffer and writes it: a template failure is
// a clean 500, never half a page.
func (e *Explorer) serve(h pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := http.StatusOK
		name, data, err := h(r)
		var rd redirect
		if errors.As(err, &rd) {
			http.Redirect(w, r, rd.to, http.StatusFound)
			return
		}
		if err != nil {
			status, name, data = e.failure(r, err)
		}
		l := layout{CSSPath: e.cssPath, Now: e.d.Now().UTC(), Page: data, Query: r.URL.Query().Get("q")}
		if t, ok := data.(titled); ok {
			l.Title, l.Nav = t.title()
		}
		var buf bytes.Buffer
		if err := e.pages[name].ExecuteTemplate(&buf, "layout", l); err != nil {
			e.d.Logger.Error("explorer: rendering a page", "page", name, "path", r.URL.Path, "error", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		hd := w.Header()
		hd.Set("Content-Type", "text/html; charset=utf-8")
		hd.Set("Cache-Control", "no-cache")
		hd.Set("X-Content-Type-Options", "nosniff")
		// No script, no frames, nothing from elsewhere: the page works
		// offline and a string that escaped escaping could not run.
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		w.WriteHeader(status)
		_, _ = w.Write(buf.Bytes())
	})
}

// errorPage is the data of the error page.
type errorPage struct {
	Status  int
	Heading string
	Message string
}

func (p errorPage) title() (string, string) { return p.Heading, "" }

// failure turns a page's error into the error page: the visitor's
// mistakes with their message, anything else a 500 (logged, not shown).
func (e *Explorer) failure(r *http.Request, err error) (int, string, any) {
	var pe *pageError
	switch {
	case errors.As(err, &pe):
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		pe = &pageError{499, "request canceled"}
	default:
		e.d.Logger.Error("explorer: page failed", "path", r.URL.Path, "error", err)
		pe = &pageError{http.StatusInternalServerError, "The registrar could not answer this page; the error is in its log."}
	}
	heading := map[int]string{http.StatusBadRequest: "Bad request", http.StatusNotFound: "Not found"}[pe.status]
	if heading == "" {
		heading = http.StatusText(pe.status)
	}
	return pe.status, "error", errorPage{Status: pe.status, Heading: heading, Message: pe.msg}
}

// serveCSS serves the style sheet; its URL carries its hash, so browsers
// keep it.
func (e *Explorer) serveCSS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	_, _ = w.Write(e.css)
}
