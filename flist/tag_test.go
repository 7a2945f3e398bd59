package flist

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/grid4/grid4/keys"
)

func testTag() *Tag {
	return &Tag{
		Publisher: "tf", Repo: "zos", Name: "v4.1.2", Created: 1718000000,
		Entries: []TagEntry{
			{Name: "containerd", Flist: Sum([]byte("c")), Role: RoleDependency},
			{Name: "runc", Flist: Sum([]byte("r")), Role: RoleDependency},
			{Name: "zos", Flist: Sum([]byte("z")), Role: RoleZos},
		},
	}
}

func TestSignVerifyTag(t *testing.T) {
	for _, scheme := range []keys.Scheme{keys.Ed25519, keys.Sr25519} {
		t.Run(string(scheme), func(t *testing.T) {
			kp, err := keys.Generate(scheme)
			if err != nil {
				t.Fatal(err)
			}
			other, _ := keys.Generate(scheme)
			st, err := SignTag(testTag(), kp)
			if err != nil {
				t.Fatal(err)
			}
			got, err := VerifyTag(st, kp.Public().Key)
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != "v4.1.2" || len(got.Dependencies()) != 2 {
				t.Fatalf("verified tag %+v", got)
			}
			if z, ok := got.Zos(); !ok || z.Name != "zos" {
				t.Fatalf("Zos() = %+v, %v", z, ok)
			}
			if _, err := VerifyTag(st, other.Public().Key); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("other key: %v", err)
			}
			// The JSON form carries the document byte for byte.
			j, err := json.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			var back SignedTag
			if err := json.Unmarshal(j, &back); err != nil {
				t.Fatal(err)
			}
			if _, err := VerifyTag(back, kp.Public().Key); err != nil {
				t.Fatalf("after JSON: %v\n%s", err, j)
			}
			if back.Hash() != st.Hash() {
				t.Fatal("hash changed through JSON")
			}

			// Any change to the document breaks the signature.
			tampered := testTag()
			tampered.Entries[2].Flist = Sum([]byte("evil"))
			st2 := st
			st2.Document = tampered.Encode()
			if _, err := VerifyTag(st2, kp.Public().Key); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("tampered document: %v", err)
			}
			// A declared hash that does not match is refused on decode.
			bad := strings.Replace(string(j), st.Hash().String(), Sum(nil).String(), 1)
			if err := json.Unmarshal([]byte(bad), &back); !errors.Is(err, ErrInvalid) {
				t.Fatalf("wrong hash member: %v", err)
			}
			st3 := st
			st3.Alg = "rsa"
			if _, err := VerifyTag(st3, kp.Public().Key); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("unknown alg: %v", err)
			}
		})
	}
}

func TestTagValidate(t *testing.T) {
	for name, mutate := range map[string]func(*Tag){
		"zos not last":      func(t *Tag) { t.Entries[0].Role, t.Entries[2].Role = RoleZos, RoleDependency },
		"two zos":           func(t *Tag) { t.Entries[1].Role = RoleZos },
		"unknown role":      func(t *Tag) { t.Entries[0].Role = "main" },
		"duplicate name":    func(t *Tag) { t.Entries[1].Name = "containerd" },
		"bad entry name":    func(t *Tag) { t.Entries[0].Name = "../x" },
		"no entries":        func(t *Tag) { t.Entries = nil },
		"zero flist":        func(t *Tag) { t.Entries[0].Flist = ID{} },
		"bad publisher":     func(t *Tag) { t.Publisher = "a/b" },
		"bad tag name":      func(t *Tag) { t.Name = "" },
		"negative creation": func(t *Tag) { t.Created = -1 },
	} {
		tg := testTag()
		mutate(tg)
		if err := tg.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate = %v", name, err)
		}
		if _, err := ParseTag(tg.Encode()); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: ParseTag = %v", name, err)
		}
	}
	doc := testTag().Encode()
	want := `{"created":1718000000,"entries":[{"flist":"2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6","name":"containerd","role":"dependency"},{"flist":"454349e422f05297191ead13e21d3db520e5abef52055e4964b82fb213f593a1","name":"runc","role":"dependency"},{"flist":"594e519ae499312b29433b7dd8a97ff068defcba9755b6d5d00e84c524d67b06","name":"zos","role":"zos"}],"format":"grid4-tag/1","publisher":"tf","repo":"zos","tag":"v4.1.2"}`
	if string(doc) != want {
		t.Fatalf("tag encoding changed:\n got %s\nwant %s", doc, want)
	}
	if _, err := ParseTag([]byte(strings.Replace(want, `"created":1718000000,`, `"created":1718000000 ,`, 1))); !errors.Is(err, ErrInvalid) {
		t.Fatalf("non-canonical tag accepted: %v", err)
	}
}
