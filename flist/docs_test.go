package flist

import (
	"encoding/base64"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/grid4/grid4/keys"
)

// TestDocExamples checks every value of docs/flist.md's worked example
// against the code, so the document cannot drift from the format.
func TestDocExamples(t *testing.T) {
	raw, err := os.ReadFile("../docs/flist.md")
	if err != nil {
		t.Fatal(err)
	}
	md := string(raw)
	example := func(name string) []byte {
		m := regexp.MustCompile("<!-- example: " + name + " -->\n```json\n([^\n]*)\n```").FindStringSubmatch(md)
		if m == nil {
			t.Fatalf("docs/flist.md has no %s example", name)
		}
		return []byte(m[1])
	}
	mustContain := func(what, s string) {
		if !strings.Contains(md, s) {
			t.Errorf("docs/flist.md: %s %q not found", what, s)
		}
	}

	hello := []byte("#!/bin/sh\necho hello\n")
	conf := []byte("greeting = hello\n")
	f := &Flist{Entries: []Entry{
		{Path: "bin", Type: TypeDir, Mode: 0o755},
		{Path: "bin/hello", Type: TypeFile, Mode: 0o755, Size: int64(len(hello)), Blocks: []BlockRef{{ID: Sum(hello), Size: int64(len(hello))}}},
		{Path: "etc", Type: TypeDir, Mode: 0o755},
		{Path: "etc/hello.conf", Type: TypeFile, Mode: 0o644, Size: int64(len(conf)), Blocks: []BlockRef{{ID: Sum(conf), Size: int64(len(conf))}}},
		{Path: "etc/link", Type: TypeSymlink, Target: "hello.conf"},
	}}
	doc := example("flist")
	if string(doc) != string(f.Encode()) {
		t.Fatalf("flist example differs from the encoding:\n doc %s\ncode %s", doc, f.Encode())
	}
	if _, err := Parse(doc); err != nil {
		t.Fatal(err)
	}
	mustContain("block id", Sum(hello).String())
	mustContain("block id", Sum(conf).String())
	mustContain("stored form", hex.EncodeToString(EncodeBlock(hello)))
	mustContain("flist id", f.ID().String())

	zos := &Flist{Entries: []Entry{{Path: "zos", Type: TypeFile, Mode: 0o755, Size: 4, Blocks: []BlockRef{{ID: Sum([]byte("zos\n")), Size: 4}}}}}
	mustContain("zos flist id", zos.ID().String())
	tag := &Tag{Publisher: "tf", Repo: "zos", Name: "v4.1.2", Created: 1718000000, Entries: []TagEntry{
		{Name: "hello", Flist: f.ID(), Role: RoleDependency},
		{Name: "zos", Flist: zos.ID(), Role: RoleZos},
	}}
	if tdoc := example("tag"); string(tdoc) != string(tag.Encode()) {
		t.Fatalf("tag example differs from the encoding:\n doc %s\ncode %s", tdoc, tag.Encode())
	}
	alice, err := keys.FromSecretURI(keys.Ed25519, keys.DevPhrase+"//Alice")
	if err != nil {
		t.Fatal(err)
	}
	st, err := SignTag(tag, alice)
	if err != nil {
		t.Fatal(err)
	}
	mustContain("release hash", st.Hash().String())
	mustContain("signature", base64.StdEncoding.EncodeToString(st.Signature))
	mustContain("public key", hex.EncodeToString(alice.Public().Key))
	im := regexp.MustCompile("<!-- example: image -->\n```\n\\{\"entries\":\\[\\.\\.\\.\\]([^\n]*)\n```").FindStringSubmatch(md)
	withImage := &Flist{Entries: []Entry{}, Image: &Image{
		Entrypoint: []string{"/bin/busybox", "httpd", "-f", "-p", "80"}, Cmd: []string{"-h", "/www"},
		Env: []string{"PATH=/bin"}, WorkingDir: "/www",
	}}
	if want := strings.TrimPrefix(string(withImage.Encode()), `{"entries":[]`); im == nil || im[1] != want {
		t.Errorf("docs/flist.md image example: %q, want %s", im, want)
	}
	if MaxImageList != 1024 || MaxImageString != 32<<10 || MaxImageSize != 256<<10 {
		t.Errorf("image limits changed: update docs/flist.md and this test")
	}
	if MaxBlockSize != 1_048_576 || MaxStoredBlockSize != 1_052_672 {
		t.Errorf("block limits changed: update docs/flist.md and this test")
	}
	mustContain("MaxBlockSize", "1 048 576 bytes")
	mustContain("MaxStoredBlockSize", "**1 052 672**")
}
