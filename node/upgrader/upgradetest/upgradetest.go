// Package upgradetest runs, for tests, what an upgrade needs around a
// node: a real hub (package hub, on loopback) with a publisher "tf", and a
// real registrar (package registrar on SQLite, on loopback) whose admin
// sets the ZOS version. It publishes releases the way `gridctl hub
// publish` and `gridctl hub tag` do, and sets versions the way `gridctl
// version set` does.
package upgradetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/hub"
	hubclient "github.com/grid4/grid4/hub/client"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/registrar"
	"github.com/grid4/grid4/registrar/api"
	regclient "github.com/grid4/grid4/registrar/client"
	"github.com/grid4/grid4/store"
)

// Publisher and Repo are where releases are published.
const (
	Publisher = "tf"
	Repo      = "zos"
)

// Grid is a hub and a registrar for one test.
type Grid struct {
	// HubURL and RegistrarURL are their base URLs.
	HubURL, RegistrarURL string
	// HubDir is the hub's data directory (tests damage it).
	HubDir string
	// PublisherKey is the publisher's public key, what nodes trust.
	PublisherKey []byte

	publisher keys.KeyPair
	pub       *hubclient.Client
	admin     *regclient.Client
	hubProxy  *Proxy
}

// Start starts a hub and a registrar, stopped when the test ends.
func Start(t testing.TB) *Grid {
	t.Helper()
	ctx := context.Background()
	kp, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	g := &Grid{HubDir: filepath.Join(t.TempDir(), "hub"), PublisherKey: kp.Public().Key, publisher: kp}
	hcfg := hub.DefaultConfig()
	hcfg.DataDir = g.HubDir
	hcfg.Publishers = []hub.Publisher{{Name: Publisher, ID: hub.PublisherID(Publisher), PublicKey: kp.Public().Key}}
	srv, err := hub.New(hcfg, hub.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	g.hubProxy = &Proxy{next: srv.Handler()}
	hs := httptest.NewServer(g.hubProxy)
	t.Cleanup(hs.Close)
	g.HubURL = hs.URL
	anon, err := hubclient.New(hs.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g.pub, err = anon.AsPublisher(ctx, Publisher, kp); err != nil {
		t.Fatal(err)
	}

	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "registrar.db"))
	if err != nil {
		t.Fatalf("registrar store: %v", err)
	}
	rcfg := registrar.DefaultConfig()
	rcfg.Listen = "127.0.0.1:0"
	// The admin's account is the first one made: twin 1.
	rcfg.AdminTwins = []uint64{1}
	rs, err := registrar.New(rcfg, registrar.Deps{Store: db})
	if err != nil {
		t.Fatalf("registrar: %v", err)
	}
	ts := httptest.NewServer(rs.Handler())
	t.Cleanup(func() {
		ts.Close()
		db.Close()
	})
	g.RegistrarURL = ts.URL
	admin, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	if g.admin, err = regclient.New(ts.URL, regclient.WithIdentity(admin, 0)); err != nil {
		t.Fatal(err)
	}
	acc, err := g.admin.EnsureAccount(ctx, regclient.AccountOptions{})
	if err != nil || acc.TwinID != 1 {
		t.Fatalf("admin account: twin %d, %v (want twin 1)", acc.TwinID, err)
	}
	return g
}

// Hub returns the proxy in front of the hub, to count or falsify what it
// serves.
func (g *Grid) Hub() *Proxy { return g.hubProxy }

