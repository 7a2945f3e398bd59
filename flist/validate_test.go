package flist

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func dir(p string) Entry { return Entry{Path: p, Type: TypeDir, Mode: 0o755} }
func link(p, target string) Entry {
	return Entry{Path: p, Type: TypeSymlink, Target: target}
}
func file(p, content string) Entry {
	e := Entry{Path: p, Type: TypeFile, Mode: 0o644, Size: int64(len(content)), Blocks: []BlockRef{}}
	if content != "" {
		e.Blocks = []BlockRef{{ID: Sum([]byte(content)), Size: int64(len(content))}}
	}
	return e
}

func TestValidateRefuses(t *testing.T) {
	bad := map[string][]Entry{
		"dot-dot path":          {file("../x", "a")},
		"dot-dot inside":        {dir("a"), file("a/../b", "a")},
		"absolute path":         {file("/etc/passwd", "a")},
		"dot component":         {dir("a"), file("a/./b", "a")},
		"empty component":       {dir("a"), file("a//b", "a")},
		"trailing slash":        {dir("a/")},
		"empty path":            {file("", "a")},
		"control character":     {file("a\nb", "a")},
		"invalid utf-8":         {file("a\xffb", "a")},
		"missing parent":        {file("a/b", "x")},
		"parent is a file":      {file("a", "x"), file("a/b", "x")},
		"parent is a symlink":   {dir("d"), link("l", "d"), file("l/b", "x")},
		"unsorted":              {file("b", "x"), file("a", "x")},
		"duplicate":             {file("a", "x"), file("a", "x")},
		"absolute symlink":      {link("l", "/etc/shadow")},
		"escaping symlink":      {link("l", "../x")},
		"deep escaping symlink": {dir("a"), dir("a/b"), link("a/b/l", "../../../etc")},
		// s points at the root, so s/d/../.. is above the root, although
		// it looks like "." when cleaned as text.
		"escape through a symlink": {dir("d"), link("s", "."), link("u", "s/d/../..")},
		"escape through a chain":   {dir("d"), link("a", "b"), link("b", "d/.."), link("u", "a/..")},
		"symlink loop":             {link("a", "b"), link("b", "a")},
		"symlink to itself":        {link("a", "a/x")},
		"empty target":             {link("l", "")},
		"mode beyond 0777":         {{Path: "a", Type: TypeFile, Mode: 0o4755, Blocks: []BlockRef{}}},
		"size mismatch":            {{Path: "a", Type: TypeFile, Size: 3, Blocks: []BlockRef{{ID: Sum([]byte("ab")), Size: 2}}}},
		"block too large":          {{Path: "a", Type: TypeFile, Size: MaxBlockSize + 1, Blocks: []BlockRef{{ID: Sum(nil), Size: MaxBlockSize + 1}}}},
		"empty block":              {{Path: "a", Type: TypeFile, Size: 0, Blocks: []BlockRef{{ID: Sum(nil), Size: 0}}}},
		"unknown type":             {{Path: "a", Type: "fifo"}},
		"component too long":       {file(strings.Repeat("x", MaxComponentLength+1), "a")},
	}
	// Members the encoding of the entry's type does not have: Validate
	// refuses them so that Encode never silently drops data.
	unencodable := map[string][]Entry{
		"file without blocks": {{Path: "a", Type: TypeFile}},
		"dir with size":       {{Path: "a", Type: TypeDir, Size: 1}},
		"symlink with mode":   {{Path: "a", Type: TypeSymlink, Target: "b", Mode: 0o777}},
	}
	for name, entries := range unencodable {
		if err := (&Flist{Entries: entries}).Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", name, err)
		}
	}
	for name, entries := range bad {
		f := &Flist{Entries: entries}
		err := f.Validate()
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", name, err)
			continue
		}
		// The same document is refused by Parse too.
		if _, err := Parse(f.Encode()); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Parse = %v, want ErrInvalid", name, err)
		}
	}
}

