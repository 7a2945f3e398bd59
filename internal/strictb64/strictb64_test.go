package strictb64

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
)

func TestCanonicalSpellingsDecode(t *testing.T) {
	for _, b := range [][]byte{{}, {'A'}, {'A', 'B'}, {'A', 'B', 'C'}, bytes.Repeat([]byte{0xff, 0x00, 0xfe}, 11)} {
		for name, c := range map[string]struct {
			enc *base64.Encoding
			dec func(string) ([]byte, error)
		}{
			"std": {base64.StdEncoding, Std}, "rawstd": {base64.RawStdEncoding, RawStd},
			"url": {base64.URLEncoding, URL}, "rawurl": {base64.RawURLEncoding, RawURL},
		} {
			s := c.enc.EncodeToString(b)
			got, err := c.dec(s)
			if err != nil || !bytes.Equal(got, b) {
				t.Errorf("%s %q: got %x, %v; want %x", name, s, got, err, b)
			}
		}
	}
}

func TestRespellingsRefused(t *testing.T) {
	// Each decodes with the lenient standard decoder to the same bytes as
	// the canonical spelling next to it.
	for _, c := range []struct{ canonical, respelled string }{
		{"QQ==", "QR=="},
		{"QQ==", "QX=="},
		{"QUI=", "QUJ="},
		{"QUJD", "QU\nJD"},
		{"QUJD", "QUJD\r\n"},
		{"QQ==", "Q\rQ=="},
	} {
		a, err := base64.StdEncoding.DecodeString(c.respelled)
		b, _ := base64.StdEncoding.DecodeString(c.canonical)
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("test case %q is not a re-spelling of %q for the lenient decoder", c.respelled, c.canonical)
		}
		if _, err := Std(c.respelled); !errors.Is(err, ErrNotCanonical) {
			t.Errorf("Std(%q) = %v, want ErrNotCanonical", c.respelled, err)
		}
		if _, err := Std(c.canonical); err != nil {
			t.Errorf("Std(%q): %v", c.canonical, err)
		}
	}
	if _, err := Std("QQ"); err == nil {
		t.Error("Std accepted missing padding")
	}
	if _, err := RawStd("QQ=="); err == nil {
		t.Error("RawStd accepted padding")
	}
}

// FuzzStd checks that whatever Std accepts is the canonical spelling of
// what it decodes to.
func FuzzStd(f *testing.F) {
	for _, s := range []string{"", "QQ==", "QR==", "QUJD", "QU\nJD", "////", "++++"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := Std(s)
		if err != nil {
			return
		}
		if enc := base64.StdEncoding.EncodeToString(b); enc != s {
			t.Fatalf("Std(%q) accepted a spelling of %x whose canonical form is %q", s, b, enc)
		}
	})
}

func TestRespellings(t *testing.T) {
	r := Respellings("QQ==")
	if len(r) != 15 {
		t.Fatalf("%d re-spellings of QQ==, want 15: %v", len(r), r)
	}
	for _, v := range r {
		if _, err := Std(v); err == nil {
			t.Errorf("Std accepted %q", v)
		}
	}
	if Respellings("QUJD") != nil {
		t.Error("unpadded text has no free bits")
	}
}
