package explorer

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// nodeFilters are the filters of /nodes, as given (for the form and the
// links).
type nodeFilters struct {
	Farm                      uint64
	Online, Approved, Healthy string // "", "true" or "false"
	Country, Version          string
}

// nodesPage is the data of /nodes.
type nodesPage struct {
	Filters  nodeFilters
	Rows     nodeRows
	Size     uint64
	First    string // the first page, when this is not it
	Next     string // the next page, when this one is full
	Farm     *api.Farm
	Versions []versionTally
}

func (nodesPage) title() (string, string) { return "Nodes", "nodes" }

// Page sizes of the node list.
const (
	defaultNodePage = 50
	maxNodePage     = 100
)

// nodeList is /nodes: the nodes matching the filters farm, online,
// approved, healthy, country and version, in id order, a page at a
// time by keyset (after: the last id of the previous page), as GET
// /nodes pages.
func (e *Explorer) nodeList(r *http.Request) (string, any, error) {
	q := r.URL.Query()
	p := params{q: q}
	fl := nodeFilters{Farm: p.id("farm"), Country: p.text("country"), Version: p.text("version")}
	after := p.id("after")
	size := p.number("size", 1, maxNodePage, defaultNodePage)
	online, approved, healthy := p.boolean("online"), p.boolean("approved"), p.boolean("healthy")
	if p.err != nil {
		return "", nil, p.err
	}
	f := store.NodeFilter{FarmID: fl.Farm, AfterNodeID: after, Approved: approved, Country: fl.Country, Version: fl.Version}
	now, cutoff := e.d.Now(), e.d.OnlineCutoff(r.Context())
	since := now.Add(-cutoff)
	if online != nil {
		fl.Online = strconv.FormatBool(*online)
		if *online {
			f.SeenSince = &since
		} else {
			f.NotSeenSince = &since
		}
	}
	if approved != nil {
		fl.Approved = strconv.FormatBool(*approved)
	}
	if healthy != nil {
		fl.Healthy = strconv.FormatBool(*healthy)
		f.Health, f.StatusSince = store.HealthUnhealthy, since
		if *healthy {
			f.Health = store.HealthHealthy
		}
	}
	rows, err := e.listNodes(r, f, size)
	if err != nil {
		return "", nil, err
	}
	out := nodesPage{Filters: fl, Rows: rows, Size: size}
	if fl.Farm != 0 {
		farm, err := e.d.Store.Farm(r.Context(), fl.Farm)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", nil, err
		}
		if err == nil {
			out.Farm = &farm
		}
	}
	if st, err := e.stats.get(r.Context()); err == nil {
		out.Versions = st.Versions
	} else {
		return "", nil, err
	}
	link := func(after uint64) string {
		v := url.Values{}
		for k, vs := range q {
			if k != "after" {
				v[k] = vs
			}
		}
		if after != 0 {
			v.Set("after", strconv.FormatUint(after, 10))
		}
		return "/nodes?" + v.Encode()
	}
	if after != 0 {
		out.First = link(0)
	}
	if n := len(rows.Nodes); uint64(n) == size {
		out.Next = link(rows.Nodes[n-1].NodeID)
	}
	return "nodes", out, nil
}

// nodePage is the data of /nodes/{id}.
type nodePage struct {
	Node    api.Node
	Farm    *api.Farm // nil if it could not be read
	Status  *api.NodeStatus
	Stale   bool // the latest status is too old to count
	History []api.NodeStatus
	Chart   uptimeChart
	Now     time.Time
	Cutoff  time.Duration
	Current *api.ZosVersion
}

func (p nodePage) title() (string, string) {
	return "Node " + strconv.FormatUint(p.Node.NodeID, 10), "nodes"
}

// maxChartDays bounds the days of the uptime chart (the default uptime
// retention is 90 days).
const maxChartDays = 90

// node is /nodes/{id}: a node with its latest status and its uptime over
// the last days (30, or the days parameter).
func (e *Explorer) node(r *http.Request) (string, any, error) {
	id, err := pathID(r, "node_id", "node")
	if err != nil {
		return "", nil, err
	}
	p := params{q: r.URL.Query()}
	days := p.number("days", 1, maxChartDays, 30)
	if p.err != nil {
		return "", nil, p.err
	}
	ctx := r.Context()
	n, err := e.d.Store.Node(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil, notFound("There is no node %d.", id)
	}
	if err != nil {
		return "", nil, err
	}
	now, cutoff := e.d.Now(), e.d.OnlineCutoff(ctx)
	e.d.SetLiveness(&n, now, cutoff)
	out := nodePage{Node: n, Now: now, Cutoff: cutoff}
	if f, err := e.d.Store.Farm(ctx, n.FarmID); err == nil {
		out.Farm = &f
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", nil, err
	}
	out.Status, out.History, err = e.d.Store.NodeStatus(ctx, id, store.StatusHistoryLen)
	if err != nil {
		return "", nil, err
	}
	out.Stale = out.Status != nil && now.Sub(out.Status.ReportedAt) >= cutoff
	from := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, 1-int(days))
	sessions, err := e.d.Store.UptimeSessions(ctx, id, from, time.Time{}, 0)
	if err != nil {
		return "", nil, err
	}
	out.Chart = newUptimeChart(sessions, int(days), now, n.CreatedAt)
	if out.Current, err = e.currentVersion(r); err != nil {
		return "", nil, err
	}
	return "node", out, nil
}

