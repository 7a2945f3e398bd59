package gridctl

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/registrar/api"
)

// TestE2EContracts walks the contract and billing commands through the
// binary against a real registrar: a farmer's prices and SLA, an admin's
// credit, a user's balance, contracts and statement, and the refusals.
func TestE2EContracts(t *testing.T) {
	e := newE2E(t, "sqlite")
	adminFile, _ := e.identity("admin")
	farmerFile, _ := e.identity("farmer")
	userFile, _ := e.identity("user")
	admin, farmer, user := []string{"--mnemonic-file", adminFile}, []string{"--mnemonic-file", farmerFile}, []string{"--mnemonic-file", userFile}
	with := func(id []string, args ...string) []string { return append(args, id...) }
	for _, id := range [][]string{admin, farmer, user} {
		e.ok(nil, with(id, "account", "create")...)
	}
	var farm api.Farm
	e.okJSON(&farm, nil, with(farmer, "farm", "create", "--name", "pricey")...)
	fid := strconv.FormatUint(farm.FarmID, 10)
	_, nodeID := e.nodeClient(farm.FarmID)
	nid := strconv.FormatUint(nodeID, 10)

	// Prices and SLA.
	var fp api.FarmPricing
	e.okJSON(&fp, nil, with(farmer, "farm", "pricing", "set", fid, "--cru", "100000", "--mru", "50000", "--ipv4", "20000")...)
	if fp.Current != (api.Prices{CRU: 100000, MRU: 50000, IPv4: 20000}) || len(fp.Scheduled) != 1 {
		t.Fatalf("pricing set: %+v", fp)
	}
	out := e.ok(nil, "farm", "pricing", "show", fid)
	if !regexp.MustCompile(`(?m)^new contracts\s+100000\s+50000\s+0\s+0\s+20000$`).MatchString(out) {
		t.Fatalf("pricing show:\n%s", out)
	}
	// A price not given keeps its value: changing one does not make the
	// others free.
	e.okJSON(&fp, nil, with(farmer, "farm", "pricing", "set", fid, "--sru", "1000")...)
	if fp.Current != (api.Prices{CRU: 100000, MRU: 50000, SRU: 1000, IPv4: 20000}) {
		t.Fatalf("pricing set --sru: %+v", fp.Current)
	}
	e.fails(`^gridctl: nothing to change: give --cru, --mru, --sru, --hru or --ipv4\n$`, nil, with(farmer, "farm", "pricing", "set", fid)...)
	e.okJSON(&fp, nil, "farm", "pricing", "show", fid, "-o", "json")
	if fp.Current.SRU != 1000 || len(fp.History) != 2 {
		t.Fatalf("a refused pricing set changed the pricing: %+v", fp)
	}
	e.fails(`^gridctl: registrar refused: .*\(401\)\n$`, nil, with(user, "farm", "pricing", "set", fid, "--cru", "1")...)
	e.fails(`^gridctl: registrar refused: .*cru.*\(400\)\n$`, nil, with(farmer, "farm", "pricing", "set", fid, "--cru", "-1")...)
	out = e.ok(nil, with(farmer, "farm", "sla", fid, "--uptime", "99", "--discount", "50")...)
	if !regexp.MustCompile(`(?m)^uptime percent:\s+99$`).MatchString(out) {
		t.Fatalf("farm sla set:\n%s", out)
	}
	e.fails(`^gridctl: give both --uptime and --discount\n$`, nil, with(farmer, "farm", "sla", fid, "--uptime", "99")...)

	// Credit and balance.
	out = e.ok(nil, with(admin, "account", "credit", "3", "--amount", "5000000", "--reference", "invoice-1")...)
	if !regexp.MustCompile(`(?m)^balance:\s+5000000 µTFT \(5\.000000 TFT\)$`).MatchString(out) {
		t.Fatalf("account credit:\n%s", out)
	}
	e.ok(nil, with(admin, "account", "credit", "3", "--amount", "5000000", "--reference", "invoice-1")...)
	e.fails(`^gridctl: registrar refused: .*invoice-1.*\(409\)\n$`, nil, with(admin, "account", "credit", "3", "--amount", "1", "--reference", "invoice-1")...)
	e.fails(`^gridctl: registrar refused: .*admin.*\(401\)\n$`, nil, with(user, "account", "credit", "3", "--amount", "1", "--reference", "self")...)
	e.fails(`^gridctl: --amount is required`, nil, with(admin, "account", "credit", "3")...)
	var bal api.Balance
	e.okJSON(&bal, nil, with(user, "account", "balance")...)
	if bal.Balance != 5000000 || bal.Account != "twin:3" {
		t.Fatalf("balance %+v", bal)
	}
	e.fails(`^gridctl: registrar refused: .*\(401\)\n$`, nil, with(farmer, "account", "balance", "--twin", "3")...)

	// Contracts.
	var c api.Contract
	e.okJSON(&c, nil, with(user, "contract", "create", "--node", nid, "--hash", "9f86d0", "--cru", "2", "--mru", "4GiB", "--ipv4", "1")...)
	if c.State != api.StateActive || c.Resources != (api.Capacity{CRU: 2, MRU: 4 << 30, IPv4: 1}) || c.TwinID != 3 {
		t.Fatalf("contract create: %+v", c)
	}
	cid := strconv.FormatUint(c.ContractID, 10)
	e.fails(`^gridctl: --deployment FILE or --hash is required`, nil, with(user, "contract", "create", "--node", nid)...)

	e.fails(`^gridctl: --rent takes the whole node`, nil, with(user, "contract", "create", "--node", nid, "--rent", "--cru", "1")...)
	e.fails(`^gridctl: registrar refused: .*another twin.*\(409\)\n$`, nil, with(farmer, "contract", "create", "--node", nid, "--rent")...)
	e.fails(`^gridctl: registrar refused: .*cru.*\(400\)\n$`, nil, with(user, "contract", "create", "--node", nid, "--hash", "ab", "--cru", "999")...)
	e.fails(`invalid argument "lots" for "--mru"`, nil, with(user, "contract", "create", "--node", nid, "--hash", "ab", "--mru", "lots")...)
	out = e.ok(nil, with(user, "contract", "list", "--mine")...)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "CONTRACT  TYPE") || !strings.Contains(lines[1], " active ") {
		t.Fatalf("contract list:\n%s", out)
	}
	var cs []api.Contract
	e.okJSON(&cs, nil, "contract", "list", "--node", nid, "--state", "grace")
	if len(cs) != 0 {
		t.Fatalf("contract list --state grace: %+v", cs)
	}
	e.fails(`^gridctl: --state "gone"`, nil, "contract", "list", "--state", "gone")
	out = e.ok(nil, "contract", "show", cid)
	if !regexp.MustCompile(`(?m)^deployment hash:\s+9f86d0$`).MatchString(out) || !strings.Contains(out, "mru 4.0 GiB") {
		t.Fatalf("contract show:\n%s", out)
	}
	e.fails(`^gridctl: registrar refused: .*\(401\)\n$`, nil, with(farmer, "contract", "cancel", cid)...)
	e.okJSON(&c, nil, with(user, "contract", "cancel", cid)...)
	if c.State != api.StateDeleted || c.DeletedReason != api.ReasonCancelled {
		t.Fatalf("contract cancel: %+v", c)
	}
	e.fails(`^gridctl: registrar refused: .*\(404\)\n$`, nil, "contract", "show", "999")

	// A contract for a deployment file: its hash and resources as deploy
	// sends it (the user's twin, version 0).
	file := filepath.Join(t.TempDir(), "disk.json")
	doc := `{"workloads": [{"name": "disk", "type": "zmount", "data": {"size": 2147483648}}]}`
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := gridtypes.DecodeDeployment([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := prepareNew(&d, 3, file); err != nil {
		t.Fatal(err)
	}
	wantHash, wantRes, err := contractTerms(&d)
	if err != nil {
		t.Fatal(err)
	}
	var fc api.Contract
	e.okJSON(&fc, nil, with(user, "contract", "create", "--node", nid, "--deployment", file)...)
	if fc.DeploymentHash != wantHash || fc.Resources != wantRes || wantRes.SRU != 2<<30 {
		t.Fatalf("contract for %s: %+v, want hash %s and %+v", file, fc, wantHash, wantRes)
	}
	e.okJSON(&fc, nil, with(user, "contract", "cancel", strconv.FormatUint(fc.ContractID, 10))...)
	e.fails(`^gridctl: --deployment gives the hash and the resources`, nil, with(user, "contract", "create", "--node", nid, "--deployment", file, "--cru", "1")...)
	e.fails(`^gridctl: open /nonexistent.json: no such file or directory\n$`, nil, with(user, "contract", "create", "--node", nid, "--deployment", "/nonexistent.json")...)

	// Statements.
	out = e.ok(nil, with(user, "account", "statement")...)
	if !regexp.MustCompile(`(?m)^2\s+\S+ \S+\s+credit\s+-\s+-\s+5000000\s+invoice-1$`).MatchString(out) {
		t.Fatalf("account statement:\n%s", out)
	}
	var lines []api.LedgerLine
	e.okJSON(&lines, nil, with(farmer, "account", "statement", "--farm", fid)...)
	if len(lines) != 0 {
		t.Fatalf("farm statement: %+v", lines)
	}
	e.fails(`^gridctl: give --twin or --farm, not both\n$`, nil, with(user, "account", "statement", "--twin", "3", "--farm", fid)...)
}
