package hostinfo

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"
)

// loadTree unpacks testdata/<name>.txtar into a temporary directory and
// returns it (see testdata/README.md for the conventions).
func loadTree(t *testing.T, name string) string {
	t.Helper()
	ar, err := txtar.ParseFile(filepath.Join("testdata", name+".txtar"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, f := range ar.Files {
		data, rel := f.Data, f.Name
		if base, ok := strings.CutSuffix(rel, ".hex"); ok {
			if data, err = hex.DecodeString(strings.TrimSpace(string(data))); err != nil {
				t.Fatalf("%s: %s: %v", name, f.Name, err)
			}
			rel = base
		}
		writeFile(t, root, rel, string(data))
	}
	return root
}

// writeFile writes data to rel under root, creating directories.
func writeFile(t *testing.T, root, rel, data string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// newProber returns a Prober on root with addrs as its address source.
func newProber(t *testing.T, root, iface string, addrs AddrSource) *Prober {
	t.Helper()
	p, err := New(Config{Root: root, Interface: iface, Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeAddrs is an AddrSource over a fixed table; a missing name is an
// error, as for a live interface that does not exist.
type fakeAddrs map[string][]string

func (f fakeAddrs) Addrs(name string) ([]netip.Prefix, error) {
	list, ok := f[name]
	if !ok {
		return nil, fmt.Errorf("interface %s: no such network interface", name)
	}
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out, nil
}