// versionsPage is the data of /versions.
type versionsPage struct {
	Current *api.ZosVersion
	// TestFarms are the current version's first test farms, by name.
	TestFarms []api.Farm
	Stats     *gridStats
	History   []api.ZosVersion
	Page      uint64
	Prev      string
	Next      string
	Upgraded  nodeTally // nodes on the current version
}

func (versionsPage) title() (string, string) { return "Versions", "versions" }

// maxNamedTestFarms bounds the test farms the versions page looks up by
// name (the others are listed by id).
const maxNamedTestFarms = 50

// historyPageSize is the size of the version history's pages.
const historyPageSize = 20

// versions is /versions: the approved version and its rollout (nodes per
// running version, test farms, safe_to_upgrade) and the history of
// approved versions.
func (e *Explorer) versions(r *http.Request) (string, any, error) {
	p := params{q: r.URL.Query()}
	page := p.number("page", 1, maxID/historyPageSize, 1)
	if p.err != nil {
		return "", nil, p.err
	}
	cur, err := e.currentVersion(r)
	if err != nil {
		return "", nil, err
	}
	st, err := e.stats.get(r.Context())
	if err != nil {
		return "", nil, err
	}
	hist, err := e.d.Store.ZosVersionHistory(r.Context(), store.Page{Number: page, Size: historyPageSize})
	if err != nil {
		return "", nil, err
	}
	out := versionsPage{Current: cur, Stats: st, History: hist, Page: page}
	if cur != nil {
		for _, id := range cur.TestFarms[:min(len(cur.TestFarms), maxNamedTestFarms)] {
			f, err := e.d.Store.Farm(r.Context(), id)
			if errors.Is(err, store.ErrNotFound) {
				f = api.Farm{FarmID: id}
			} else if err != nil {
				return "", nil, err
			}
			out.TestFarms = append(out.TestFarms, f)
		}
		for _, v := range st.Versions {
			if v.Version == cur.Version {
				out.Upgraded = v.nodeTally
			}
		}
	}
	if page > 1 {
		out.Prev = "/versions?page=" + strconv.FormatUint(page-1, 10)
	}
	if len(hist) == historyPageSize {
		out.Next = "/versions?page=" + strconv.FormatUint(page+1, 10)
	}
	return "versions", out, nil
}

// searchPage is the data of /search.
type searchPage struct {
	Q     string
	Nodes []searchHit
	Farms []api.Farm
}

// searchHit is a node found, and why.
type searchHit struct {
	Node api.Node
	Why  string
}

func (searchPage) title() (string, string) { return "Search", "" }

// searchFarms bounds the farms a search lists.
const searchFarms = 50

// search is /search?q=: a number is looked up as a node id, a twin id
// (its node) and a farm id; any text as part of farm names. A single hit
// redirects to its page.
func (e *Explorer) search(r *http.Request) (string, any, error) {
	p := params{q: r.URL.Query()}
	q := p.text("q")
	if p.err != nil {
		return "", nil, p.err
	}
	out := searchPage{Q: q}
	if q == "" {
		return "search", out, nil
	}
	ctx := r.Context()
	if id, err := strconv.ParseUint(q, 10, 64); err == nil && id > 0 && id <= maxID {
		if n, err := e.d.Store.Node(ctx, id); err == nil {
			out.Nodes = append(out.Nodes, searchHit{n, "node id"})
		} else if !errors.Is(err, store.ErrNotFound) {
			return "", nil, err
		}
		ns, err := e.d.Store.ListNodes(ctx, store.NodeFilter{TwinID: id}, store.Page{Size: 1})
		if err != nil {
			return "", nil, err
		}
		for _, n := range ns {
			out.Nodes = append(out.Nodes, searchHit{n, "twin id"})
		}
		if f, err := e.d.Store.Farm(ctx, id); err == nil {
			out.Farms = append(out.Farms, f)
		} else if !errors.Is(err, store.ErrNotFound) {
			return "", nil, err
		}
	}
	farms, err := e.d.Store.ListFarms(ctx, store.FarmFilter{NameContains: q}, store.Page{Size: searchFarms})
	if err != nil {
		return "", nil, err
	}
	for _, f := range farms {
		if len(out.Farms) == 0 || out.Farms[0].FarmID != f.FarmID {
			out.Farms = append(out.Farms, f)
		}
	}
	switch {
	case len(out.Nodes) == 1 && len(out.Farms) == 0:
		return "", nil, redirect{"/nodes/" + strconv.FormatUint(out.Nodes[0].Node.NodeID, 10)}
	case len(out.Nodes) == 0 && len(out.Farms) == 1:
		return "", nil, redirect{"/farms/" + strconv.FormatUint(out.Farms[0].FarmID, 10)}
	}
	return "search", out, nil
}
