package gridtypes

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzParseDeployment feeds arbitrary documents to the validator: it must
// never panic, and what it accepts must hash, survive a round trip through
// Marshal with the same hash, and add up its resources.
func FuzzParseDeployment(f *testing.F) {
	d := sample(1)
	b, _ := d.Marshal()
	f.Add(b)
	f.Add([]byte(`{"twin_id":1,"workloads":[{"name":"d","type":"zmount","version":0,"data":{"size":1048576}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDeployment(data)
		if err != nil {
			return
		}
		h1, err := d.Hash()
		if err != nil {
			t.Fatalf("accepted but cannot hash: %v", err)
		}
		if _, err := d.Resources(); err != nil {
			t.Fatalf("accepted but no resources: %v", err)
		}
		again, err := d.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		d2, err := ParseDeployment(again)
		if err != nil {
			t.Fatalf("re-encoded deployment refused: %v\n%s", err, again)
		}
		h2, _ := d2.Hash()
		if h1 != h2 {
			t.Fatalf("hash changed across a round trip:\n%s\n%s", data, again)
		}
	})
}

// FuzzCanonical: the canonical form of anything accepted is valid JSON,
// canonical itself, and means the same thing.
func FuzzCanonical(f *testing.F) {
	f.Add([]byte(`{"b":[1,{"z":null,"a":"\u00e9\n"}],"a":-0}`))
	f.Add([]byte(`{"\ud83d\ude00":1,"\ue000":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Canonical(data)
		if err != nil {
			return
		}
		if !json.Valid(c) {
			t.Fatalf("canonical form is not JSON: %q", c)
		}
		c2, err := Canonical(c)
		if err != nil || !bytes.Equal(c, c2) {
			t.Fatalf("not idempotent: %q -> %q (%v)", c, c2, err)
		}
		var a, b any
		// Compared decoded (numbers as float64, where -0 == 0).
		if json.Unmarshal(data, &a) == nil && json.Unmarshal(c, &b) == nil && !reflect.DeepEqual(a, b) {
			t.Fatalf("meaning changed: %q -> %q", data, c)
		}
	})
}