// Registrar returns an unsigned client of the registrar.
func (g *Grid) Registrar(t testing.TB) *regclient.Client {
	t.Helper()
	c, err := regclient.New(g.RegistrarURL, regclient.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}),
		regclient.WithRetry(regclient.RetryPolicy{MaxAttempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Farm creates a farmer and a farm, and returns the farm's id.
func (g *Grid) Farm(t testing.TB) uint64 {
	t.Helper()
	kp, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	c, err := regclient.New(g.RegistrarURL, regclient.WithIdentity(kp, 0))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.EnsureAccount(ctx, regclient.AccountOptions{}); err != nil {
		t.Fatalf("farmer account: %v", err)
	}
	id, err := c.CreateFarm(ctx, regclient.NewFarm{Name: "farm" + rand.Text()[:10]})
	if err != nil {
		t.Fatalf("farm: %v", err)
	}
	return id
}

// SetVersion sets the registrar's version (as `gridctl version set`) and
// returns the record with its serial.
func (g *Grid) SetVersion(t testing.TB, version string, safe bool, testFarms ...uint64) api.ZosVersion {
	t.Helper()
	v, err := g.admin.SetZosVersion(context.Background(), api.ZosVersion{Version: version, SafeToUpgrade: safe, TestFarms: testFarms})
	if err != nil {
		t.Fatalf("set version %s: %v", version, err)
	}
	return v
}

// Tree is a directory to publish: path → content. A content starting
// with "#!" makes an executable file, one starting with "->" a symlink to
// the rest; a path ending in "/" is a directory.
type Tree map[string]string

// PublishPackage publishes tree as the flist name and returns it.
func (g *Grid) PublishPackage(t testing.TB, name string, tree Tree) *flist.Flist {
	t.Helper()
	dir := t.TempDir()
	Write(t, dir, tree)
	res, err := g.pub.PublishDir(context.Background(), Publisher, Repo, name, dir, hubclient.PublishOptions{ScratchDir: t.TempDir()})
	if err != nil {
		t.Fatalf("publish %s: %v", name, err)
	}
	return res.Flist
}

// PublishDir publishes the tree at dir as the flist name and returns it.
func (g *Grid) PublishDir(t testing.TB, name, dir string) *flist.Flist {
	t.Helper()
	res, err := g.pub.PublishDir(context.Background(), Publisher, Repo, name, dir, hubclient.PublishOptions{ScratchDir: t.TempDir()})
	if err != nil {
		t.Fatalf("publish %s: %v", name, err)
	}
	return res.Flist
}

// Entry is one package of a release.
type Entry struct {
	// Name is the package's name in the release.
	Name string
	// Flist is its flist.
	Flist flist.ID
	// Role is dependency or zos.
	Role flist.Role
}

// Tag signs and publishes the tag version of entries (as `gridctl hub
// tag`) and returns the release hash.
func (g *Grid) Tag(t testing.TB, version string, entries ...Entry) flist.ID {
	t.Helper()
	tag := &flist.Tag{Publisher: Publisher, Repo: Repo, Name: version, Created: time.Now().Unix()}
	for _, e := range entries {
		tag.Entries = append(tag.Entries, flist.TagEntry{Name: e.Name, Flist: e.Flist, Role: e.Role})
	}
	st, err := flist.SignTag(tag, g.publisher)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.pub.PutTag(context.Background(), st); err != nil {
		t.Fatalf("tag %s: %v", version, err)
	}
	return st.Hash()
}

// SignTag signs a tag of entries with key, without publishing it (a tag a
// hub could serve that its publisher never signed).
func SignTag(t testing.TB, key keys.KeyPair, version string, entries ...Entry) flist.SignedTag {
	t.Helper()
	tag := &flist.Tag{Publisher: Publisher, Repo: Repo, Name: version, Created: time.Now().Unix()}
	for _, e := range entries {
		tag.Entries = append(tag.Entries, flist.TagEntry{Name: e.Name, Flist: e.Flist, Role: e.Role})
	}
	st, err := flist.SignTag(tag, key)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Release publishes packages (dependencies in order, then the zos
// package) and tags them as version; it returns the release hash and the
// flists by name.
func (g *Grid) Release(t testing.TB, version string, deps map[string]Tree, depOrder []string, zos Tree) (flist.ID, map[string]*flist.Flist) {
	t.Helper()
	fl := map[string]*flist.Flist{}
	var entries []Entry
	for _, name := range depOrder {
		f := g.PublishPackage(t, name, deps[name])
		fl[name] = f
		entries = append(entries, Entry{Name: name, Flist: f.ID(), Role: flist.RoleDependency})
	}
	f := g.PublishPackage(t, "zos", zos)
	fl["zos"] = f
	entries = append(entries, Entry{Name: "zos", Flist: f.ID(), Role: flist.RoleZos})
	return g.Tag(t, version, entries...), fl
}

// BlockFile returns the path of a block on the hub's disk.
func (g *Grid) BlockFile(t testing.TB, id flist.ID) string {
	return g.storedFile(t, "blocks", id)
}

// FlistFile returns the path of an flist document on the hub's disk.
func (g *Grid) FlistFile(t testing.TB, id flist.ID) string {
	return g.storedFile(t, "flists", id)
}

func (g *Grid) storedFile(t testing.TB, kind string, id flist.ID) string {
	t.Helper()
	var found string
	_ = filepath.WalkDir(filepath.Join(g.HubDir, kind), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == id.String() {
			found = p
		}
		return nil
	})
	if found == "" {
		t.Fatalf("%s %s is not on the hub's disk", kind, id)
	}
	return found
}

// Write makes tree under dir.
func Write(t testing.TB, dir string, tree Tree) {
	t.Helper()
	for p, content := range tree {
		full := filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(p, "/")))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(p, "/"):
			err = os.MkdirAll(full, 0o755)
		case strings.HasPrefix(content, "->"):
			err = os.Symlink(content[2:], full)
		case strings.HasPrefix(content, "#!"):
			err = os.WriteFile(full, []byte(content), 0o755)
		default:
			err = os.WriteFile(full, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// ZosScript is a stand-in for the zosd program of a release: `version`
// prints the version, `run MODULE` writes "<version>" to
// $UPGRADETEST_MARKS/<module> and runs until its supervisor's lifeline
// (descriptor 3) closes or it is stopped. The tests see from the marks
// which generation each module runs.
func ZosScript(version string) string {
	return fmt.Sprintf(`#!/bin/sh
case "$1" in
version) echo "zosd %[1]s"; exit 0 ;;
run)
	if [ -n "$UPGRADETEST_MARKS" ]; then echo %[1]s > "$UPGRADETEST_MARKS/$2"; fi
	if [ -n "$ZOSD_LIFELINE_FD" ]; then exec cat <&3 >/dev/null; fi
	exec sleep 3600 ;;
esac
echo "unknown command $1" >&2
exit 2
`, version)
}

// BrokenModuleScript answers `version` like ZosScript but every module
// dies at once: a release that passes the probe and fails the health
// check.
func BrokenModuleScript(version string) string {
	return fmt.Sprintf(`#!/bin/sh
case "$1" in
version) echo "zosd %[1]s"; exit 0 ;;
run) echo "module $2: cannot start: missing dependency" >&2; exit 1 ;;
esac
exit 2
`, version)
}

// BrokenBinaryScript fails even `version`: a release refused before the
// switch.
const BrokenBinaryScript = "#!/bin/sh\necho 'exec format error' >&2\nexit 126\n"

// Proxy sits in front of the hub: it counts block downloads, can
// replace a tag with another document, and can call a function on each
// block download.
type Proxy struct {
	next http.Handler

	mu      sync.Mutex
	blocks  int
	tags    map[string][]byte // tag name → body to serve instead
	onBlock func()
}

// OnBlock makes the proxy call f (nil: nothing) when a block download
// begins, before it is served.
func (p *Proxy) OnBlock(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onBlock = f
}

// ServeHTTP forwards r to the hub, counting blocks and serving the
// replaced tags.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	var hook func()
	if strings.HasPrefix(r.URL.Path, "/api/v1/blocks/") && r.Method == http.MethodGet {
		p.blocks++
		hook = p.onBlock
	}
	var body []byte
	if i := strings.LastIndex(r.URL.Path, "/tags/"); i >= 0 && r.Method == http.MethodGet {
		body = p.tags[r.URL.Path[i+len("/tags/"):]]
	}
	p.mu.Unlock()
	if hook != nil {
		hook()
	}
	if body != nil {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
		return
	}
	p.next.ServeHTTP(w, r)
}

// Blocks returns the number of block downloads so far.
func (p *Proxy) Blocks() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.blocks
}

// ReplaceTag makes the hub serve st as the tag name (nil: stop).
func (p *Proxy) ReplaceTag(t testing.TB, name string, st *flist.SignedTag) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tags == nil {
		p.tags = map[string][]byte{}
	}
	if st == nil {
		delete(p.tags, name)
		return
	}
	b, err := st.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	p.tags[name] = b
}
