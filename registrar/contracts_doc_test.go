package registrar

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/grid4/grid4/registrar/api"
)

// TestContractsDocExample recomputes the worked example of
// docs/contracts.md: each term of the cost line, the cost (api.Prices.Cost),
// the discount (api.Discount), and the balances the ledger table leads to.
func TestContractsDocExample(t *testing.T) {
	md, err := os.ReadFile("../docs/contracts.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- billing-example -->\n```text\n(.*?)```").FindSubmatch(md)
	if m == nil {
		t.Fatal("docs/contracts.md has no billing-example block")
	}
	lines := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(m[1])), "\n") {
		k, v, _ := strings.Cut(l, ":")
		lines[k] = strings.TrimSpace(v)
	}
	kv := func(line string) map[string]uint64 {
		out := map[string]uint64{}
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatalf("%q: %v", f, err)
			}
			out[k] = n
		}
		return out
	}
	pm, um := kv(lines["prices"]), kv(lines["usage"])
	p := api.Prices{CRU: int64(pm["cru"]), MRU: int64(pm["mru"]), SRU: int64(pm["sru"]), HRU: int64(pm["hru"]), IPv4: int64(pm["ipv4"])}
	u := api.Capacity{CRU: um["cru"], MRU: um["mru"], SRU: um["sru"], HRU: um["hru"], IPv4: um["ipv4"]}
	cost := p.Cost(u)
	want := []int64{int64(u.CRU) * p.CRU, int64(u.IPv4) * p.IPv4, int64(u.MRU) * p.MRU, int64(u.SRU) * p.SRU, int64(u.HRU) * p.HRU, 1 << 30, cost}
	nums := regexp.MustCompile(`\d+`).FindAllString(lines["cost"], -1)
	if len(nums) != len(want) {
		t.Fatalf("cost line %q: want %d numbers", lines["cost"], len(want))
	}
	for i, n := range nums {
		if n != strconv.FormatInt(want[i], 10) {
			t.Errorf("cost line %q: term %d is %s, the arithmetic gives %d", lines["cost"], i, n, want[i])
		}
	}
	_, off := api.Discount(cost, 50)
	if d := lines["discount"]; d != "50 % of "+strconv.FormatInt(cost, 10)+" = "+strconv.FormatInt(off, 10) {
		t.Errorf("discount line %q, the arithmetic gives %d", d, off)
	}
	// The ledger table: the balances the text states.
	bal := map[string]int64{}
	row := regexp.MustCompile("(?m)^\\| [a-z_]+[^|]* \\| `([a-z]+(?::\\d+)?)` \\| ([−+])(\\d+) \\|$")
	for _, r := range row.FindAllSubmatch(md, -1) {
		n, _ := strconv.ParseInt(string(r[3]), 10, 64)
		if string(r[2]) == "−" {
			n = -n
		}
		bal[string(r[1])] += n
	}
	if len(bal) != 3 || bal["twin:5"]+bal["farm:2"]+bal["external"] != 0 {
		t.Fatalf("ledger table balances %v", bal)
	}
	for acct, phrase := range map[string]string{"twin:5": "balance is 1000000 − 470000 − 470000 + 235000\n= %d µTFT", "farm:2": "the farm's %d;"} {
		if s := strings.ReplaceAll(phrase, "%d", strconv.FormatInt(bal[acct], 10)); !strings.Contains(string(md), s) {
			t.Errorf("docs/contracts.md does not say %q", s)
		}
	}
}
