package gridtypes

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docBlocks returns the fenced blocks of docs/provisioning.md with the
// marker comment right before each (empty when none).
func docBlocks(t *testing.T) (blocks []struct{ marker, lang, body string }) {
	t.Helper()
	b, err := os.ReadFile("../docs/provisioning.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)(?:<!-- ([^>]*?) -->\n)?```(\\w*)\n(.*?)\n```")
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		blocks = append(blocks, struct{ marker, lang, body string }{m[1], m[2], m[3]})
	}
	return blocks
}

// TestDocExamples: every example of docs/provisioning.md is a deployment
// the validator accepts, one per type, and the documented hash is right.
func TestDocExamples(t *testing.T) {
	blocks := docBlocks(t)
	seen := map[WorkloadType]bool{}
	var first, hash, requirement string
	for _, b := range blocks {
		switch {
		case strings.HasPrefix(b.marker, "example: "):
			typ := WorkloadType(strings.TrimPrefix(b.marker, "example: "))
			d, err := ParseDeployment([]byte(b.body))
			if err != nil {
				t.Errorf("example %s: %v", typ, err)
				continue
			}
			if !slices.ContainsFunc(d.Workloads, func(w Workload) bool { return w.Type == typ }) {
				t.Errorf("example %s has no %s workload", typ, typ)
			}
			if _, err := d.Resources(); err != nil {
				t.Errorf("example %s: %v", typ, err)
			}
			seen[typ] = true
		case b.marker == "hash of the first example":
			hash = strings.TrimSpace(b.body)
		case b.lang == "json" && first == "":
			first = b.body
		case b.lang == "json" && strings.HasPrefix(b.body, `{"requests"`):
			requirement = b.body
		}
	}
	for _, typ := range Types() {
		if !seen[typ] {
			t.Errorf("no example for %s", typ)
		}
	}
	d, err := ParseDeployment([]byte(first))
	if err != nil {
		t.Fatalf("first example: %v", err)
	}
	got, err := d.HashHex()
	if err != nil {
		t.Fatal(err)
	}
	if got != hash {
		t.Errorf("documented hash %s, computed %s", hash, got)
	}
	// The contract is made for the hash before its id is known: naming it
	// leaves the hash as it was.
	d.ContractID = 42
	if with, _ := d.HashHex(); with != got {
		t.Errorf("contract_id changes the hash: %s, without it %s", with, got)
	}
	d.ContractID = 0
	var req SignatureRequirement
	if err := decodeStrict([]byte(requirement), &req); err != nil {
		t.Fatalf("requirement example: %v", err)
	}
	d.SignatureRequirement = req
	if err := d.Validate(); err != nil || len(req.Requests) != 3 || req.WeightRequired != 2 {
		t.Fatalf("requirement example: %v %+v", err, req)
	}
}
