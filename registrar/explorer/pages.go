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

// overviewPage is the data of /.
type overviewPage struct {
	Stats   *gridStats
	TTL     time.Duration   // how long counts are kept
	Current *api.ZosVersion // nil before a version is set
}

func (overviewPage) title() (string, string) { return "Grid", "overview" }

// overview is /: the grid's totals.
func (e *Explorer) overview(r *http.Request) (string, any, error) {
	st, cur, err := e.statsAndVersion(r)
	if err != nil {
		return "", nil, err
	}
	return "overview", overviewPage{Stats: st, TTL: e.d.StatsTTL, Current: cur}, nil
}

// statsAndVersion are the grid's counts and the approved version (nil when
// none was set), which the overview and the farm pages show.
func (e *Explorer) statsAndVersion(r *http.Request) (*gridStats, *api.ZosVersion, error) {
	st, err := e.stats.get(r.Context())
	if err != nil {
		return nil, nil, err
	}
	cur, err := e.currentVersion(r)
	if err != nil {
		return nil, nil, err
	}
	return st, cur, nil
}

// currentVersion is the approved version, nil when none was set.
func (e *Explorer) currentVersion(r *http.Request) (*api.ZosVersion, error) {
	v, err := e.d.Store.CurrentZosVersion(r.Context())
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// farmRow is one farm of a list, with its node counts.
type farmRow struct {
	api.Farm
	Tally nodeTally
	Test  bool // one of the current version's test farms
}

// farmsPage is the data of /farms.
type farmsPage struct {
	Name  string
	Rows  []farmRow
	Page  uint64
	Size  uint64
	Prev  string // links to the neighbouring pages ("" when none)
	Next  string
	Total uint64
}

func (farmsPage) title() (string, string) { return "Farms", "farms" }

// farmPageSize is the size of the farm list's pages.
const farmPageSize = 50

// farmList is /farms: farms by id, optionally those whose name contains
// name, by page.
func (e *Explorer) farmList(r *http.Request) (string, any, error) {
	q := r.URL.Query()
	p := params{q: q}
	name := p.text("name")
	page := p.number("page", 1, maxID/farmPageSize, 1)
	if p.err != nil {
		return "", nil, p.err
	}
	farms, err := e.d.Store.ListFarms(r.Context(), store.FarmFilter{NameContains: name}, store.Page{Number: page, Size: farmPageSize})
	if err != nil {
		return "", nil, err
	}
	st, cur, err := e.statsAndVersion(r)
	if err != nil {
		return "", nil, err
	}
	test := testFarms(cur)
	out := farmsPage{Name: name, Page: page, Size: farmPageSize, Total: st.Farms}
	for _, f := range farms {
		out.Rows = append(out.Rows, farmRow{Farm: f, Tally: st.farm(f.FarmID), Test: test[f.FarmID]})
	}
	link := func(n uint64) string {
		v := url.Values{}
		if name != "" {
			v.Set("name", name)
		}
		if n > 1 {
			v.Set("page", strconv.FormatUint(n, 10))
		}
		return "/farms?" + v.Encode()
	}
	if page > 1 {
		out.Prev = link(page - 1)
	}
	if len(farms) == farmPageSize {
		out.Next = link(page + 1)
	}
	return "farms", out, nil
}

// testFarms is the set of the test farms of cur, the current version (none
// when nil).
func testFarms(cur *api.ZosVersion) map[uint64]bool {
	if cur == nil {
		return nil
	}
	m := make(map[uint64]bool, len(cur.TestFarms))
	for _, id := range cur.TestFarms {
		m[id] = true
	}
	return m
}

// farmPage is the data of /farms/{id}.
type farmPage struct {
	Farm    api.Farm
	Tally   nodeTally
	Test    bool
	Current *api.ZosVersion
	Nodes   nodeRows
	More    string // the farm's full node list, when there are more
	Counted time.Time
}

func (p farmPage) title() (string, string) { return "Farm " + p.Farm.FarmName, "farms" }

// farmNodes is how many of its nodes a farm's page lists.
const farmNodes = 20

// farm is /farms/{id}.
func (e *Explorer) farm(r *http.Request) (string, any, error) {
	id, err := pathID(r, "farm_id", "farm")
	if err != nil {
		return "", nil, err
	}
	f, err := e.d.Store.Farm(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil, notFound("There is no farm %d.", id)
	}
	if err != nil {
		return "", nil, err
	}
	st, cur, err := e.statsAndVersion(r)
	if err != nil {
		return "", nil, err
	}
	rows, err := e.listNodes(r, store.NodeFilter{FarmID: id}, farmNodes)
	if err != nil {
		return "", nil, err
	}
	p := farmPage{Farm: f, Tally: st.farm(id), Test: testFarms(cur)[id], Current: cur, Nodes: rows, Counted: st.At}
	if len(rows.Nodes) == farmNodes {
		p.More = "/nodes?farm=" + strconv.FormatUint(id, 10)
	}
	return "farm", p, nil
}

// pathID reads the id in a page's path; what names it in the message.
func pathID(r *http.Request, name, what string) (uint64, error) {
	v := r.PathValue(name)
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 || n > maxID {
		return 0, &pageError{http.StatusBadRequest, "invalid " + what + " id " + strconv.Quote(clip(v)) + ": want a number from 1 to " + strconv.FormatUint(maxID, 10)}
	}
	return n, nil
}

// nodeRows are nodes as listed, with the time their liveness was judged.
type nodeRows struct {
	Nodes []api.Node
	Now   time.Time
}

// listNodes reads a page of nodes through the store's list and marks
// them online and healthy as the API does.
func (e *Explorer) listNodes(r *http.Request, f store.NodeFilter, size uint64) (nodeRows, error) {
	nodes, err := e.d.Store.ListNodes(r.Context(), f, store.Page{Size: size})
	if err != nil {
		return nodeRows{}, err
	}
	now, cutoff := e.d.Now(), e.d.OnlineCutoff(r.Context())
	for i := range nodes {
		e.d.SetLiveness(&nodes[i], now, cutoff)
	}
	return nodeRows{Nodes: nodes, Now: now}, nil
}
