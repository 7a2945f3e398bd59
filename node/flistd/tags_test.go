package flistd

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/keys"
)

func TestTagVerification(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	dep := e.publish("containerd", map[string]string{"bin/containerd": "#!c"})
	zos := e.publish("zos", map[string]string{"bin/zos": "#!z"})
	tag := &flist.Tag{Publisher: "tf", Repo: "zos", Name: "v4.1.2", Created: time.Now().Unix(), Entries: []flist.TagEntry{
		{Name: "containerd", Flist: dep.ID(), Role: flist.RoleDependency},
		{Name: "zos", Flist: zos.ID(), Role: flist.RoleZos},
	}}
	st, err := flist.SignTag(tag, e.key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pub.PutTag(ctx, st); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pub.PutLink(ctx, "tf", "zos", "production", "v4.1.2"); err != nil {
		t.Fatal(err)
	}
	m := e.manager(Config{})
	name, err := m.ResolveLink(ctx, "tf", "zos", "production")
	if err != nil || name != "v4.1.2" {
		t.Fatalf("ResolveLink: %q %v", name, err)
	}
	got, signed, err := m.VerifiedTag(ctx, "tf", "zos", name, e.key.Public().Key)
	if err != nil {
		t.Fatal(err)
	}
	if signed.Hash() != st.Hash() || len(got.Dependencies()) != 1 {
		t.Fatalf("verified tag %+v", got)
	}
	// The upgrader's path: every entry fetched and materialised.
	gen := t.TempDir()
	for _, en := range got.Entries {
		f, err := m.Fetch(ctx, en.Flist)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Materialize(ctx, f, filepath.Join(gen, en.Name)); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(gen, "zos", "bin", "zos")); err != nil || string(b) != "#!z" {
		t.Fatalf("zos package: %q %v", b, err)
	}
	// A key the node does not trust.
	other, _ := keys.Generate(keys.Ed25519)
	if _, _, err := m.VerifiedTag(ctx, "tf", "zos", name, other.Public().Key); !errors.Is(err, flist.ErrBadSignature) {
		t.Fatalf("other key: %v", err)
	}

	// The hub's copy of the tag is altered: its zos entry now names the
	// containerd flist. The node refuses it.
	rec := filepath.Join(e.hubDir, "repos", "tf", "zos", "tags", "v4.1.2.json")
	raw, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	altered := strings.Replace(string(raw), zos.ID().String(), dep.ID().String(), 1)
	altered = strings.Replace(altered, st.Hash().String(), flist.Sum([]byte(docOf(t, altered))).String(), 1)
	if altered == string(raw) {
		t.Fatal("test did not alter the tag")
	}
	if err := os.WriteFile(rec, []byte(altered), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.VerifiedTag(ctx, "tf", "zos", "v4.1.2", e.key.Public().Key); !errors.Is(err, flist.ErrBadSignature) {
		t.Fatalf("altered tag: %v, want flist.ErrBadSignature", err)
	}

	// A correctly signed tag served under another name is refused too
	// (an old release passed off as a new one).
	if err := os.WriteFile(filepath.Join(filepath.Dir(rec), "v4.1.3.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.VerifiedTag(ctx, "tf", "zos", "v4.1.3", e.key.Public().Key); !errors.Is(err, ErrTagMismatch) {
		t.Fatalf("renamed tag: %v, want ErrTagMismatch", err)
	}
}

// docOf extracts the signed document of a stored tag record.
func docOf(t *testing.T, record string) string {
	var r struct {
		Signed struct {
			Document json.RawMessage `json:"document"`
		} `json:"signed"`
	}
	if err := json.Unmarshal([]byte(record), &r); err != nil {
		t.Fatal(err)
	}
	return string(r.Signed.Document)
}
