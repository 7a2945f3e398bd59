package zosd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/node/identityd"
	"github.com/grid4/grid4/node/internal/bustest"
	"github.com/grid4/grid4/node/internal/regtest"
	"github.com/grid4/grid4/node/registrarlight"
)

// hostRoot makes a fixture machine: 2 CPUs, 4 GiB, interface lo with a
// made-up MAC, no DMI.
func hostRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for path, content := range map[string]string{
		"sys/devices/system/cpu/online": "0-1\n",
		"proc/meminfo":                  "MemTotal:       4194304 kB\n",
		"proc/uptime":                   "5000.00 100.00\n",
		"sys/class/net/lo/address":      "02:00:00:00:00:07\n",
	} {
		p := filepath.Join(root, path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// syncBuffer is a goroutine-safe bytes.Buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testNode is an in-process node on the test Redis.
type testNode struct {
	t      *testing.T
	args   []string
	data   string
	prefix string
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan int
}

func newTestNode(t *testing.T, reg *regtest.Registrar, farm uint64, data, prefix string, extra ...string) *testNode {
	args := []string{
		"--registrar", reg.URL, "--farm", fmt.Sprint(farm), "--data", data,
		"--redis", bustest.URL(), "--bus-prefix", prefix, "--in-process",
		"--host-root", hostRoot(t), "--interface", "lo",
		"--geoip-url", "none", "--country", "Belgium", "--city", "Ghent",
		"--uptime-interval", "2s", "--uptime-min-interval", "200ms", "--retry-min", "100ms", "--retry-max", "500ms",
		"--min-free-disk", "1MiB", "--log-level", "warn", "--api-listen", "127.0.0.1:0",
	}
	return &testNode{t: t, args: append(args, extra...), data: data, prefix: prefix}
}

func (n *testNode) start() {
	n.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.done, n.stderr = cancel, make(chan int, 1), &syncBuffer{}
	go func() { n.done <- Main(ctx, n.args, Env{Stderr: n.stderr}) }()
	n.t.Cleanup(func() { n.stop() })
}

// stop stops the node and returns its exit status.
func (n *testNode) stop() int {
	if n.cancel == nil {
		return -1
	}
	n.cancel()
	n.cancel = nil
	select {
	case code := <-n.done:
		return code
	case <-time.After(20 * time.Second):
		n.t.Fatalf("node did not stop; log:\n%s", n.stderr.String())
		return -1
	}
}

// status runs `zosd status` on the node.
func (n *testNode) status(format string) (string, int) {
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"status", "--data", n.data, "-o", format}, Env{Stdout: &out, Stderr: &errb})
	return out.String() + errb.String(), code
}

// waitReport polls `zosd status -o json` until cond holds.
func (n *testNode) waitReport(what string, cond func(r Report) bool) Report {
	n.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		out, code := n.status("json")
		var r Report
		if code == 0 && json.Unmarshal([]byte(out), &r) == nil && cond(r) {
			return r
		}
		last = out
		time.Sleep(50 * time.Millisecond)
	}
	n.t.Fatalf("timed out waiting for %s; last status:\n%s\nlog:\n%s", what, last, n.stderr.String())
	return Report{}
}

func registered(r Report) bool {
	return r.Registration != nil && r.Registration.Phase == registrarlight.Done && r.Registration.Uptime.OK
}

