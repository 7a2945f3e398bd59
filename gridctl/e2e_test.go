package gridctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/registrar"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/registrar/client"
	"github.com/grid4/grid4/store/storetest"
)

// e2eStellar is a Stellar public key with a valid checksum.
const e2eStellar = "GA7QYNF7SOWQ3GLR2BGMZEHXAVIRZA4KVWLTJJFC7MGXUA74P7UJVSGZ"

// gridctlBin is the gridctl binary built once for this test binary by
// TestMain; empty when the build failed (buildErr says why).
var (
	gridctlBin string
	buildErr   error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gridctl-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gridctlBin = filepath.Join(dir, "gridctl")
	out, err := exec.Command("go", "build", "-o", gridctlBin, "github.com/grid4/grid4/cmd/gridctl").CombinedOutput()
	if err != nil {
		buildErr = fmt.Errorf("go build gridctl: %v\n%s", err, out)
		gridctlBin = ""
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// e2e is one registrar (in-process, on loopback, over a fresh database) and
// the environment gridctl processes run with.
type e2e struct {
	t   *testing.T
	url string
	dir string
}

// newE2E starts a registrar on backend whose admin is twin 1.
func newE2E(t *testing.T, backend string) *e2e {
	t.Helper()
	if gridctlBin == "" {
		t.Fatal(buildErr)
	}
	db := storetest.Open(t, backend)
	cfg := registrar.DefaultConfig()
	cfg.RateIP, cfg.RateTwin = 0, 0
	cfg.AdminTwins = []uint64{1}
	srv, err := registrar.New(cfg, registrar.Deps{Store: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("registrar.New: %v", err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &e2e{t: t, url: ts.URL, dir: t.TempDir()}
}

// identity writes a new mnemonic to a file (mode 0600) and returns its
// path and the mnemonic.
func (e *e2e) identity(name string) (path, mnemonic string) {
	e.t.Helper()
	m, err := keys.NewMnemonic()
	if err != nil {
		e.t.Fatal(err)
	}
	path = filepath.Join(e.dir, name+".mnemonic")
	if err := os.WriteFile(path, []byte(m+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path, m
}

// proc is the outcome of one gridctl process.
type proc struct {
	code           int
	stdout, stderr string
	args           []string
}

// gridctl runs the binary with args and exactly the given environment (plus
// PATH and GRID_REGISTRAR pointing at the registrar unless env sets it).
func (e *e2e) gridctl(env []string, args ...string) proc {
	e.t.Helper()
	cmd := exec.Command(gridctlBin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), RegistrarEnv + "=" + e.url}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		e.t.Fatalf("running gridctl %v: %v", args, err)
	}
	return proc{code: code, stdout: out.String(), stderr: errOut.String(), args: args}
}

// ok runs gridctl and fails the test unless it succeeds quietly on stderr
// and writes no escape sequences (stdout is a pipe).
func (e *e2e) ok(env []string, args ...string) string {
	e.t.Helper()
	p := e.gridctl(env, args...)
	if p.code != 0 || p.stderr != "" {
		e.t.Fatalf("gridctl %s: exit %d\nstderr: %s\nstdout: %s", strings.Join(args, " "), p.code, p.stderr, p.stdout)
	}
	if strings.Contains(p.stdout, "\x1b") {
		e.t.Fatalf("gridctl %s: colour codes on a pipe: %q", strings.Join(args, " "), p.stdout)
	}
	return p.stdout
}

// okJSON runs gridctl with -o json and decodes its output into v.
func (e *e2e) okJSON(v any, env []string, args ...string) {
	e.t.Helper()
	out := e.ok(env, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("gridctl %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// fails runs gridctl and fails the test unless it exits non-zero with
// exactly one line on stderr, "gridctl: " then text matching want, and
// nothing on stdout.
func (e *e2e) fails(want string, env []string, args ...string) string {
	e.t.Helper()
	p := e.gridctl(env, args...)
	if p.code == 0 {
		e.t.Fatalf("gridctl %s: exit 0, want a failure; stdout %q", strings.Join(args, " "), p.stdout)
	}
	if p.stdout != "" || !strings.HasPrefix(p.stderr, "gridctl: ") || strings.Count(p.stderr, "\n") != 1 || !strings.HasSuffix(p.stderr, "\n") {
		e.t.Fatalf("gridctl %s: want one error line; stderr %q, stdout %q", strings.Join(args, " "), p.stderr, p.stdout)
	}
	if !regexp.MustCompile(want).MatchString(p.stderr) {
		e.t.Fatalf("gridctl %s: stderr %q does not match %q", strings.Join(args, " "), p.stderr, want)
	}
	return p.stderr
}

// nodeClient registers a node in farmID with a new identity of its own,
// through the client package, as the node daemon does; it returns the
// client and the node id.
func (e *e2e) nodeClient(farmID uint64) (*client.Client, uint64) {
	e.t.Helper()
	kp, err := keys.Generate(keys.Ed25519)
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := client.New(e.url, client.WithIdentity(kp, 0))
	if err != nil {
		e.t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.EnsureAccount(ctx, client.AccountOptions{}); err != nil {
		e.t.Fatal(err)
	}
	id, err := c.RegisterNode(ctx, api.RegisterNodeRequest{
		FarmID:       farmID,
		Resources:    api.Resources{CRU: 8, MRU: 16 << 30, SRU: 512 << 30, HRU: 4 << 40},
		Location:     api.Location{Country: "Belgium", City: "Ghent", Latitude: "51.05", Longitude: "3.72"},
		Interfaces:   []api.Interface{{Name: "eth0", Mac: "52:54:00:12:34:56", IPs: api.IPList{"10.0.0.2/24", "2001:db8::2/64"}}},
		SerialNumber: "SN-0001",
		ZosVersion:   "v4.1.0",
		APIEndpoints: []string{"http://10.0.0.2:2021/api/v1/rpc", "http://[2001:db8::2]:2021/api/v1/rpc"},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return c, id
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestE2E(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newE2E(t, backend)
			testE2EAccounts(t, e)
		})
	}
}

// testE2EAccounts walks the farmer's path and every command; the steps
// depend on each other (admin is twin 1, the farmer twin 2, ...).
func testE2EAccounts(t *testing.T, e *e2e) {
	adminFile, _ := e.identity("admin")
	farmerFile, farmerMnemonic := e.identity("farmer")
	strangerFile, _ := e.identity("stranger")
	admin := []string{}
	adminArgs := []string{"--mnemonic-file", adminFile}
	farmerEnv := []string{MnemonicEnv + "=" + farmerMnemonic}

	// account create: text, then JSON from the environment variable.
	out := e.ok(nil, append([]string{"account", "create"}, adminArgs...)...)
	if !regexp.MustCompile(`(?m)^twin id:\s+1$`).MatchString(out) {
		t.Fatalf("account create output:\n%s", out)
	}
	var farmerAcc api.Account
	e.okJSON(&farmerAcc, farmerEnv, "account", "create", "--relay", "relay.example.org")
	if farmerAcc.TwinID != 2 || len(farmerAcc.Relays) != 1 {
		t.Fatalf("farmer account %+v", farmerAcc)
	}
	e.fails(`^gridctl: registrar refused: account with this public key already exists \(409\)\n$`, farmerEnv, "account", "create")

	// account show: mine, by twin, by public key.
	var acc api.Account
	e.okJSON(&acc, nil, "account", "show", "--mnemonic-file", farmerFile)
	if acc.TwinID != 2 || acc.PublicKey != farmerAcc.PublicKey {
		t.Fatalf("account show %+v", acc)
	}
	out = e.ok(nil, "account", "show", "--twin", "1")
	if !strings.Contains(out, "public key:") || !regexp.MustCompile(`(?m)^twin id:\s+1$`).MatchString(out) {
		t.Fatalf("account show --twin 1:\n%s", out)
	}
	e.okJSON(&acc, nil, "account", "show", "--public-key", farmerAcc.PublicKey)
	if acc.TwinID != 2 {
		t.Fatalf("account show --public-key: %+v", acc)
	}
	e.fails(`^gridctl: registrar refused: .*\(404\)\n$`, nil, "account", "show", "--twin", "999")
	e.fails(`^gridctl: identity \S+ has no account on the registrar at http://127\.0\.0\.1:\d+: create it with 'gridctl account create' \(or check --scheme and --path\)\n$`,
		nil, "account", "show", "--mnemonic-file", strangerFile)
	e.fails(`^gridctl: give --twin or --public-key, not both\n$`, nil, "account", "show", "--twin", "1", "--public-key", farmerAcc.PublicKey)

	// account update.
	e.okJSON(&acc, farmerEnv, "account", "update", "--relay", "r1.example.org,r2.example.org", "--rmb-enc-key", "enc-key")
	if len(acc.Relays) != 2 || acc.RMBEncKey != "enc-key" {
		t.Fatalf("account update: %+v", acc)
	}
	e.fails(`^gridctl: nothing to change: give --relay or --rmb-enc-key\n$`, farmerEnv, "account", "update")

	// farm create.
	var farm api.Farm
	e.okJSON(&farm, farmerEnv, "farm", "create", "--name", "alpha", "--stellar-address", e2eStellar)
	if farm.FarmID == 0 || farm.FarmName != "alpha" || farm.TwinID != 2 || farm.StellarAddress != e2eStellar {
		t.Fatalf("farm create: %+v", farm)
	}
	out = e.ok(farmerEnv, "farm", "create", "--name", "beta", "--dedicated")
	if !regexp.MustCompile(`(?m)^name:\s+beta$`).MatchString(out) || !regexp.MustCompile(`(?m)^dedicated:\s+yes$`).MatchString(out) {
		t.Fatalf("farm create text:\n%s", out)
	}
	betaID := regexp.MustCompile(`(?m)^farm id:\s+(\d+)$`).FindStringSubmatch(out)
	if betaID == nil || betaID[1] == strconv.FormatUint(farm.FarmID, 10) {
		t.Fatalf("farm create text has no new farm id:\n%s", out)
	}
	e.fails(`^gridctl: registrar refused: a farm named "ALPHA" already exists .*\(409\)\n$`, farmerEnv, "farm", "create", "--name", "ALPHA")
	e.fails(`^gridctl: registrar refused: .*\(400\)\n$`, farmerEnv, "farm", "create", "--name", "not valid!")
	e.fails(`^gridctl: --name is required\n$`, farmerEnv, "farm", "create")
	e.fails(`^gridctl: identity \S+ has no account`, nil, "farm", "create", "--name", "gamma", "--mnemonic-file", strangerFile)

	// farm list: table with aligned columns, filters, JSON.
	out = e.ok(nil, "farm", "list")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "FARM  NAME") {
		t.Fatalf("farm list:\n%s", out)
	}
	col := strings.Index(lines[0], "TWIN")
	for _, l := range lines[1:] {
		if len(l) <= col || l[col-1] != ' ' || l[col] != '2' {
			t.Fatalf("farm list columns not aligned:\n%s", out)
		}
	}
	var farms []api.Farm
	e.okJSON(&farms, nil, "farm", "list", "--name", "ALP")
	if len(farms) != 1 || farms[0].FarmID != farm.FarmID {
		t.Fatalf("farm list --name: %+v", farms)
	}
	e.okJSON(&farms, nil, "farm", "list", "--mine", "--mnemonic-file", farmerFile)
	if len(farms) != 2 {
		t.Fatalf("farm list --mine: %+v", farms)
	}
	e.okJSON(&farms, nil, "farm", "list", "--twin", "1")
	if len(farms) != 0 {
		t.Fatalf("farm list --twin 1: %+v", farms)
	}

	// farm show / update.
	fid := strconv.FormatUint(farm.FarmID, 10)
	out = e.ok(nil, "farm", "show", fid)
	if !regexp.MustCompile(`(?m)^stellar address:\s+` + e2eStellar + `$`).MatchString(out) {
		t.Fatalf("farm show:\n%s", out)
	}
	e.fails(`^gridctl: registrar refused: .*\(404\)\n$`, nil, "farm", "show", "999")
	e.fails(`^gridctl: farm id "abc": want a positive whole number\n$`, nil, "farm", "show", "abc")
	e.okJSON(&farm, farmerEnv, "farm", "update", fid, "--name", "alpha2")
	if farm.FarmName != "alpha2" {
		t.Fatalf("farm update: %+v", farm)
	}
	e.okJSON(&farm, farmerEnv, "farm", "update", fid, "--name", "alpha", "--legacy-auth")
	if farm.FarmName != "alpha" {
		t.Fatalf("farm update --legacy-auth: %+v", farm)
	}
	e.fails(`^gridctl: registrar refused: .*\(401\)\n$`, admin, append([]string{"farm", "update", fid, "--name", "stolen"}, adminArgs...)...)
	e.fails(`^gridctl: nothing to change`, farmerEnv, "farm", "update", fid)

	// A node registers itself (with its own identity) and reports uptime.
	nodeC, nodeID := e.nodeClient(farm.FarmID)
	nid := strconv.FormatUint(nodeID, 10)
	if _, err := nodeC.ReportUptime(context.Background(), nodeID, 3*time.Hour); err != nil {
		t.Fatal(err)
	}

	// node list / show.
	out = e.ok(nil, "node", "list", "--farm", fid)
	lines = strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "NODE  FARM  TWIN  APPROVED  ONLINE") || !strings.HasPrefix(lines[1], nid+" ") ||
		!strings.Contains(lines[1], " no ") || !strings.Contains(lines[1], " yes ") || !strings.Contains(lines[1], "16.0 GiB") {
		t.Fatalf("node list:\n%s", out)
	}
	var nodes []api.Node
	e.okJSON(&nodes, nil, "node", "list", "--online")
	if len(nodes) != 1 || nodes[0].NodeID != nodeID {
		t.Fatalf("node list --online: %+v", nodes)
	}
	e.okJSON(&nodes, nil, "node", "list", "--offline")
	if len(nodes) != 0 {
		t.Fatalf("node list --offline: %+v", nodes)
	}
	e.fails(`^gridctl: give --online or --offline, not both\n$`, nil, "node", "list", "--online", "--offline")
	out = e.ok(nil, "node", "show", nid)
	for _, want := range []string{`(?m)^approved:\s+no$`, `(?m)^location:\s+Ghent, Belgium \(51\.05, 3\.72\)$`, `(?m)^eth0\s+52:54:00:12:34:56\s+10\.0\.0\.2/24, 2001:db8::2/64$`,
		`(?m)^api:\s+http://10\.0\.0\.2:2021/api/v1/rpc, http://\[2001:db8::2\]:2021/api/v1/rpc$`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Fatalf("node show does not match %s:\n%s", want, out)
		}
	}
	var node api.Node
	e.okJSON(&node, nil, "node", "show", nid)
	if node.NodeID != nodeID || node.Approved || !node.Online || len(node.APIEndpoints) != 2 {
		t.Fatalf("node show json: %+v", node)
	}
	e.fails(`^gridctl: registrar refused: .*\(404\)\n$`, nil, "node", "show", "999")

	// node status, and the status columns and filters of node list.
	out = e.ok(nil, "node", "status", nid)
	if out != "node "+nid+" has sent no status report\n" {
		t.Fatalf("node status before a report:\n%s", out)
	}
	report := api.NodeStatusReport{Healthy: true, Version: "v4.1.0",
		Total:       api.Capacity{CRU: 8, MRU: 32 << 30, SRU: 1 << 40, HRU: 4 << 40, IPv4: 2},
		Used:        api.Capacity{CRU: 2, MRU: 8 << 30, SRU: 1 << 30, IPv4: 1},
		Deployments: 1, Workloads: map[string]uint64{"ok": 2},
		Checks:  []api.HealthCheck{{Name: "disk_space", OK: true}},
		Modules: []api.ModuleState{{Name: "provisiond", State: "running"}}}
	if err := nodeC.ReportStatus(context.Background(), nodeID, report); err != nil {
		t.Fatal(err)
	}
	out = e.ok(nil, "node", "status", nid)
	for _, want := range []string{`(?m)^healthy:\s+yes$`, `(?m)^reasons:\s+-$`, `(?m)^free:\s+6 cru, 24\.0 GiB mru, 1023\.0 GiB sru, 4\.0 TiB hru, 1 ips$`,
		`(?m)^workloads:\s+2 ok$`, `(?m)^provisiond\s+running\s+0\s+-$`, `(?m)^disk_space\s+yes\s+-$`,
		`(?m)^REPORTED\s+HEALTHY\s+FREE CRU\s+FREE MRU`, `(?m)^\S+ \S+Z\s+yes\s+6\s+24\.0 GiB\s+1023\.0 GiB\s+4\.0 TiB\s+1\s+1$`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Fatalf("node status does not match %s:\n%s", want, out)
		}
	}
	var status api.NodeStatusHistory
	e.okJSON(&status, nil, "node", "status", nid, "--size", "1")
	if status.Latest == nil || status.Latest.Free.MRU != 24<<30 || len(status.History) != 1 {
		t.Fatalf("node status json: %+v", status)
	}
	out = e.ok(nil, "node", "list", "--farm", fid)
	if lines := strings.Split(out, "\n"); !regexp.MustCompile(`^NODE\s+FARM\s+TWIN\s+APPROVED\s+ONLINE\s+HEALTHY\s+LAST SEEN.*FREE CRU\s+FREE MRU\s+FREE SRU\s+FREE HRU\s+FREE IPS\s+ZOS$`).MatchString(lines[0]) ||
		!regexp.MustCompile(`^`+nid+`\s+.*\s+yes\s+yes\s+\d+s ago\s+.*\s+6\s+24\.0 GiB\s+1023\.0 GiB\s+4\.0 TiB\s+1\s+`).MatchString(lines[1]) {
		t.Fatalf("node list with status:\n%s", out)
	}
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"--healthy"}, 1}, {[]string{"--unhealthy"}, 0}, {[]string{"--free-mru", "24GiB"}, 1},
		{[]string{"--free-mru", "25GiB"}, 0}, {[]string{"--healthy", "--free-cru", "6", "--free-ips", "1", "--free-sru", "1000GiB"}, 1},
		{[]string{"--free-ips", "2"}, 0}, {[]string{"--free-hru", "4TiB"}, 1},
	} {
		e.okJSON(&nodes, nil, append([]string{"node", "list"}, c.args...)...)
		if len(nodes) != c.want {
			t.Errorf("node list %v: %d nodes, want %d", c.args, len(nodes), c.want)
		}
	}
	e.fails(`^gridctl: give --healthy or --unhealthy, not both\n$`, nil, "node", "list", "--healthy", "--unhealthy")
	e.fails(`^gridctl: --free-mru "lots": want a size such as 100MiB, 1GB or 4096\n$`, nil, "node", "list", "--free-mru", "lots")
	e.fails(`^gridctl: --size -1: want 1 or more`, nil, "node", "status", nid, "--size", "-1")
	e.fails(`^gridctl: registrar refused: invalid size.*\(400\)\n$`, nil, "node", "status", nid, "--size", "13")
	e.fails(`^gridctl: registrar refused: .*\(404\)\n$`, nil, "node", "status", "999")
	out = e.ok(nil, "node", "show", nid)
	if !regexp.MustCompile(`(?m)^healthy:\s+yes$`).MatchString(out) || !regexp.MustCompile(`(?m)^free:\s+6 cru, 24\.0 GiB mru`).MatchString(out) {
		t.Fatalf("node show with status:\n%s", out)
	}

	// node power: the farmer sets it, anyone reads it, another twin may not.
	e.fails(`^gridctl: registrar refused: .*\(401\)\n$`, nil, "node", "power", "off", nid, "--mnemonic-file", adminFile)
	out = e.ok(farmerEnv, "node", "power", "off", nid)
	if !regexp.MustCompile(`^node \d+: power target off \(set by twin \d+ at `).MatchString(out) {
		t.Fatalf("node power off:\n%s", out)
	}
	var power api.NodePower
	e.okJSON(&power, nil, "node", "power", "show", nid)
	if power.PowerTarget != "off" || power.SetAt == nil {
		t.Fatalf("node power show: %+v", power)
	}
	e.fails(`needs on, off or show and a node id`, farmerEnv, "node", "power", "sleep", nid)
	e.ok(farmerEnv, "node", "power", "on", nid)

	// node approve / reject, by the owner and by someone else.
	e.fails(`^gridctl: registrar refused: .*\(401\)\n$`, nil, "node", "approve", nid, "--mnemonic-file", adminFile)
	out = e.ok(farmerEnv, "node", "approve", nid)
	if !strings.HasPrefix(out, "approved 1 node(s)\n") {
		t.Fatalf("node approve:\n%s", out)
	}
	e.okJSON(&node, nil, "node", "show", nid)
	if !node.Approved {
		t.Fatal("node not approved")
	}
	e.okJSON(&nodes, farmerEnv, "node", "reject", nid, "--farm", fid)
	if len(nodes) != 1 || nodes[0].Approved {
		t.Fatalf("node reject: %+v", nodes)
	}
	e.fails(`^gridctl: registrar refused: .*\(404\)\n$`, farmerEnv, "node", "approve", "999", "--farm", fid)
	e.fails(`^gridctl: registrar refused: node 999: .*\(404\)\n$|^gridctl: registrar refused: .*\(404\)\n$`, farmerEnv, "node", "approve", "999")
	e.fails(`needs at least one node id`, farmerEnv, "node", "approve")
	e.okJSON(&nodes, farmerEnv, "node", "approve", nid)
	if len(nodes) != 1 || !nodes[0].Approved {
		t.Fatalf("node approve json: %+v", nodes)
	}

	// node uptime.
	out = e.ok(nil, "node", "uptime", nid, "--since", "7d")
	lines = strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "BOOTED") || !strings.Contains(lines[1], " 3h0m0s ") {
		t.Fatalf("node uptime:\n%s", out)
	}
	var sessions []api.UptimeSession
	e.okJSON(&sessions, nil, "node", "uptime", nid)
	if len(sessions) != 1 || sessions[0].Uptime != 3*3600 {
		t.Fatalf("node uptime json: %+v", sessions)
	}
	e.fails(`^gridctl: --since "yesterday": want a time`, nil, "node", "uptime", nid, "--since", "yesterday")

	// version set / show / history.
	e.fails(`^gridctl: registrar refused: .*\(404\)\n$`, nil, "version", "show")
	e.fails(`^gridctl: registrar refused: .*\(401\)\n$`, farmerEnv, "version", "set", "v4.1.2")
	var v api.ZosVersion
	e.okJSON(&v, nil, append([]string{"version", "set", "v4.1.2", "--test-farms", fid + "," + betaID[1]}, adminArgs...)...)
	if v.Version != "v4.1.2" || v.SafeToUpgrade || len(v.TestFarms) != 2 || v.Serial == 0 || v.SetBy != 1 {
		t.Fatalf("version set: %+v", v)
	}
	e.fails(`^gridctl: registrar refused: .*\(409\)\n$`, nil, append([]string{"version", "set", "v4.1.2", "--test-farms", fid + "," + betaID[1]}, adminArgs...)...)
	out = e.ok(nil, append([]string{"version", "set", "v4.1.2", "--safe-to-upgrade"}, adminArgs...)...)
	if !regexp.MustCompile(`(?m)^safe to upgrade:\s+yes$`).MatchString(out) {
		t.Fatalf("version set --safe-to-upgrade:\n%s", out)
	}
	out = e.ok(nil, "version", "show")
	if !regexp.MustCompile(`(?m)^version:\s+v4\.1\.2$`).MatchString(out) || !regexp.MustCompile(`(?m)^set by twin:\s+1$`).MatchString(out) {
		t.Fatalf("version show:\n%s", out)
	}
	e.okJSON(&v, nil, "version", "show", "--legacy")
	if v.Version != "v4.1.2" || !v.SafeToUpgrade {
		t.Fatalf("version show --legacy: %+v", v)
	}
	// X-Auth on admin routes is refused unless the registrar runs with
	// --admin-legacy-auth; the compatibility endpoint takes v2.
	e.fails(`^gridctl: registrar refused: .*X-Auth is refused on this route \(401\)\n$`, nil, append([]string{"version", "set", "v4.1.3", "--legacy", "--legacy-auth"}, adminArgs...)...)
	e.okJSON(&v, nil, append([]string{"version", "set", "v4.1.3", "--legacy"}, adminArgs...)...)
	if v.Version != "v4.1.3" || v.SafeToUpgrade {
		t.Fatalf("version set --legacy: %+v", v)
	}
	e.fails(`^gridctl: --legacy cannot set --test-farms\n$`, nil, append([]string{"version", "set", "v4.1.4", "--legacy", "--test-farms", "1"}, adminArgs...)...)
	e.fails(`takes the version`, nil, append([]string{"version", "set"}, adminArgs...)...)
	out = e.ok(nil, "version", "history")
	lines = strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "SERIAL  VERSION") || !strings.Contains(lines[1], "v4.1.3") {
		t.Fatalf("version history:\n%s", out)
	}
	var versions []api.ZosVersion
	e.okJSON(&versions, nil, "version", "history", "--limit", "2")
	if len(versions) != 2 || versions[0].Version != "v4.1.3" {
		t.Fatalf("version history --limit 2: %+v", versions)
	}

	// Identity, registrar and usage failures, each with its own message.
	e.fails(`^gridctl: no identity: give --mnemonic-file PATH, --seed-file PATH or set GRID_MNEMONIC\n$`, nil, "farm", "create", "--name", "x")
	bad := filepath.Join(e.dir, "bad.mnemonic")
	if err := os.WriteFile(bad, []byte("not a mnemonic at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.fails(`^gridctl: mnemonic file .*bad\.mnemonic: .*mnemonic`, nil, "account", "create", "--mnemonic-file", bad)
	e.fails(`^gridctl: mnemonic file: open .*missing`, nil, "account", "create", "--mnemonic-file", filepath.Join(e.dir, "missing"))
	addr := closedPort(t)
	e.fails(`^gridctl: cannot reach registrar at http://`+regexp.QuoteMeta(addr)+`: connection refused\n$`, nil, "farm", "list", "--registrar", "http://"+addr, "--retries", "0")
	e.fails(`^gridctl: cannot reach registrar at http://`+regexp.QuoteMeta(addr)+`: connection refused\n$`, []string{RegistrarEnv + "=http://" + addr}, "node", "show", "1", "--retries", "1")
	e.fails(`^gridctl: no registrar: pass --registrar URL or set GRID_REGISTRAR\n$`, []string{RegistrarEnv + "="}, "farm", "list")
	e.fails(`^gridctl: --registrar: invalid registrar URL "ftp://x": the scheme must be http or https\n$`, nil, "farm", "list", "--registrar", "ftp://x")
	e.fails(`^gridctl: GRID_REGISTRAR: invalid registrar URL "127.0.0.1:8080": it must start with http:// or https://\n$`, []string{RegistrarEnv + "=127.0.0.1:8080"}, "farm", "list")
	e.fails(`^gridctl: --output "yaml": want text or json\n$`, nil, "farm", "list", "-o", "yaml")
	e.fails(`^gridctl: unknown flag: --bogus`, nil, "node", "list", "--bogus")
	e.fails(`^gridctl: unknown command "nope" for "gridctl farm"`, nil, "farm", "nope")
}

func TestE2ECompletionAndHelp(t *testing.T) {
	if gridctlBin == "" {
		t.Fatal(buildErr)
	}
	e := &e2e{t: t, url: "http://127.0.0.1:1", dir: t.TempDir()}
	for shell, want := range map[string]string{"bash": "complete -o default", "zsh": "#compdef gridctl", "fish": "complete -c gridctl", "powershell": "Register-ArgumentCompleter"} {
		if out := e.ok(nil, "completion", shell); !strings.Contains(out, want) {
			t.Errorf("completion %s does not contain %q", shell, want)
		}
	}
	e.fails(`takes one shell`, nil, "completion")
	e.fails(`invalid argument "tcsh"`, nil, "completion", "tcsh")
	// Dynamic completion through cobra's hidden command.
	if p := e.gridctl(nil, "__complete", "farm", "list", "-o", ""); p.code != 0 || !strings.Contains(p.stdout, "json") || !strings.Contains(p.stdout, "text") {
		t.Errorf("completing -o: %+v", p)
	}
	if p := e.gridctl(nil, "__complete", "node", ""); p.code != 0 || !strings.Contains(p.stdout, "approve") || !strings.Contains(p.stdout, "uptime") {
		t.Errorf("completing node: %+v", p)
	}

	// Every command of these groups has help with examples.
	for _, args := range [][]string{
		{"account"}, {"account", "create"}, {"account", "show"}, {"account", "update"},
		{"account", "balance"}, {"account", "statement"}, {"account", "credit"},
		{"farm"}, {"farm", "create"}, {"farm", "list"}, {"farm", "show"}, {"farm", "update"},
		{"farm", "pricing", "show"}, {"farm", "pricing", "set"}, {"farm", "sla"},
		{"contract"}, {"contract", "create"}, {"contract", "list"}, {"contract", "show"}, {"contract", "cancel"},
		{"node"}, {"node", "list"}, {"node", "show"}, {"node", "approve"}, {"node", "reject"}, {"node", "uptime"},
		{"version"}, {"version", "show"}, {"version", "set"}, {"version", "history"}, {"completion"},
	} {
		out := e.ok(nil, append(args, "--help")...)
		_, examples, _ := strings.Cut(out, "Examples:\n")
		if !strings.Contains(examples, "gridctl "+strings.Join(args, " ")) && args[0] != "completion" {
			t.Errorf("gridctl %s --help has no examples:\n%s", strings.Join(args, " "), out)
		}
		if !strings.Contains(out, "Usage:") {
			t.Errorf("gridctl %s --help has no usage", strings.Join(args, " "))
		}
	}
}

// TestDocStandIn builds the stand-in node program shown in docs/gridctl.md
// (through a build overlay, so nothing is written to the source tree) and
// runs it against a registrar, so the document's walkthrough keeps working.
func TestDocStandIn(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "gridctl.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```go\n")
	src, _, ok2 := strings.Cut(rest, "```\n")
	if !ok || !ok2 {
		t.Fatal("docs/gridctl.md has no Go block")
	}
	dir := t.TempDir()
	mainGo := filepath.Join(dir, "main.go")
	if err := os.WriteFile(mainGo, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	virtual, err := filepath.Abs(filepath.Join("_docstandin", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	overlay, _ := json.Marshal(map[string]map[string]string{"Replace": {virtual: mainGo}})
	if err := os.WriteFile(filepath.Join(dir, "overlay.json"), overlay, 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "standin")
	if out, err := exec.Command("go", "build", "-overlay", filepath.Join(dir, "overlay.json"), "-o", bin, "./_docstandin").CombinedOutput(); err != nil {
		t.Fatalf("building the stand-in of docs/gridctl.md: %v\n%s", err, out)
	}

	e := newE2E(t, "sqlite")
	farmer, _ := e.identity("farmer")
	e.ok(nil, "account", "create", "--mnemonic-file", farmer)
	e.ok(nil, "farm", "create", "--name", "myfarm", "--mnemonic-file", farmer)
	cmd := exec.Command(bin, "1")
	cmd.Env = []string{RegistrarEnv + "=" + e.url}
	out, err := cmd.CombinedOutput()
	if err != nil || !regexp.MustCompile(`^node 1 registered by twin 2; next uptime report in \d+s\n$`).Match(out) {
		t.Fatalf("stand-in: %v\n%s", err, out)
	}
	out2 := e.ok(nil, "node", "approve", "1", "--mnemonic-file", farmer)
	if !strings.HasPrefix(out2, "approved 1 node(s)\n") || !strings.Contains(out2, " yes ") {
		t.Fatalf("approve:\n%s", out2)
	}
	// The status the stand-in sent, as the docs show it.
	status := e.ok(nil, "node", "status", "1")
	for _, line := range []string{"healthy:      yes", "free:         6 cru, 24.0 GiB mru, 924.0 GiB sru, 4.0 TiB hru, 2 ips", "workloads:    2 ok"} {
		if !strings.Contains(status, line+"\n") || !strings.Contains(string(doc), line+"\n") {
			t.Errorf("node status and docs/gridctl.md should both have %q:\n%s", line, status)
		}
	}
	if ids := e.ok(nil, "node", "list", "--healthy", "--free-mru", "8GiB", "--free-ips", "1"); !strings.HasPrefix(strings.Split(ids, "\n")[1], "1 ") {
		t.Errorf("node list --healthy --free-mru 8GiB --free-ips 1:\n%s", ids)
	}
	// The page's samples of 'node show' and 'node status' have the fields
	// the commands print, in their order.
	for _, args := range [][]string{{"node", "show", "1"}, {"node", "status", "1"}} {
		cmdLine := "gridctl " + strings.Join(args, " ")
		m := regexp.MustCompile("(?s)```sh\n" + regexp.QuoteMeta(cmdLine) + "\n```\n\n```text\n(.*?)```").FindStringSubmatch(string(doc))
		if m == nil {
			t.Fatalf("docs/gridctl.md shows no output of %s", cmdLine)
		}
		if got, want := fieldLabels(e.ok(nil, args...)), fieldLabels(m[1]); !slices.Equal(got, want) {
			t.Errorf("%s prints the fields %q, docs/gridctl.md shows %q", cmdLine, got, want)
		}
	}
}

// fieldLabels is the labels of the "label:  value" lines of a command's
// text output, in order.
func fieldLabels(out string) []string {
	var labels []string
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z ]*):\s`).FindAllStringSubmatch(out, -1) {
		labels = append(labels, m[1])
	}
	return labels
}
