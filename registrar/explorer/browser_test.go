package explorer_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/grid4/grid4/store/storetest"
)

// browserTimeout bounds the whole browser test.
const browserTimeout = 60 * time.Second

// chromium finds the browser: GRID4_CHROMIUM, else Debian's chromium on
// the PATH (make test installs it, see scripts/test-services.sh).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("GRID4_CHROMIUM"); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("GRID4_CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found on PATH: run `make test` (scripts/test-services.sh installs Debian's chromium) or set GRID4_CHROMIUM to a Chromium binary")
	return ""
}

// artifacts is the directory screenshots go to: $GRID4_TEST_ARTIFACTS/
// explorer when that is set (kept after the test), else a temporary one.
func artifacts(t *testing.T) string {
	t.Helper()
	base := os.Getenv("GRID4_TEST_ARTIFACTS")
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, "explorer")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBrowser drives the explorer in headless Chromium against a
// registrar with a small grid: each page is loaded and checked for what a
// person looks for (the totals, a node's row, a filter narrowing the
// list, the node's uptime chart, a farm found by name), on a desktop
// window and on a phone's, with a screenshot of each kept.
func TestBrowser(t *testing.T) {
	exe := chromium(t)
	g := newGrid(t, storetest.SQLite)
	shots := artifacts(t)
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	// Headless and the rest of chromedp's defaults; no sandbox, as tests
	// may run as root (Chromium refuses its sandbox there).
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(ctx)
	defer cancelTab()
	b := &browser{t: t, ctx: ctx, url: g.url, shots: shots}
	id := func(v uint64) string { return fmt.Sprint(v) }

	// The grid's totals.
	b.open("/", "#totals")
	b.wantText("#nodes-total", "5")
	b.wantText("#nodes-online", "3")
	b.wantText("#total-farms", "3")
	b.wantText("#current-version", "v4.1.0")
	b.shot("overview")

	// The node list, then a filter chosen in its form.
	b.open("/nodes", "#node-table")
	b.wantCount("#node-table tbody tr", 5)
	b.wantText("#node-"+id(g.sick)+" td:nth-child(6)", "v4.0.0")
	b.shot("nodes")
	b.do(chromedp.SetValue(chromedp.CSS(`select[name="online"]`), "false"),
		chromedp.SetValue(chromedp.CSS(`input[name="country"]`), "Belgium"))
	b.submit(chromedp.CSS("#node-filters button"), "online=false")
	b.wantCount("#node-table tbody tr", 2)
	b.wantCount("#node-"+id(g.silent), 1)
	b.wantCount("#node-"+id(g.bn), 1)
	b.shot("nodes-offline-in-belgium")

	// A node's page and its uptime chart: one bar a day, drawn on the
	// 3 or 4 days (depending on the time of day) of its two sessions.
	b.open("/nodes/"+id(g.good), "#uptime-chart")
	b.wantCount("#uptime-chart svg rect", 30)
	if n := b.count("#uptime-chart svg rect.up, #uptime-chart svg rect.partial"); n < 3 || n > 5 {
		t.Errorf("the uptime chart has %d days up, want 3 to 5", n)
	}
	b.wantText("#node-online", "online")
	b.shot("node")

	b.open("/farms", "#farm-table")
	b.wantCount("#farm-table tbody tr", 3)
	b.shot("farms")
	b.open("/farms/"+id(g.alpha.FarmID), "#farm-name")
	b.wantText("#farm-nodes", "3")
	b.shot("farm")
	b.open("/versions", "#versions")
	b.wantText("#approved-version", "v4.1.0")
	b.wantText("#safe-to-upgrade", "no")
	b.wantCount(`#test-farms a[href="/farms/`+id(g.beta.FarmID)+`"]`, 1)
	b.shot("versions")

	// The search box finds a farm by part of its name.
	b.open("/", "#totals")
	b.do(chromedp.SetValue(chromedp.CSS(`input[name="q"]`), "beta"))
	b.submit(chromedp.CSS(`input[name="q"]`), "/farms/"+id(g.beta.FarmID))
	b.wantText("#farm-name", "BetaFarm")
	b.shot("search-beta")

	b.open("/nodes?online=maybe", "#error-message")
	b.wantText("#error-message", `invalid online: "maybe": want true or false`)
	b.shot("bad-request")

	// On a phone: the page is no wider than the screen (wide tables
	// scroll within their box).
	b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	for _, page := range []struct{ path, sel, name string }{
		{"/", "#totals", "phone-overview"},
		{"/nodes", "#node-table", "phone-nodes"},
		{"/nodes/" + id(g.good), "#uptime-chart", "phone-node"},
	} {
		b.open(page.path, page.sel)
		if w, err := chromedp.Run(ctx, chromedp.Evaluate[int]("document.documentElement.scrollWidth")); err != nil || w > 390 {
			t.Errorf("%s on a phone: page %d px wide (%v), want at most 390", page.path, w, err)
		}
		b.shot(page.name)
	}
	t.Logf("screenshots in %s", shots)
}

// browser is one tab of the test's Chromium on the test's registrar.
type browser struct {
	t     *testing.T
	ctx   context.Context
	url   string
	shots string
}

// do runs actions, failing the test on an error.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// open loads path and waits until sel is visible.
func (b *browser) open(path, sel string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.url+path), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// submit submits the form of sel, waits for the page it leads to and
// checks that its address contains s.
func (b *browser) submit(sel chromedp.CSS, s string) {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Submit(sel))
	if err != nil {
		b.t.Fatalf("browser: submitting %s: %v", sel, err)
	}
	if resp.Status != 200 || !strings.Contains(resp.URL, s) {
		b.t.Fatalf("browser: the form of %s led to %s (%d), want an address with %q", sel, resp.URL, resp.Status, s)
	}
}

// wantText checks the text of the first element matching sel.
func (b *browser) wantText(sel, want string) {
	b.t.Helper()
	got, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("browser: text of %s: %v", sel, err)
	}
	if strings.TrimSpace(got) != want {
		b.t.Errorf("%s reads %q, want %q", sel, got, want)
	}
}

// count counts the elements matching sel.
func (b *browser) count(sel string) int {
	b.t.Helper()
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
	if err != nil {
		b.t.Fatalf("browser: counting %s: %v", sel, err)
	}
	return n
}

// wantCount checks how many elements match sel.
func (b *browser) wantCount(sel string, want int) {
	b.t.Helper()
	if n := b.count(sel); n != want {
		b.t.Errorf("%d elements match %s, want %d", n, sel, want)
	}
}

// shot saves a screenshot of the whole page as name.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}
