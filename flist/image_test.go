package flist

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestImageRoundTrip(t *testing.T) {
	plain := &Flist{Entries: []Entry{dir("bin"), file("bin/sh", "x")}}
	before := plain.ID()
	im := &Image{
		Entrypoint: []string{"/bin/busybox", "httpd", "-f", "-p", "80"},
		Cmd:        []string{"-h", "/www"},
		Env:        []string{"PATH=/usr/bin:/bin", "GREETING=a \"quoted\" \\ tab\there\nnewline\x7f"},
		WorkingDir: "/www",
		User:       "1000:1000",
	}
	f := &Flist{Entries: plain.Entries, Image: im}
	doc := f.Encode()
	want := `,"format":"grid4-flist/1","image":{"cmd":["-h","/www"],"entrypoint":["/bin/busybox","httpd","-f","-p","80"],` +
		`"env":["PATH=/usr/bin:/bin","GREETING=a \"quoted\" \\ tab\u0009here\u000anewline\u007f"],"user":"1000:1000","working_dir":"/www"}}`
	if !strings.HasSuffix(string(doc), want) {
		t.Fatalf("encoding:\n%s\nwant suffix\n%s", doc, want)
	}
	got, err := Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Image, im) {
		t.Fatalf("image after parse: %+v, want %+v", got.Image, im)
	}
	if got.ID() != f.ID() || f.ID() == before {
		t.Fatal("the image is part of the identity")
	}
	// A plain flist keeps its document (and ID): no "image" member.
	if plain.ID() != before || strings.Contains(string(plain.Encode()), "image") {
		t.Fatal("a plain flist changed")
	}

	// Members are omitted when empty; an image with nothing is {}.
	f = &Flist{Entries: []Entry{}, Image: &Image{Cmd: []string{"sh"}}}
	if s := string(f.Encode()); s != `{"entries":[],"format":"grid4-flist/1","image":{"cmd":["sh"]}}` {
		t.Fatalf("sparse image: %s", s)
	}
	f.Image = &Image{}
	if s := string(f.Encode()); s != `{"entries":[],"format":"grid4-flist/1","image":{}}` {
		t.Fatalf("empty image: %s", s)
	}
	if p, err := Parse(f.Encode()); err != nil || p.Image == nil || !p.Image.IsZero() {
		t.Fatalf("empty image: %+v %v", p, err)
	}
}

func TestImageRefuses(t *testing.T) {
	long := strings.Repeat("x", MaxImageString+1)
	many := make([]string, MaxImageList+1)
	for i := range many {
		many[i] = "a"
	}
	big := make([]string, MaxImageSize/MaxImageString+1)
	for i := range big {
		big[i] = strings.Repeat("y", MaxImageString)
	}
	bad := map[string]*Image{
		"env without =":     {Env: []string{"PATH"}},
		"env with no key":   {Env: []string{"=x"}},
		"too long a string": {Cmd: []string{long}},
		"too many entries":  {Entrypoint: many},
		"too much in all":   {Cmd: big},
		"NUL":               {User: "a\x00b"},
		"invalid UTF-8":     {WorkingDir: "/\xff"},
	}
	for name, im := range bad {
		f := &Flist{Entries: []Entry{}, Image: im}
		if err := f.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate: %v", name, err)
		}
		if _, err := Parse(f.Encode()); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Parse: %v", name, err)
		}
	}
	// Other spellings of the same content are not canonical.
	for _, doc := range []string{
		`{"entries":[],"format":"grid4-flist/1","image":null}`,
		`{"entries":[],"format":"grid4-flist/1","image":{"cmd":[]}}`,
		`{"entries":[],"format":"grid4-flist/1","image":{"user":""}}`,
		`{"entries":[],"format":"grid4-flist/1","image":{"entrypoint":["a"],"cmd":["b"]}}`,
		`{"entries":[],"format":"grid4-flist/1","image":{"cmd":["a\tb"]}}`,
		`{"entries":[],"format":"grid4-flist/1","image":{"cmd":["a\u000Ab"]}}`,
		`{"entries":[],"format":"grid4-flist/1","image":{"cmd":["a` + "\x7f" + `b"]}}`,
		`{"entries":[],"format":"grid4-flist/1","image":{"labels":{}}}`,
		`{"entries":[],"format":"grid4-flist/1","image":{"cmd":["\u0061"]}}`,
	} {
		if _, err := Parse([]byte(doc)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%s): %v", doc, err)
		}
	}
}
