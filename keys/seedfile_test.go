package keys

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestSeedFileRoundTrip(t *testing.T) {
	for _, s := range []Scheme{Ed25519, Sr25519} {
		t.Run(string(s), func(t *testing.T) {
			kp, err := Generate(s)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "seed.json")
			if err := WriteSeedFile(path, kp); err != nil {
				t.Fatal(err)
			}
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if runtime.GOOS != "windows" && info.Mode().Perm() != 0o600 {
				t.Fatalf("mode %04o, want 0600", info.Mode().Perm())
			}
			got, err := ReadSeedFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got.Scheme() != s || !bytes.Equal(got.Public().Key, kp.Public().Key) || !bytes.Equal(got.Seed(), kp.Seed()) {
				t.Fatal("read back another key")
			}
			// No temporary files are left behind.
			entries, err := os.ReadDir(filepath.Dir(path))
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Fatalf("directory holds %d entries, want 1", len(entries))
			}
		})
	}
}

// The documented format, byte for byte, for a fixed key, so a change to the
// format cannot slip in unnoticed.
func TestSeedFileFormat(t *testing.T) {
	kp, err := FromSeed(Ed25519, mustHex(t, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := marshalSeedFile(kp)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":1,"scheme":"ed25519","seed":"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60","checksum":"` +
		seedFileChecksum(Ed25519, kp.Seed()) + "\"}\n"
	if string(data) != want {
		t.Fatalf("seed file is\n%s\nwant\n%s", data, want)
	}
	if got := seedFileChecksum(Ed25519, kp.Seed()); len(got) != 16 {
		t.Fatalf("checksum %q is not 16 hex digits", got)
	}
}

func TestWriteSeedFileRefusesToReplace(t *testing.T) {
	kp, err := Generate(Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "seed.json")
	if err := WriteSeedFile(path, kp); err != nil {
		t.Fatal(err)
	}
	other, err := Generate(Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteSeedFile(path, other); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("err = %v, want fs.ErrExist", err)
	}
	got, err := ReadSeedFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Public().Key, kp.Public().Key) {
		t.Fatal("the first identity was replaced")
	}
}

func TestWriteSeedFileRefusesSeedlessKey(t *testing.T) {
	soft, err := FromSecretURI(Sr25519, DevPhrase+"/soft")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "seed.json")
	if err := WriteSeedFile(path, soft); !errors.Is(err, ErrNoSeed) {
		t.Fatalf("err = %v, want ErrNoSeed", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a file was written")
	}
	// A foreign KeyPair whose seed is not its key's.
	if err := WriteSeedFile(path, fakePair{}); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("mismatched seed: err = %v, want ErrInvalidKey", err)
	}
}

func TestReadSeedFileMissing(t *testing.T) {
	_, err := ReadSeedFile(filepath.Join(t.TempDir(), "nope.json"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
	if errors.Is(err, ErrCorruptSeedFile) {
		t.Fatal("a missing file is reported as corrupt")
	}
}

func TestReadSeedFileCorrupt(t *testing.T) {
	kp, err := FromSeed(Sr25519, mustHex(t, "e5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a"))
	if err != nil {
		t.Fatal(err)
	}
	good, err := marshalSeedFile(kp)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(old, new string) []byte {
		t.Helper()
		if !strings.Contains(string(good), old) {
			t.Fatalf("%q not in %s", old, good)
		}
		return []byte(strings.Replace(string(good), old, new, 1))
	}
	cases := map[string][]byte{
		"empty":             {},
		"whitespace":        []byte(" \n"),
		"truncated":         good[:len(good)/2],
		"truncated at end":  good[:len(good)-3],
		"garbage":           []byte("\x00\x01\x02 not a seed file"),
		"bare hex seed":     []byte("e5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a\n"),
		"json array":        []byte(`[1,2,3]`),
		"no version":        []byte(`{"scheme":"sr25519"}`),
		"version 2":         flip(`"version":1`, `"version":2`),
		"version 0":         flip(`"version":1`, `"version":0`),
		"version string":    flip(`"version":1`, `"version":"1"`),
		"changed seed":      flip(`"seed":"e5`, `"seed":"e6`),
		"changed scheme":    flip(`"sr25519"`, `"ed25519"`),
		"unknown scheme":    flip(`"sr25519"`, `"ecdsa"`),
		"short seed":        flip(`"seed":"e5`, `"seed":"`),
		"non-hex seed":      flip(`"seed":"e5`, `"seed":"zz`),
		"changed checksum":  flip(`"checksum":"`, `"checksum":"0`),
		"no checksum":       []byte(`{"version":1,"scheme":"sr25519","seed":"e5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a"}`),
		"unknown field":     flip(`{`, `{"extra":true,`),
		"trailing data":     append(bytes.Clone(good), []byte(`{}`)...),
		"two documents":     append(bytes.Clone(good), good...),
		"oversized":         append(bytes.Clone(good), bytes.Repeat([]byte(" "), maxSeedFileSize)...),
		"checksum as array": flip(`"checksum":"`, `"checksum":["`),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := parseSeedFile(data); !errors.Is(err, ErrCorruptSeedFile) {
				t.Fatalf("parse: err = %v, want ErrCorruptSeedFile", err)
			}
			path := filepath.Join(t.TempDir(), "seed.json")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := ReadSeedFile(path)
			if !errors.Is(err, ErrCorruptSeedFile) || errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("read: err = %v, want ErrCorruptSeedFile and not fs.ErrNotExist", err)
			}
			// The corrupt file is left exactly as it was.
			after, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(after, data) {
				t.Fatal("the corrupt file was changed")
			}
		})
	}
	// Trailing whitespace after the document is fine.
	if _, err := parseSeedFile(append(bytes.Clone(good), "\n\n"...)); err != nil {
		t.Fatalf("trailing newlines: %v", err)
	}
}

func TestReadSeedFileNotRegular(t *testing.T) {
	_, err := ReadSeedFile(t.TempDir())
	if !errors.Is(err, ErrCorruptSeedFile) {
		t.Fatalf("directory: err = %v, want ErrCorruptSeedFile", err)
	}
}

func TestReadSeedFilePermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	kp, err := Generate(Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "seed.json")
	if err := WriteSeedFile(path, kp); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSeedFile(path); !errors.Is(err, ErrInsecureSeedFile) {
		t.Fatalf("mode 0644: err = %v, want ErrInsecureSeedFile", err)
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSeedFile(path); err != nil {
		t.Fatalf("mode 0400: %v", err)
	}
	// Unreadable: root reads anything, so only check as another user.
	if os.Geteuid() != 0 {
		if err := os.Chmod(path, 0o000); err != nil {
			t.Fatal(err)
		}
		_, err := ReadSeedFile(path)
		if !errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("mode 0000: err = %v, want fs.ErrPermission", err)
		}
	}
}

func TestParseSeedHex(t *testing.T) {
	const h = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	for _, s := range []string{h, "0x" + h, "0X" + strings.ToUpper(h)} {
		b, err := ParseSeedHex(s)
		if err != nil || hexOf(b) != h {
			t.Errorf("ParseSeedHex(%q) = %x, %v", s, b, err)
		}
	}
	for _, s := range []string{"", "0x", h[:62], h + "00", "0x0x" + h[4:], "zz" + h[2:], " " + h} {
		_, err := ParseSeedHex(s)
		if !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ParseSeedHex(%q) err = %v, want ErrInvalidKey", s, err)
		}
		if err != nil && strings.Contains(err.Error(), "9d61") {
			t.Errorf("error echoes the seed: %v", err)
		}
	}
}

func FuzzParseSeedFile(f *testing.F) {
	for _, s := range []Scheme{Ed25519, Sr25519} {
		kp, err := FromSeed(s, bytes.Repeat([]byte{7}, SeedSize))
		if err != nil {
			f.Fatal(err)
		}
		data, err := marshalSeedFile(kp)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		kp, err := parseSeedFile(data)
		if err != nil {
			if !errors.Is(err, ErrCorruptSeedFile) {
				t.Fatalf("error %v does not wrap ErrCorruptSeedFile", err)
			}
			return
		}
		// Whatever parses is a usable key that survives a write and read.
		again, err := marshalSeedFile(kp)
		if err != nil {
			t.Fatalf("parsed key does not marshal: %v", err)
		}
		kp2, err := parseSeedFile(again)
		if err != nil {
			t.Fatalf("re-marshalled file does not parse: %v", err)
		}
		if kp2.Scheme() != kp.Scheme() || !bytes.Equal(kp2.Public().Key, kp.Public().Key) {
			t.Fatal("round trip changed the key")
		}
	})
}
