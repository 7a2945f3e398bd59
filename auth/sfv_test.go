package auth

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestSFDictionaryValid(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{``, ``},
		{`a=1`, `a=1`},
		{`a=1,b=2`, `a=1, b=2`},
		{`  a=1 ,	b=2  `, `a=1, b=2`},
		{`a, b;x=1, c=?1, d=?0`, `a, b;x=1, c, d=?0`},
		{`a=1, b=2, a=3`, `a=3, b=2`},
		{`a=1;p=1;q;p=2`, `a=1;p=2;q`},
		{`*k.-_9=tok`, `*k.-_9=tok`},
		{`a=(1 2);p="x"`, `a=(1 2);p="x"`},
		{`a=( 1   2 )`, `a=(1 2)`},
		{`a=()`, `a=()`},
		{`a=();x`, `a=();x`},
		{`a=("@method" "@path";req);created=1;keyid="k"`, `a=("@method" "@path";req);created=1;keyid="k"`},
		{`a=1.5, b=-0.25, c=123456789012.123, d=1.50, e=-0.0`, `a=1.5, b=-0.25, c=123456789012.123, d=1.5, e=0.0`},
		{`a=-999999999999999, b=999999999999999, c=007`, `a=-999999999999999, b=999999999999999, c=7`},
		{`a=foo/bar:baz, b=*x, c=Tok!#$%&'*+-.^_` + "`|~", `a=foo/bar:baz, b=*x, c=Tok!#$%&'*+-.^_` + "`|~"},
		{`a=:aGVsbG8=:, b=:aGVsbG8:, c=::`, `a=:aGVsbG8=:, b=:aGVsbG8=:, c=::`},
		{`a="q\"b\\c", b=""`, `a="q\"b\\c", b=""`},
		{`a=1;b=:AQ==:;c="s";d=t;e=2.5;f=?0`, `a=1;b=:AQ==:;c="s";d=t;e=2.5;f=?0`},
	} {
		d, err := parseSFDictionary(tc.in)
		if err != nil {
			t.Errorf("parse %q: %v", tc.in, err)
			continue
		}
		got, err := d.serialize()
		if err != nil {
			t.Errorf("serialize %q: %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("parse+serialize %q = %q, want %q", tc.in, got, tc.want)
		}
		// Serialization is a fixed point.
		d2, err := parseSFDictionary(got)
		if err != nil {
			t.Errorf("reparse %q: %v", got, err)
			continue
		}
		if got2, _ := d2.serialize(); got2 != got {
			t.Errorf("not a fixed point: %q -> %q", got, got2)
		}
	}
}

func TestSFDictionaryInvalid(t *testing.T) {
	for _, in := range []string{
		`a=1,`, `a=1, `, `,a=1`, `A=1`, `a=1 b=2`, `a=1;`, `a=1;B=2`, `a=1; `, `1a=2`, `a-=`, `a=`,
		`a="unterminated`, `a="\x"`, `a="\`, "a=\"\x01\"", "a=\"é\"", `a=é`, `a=-`, `a=-x`, `a=?2`, `a=?`,
		`a=1234567890123456`, `a=-1234567890123456`, `a=1.`, `a=1.1234`, `a=1234567890123.1`, `a=1.2.3`,
		`a=(1`, `a=(1 2`, `a=(1)(2)`, "a=(1\t2)", `a=(1,2)`, `a=((1))`,
		`a=:a$:`, `a=:abc`, `a=:=:`, `a=:AQ=A:`,
		`a=1,,b=2`, `a=(; x)`, `a=@1`, `a=%"x"`, `a=<b>`,
		"\ta=1",
	} {
		d, err := parseSFDictionary(in)
		if err == nil {
			s, _ := d.serialize()
			t.Errorf("parse %q succeeded: %q", in, s)
			continue
		}
		if !errors.Is(err, errSF) {
			t.Errorf("parse %q: error %v does not wrap errSF", in, err)
		}
	}
}

func TestSFItemAndInnerList(t *testing.T) {
	it, err := parseSFItem(` "x";a=1 `)
	if err != nil || it.bare.kind != sfString || it.bare.str != "x" {
		t.Fatalf("item: %+v %v", it, err)
	}
	if _, err := parseSFItem(`1 2`); err == nil {
		t.Fatal("two items parsed as one")
	}
	il, err := parseSFInnerList(`("a" "b");created=5`)
	if err != nil || len(il.items) != 2 || il.String() != `("a" "b");created=5` {
		t.Fatalf("inner list: %+v %v", il, err)
	}
	if _, err := parseSFInnerList(`("a") x`); err == nil {
		t.Fatal("trailing garbage accepted")
	}
}

func TestSFSerializeRejects(t *testing.T) {
	for _, b := range []sfBare{
		sfInt(1_000_000_000_000_000),
		sfStr("line\nbreak"),
		sfStr("é"),
		sfTok("1abc"),
		sfTok(""),
		{kind: 0},
		{kind: sfDecimal, num: 1_000_000_000_000_000},
	} {
		var w strings.Builder
		if err := b.serialize(&w); err == nil {
			t.Errorf("serialize %+v succeeded: %q", b, w.String())
		}
	}
	if _, err := (sfDict{{key: "Bad"}}).serialize(); err == nil {
		t.Error("uppercase key serialized")
	}
	if _, err := (sfDict{{key: "a", item: sfItem{bare: sfInt(1), params: sfParams{{key: "X", val: sfInt(1)}}}}}).serialize(); err == nil {
		t.Error("uppercase parameter key serialized")
	}
	if s := (sfInnerList{items: []sfItem{{bare: sfStr("\x00")}}}).String(); s != "" {
		t.Errorf("invalid inner list serialized to %q", s)
	}
}

func TestSFBytesRoundTrip(t *testing.T) {
	for n := 0; n < 70; n++ {
		b := bytes.Repeat([]byte{byte(n)}, n)
		s, err := sfDict{{key: "k", item: sfItem{bare: sfBytesOf(b)}}}.serialize()
		if err != nil {
			t.Fatal(err)
		}
		d, err := parseSFDictionary(s)
		if err != nil || !bytes.Equal(d[0].item.bare.b, b) {
			t.Fatalf("%d bytes: %q -> %v %v", n, s, d, err)
		}
	}
}