// TestNodeInProcess: a node with its modules in-process registers with a
// real registrar, reports uptime, shows it all in `zosd status`, stops
// cleanly and keeps its ids when started again.
func TestNodeInProcess(t *testing.T) {
	reg := regtest.Start(t, 2*time.Second)
	farm := reg.Farm(t)
	data := filepath.Join(t.TempDir(), "node")
	n := newTestNode(t, reg, farm, data, bustest.Prefix(t))
	bustest.Open(t, n.prefix) // deletes the node's keys at the end
	n.start()

	r := n.waitReport("registration and a first uptime report", registered)
	st := r.Registration
	if st.NodeID == 0 || st.TwinID == 0 || st.FarmID != farm || st.Interface == nil || st.Interface.Name != "lo" {
		t.Fatalf("registration: %+v", st)
	}
	if len(r.Modules) != len(Modules()) {
		t.Errorf("modules: %+v", r.Modules)
	}
	for _, m := range r.Modules {
		if m.State != "running" || m.Restarts != 0 {
			t.Errorf("module %+v", m)
		}
	}
	if r.Identity == nil || r.Identity.FarmID != farm || r.Identity.Origin != identityd.Created {
		t.Errorf("identity: %+v", r.Identity)
	}
	if r.Power == nil || !r.Power.Health.Healthy || r.Power.Uptime != 5000 {
		t.Errorf("power: %+v", r.Power)
	}

	ctx := context.Background()
	node, err := reg.Client(t).Node(ctx, st.NodeID)
	if err != nil {
		t.Fatal(err)
	}
	if node.FarmID != farm || node.TwinID != st.TwinID || node.Resources.CRU != 2 || node.Resources.MRU != 4<<30 ||
		node.SerialNumber != "" || node.Location.City != "Ghent" || node.Interfaces[0].Mac != "02:00:00:00:00:07" ||
		!node.Online || node.LastSeen == nil {
		t.Errorf("registrar's node: %+v", node)
	}

	text, code := n.status("text")
	for _, want := range []string{
		fmt.Sprintf("registration  done: node %d, twin %d, farm %d", st.NodeID, st.TwinID, farm),
		"identityd", "registrar_light", "running", "health        healthy", "location    Ghent Belgium (fallback: no geoip service configured)",
		r.Identity.Address,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}
	if code != 0 {
		t.Errorf("status exit %d", code)
	}

	// Maintenance: the node says why it skips uptime reports.
	os.WriteFile(filepath.Join(data, "maintenance"), []byte("disk swap\n"), 0o600)
	n.waitReport("a skipped report", func(r Report) bool {
		return r.Registration != nil && strings.Contains(r.Registration.Uptime.Error, "node unhealthy: maintenance") && !r.Power.Health.Healthy
	})
	text, _ = n.status("text")
	if !strings.Contains(text, "UNHEALTHY (uptime reports skipped)") || !strings.Contains(text, "disk swap") {
		t.Errorf("status while unhealthy:\n%s", text)
	}
	os.Remove(filepath.Join(data, "maintenance"))

	if code := n.stop(); code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, n.stderr.String())
	}
	if _, err := os.Stat(filepath.Join(data, "zosd.run")); !os.IsNotExist(err) {
		t.Error("run file left behind")
	}
	if out, code := n.status("text"); code != ExitError || !strings.Contains(out, "zosd is not running") {
		t.Errorf("status of a stopped node: %d %s", code, out)
	}

	// Started again: same identity, same node, same twin.
	n.start()
	r2 := n.waitReport("registration after restart", func(r Report) bool { return registered(r) && r.Registration.Uptime.Runs > 0 })
	if r2.Registration.NodeID != st.NodeID || r2.Registration.TwinID != st.TwinID || r2.Identity.Origin != identityd.Loaded || r2.Identity.Address != r.Identity.Address {
		t.Errorf("after restart: %+v %+v", r2.Registration, r2.Identity)
	}
}

// TestRefusals: a corrupt seed file stops zosd before it starts anything,
// with a clear message; a module run alone says the same with the fatal
// exit status; a second zosd on the same data directory is refused.
func TestRefusals(t *testing.T) {
	reg := regtest.Start(t, 0)
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "identity.seed"), []byte("not a seed file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := newTestNode(t, reg, 1, data, bustest.Prefix(t))
	var errb bytes.Buffer
	code := Main(context.Background(), n.args, Env{Stderr: &errb})
	msg := errb.String()
	if code != ExitError || !strings.Contains(msg, "identity file is corrupt") || !strings.Contains(msg, "refusing to start") ||
		!strings.Contains(msg, filepath.Join(data, "identity.seed")) || strings.Count(msg, "\n") != 1 {
		t.Errorf("corrupt seed: exit %d, %q", code, msg)
	}
	if _, err := os.Stat(filepath.Join(data, "zosd.run")); !os.IsNotExist(err) {
		t.Error("a node with a corrupt seed wrote its run file")
	}

	errb.Reset()
	noRedis := newTestNode(t, reg, 1, t.TempDir(), "x:", "--redis", "", "--redis-server", "/nonexistent/redis-server")
	code = Main(context.Background(), noRedis.args, Env{Stderr: &errb})
	if code != ExitError || !strings.Contains(errb.String(), "the private Redis needs /nonexistent/redis-server") {
		t.Errorf("no redis-server: exit %d, %q", code, errb.String())
	}

	errb.Reset()
	code = Main(context.Background(), []string{"run", "identityd", "--data", data, "--farm", "1", "--redis", bustest.URL(), "--bus-prefix", n.prefix}, Env{Stderr: &errb})
	if code != ExitFatal || !strings.Contains(errb.String(), "identity file is corrupt") {
		t.Errorf("identityd alone: exit %d, %q", code, errb.String())
	}

	good := newTestNode(t, reg, reg.Farm(t), filepath.Join(t.TempDir(), "n"), bustest.Prefix(t))
	bustest.Open(t, good.prefix)
	good.start()
	good.waitReport("the node to run", func(r Report) bool { return len(r.Modules) > 0 })
	errb.Reset()
	code = Main(context.Background(), good.args, Env{Stderr: &errb})
	if code != ExitError || !strings.Contains(errb.String(), "another zosd is running on this data directory") {
		t.Errorf("second zosd: exit %d, %q", code, errb.String())
	}
}

// TestRunModuleAlone: `zosd run <module>` serves its object by itself.
func TestRunModuleAlone(t *testing.T) {
	data := t.TempDir()
	prefix := bustest.Prefix(t)
	b := bustest.Open(t, prefix)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errb syncBuffer
	go func() {
		done <- Main(ctx, []string{"run", "identityd", "--data", data, "--farm", "5", "--redis", bustest.URL(), "--bus-prefix", prefix}, Env{Stderr: &errb})
	}()
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	farm, err := identityd.NewStub(b).FarmID(cctx)
	ccancel()
	if err != nil || farm != 5 {
		t.Errorf("FarmID: %d %v; log:\n%s", farm, err, errb.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}
