package initramfs

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// entry is one member of an archive, as readArchive finds it.
type entry struct {
	name string
	mode uint32
	data string
}

// readArchive parses a newc archive the way the kernel does (magic,
// thirteen hex fields, name, padding to 4, data, padding to 4) up to the
// trailer, failing on anything else.
func readArchive(t *testing.T, b []byte) []entry {
	t.Helper()
	var out []entry
	off := 0
	for {
		if len(b)-off < 110 || string(b[off:off+6]) != "070701" {
			t.Fatalf("no header at %d", off)
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("field %d at %d: %v", i, off, err)
			}
			return int(v)
		}
		mode, size, namesize := field(1), field(6), field(11)
		rdev := fmt.Sprintf("%d:%d", field(9), field(10))
		nameStart := off + 110
		if namesize < 1 || nameStart+namesize > len(b) || b[nameStart+namesize-1] != 0 {
			t.Fatalf("bad name at %d", off)
		}
		name := string(b[nameStart : nameStart+namesize-1])
		dataStart := nameStart + namesize + pad(110+namesize)
		if dataStart%4 != 0 || dataStart+size > len(b) {
			t.Fatalf("bad data of %s", name)
		}
		if name == trailer {
			if end := dataStart + size; end != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-end)
			}
			return out
		}
		e := entry{name: name, mode: uint32(mode), data: string(b[dataStart : dataStart+size])}
		if mode&0o170000 == modeChar {
			e.data = rdev
		}
		out = append(out, e)
		off = dataStart + size + pad(size)
	}
}

func TestArchive(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, err := range []error{
		w.Dir("/lib", 0o755),
		w.Dir("lib/modules", 0o755),
		w.File("/init", 0o755, []byte("#!/bin/sh\necho hi\n")),
		w.File("lib/modules/a.ko", 0o644, []byte("abc")),
		w.File("empty", 0o600, nil),
		w.Symlink("/bin", "lib"),
		w.CharDevice("lib/console", 0o600, 5, 1),
		w.Close(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := readArchive(t, buf.Bytes())
	want := []entry{
		{"lib", 0o40755, ""},
		{"lib/modules", 0o40755, ""},
		{"init", 0o100755, "#!/bin/sh\necho hi\n"},
		{"lib/modules/a.ko", 0o100644, "abc"},
		{"empty", 0o100600, ""},
		{"bin", 0o120777, "lib"},
		{"lib/console", 0o20600, "5:1"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("archive holds\n%v\nwant\n%v", got, want)
	}
	for _, bad := range []string{"", "/", "../x", "a/../../b", "a//b", "a/./b", "TRAILER!!!", "a\x00b"} {
		if err := NewWriter(&bytes.Buffer{}).File(bad, 0o644, nil); err == nil {
			t.Errorf("entry %q accepted", bad)
		}
	}
}

// Whatever names and contents go in, the archive parses back to them, or
// the name is refused.
func FuzzArchive(f *testing.F) {
	f.Add("init", []byte("x"), "lib/a.ko", []byte{})
	f.Add("a/b/c", []byte("0123"), "d", []byte("12345"))
	f.Add("/grid4.json", []byte("{}"), "../etc", []byte("no"))
	f.Fuzz(func(t *testing.T, n1 string, d1 []byte, n2 string, d2 []byte) {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		var want []entry
		for _, e := range []struct {
			n string
			d []byte
		}{{n1, d1}, {n2, d2}} {
			if err := w.File(e.n, 0o644, e.d); err != nil {
				continue
			}
			if strings.HasPrefix(e.n, "../") || strings.Contains(e.n, "\x00") {
				t.Fatalf("%q accepted", e.n)
			}
			want = append(want, entry{strings.TrimPrefix(e.n, "/"), 0o100644, string(e.d)})
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got := readArchive(t, buf.Bytes()); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
}
