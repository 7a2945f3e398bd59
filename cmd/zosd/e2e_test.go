package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/registrarlight"
	"github.com/grid4/grid4/node/zosd"
	"github.com/grid4/grid4/registrar/client"
)

// TestEndToEnd is the "Done when" of the node daemon: a real registrar
// (the built binary on SQLite), three zosd nodes as separate processes,
// each with its private redis-server and its modules as processes, one of
// them in a network namespace with its own management interface. It shows
// that all register and report uptime; a restarted node keeps its node
// and twin ids; an address added to a node's interface re-registers it
// with the new IP; stopping the registrar for a while loses nothing and
// crashes nothing; a node whose primary seed file is gone recovers its
// identity from a data disk; a node with a corrupt seed file refuses to
// start with a clear message.
//
// It needs root (network namespaces), iproute2's ip and redis-server, and
// sends traffic only over loopback and a veth pair it creates. Set
// ZOSD_E2E_LOGS=DIR to keep the logs of the registrar and the nodes.
func TestEndToEnd(t *testing.T) {
	begin := time.Now()
	env := newE2E(t)
	ctx := context.Background()
	step := func(name string, since time.Time) { t.Logf("%-58s %6.2fs", name, time.Since(since).Seconds()) }

	// --- all register and report uptime --------------------------------
	s := time.Now()
	farms := make([]uint64, 3)
	for i := range farms {
		farms[i] = env.farm(t, fmt.Sprintf("e2e%d%s", i+1, rand.Text()[:6]))
	}
	disk2 := filepath.Join(env.dir, "disk2")
	os.Mkdir(disk2, 0o700)
	nodes := []*zosdNode{
		env.node(t, "node1", farms[0], false, "--interface", env.vethRoot),
		env.node(t, "node2", farms[1], false, "--interface", env.vethRoot, "--data-disk", disk2),
		env.node(t, "node3", farms[2], true, "--interface", "d0"),
	}
	for _, n := range nodes {
		n.start(t)
	}
	ids := map[string]registrarlight.State{}
	for _, n := range nodes {
		r := n.waitStatus(t, "registered with an uptime report", func(r zosd.Report) bool {
			return r.Registration != nil && r.Registration.Phase == registrarlight.Done && r.Registration.Uptime.OK
		})
		ids[n.name] = *r.Registration
	}
	online := true
	env.eventually(t, "the registrar to show 3 online nodes with 2+ uptime reports each", func() bool {
		list, err := env.client.ListNodes(ctx, client.NodeFilter{Online: &online}, client.Page{Size: 10})
		if err != nil || len(list) != 3 {
			return false
		}
		for _, nd := range list {
			h, err := env.client.UptimeHistory(ctx, nd.NodeID, time.Time{}, time.Time{})
			if err != nil || len(h) == 0 || h[0].Reports < 2 {
				return false
			}
		}
		return true
	})
	for i, n := range nodes {
		st := ids[n.name]
		nd, err := env.client.Node(ctx, st.NodeID)
		if err != nil || nd.FarmID != farms[i] || nd.TwinID != st.TwinID || nd.Location.City != "Ghent" || len(nd.Interfaces) != 1 {
			t.Fatalf("%s on the registrar: %+v %v", n.name, nd, err)
		}
	}
	if got := env.node3IPs(t, ids["node3"].NodeID); !slices.Equal(got, []string{env.d0IP}) {
		t.Fatalf("node3 registered with %v, want [%s]", got, env.d0IP)
	}
	step("3 nodes registered, online, reporting uptime", s)

	// --- a restarted node keeps its node and twin id --------------------
	s = time.Now()
	n1 := nodes[0]
	if code := n1.stop(t); code != 0 {
		t.Fatalf("node1 exited %d; log:\n%s", code, n1.logTail())
	}
	n1.start(t)
	r := n1.waitStatus(t, "registered again", func(r zosd.Report) bool {
		return r.Registration != nil && r.Registration.Phase == registrarlight.Done && r.Registration.Uptime.OK
	})
	if r.Registration.NodeID != ids["node1"].NodeID || r.Registration.TwinID != ids["node1"].TwinID {
		t.Fatalf("node1 after restart: node %d twin %d, was node %d twin %d", r.Registration.NodeID, r.Registration.TwinID, ids["node1"].NodeID, ids["node1"].TwinID)
	}
	step("node1 restarted: same node and twin id", s)

	// --- an address added to the interface re-registers the node --------
	s = time.Now()
	newIP := env.addD0Address(t)
	env.eventually(t, "node3 re-registered with "+newIP, func() bool {
		return slices.Contains(env.node3IPs(t, ids["node3"].NodeID), newIP)
	})
	latency := time.Since(s)
	if latency > 10*time.Second {
		t.Errorf("re-registration took %v (the poll is 20s: netlink should have woken noded)", latency)
	}
	step(fmt.Sprintf("node3 re-registered with %s (netlink)", newIP), s)

	// --- the registrar stops for a while: nothing lost, nothing crashed -
	s = time.Now()
	if code := env.registrar.stop(t); code != 0 {
		t.Errorf("registrar exited %d", code)
	}
	time.Sleep(4 * time.Second) // several report intervals without a registrar
	for _, n := range nodes {
		r := n.waitStatus(t, "uptime reports failing", func(r zosd.Report) bool {
			return r.Registration != nil && !r.Registration.Uptime.OK && strings.Contains(r.Registration.Uptime.Error, "cannot reach registrar")
		})
		if r.Registration.Phase != registrarlight.Done {
			t.Errorf("%s while the registrar is down: %+v", n.name, r.Registration)
		}
	}
	back := time.Now()
	env.startRegistrar(t)
	for _, n := range nodes {
		n.waitStatus(t, "uptime reports again", func(r zosd.Report) bool {
			return r.Registration != nil && r.Registration.Uptime.OK && r.Registration.Uptime.LastOK.After(back)
		})
	}
	list, err := env.client.ListNodes(ctx, client.NodeFilter{Online: &online}, client.Page{Size: 10})
	if err != nil || len(list) != 3 {
		t.Fatalf("nodes after the registrar's restart: %v %v", list, err)
	}
	for _, n := range nodes {
		r := n.status(t)
		if r.Registration.NodeID != ids[n.name].NodeID || r.Registration.TwinID != ids[n.name].TwinID {
			t.Errorf("%s ids changed: %+v", n.name, r.Registration)
		}
		for _, m := range r.Modules {
			if m.State != "running" || m.Restarts != 0 {
				t.Errorf("%s: module %s %s after %d restarts (%s)", n.name, m.Name, m.State, m.Restarts, m.LastExit)
			}
		}
		if !n.alive() {
			t.Errorf("%s died", n.name)
		}
	}
	if nd, _ := env.client.Node(ctx, ids["node3"].NodeID); !slices.Contains(nd.Interfaces[0].IPs, newIP) {
		t.Errorf("node3's new address lost: %+v", nd.Interfaces)
	}
	step("registrar stopped 4s and restarted: nothing lost or crashed", s)

	// --- a module and the private Redis die: restarted, node carries on -
	s = time.Now()
	r = n1.status(t)
	pids := map[string]int{}
	for _, m := range r.Modules {
		pids[m.Name] = m.PID
	}
	for _, name := range []string{zosd.ModuleLight, zosd.ModuleRedis} {
		if pids[name] == 0 {
			t.Fatalf("no pid for %s: %+v", name, r.Modules)
		}
		if err := syscall.Kill(pids[name], syscall.SIGKILL); err != nil {
			t.Fatalf("kill %s: %v", name, err)
		}
		n1.waitStatus(t, name+" restarted", func(r zosd.Report) bool {
			for _, m := range r.Modules {
				if m.Name == name {
					return m.State == "running" && m.Restarts == 1 && m.PID != pids[name]
				}
			}
			return false
		})
	}
	killed := time.Now()
	r = n1.waitStatus(t, "uptime reported after the restarts", func(r zosd.Report) bool {
		return r.Registration != nil && r.Registration.Phase == registrarlight.Done && r.Registration.Uptime.OK && r.Registration.Uptime.LastOK.After(killed)
	})
	if r.Registration.NodeID != ids["node1"].NodeID || r.Registration.TwinID != ids["node1"].TwinID {
		t.Errorf("node1 after its modules died: %+v", r.Registration)
	}
	step("node1: registrar_light and redis killed, restarted", s)

	// --- the disk of the primary seed file fails: the copy keeps the id -
	s = time.Now()
	n2 := nodes[1]
	if code := n2.stop(t); code != 0 {
		t.Fatalf("node2 exited %d", code)
	}
	if err := os.Remove(filepath.Join(n2.data, "identity.seed")); err != nil {
		t.Fatal(err)
	}
	n2.start(t)
	r = n2.waitStatus(t, "registered from the recovered identity", func(r zosd.Report) bool {
		return r.Registration != nil && r.Registration.Phase == registrarlight.Done
	})
	if r.Registration.NodeID != ids["node2"].NodeID || r.Registration.TwinID != ids["node2"].TwinID || r.Identity.Origin != "recovered" || !strings.HasSuffix(r.Identity.From, "disk2/zosd/identity.seed") {
		t.Errorf("node2 after losing its seed file: %+v %+v", r.Registration, r.Identity)
	}
	if !strings.Contains(n2.logTail(), "restored it from a copy") {
		t.Errorf("node2's log does not say it recovered its identity:\n%s", n2.logTail())
	}
	step("node2 lost its seed file: identity recovered from its data disk", s)

	// --- a corrupt seed file: refuse to start, clearly -------------------
	s = time.Now()
	bad := env.node(t, "corrupt", farms[0], false, "--interface", env.vethRoot)
	os.MkdirAll(bad.data, 0o700)
	if err := os.WriteFile(filepath.Join(bad.data, "identity.seed"), []byte(`{"version":1,"scheme":"ed25519","seed":"tru`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := bad.runToEnd(t)
	if code != 1 || !strings.HasPrefix(out, "zosd: identity: identity file is corrupt") || !strings.Contains(out, "refusing to start") || strings.Count(out, "\n") != 1 {
		t.Errorf("corrupt seed: exit %d, output %q", code, out)
	}
	step("a node with a corrupt seed file refused to start", s)
	t.Logf("%-58s %6.2fs", "total (with building the binaries)", time.Since(begin).Seconds())
	t.Logf("corrupt seed message: %s", strings.TrimSpace(out))
}

// e2e is the test's world: binaries, network, registrar, geoip.
type e2e struct {
	dir        string
	zosd       string
	registrarB string
	ns         string
	vethRoot   string
	rootIP     string // the registrar's address, on the veth's root side
	d0IP       string
	subnet     int
	regAddr    string
	geoipURL   string
	registrar  *proc
	client     *client.Client
	farmer     *client.Client
	dbPath     string
}

func newE2E(t *testing.T) *e2e {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the end-to-end test needs root: it creates a network namespace and a veth pair")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("the end-to-end test needs iproute2's `ip` to create a network namespace: install iproute2 (apt-get install iproute2)")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("the end-to-end test needs redis-server (each node starts a private one): run `make test-services` or apt-get install redis-server")
	}
	e := &e2e{dir: t.TempDir()}
	if keep := os.Getenv("ZOSD_E2E_LOGS"); keep != "" {
		// Keep the logs of the registrar and the nodes for a look.
		t.Cleanup(func() {
			os.MkdirAll(keep, 0o755)
			logs, _ := filepath.Glob(filepath.Join(e.dir, "*.log"))
			for _, l := range logs {
				if b, err := os.ReadFile(l); err == nil {
					os.WriteFile(filepath.Join(keep, filepath.Base(l)), b, 0o644)
				}
			}
		})
	}
	s := time.Now()
	bin := filepath.Join(e.dir, "bin")
	build := exec.Command("go", "build", "-o", bin+"/", "github.com/grid4/grid4/cmd/zosd", "github.com/grid4/grid4/cmd/registrar")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	e.zosd, e.registrarB = filepath.Join(bin, "zosd"), filepath.Join(bin, "registrar")
	t.Logf("%-58s %6.2fs", "built zosd and registrar", time.Since(s).Seconds())

	e.setupNetwork(t)
	e.geoipURL = e.startGeoIP(t)
	e.dbPath = filepath.Join(e.dir, "registrar.db")
	e.regAddr = net.JoinHostPort(e.rootIP, fmt.Sprint(freePort(t, e.rootIP)))
	e.startRegistrar(t)
	var err error
	e.client, err = client.New("http://"+e.regAddr, client.WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := keys.Generate(keys.Ed25519)
	e.farmer, err = client.New("http://"+e.regAddr, client.WithIdentity(kp, 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.farmer.EnsureAccount(context.Background(), client.AccountOptions{}); err != nil {
		t.Fatalf("farmer account: %v", err)
	}
	return e
}

// ip runs iproute2.
func ip(t *testing.T, args ...string) error {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func mustIP(t *testing.T, args ...string) {
	t.Helper()
	if err := ip(t, args...); err != nil {
		t.Fatal(err)
	}
}

// setupNetwork makes a namespace joined to the root one by a veth pair
// with link-local addresses (169.254.N.1 and .2), and a management
// interface d0 in the namespace with an address of the benchmarking range
// 198.18.0.0/15 (never routed).
func (e *e2e) setupNetwork(t *testing.T) {
	n, _ := rand.Int(rand.Reader, big.NewInt(250))
	e.subnet = int(n.Int64()) + 2
	tag := strings.ToLower(rand.Text()[:6])
	e.ns = "zosd-e2e-" + tag
	e.vethRoot = "zr" + tag
	vethNS := "zn" + tag
	e.rootIP = fmt.Sprintf("169.254.%d.1", e.subnet)
	e.d0IP = fmt.Sprintf("198.18.%d.10", e.subnet)
	mustIP(t, "netns", "add", e.ns)
	t.Cleanup(func() {
		if err := ip(t, "netns", "del", e.ns); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	mustIP(t, "link", "add", e.vethRoot, "type", "veth", "peer", "name", vethNS)
	t.Cleanup(func() { _ = ip(t, "link", "del", e.vethRoot) })
	mustIP(t, "link", "set", vethNS, "netns", e.ns)
	mustIP(t, "addr", "add", e.rootIP+"/30", "dev", e.vethRoot)
	mustIP(t, "link", "set", e.vethRoot, "up")
	mustIP(t, "-n", e.ns, "addr", "add", fmt.Sprintf("169.254.%d.2/30", e.subnet), "dev", vethNS)
	mustIP(t, "-n", e.ns, "link", "set", vethNS, "up")
	mustIP(t, "-n", e.ns, "link", "set", "lo", "up")
	// d0: a dummy interface; kernels without the dummy driver get a veth
	// pair inside the namespace instead, which behaves the same for
	// addresses.
	if err := ip(t, "-n", e.ns, "link", "add", "d0", "type", "dummy"); err != nil {
		t.Logf("no dummy interfaces here (%v); using a veth pair inside the namespace as d0", err)
		mustIP(t, "-n", e.ns, "link", "add", "d0", "type", "veth", "peer", "name", "d0p")
		mustIP(t, "-n", e.ns, "link", "set", "d0p", "up")
	}
	mustIP(t, "-n", e.ns, "addr", "add", e.d0IP+"/24", "dev", "d0")
	mustIP(t, "-n", e.ns, "link", "set", "d0", "up")
}

// addD0Address adds a second address to node3's interface.
func (e *e2e) addD0Address(t *testing.T) string {
	a := fmt.Sprintf("198.18.%d.77", e.subnet)
	mustIP(t, "-n", e.ns, "addr", "add", a+"/24", "dev", "d0")
	return a
}

// freePort finds a free TCP port on addr.
func freePort(t *testing.T, addr string) int {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startGeoIP serves a fixed location on the veth's root address, so that
// the node in the namespace reaches it too.
func (e *e2e) startGeoIP(t *testing.T) string {
	l, err := net.Listen("tcp", net.JoinHostPort(e.rootIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"country":"Belgium","country_code":"BE","city":"Ghent","latitude":51.0543,"longitude":3.7174}`))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String() + "/"
}

func (e *e2e) startRegistrar(t *testing.T) {
	t.Helper()
	e.registrar = startProc(t, "registrar", filepath.Join(e.dir, "registrar.log"), e.registrarB,
		"--listen", e.regAddr, "--db", "sqlite:"+e.dbPath, "--report-interval", "2s", "--log-level", "warn")
	e.eventually(t, "the registrar to serve", func() bool {
		resp, err := http.Get("http://" + e.regAddr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func (e *e2e) farm(t *testing.T, name string) uint64 {
	id, err := e.farmer.CreateFarm(context.Background(), client.NewFarm{Name: name})
	if err != nil {
		t.Fatalf("farm %s: %v", name, err)
	}
	return id
}

func (e *e2e) node3IPs(t *testing.T, id uint64) []string {
	nd, err := e.client.Node(context.Background(), id)
	if err != nil || len(nd.Interfaces) == 0 {
		return nil
	}
	return []string(nd.Interfaces[0].IPs)
}

func (e *e2e) eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// zosdNode is one node: its data directory and process.
type zosdNode struct {
	name string
	data string
	argv []string
	proc *proc
	log  string
}

// node prepares a node of farm; inNS runs it in the namespace.
func (e *e2e) node(t *testing.T, name string, farm uint64, inNS bool, extra ...string) *zosdNode {
	data := filepath.Join(e.dir, name)
	args := []string{
		"--registrar", "http://" + e.regAddr, "--farm", fmt.Sprint(farm), "--data", data,
		"--geoip-url", e.geoipURL,
		"--uptime-interval", "2s", "--uptime-min-interval", "500ms",
		"--account-check-interval", "3s", "--update-interval", "10s",
		"--retry-min", "200ms", "--retry-max", "1s", "--restart-min", "200ms",
		// Polling alone would take 20s: the re-registration is only quick
		// when netlink wakes noded up.
		"--address-poll", "20s",
		"--min-free-disk", "1MiB", "--api-listen", "127.0.0.1:0",
	}
	args = append(args, extra...)
	argv := append([]string{e.zosd}, args...)
	if inNS {
		argv = append([]string{"ip", "netns", "exec", e.ns}, argv...)
	}
	return &zosdNode{name: name, data: data, argv: argv, log: filepath.Join(e.dir, name+".log")}
}

func (n *zosdNode) start(t *testing.T) {
	t.Helper()
	n.proc = startProc(t, n.name, n.log, n.argv[0], n.argv[1:]...)
}

func (n *zosdNode) stop(t *testing.T) int { return n.proc.stop(t) }

func (n *zosdNode) alive() bool {
	select {
	case <-n.proc.done:
		return false
	default:
		return true
	}
}

// runToEnd runs the node to its exit (it must exit by itself) and returns
// its output.
func (n *zosdNode) runToEnd(t *testing.T) (string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, n.argv[0], n.argv[1:]...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("%s: %v", n.name, err)
	}
	return string(out), 0
}

func (n *zosdNode) logTail() string {
	b, _ := os.ReadFile(n.log)
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// status runs `zosd status -o json` on the node (from the root namespace:
// the bus is a unix socket in the data directory).
func (n *zosdNode) status(t *testing.T) zosd.Report {
	var out bytes.Buffer
	code := zosd.Main(context.Background(), []string{"status", "--data", n.data, "-o", "json"}, zosd.Env{Stdout: &out, Stderr: &out})
	var r zosd.Report
	if code != 0 || json.Unmarshal(out.Bytes(), &r) != nil {
		return zosd.Report{}
	}
	return r
}

func (n *zosdNode) waitStatus(t *testing.T, what string, cond func(zosd.Report) bool) zosd.Report {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := n.status(t)
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			var text bytes.Buffer
			zosd.Main(context.Background(), []string{"status", "--data", n.data}, zosd.Env{Stdout: &text, Stderr: &text})
			t.Fatalf("%s: timed out waiting for: %s\nstatus:\n%s\nlog:\n%s", n.name, what, text.String(), n.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// proc is a process of the test, logging to a file.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startProc(t *testing.T, name, logPath, path string, args ...string) *proc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// stop sends SIGTERM and returns the exit status.
func (p *proc) stop(t *testing.T) int {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not stop within 20s of SIGTERM", p.name)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		return -1
	}
	return 0
}
