package zmachine

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		err  string
	}{
		{in: "/bin/httpd -f -p 80", want: []string{"/bin/httpd", "-f", "-p", "80"}},
		{in: "  sh  -c 'echo \"hi\"; sleep 1'  ", want: []string{"sh", "-c", `echo "hi"; sleep 1`}},
		{in: `echo "a \"b\" \$HOME \n" c\ d ''`, want: []string{"echo", `a "b" $HOME \n`, "c d", ""}},
		{in: `a"b"'c'd`, want: []string{"abcd"}},
		{in: "", err: "no command"},
		{in: " \t\n", err: "no command"},
		{in: "sh -c 'x", err: "unterminated single quote"},
		{in: `sh -c "x`, err: "unterminated double quote"},
		{in: `sh \`, err: "a backslash ends the command"},
	}
	for _, c := range cases {
		got, err := SplitCommand(c.in)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("SplitCommand(%q) = %q, %v; want error %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("SplitCommand(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// FuzzSplitCommand: any input splits or fails without panicking, and a
// command made of words quoted with single quotes splits back into them.
func FuzzSplitCommand(f *testing.F) {
	for _, s := range []string{"/bin/sh -c 'echo hi'", `a "b\"c" d\ e`, "'", `"`, `\`, ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args, err := SplitCommand(s)
		if err != nil {
			return
		}
		if len(args) == 0 {
			t.Fatalf("%q: no error and no argument", s)
		}
		var q []string
		for _, a := range args {
			q = append(q, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
		}
		again, err := SplitCommand(strings.Join(q, " "))
		if err != nil || !slices.Equal(again, args) {
			t.Fatalf("%q → %q → %q, %v", s, args, again, err)
		}
	})
}

// TestImageKernel: an image with one kernel and its modules boots it; one
// without, or with several, boots the node's.
func TestImageKernel(t *testing.T) {
	root := t.TempDir()
	if got := imageKernel(root); got != "" {
		t.Fatalf("no kernel: %q", got)
	}
	mk := func(p string, dir bool) {
		p = filepath.Join(root, p)
		if dir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			return
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("kernel"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("boot/vmlinuz-6.1.0-1", false)
	if got := imageKernel(root); got != "" {
		t.Fatalf("a kernel without its modules: %q", got)
	}
	mk("lib/modules/6.1.0-1", true)
	if got := imageKernel(root); got != root {
		t.Fatalf("a kernel with its modules: %q", got)
	}
	mk("boot/vmlinuz-6.1.0-2", false)
	if got := imageKernel(root); got != "" {
		t.Fatalf("two kernels: %q", got)
	}
}
