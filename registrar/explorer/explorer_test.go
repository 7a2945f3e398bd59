package explorer_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/grid4/grid4/store/storetest"
)

// get fetches path from the grid's registrar without following
// redirects.
func (g *grid) get(t *testing.T, path string) (int, http.Header, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(g.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// page fetches an HTML page that must answer want and contain each of
// wants, and none of unwanted.
func (g *grid) page(t *testing.T, path string, want int, wants []string, unwanted ...string) string {
	t.Helper()
	status, h, body := g.get(t, path)
	if status != want {
		t.Fatalf("GET %s: %d, want %d\n%s", path, status, want, body)
	}
	if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	for _, s := range wants {
		if !strings.Contains(body, s) {
			t.Errorf("GET %s lacks %q", path, s)
		}
	}
	for _, s := range unwanted {
		if strings.Contains(body, s) {
			t.Errorf("GET %s has %q", path, s)
		}
	}
	return body
}

// TestPages loads every page on both stores and checks what a visitor
// looks for on each.
func TestPages(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			g := newGrid(t, backend)
			id := func(v uint64) string { return fmt.Sprint(v) }
			g.page(t, "/", 200, []string{
				`id="total-farms">3</span>`, `<span id="nodes-online">3</span> / <span id="nodes-total">5</span>`,
				`<span class="value" id="nodes-approved">1</span>`, `<span class="value" id="nodes-healthy">1</span>`,
				`of 2 reporting`, `id="current-version">v4.1.0<`, "test farms only",
				// capacity: 2 reports of 16 cores, 12 used; memory 2 × 64 GiB, 48 GiB used
				`<td>CPU (logical cores)</td><td class="num">32</td><td class="num">12</td><td class="num">20</td>`,
				`<td>Memory</td><td class="num">128 GiB</td><td class="num">48.0 GiB</td><td class="num">80.0 GiB</td>`,
				`href="/nodes?version=v4.0.0">v4.0.0</a>`, `<meta name="viewport"`,
			})
			g.page(t, "/farms", 200, []string{"AlphaFarm", "BetaFarm", `<span class="pill test">test farm</span>`,
				`<a href="/nodes?farm=` + id(g.alpha.FarmID) + `">3</a>`})
			g.page(t, "/farms?name=bet", 200, []string{"BetaFarm"}, "AlphaFarm")
			g.page(t, "/farms/"+id(g.alpha.FarmID), 200, []string{`<span id="farm-name">AlphaFarm</span>`,
				`id="farm-nodes">3<`, `id="node-` + id(g.good) + `"`, `id="node-` + id(g.silent) + `"`, "waits: v4.1.0 is for test farms only"})
			g.page(t, "/farms/"+id(g.beta.FarmID), 200, []string{"upgrades to v4.1.0 first (test farm)"})

			// The node list and its filters.
			g.page(t, "/nodes", 200, []string{`id="node-` + id(g.good) + `"`, `id="node-` + id(g.bn) + `"`})
			for _, c := range []struct {
				query string
				want  []uint64
			}{
				{"farm=" + id(g.alpha.FarmID), []uint64{g.good, g.sick, g.silent}},
				{"online=true", []uint64{g.good, g.sick, g.evilNode}},
				{"online=false", []uint64{g.silent, g.bn}},
				{"approved=true", []uint64{g.good}},
				{"healthy=true", []uint64{g.good}},
				{"healthy=false", []uint64{g.sick}},
				{"country=Egypt", []uint64{g.sick}},
				{"version=v4.1.0", []uint64{g.good, g.bn}},
				{"version=v4.0.0&online=true&farm=" + id(g.alpha.FarmID), []uint64{g.sick}},
				{"country=Narnia", nil},
			} {
				body := g.page(t, "/nodes?"+c.query, 200, nil)
				var got []uint64
				for _, n := range []uint64{g.good, g.sick, g.silent, g.bn, g.evilNode} {
					if strings.Contains(body, `id="node-`+id(n)+`"`) {
						got = append(got, n)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(c.want) {
					t.Errorf("/nodes?%s lists %v, want %v", c.query, got, c.want)
				}
			}
			// Keyset pages of two.
			body := g.page(t, "/nodes?size=2", 200, []string{`id="next-page"`})
			if !strings.Contains(body, `href="/nodes?after=`+id(g.sick)+`&amp;size=2"`) {
				t.Errorf("first page of two: no link to the next page after node %d", g.sick)
			}
			g.page(t, "/nodes?size=2&after="+id(g.sick), 200, []string{`id="node-` + id(g.silent) + `"`, `id="node-` + id(g.bn) + `"`, "first page"},
				`id="node-`+id(g.good)+`"`)

			g.page(t, "/nodes/"+id(g.good), 200, []string{"Node " + id(g.good), `id="node-online">online<`, "AlphaFarm",
				`id="uptime-chart"`, "<svg", `<rect x="580"`, "2 boot sessions", "Ghent, Belgium", "52:54:00:12:34:56",
				`<td>Memory</td><td class="num">64.0 GiB</td><td class="num">16.0 GiB</td><td class="num">48.0 GiB</td>`})
			g.page(t, "/nodes/"+id(g.sick)+"?days=7", 200, []string{"check disks: pool degraded", "Uptime, last 7 days", "unhealthy"})
			g.page(t, "/nodes/"+id(g.silent), 200, []string{"The node has sent no status report", "never"})
			g.page(t, "/versions", 200, []string{`id="approved-version">v4.1.0<`, `id="safe-to-upgrade">no<`,
				`href="/farms/` + id(g.beta.FarmID) + `">BetaFarm</a>`, `id="version-history"`, "<td>v4.0.0</td>",
				`v4.1.0</a> <span class="pill ok">approved</span>`})

			// Search: a farm by part of its name, a node by id and by twin.
			status, h, _ := g.get(t, "/search?q=alpha")
			if status != http.StatusFound || h.Get("Location") != "/farms/"+id(g.alpha.FarmID) {
				t.Errorf("search alpha: %d to %q", status, h.Get("Location"))
			}
			g.page(t, "/search?q=farm", 200, []string{"AlphaFarm", "BetaFarm", "EvilFarm"})
			g.page(t, "/search?q=nothinglikeit", 200, []string{`id="no-results"`})
			g.page(t, "/search?q="+id(g.good), 200, []string{`href="/nodes/` + id(g.good) + `"`})
		})
	}
}

// TestEscaping: text a farmer or a node wrote is shown, never run.
func TestEscaping(t *testing.T) {
	t.Parallel()
	g := newGrid(t, storetest.SQLite)
	id := fmt.Sprint(g.evilNode)
	g.page(t, "/nodes/"+id, 200, []string{`&lt;script&gt;alert(&#34;city&#34;)&lt;/script&gt;`, `Evil&lt;b&gt;land&lt;/b&gt;`},
		evilCity, evilCountry)
	g.page(t, "/nodes?online=true", 200, []string{`Evil&lt;b&gt;land&lt;/b&gt;`}, evilCountry)
	g.page(t, "/nodes?country=%3Cb%3E", 200, []string{`value="&lt;b&gt;"`}, `value="<b>"`)
	g.page(t, "/search?q=%3Cscript%3E", 200, []string{`&lt;script&gt;`}, `<script>`)
	_, h, _ := g.get(t, "/")
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}

// TestBadRequests: a bad parameter is a 400 page naming it, an unknown
// farm or node a 404 page, and the API's errors stay JSON.
func TestBadRequests(t *testing.T) {
	t.Parallel()
	g := newGrid(t, storetest.SQLite)
	for _, c := range []struct {
		path   string
		status int
		msg    string
	}{
		{"/nodes?farm=abc", 400, "invalid farm: &#34;abc&#34; is not an id"},
		{"/nodes?farm=0", 400, "invalid farm"},
		{"/nodes?online=maybe", 400, "invalid online: &#34;maybe&#34;: want true or false"},
		{"/nodes?approved=2", 400, "invalid approved"},
		{"/nodes?healthy=x", 400, "invalid healthy"},
		{"/nodes?size=1000", 400, "invalid size: &#34;1000&#34;: want a number from 1 to 100"},
		{"/nodes?after=-1", 400, "invalid after"},
		{"/nodes?country=" + strings.Repeat("x", 200), 400, "invalid country: want at most 128 bytes"},
		{"/nodes?version=%00", 400, "invalid version"},
		{"/farms?page=0", 400, "invalid page"},
		{"/versions?page=x", 400, "invalid page"},
		{"/nodes/abc", 400, "invalid node id &#34;abc&#34;"},
		{"/nodes/99999999999999999999", 400, "invalid node id"},
		{"/nodes/1?days=365", 400, "invalid days"},
		{"/farms/0", 400, "invalid farm id"},
		{"/nodes/424242", 404, "There is no node 424242."},
		{"/farms/424242", 404, "There is no farm 424242."},
		{"/search?q=%ff", 400, "invalid q"},
	} {
		g.page(t, c.path, c.status, []string{`id="error-message">` + c.msg})
	}
	for _, path := range []string{"/api/v1/nodes/424242", "/v1/farms/abc", "/nothing-here", "/nodes/1/nothing"} {
		_, h, body := g.get(t, path)
		if ct := h.Get("Content-Type"); ct != "application/json" || !strings.HasPrefix(body, `{"error":`) {
			t.Errorf("GET %s: %s %q, want a JSON error", path, ct, body)
		}
	}
	status, h, _ := g.get(t, "/assets/style.css")
	if status != 200 || h.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("style sheet: %d %s", status, h.Get("Content-Type"))
	}
}
