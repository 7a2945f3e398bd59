package flistd

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/internal/bustest"
)

func TestServiceOverBus(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	files := map[string]string{"bin/": "", "bin/zos": "#!zos", "etc/conf": "x"}
	f := e.publish("zos", files)
	st, err := flist.SignTag(&flist.Tag{Publisher: "tf", Repo: "zos", Name: "v1", Created: time.Now().Unix(),
		Entries: []flist.TagEntry{{Name: "zos", Flist: f.ID(), Role: flist.RoleZos}}}, e.key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pub.PutTag(ctx, st); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pub.PutLink(ctx, "tf", "zos", "production", "v1"); err != nil {
		t.Fatal(err)
	}

	m := e.manager(Config{})
	c := bustest.New(t)
	bustest.Serve(t, c, Object, m.Methods())
	s := NewStub(c)

	tag, err := s.ResolveLink(ctx, "tf", "zos", "production")
	if err != nil || tag != "v1" {
		t.Fatalf("ResolveLink: %q %v", tag, err)
	}
	rel, err := s.VerifiedTag(ctx, TagRequest{Publisher: "tf", Repo: "zos", Tag: tag, PublisherKey: e.key.Public().Key})
	if err != nil || rel.Hash != st.Hash() || len(rel.Entries) != 1 || rel.Entries[0].Flist != f.ID() || rel.Entries[0].Role != flist.RoleZos {
		t.Fatalf("VerifiedTag: %+v %v", rel, err)
	}
	info, err := s.Flist(ctx, f.ID())
	if err != nil || info.Entries != 4 || info.Blocks != 2 {
		t.Fatalf("Flist: %+v %v", info, err)
	}
	out := filepath.Join(t.TempDir(), "zos")
	if err := s.Materialize(ctx, f.ID(), out); err != nil {
		t.Fatal(err)
	}
	checkTree(t, out, files)
	stats, err := s.Stats(ctx)
	if err != nil || stats.Downloads != 2 {
		t.Fatalf("Stats: %+v %v", stats, err)
	}

	// Errors keep their meaning across the bus.
	other, _ := keys.Generate(keys.Ed25519)
	if _, err := s.VerifiedTag(ctx, TagRequest{Publisher: "tf", Repo: "zos", Tag: "v1", PublisherKey: other.Public().Key}); !errors.Is(err, CodeBadSignature) {
		t.Errorf("wrong key: %v", err)
	}
	if err := s.Materialize(ctx, f.ID(), out); !errors.Is(err, CodeExists) {
		t.Errorf("existing target: %v", err)
	}
	if _, err := s.Flist(ctx, flist.Sum([]byte("none"))); !errors.Is(err, CodeNotFound) {
		t.Errorf("unknown flist: %v", err)
	}
	if _, err := s.ResolveLink(ctx, "tf", "zos", "nope"); !errors.Is(err, CodeNotFound) {
		t.Errorf("unknown link: %v", err)
	}
	target := f.Blocks()[0]
	blockFile := filepath.Join(e.hubDir, "blocks", target.ID.String()[:2], target.ID.String())
	if err := os.WriteFile(blockFile, flist.EncodeBlock([]byte("evil")), 0o644); err != nil {
		t.Fatal(err)
	}
	m.cache.remove(target.ID)
	if err := s.Materialize(ctx, f.ID(), filepath.Join(t.TempDir(), "x")); !errors.Is(err, CodeCorrupt) {
		t.Errorf("tampered block: %v", err)
	}
}
