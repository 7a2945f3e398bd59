package gridctl

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestUploadProgressOnATerminal(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	p := &uploadProgress{w: &buf, tty: true, label: "uploading zos", now: func() time.Time { now = now.Add(time.Second); return now }}
	p.Start(4, 10, 4<<20)
	for range 4 {
		p.Add(1 << 20)
	}
	p.finish(true)
	out := buf.String()
	frames := strings.Split(strings.TrimSuffix(out, "\n"), "\r")
	if len(frames) < 3 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("want redrawn frames ending with a newline, got %q", out)
	}
	last := frames[len(frames)-1]
	for _, want := range []string{"uploading zos [" + strings.Repeat("=", barWidth) + "] 100%", "4.0 MiB / 4.0 MiB", "4/4 blocks", "/s"} {
		if !strings.Contains(last, want) {
			t.Errorf("last frame %q lacks %q", last, want)
		}
	}
	if !strings.Contains(frames[1], "[>"+strings.Repeat(" ", barWidth-1)+"]   0%") {
		t.Errorf("first frame %q", frames[1])
	}
}

func TestUploadProgressPlain(t *testing.T) {
	var buf bytes.Buffer
	p := &uploadProgress{w: &buf, label: "uploading zos", now: time.Now}
	p.Start(8, 8, 8000)
	for range 8 {
		p.Add(1000)
	}
	p.finish(true)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 5 || !strings.Contains(lines[1], "25%") || !strings.Contains(lines[3], "75%") || !strings.Contains(lines[4], "done, 8 blocks") {
		t.Fatalf("plain progress:\n%s", buf.String())
	}
	if strings.ContainsAny(buf.String(), "\r\x1b") {
		t.Fatal("control characters in plain mode")
	}
	buf.Reset()
	p.Start(0, 5, 0)
	p.finish(true)
	if buf.String() != "uploading zos: all 5 blocks already on the hub\n" {
		t.Fatalf("nothing to upload: %q", buf.String())
	}
}

func TestParseRepoRef(t *testing.T) {
	for in, want := range map[string]repoRef{
		"tf":              {publisher: "tf"},
		"tf/zos":          {publisher: "tf", repo: "zos"},
		"tf/zos:v4.1.2":   {publisher: "tf", repo: "zos", name: "v4.1.2"},
		"tf/zos:v4+b.1-x": {publisher: "tf", repo: "zos", name: "v4+b.1-x"},
	} {
		got, err := parseRepoRef(in, true, true)
		if err != nil || got != want {
			t.Errorf("parseRepoRef(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "/zos", "tf/", "tf:v1", "tf/zos:", "tf/zos/x", "tf/../x", "tf/zos:a:b"} {
		if _, err := parseRepoRef(in, true, true); err == nil {
			t.Errorf("parseRepoRef(%q) succeeded", in)
		}
	}
	if _, err := parseRepoRef("tf", false, false); err == nil {
		t.Error("a publisher alone accepted where a repository is needed")
	}
	if _, err := parseRepoRef("tf/zos:v1", false, false); err == nil {
		t.Error("a tag accepted where none is allowed")
	}
}
