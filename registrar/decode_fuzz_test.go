package registrar

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/grid4/grid4/registrar/api"
)

// bodyTypes are the types every route decodes its body into.
func bodyTypes() []func() any {
	return []func() any{
		func() any { return new(nodeBody) },
		func() any { return new(createFarmBody) },
		func() any { return new(api.UpdateFarmRequest) },
		func() any { return new(api.CreateAccountRequest) },
		func() any { return new(api.UpdateAccountRequest) },
		func() any { return new(api.ApprovalRequest) },
		func() any { return new(api.UptimeReport) },
		func() any { return new(versionBody) },
		func() any { return new(api.Prices) },
		func() any { return new(api.SLA) },
		func() any { return new(api.CreateContractRequest) },
		func() any { return new(api.UpdateContractRequest) },
		func() any { return new(api.CreditRequest) },
		func() any { return new(api.UsageReport) },
	}
}

// hasDuplicateKeys reports whether some object in the valid JSON data has
// a member name twice (an oracle independent of checkJSON).
func hasDuplicateKeys(t *testing.T, data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	var walk func() bool
	walk = func() bool {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("Token on accepted JSON: %v", err)
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return false
		}
		dup := false
		seen := map[string]bool{}
		for dec.More() {
			if d == '{' {
				k, _ := dec.Token()
				dup = dup || seen[k.(string)]
				seen[k.(string)] = true
			}
			dup = walk() || dup
		}
		_, _ = dec.Token()
		return dup
	}
	return walk()
}

// FuzzDecodeJSON feeds arbitrary bodies to the strict decoder for every
// body type: it never panics, every refusal is a 400, and what it accepts
// is valid UTF-8 JSON without duplicate or differently cased names (the
// decoded value, encoded again, decodes and encodes the same).
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"farm_name":"a","FARM_NAME":"b"}`,
		`{"farm_name":"a","farm_name":"b"}`,
		`{"location":{"city":"Gh\ud800ent"}}`,
		`{"location":{"city":"Gh` + "\xff" + `ent"},"farm_id":1}`,
		`{"interfaces":[{"name":"zos","mac":"52:54:00:12:34:56","ips":"10.1.2.3/24/fe80::1/64"}],"Approved":true}`,
		`{"node_ids":[1,9223372036854775808]}`,
		`{"uptime":5,"timestamp":-9223372036854775809}`,
		`{"version":"v4.0.0","safe_to_upgrade":true,"test_farms":[1,2]}`,
		`{"relays":["relay.grid.tf"],"rmb_enc_key":"x"}`,
		`{"public_key":"a","signature":"b","timestamp":1}`,
		`{"a":{"b":{"c":[[[[1]]]]}}}`,
		`{"uptime":[{"uptime":1,"timestamp":2}],"node_id":1e3}`,
		`{"type":"node","node_id":1,"deployment_hash":"ab","resources":{"cru":1,"ipv4":2}}`,
		`{"period_start":"2026-01-02T03:00:00Z","contracts":[{"contract_id":1,"cru":2,"CRU":3}]}`,
		`{"amount":-1,"reference":"x"}`,
		`"\ud83d\ude00"`, `[]`, `null`, `{} {}`,
	} {
		for i := range bodyTypes() {
			f.Add(uint8(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		types := bodyTypes()
		dst := types[int(which)%len(types)]()
		err := decodeJSON(data, dst)
		if err != nil {
			if he, ok := asHTTPError(err); !ok || he.status != http.StatusBadRequest {
				t.Fatalf("%s: %v is not a 400", data, err)
			}
			return
		}
		if !utf8.Valid(data) || !json.Valid(data) {
			t.Fatalf("accepted invalid JSON text %q", data)
		}
		if hasDuplicateKeys(t, data) {
			t.Fatalf("accepted duplicate names in %s", data)
		}
		// No replacement character that was not in the body already.
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatal(err)
		}
		if b, _ := json.Marshal(v); bytes.Contains(b, []byte("\ufffd")) && !bytes.Contains(data, []byte("\ufffd")) &&
			!strings.Contains(strings.ToLower(string(data)), `\ufffd`) {
			t.Fatalf("accepted text that decodes to U+FFFD: %q", data)
		}
		enc, err := json.Marshal(dst)
		if err != nil {
			t.Fatalf("encode accepted value: %v", err)
		}
		again := types[int(which)%len(types)]()
		if err := decodeJSON(enc, again); err != nil {
			t.Fatalf("%s decoded, its encoding %s did not: %v", data, enc, err)
		}
		if enc2, _ := json.Marshal(again); !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip of %s: %s != %s", data, enc, enc2)
		}
	})
}

// FuzzMergePatch: merging two JSON documents never panics, gives valid
// JSON, and applying the same patch again changes nothing (RFC 7396
// patches are idempotent).
func FuzzMergePatch(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":{"c":2,"d":[1]}}`), []byte(`{"b":{"c":null,"e":3},"a":null}`))
	f.Add([]byte(`{"location":{"city":"Ghent"},"interfaces":[]}`), []byte(`{"location":null,"interfaces":[{"name":"x"}]}`))
	f.Add([]byte(`[1,2]`), []byte(`{"a":{"b":null}}`))
	f.Add([]byte(`{"n":18446744073709551615}`), []byte(`"x"`))
	f.Fuzz(func(t *testing.T, target, patch []byte) {
		once, err := mergePatch(target, patch)
		if err != nil {
			return
		}
		if !json.Valid(once) {
			t.Fatalf("merge gave invalid JSON %q", once)
		}
		twice, err := mergePatch(once, patch)
		if err != nil {
			t.Fatalf("second merge: %v", err)
		}
		var a, b any
		_ = json.Unmarshal(once, &a)
		_ = json.Unmarshal(twice, &b)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("not idempotent: %s then %s", once, twice)
		}
	})
}