func TestValidateAccepts(t *testing.T) {
	good := map[string][]Entry{
		"empty":                {},
		"symlink to parent":    {dir("a"), link("a/up", "..")},
		"symlink via symlink":  {dir("a"), dir("a/b"), link("a/b/l", "../../s/x"), link("s", "a")},
		"dangling":             {link("l", "missing/../../..")},
		"through a file":       {file("f", "x"), link("l", "f/../../..")},
		"sorting is bytewise":  {dir("a"), file("a-b", "x"), file("a/b", "y")},
		"unicode names":        {file("żółw ☃", "x")},
		"quote and backslash":  {file(`a"b\c`, "x")},
		"dots in names":        {file("..a", "x"), file(".b", "x"), file("c..", "x")},
		"trailing slash link":  {dir("d"), link("l", "d/")},
		"long chain of links":  {link("a", "b"), link("b", "c"), link("c", "d"), dir("d")},
		"empty file":           {file("e", "")},
		"executable and mtime": {{Path: "x", Type: TypeFile, Mode: 0o755, Mtime: 1, Blocks: []BlockRef{}}},
	}
	for name, entries := range good {
		f := &Flist{Entries: entries}
		if err := f.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		g, err := Parse(f.Encode())
		if err != nil {
			t.Errorf("%s: Parse: %v\n%s", name, err, f.Encode())
			continue
		}
		if !bytes.Equal(g.Encode(), f.Encode()) {
			t.Errorf("%s: round trip changed the document", name)
		}
	}
}

func TestParseCanonicalOnly(t *testing.T) {
	f := &Flist{Entries: []Entry{dir("a"), file("a/b", "x"), link("l", "a/b")}}
	doc := string(f.Encode())
	want := `{"entries":[{"mode":493,"path":"a","type":"dir"},{"blocks":[{"id":"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881","size":1}],"mode":420,"path":"a/b","size":1,"type":"file"},{"path":"l","target":"a/b","type":"symlink"}],"format":"grid4-flist/1"}`
	if doc != want {
		t.Fatalf("encoding changed:\n got %s\nwant %s", doc, want)
	}
	if _, err := Parse([]byte(doc)); err != nil {
		t.Fatal(err)
	}
	for name, variant := range map[string]string{
		"white space":      strings.Replace(doc, `,"format"`, `, "format"`, 1),
		"trailing newline": doc + "\n",
		"member order":     strings.Replace(doc, `"path":"l","target":"a/b"`, `"target":"a/b","path":"l"`, 1),
		"unknown member":   strings.Replace(doc, `"format"`, `"x":1,"format"`, 1),
		"duplicate member": strings.Replace(doc, `"path":"l"`, `"path":"x","path":"l"`, 1),
		"escaped slash":    strings.Replace(doc, `"a/b","type"`, `"a\/b","type"`, 1),
		"unicode escape":   strings.Replace(doc, `"path":"l"`, `"path":"\u006c"`, 1),
		"uppercase hex":    strings.Replace(doc, "2d711642", "2D711642", 1),
		"mode as float":    strings.Replace(doc, `"mode":493`, `"mode":493.0`, 1),
		"mode exponent":    strings.Replace(doc, `"mode":420`, `"mode":4.2e2`, 1),
		"leading zero":     strings.Replace(doc, `"size":1,"type"`, `"size":01,"type"`, 1),
		"explicit mtime 0": strings.Replace(doc, `"mode":493,`, `"mode":493,"mtime":0,`, 1),
		"null blocks":      strings.Replace(doc, `"blocks":[{"id":"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881","size":1}]`, `"blocks":null`, 1),
		"other format":     strings.Replace(doc, "grid4-flist/1", "grid4-flist/2", 1),
		"case of a member": strings.Replace(doc, `"path":"l"`, `"Path":"l"`, 1),
		"not json":         doc[:len(doc)-1],
	} {
		if _, err := Parse([]byte(variant)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Parse = %v, want ErrInvalid", name, err)
		}
	}
}

func TestIDAndNames(t *testing.T) {
	id := Sum([]byte("x"))
	if p, err := ParseID(id.String()); err != nil || p != id {
		t.Fatalf("ParseID round trip: %v", err)
	}
	for _, s := range []string{"", "zz", strings.ToUpper(id.String()), id.String() + "0"} {
		if _, err := ParseID(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseID(%q) = %v", s, err)
		}
	}
	for _, ok := range []string{"zos", "v4.1.2", "v4.1.2+build_1", "A-b"} {
		if err := ValidName(ok); err != nil {
			t.Errorf("ValidName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "-x", "a/b", "a b", "é", strings.Repeat("a", MaxNameLength+1)} {
		if err := ValidName(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidName(%q) = %v", bad, err)
		}
	}
}
