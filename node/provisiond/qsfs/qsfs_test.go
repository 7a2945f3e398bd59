package qsfs

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/storaged"
	"github.com/grid4/grid4/node/storaged/storagetest"
)

func data() gridtypes.QSFSData {
	b := func(a, ns string) gridtypes.QSFSBackend {
		return gridtypes.QSFSBackend{Address: a, Namespace: ns, Password: "pa\"ss\\\x01é"}
	}
	return gridtypes.QSFSData{
		Cache: 256 * gridtypes.MiB, MinimalShards: 2, ExpectedShards: 3,
		EncryptionKey: strings.Repeat("ab", 32), Compression: "snappy",
		Metadata: gridtypes.QSFSMetadata{Prefix: "fs1", Backends: []gridtypes.QSFSBackend{b("[2001:db8::1]:9900", "meta")}},
		Groups:   []gridtypes.QSFSGroup{{Backends: []gridtypes.QSFSBackend{b("[2001:db8::2]:9900", "d1"), b("10.0.0.3:9900", "d2"), b("10.0.0.4:9900", "d3")}}},
	}
}

func TestMissingTools(t *testing.T) {
	d := data()
	raw, _ := json.Marshal(d)
	tk := provisiond.Task{TwinID: 1, DeploymentID: 1, Workload: gridtypes.Workload{Name: "fs", Type: gridtypes.QuantumSafeFSType, Data: raw}}
	s := storagetest.New(t)
	m, _ := New(Config{Dir: t.TempDir(), Storage: s, Fuse: "/nonexistent/fuse"})
	_, err := m.Provision(context.Background(), tk)
	if !errors.Is(err, ErrUnsupported) || err.Error() != "quantum-safe-fs: quantum-safe file systems unsupported on this node: /nonexistent/fuse not present" {
		t.Fatalf("error %v", err)
	}
	m, _ = New(Config{Dir: t.TempDir(), Storage: s, Fuse: t.TempDir(), Zstor: "zstor-not-installed"})
	_, err = m.Provision(context.Background(), tk)
	if err == nil || !strings.HasSuffix(err.Error(), "zstor-not-installed not found in PATH") {
		t.Fatalf("error %v", err)
	}
	if err := m.Deprovision(context.Background(), tk); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(context.Background(), tk.ID()); !errors.Is(err, storaged.ErrNotFound) {
		t.Fatalf("a cache was allocated for a workload the node cannot run: %v", err)
	}
}

// TestRestore: a workload whose cache storaged no longer has fails its
// restore; one whose cache is there fails naming what the host lacks
// (nothing of QSFS is installed on the test machine).
func TestRestore(t *testing.T) {
	d := data()
	raw, _ := json.Marshal(d)
	tk := provisiond.Task{TwinID: 1, DeploymentID: 1, Workload: gridtypes.Workload{Name: "fs", Type: gridtypes.QuantumSafeFSType, Data: raw}}
	s := storagetest.New(t)
	m, err := New(Config{Dir: t.TempDir(), Storage: s, Fuse: "/nonexistent/fuse"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := m.Restore(ctx, tk); !errors.Is(err, storaged.ErrNotFound) {
		t.Fatalf("restore without a cache: %v", err)
	}
	if _, err := s.Allocate(ctx, storaged.Request{ID: tk.ID(), Kind: storaged.QSFSCache, Size: d.Cache}); err != nil {
		t.Fatal(err)
	}
	if err := m.Restore(ctx, tk); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("restore on a host without QSFS: %v", err)
	}
	if err := m.Deprovision(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, tk.ID()); !errors.Is(err, storaged.ErrNotFound) {
		t.Fatalf("cache kept after deprovision: %v", err)
	}
	if _, err := New(Config{Dir: t.TempDir()}); err == nil {
		t.Fatal("New accepted no storage")
	}
}

// TestZstorConfigIsTOML parses the rendered configuration back.
func TestZstorConfigIsTOML(t *testing.T) {
	d := data()
	var conf struct {
		MinimalShards  int    `toml:"minimal_shards"`
		ExpectedShards int    `toml:"expected_shards"`
		Mountpoint     string `toml:"zdbfs_mountpoint"`
		Encryption     struct{ Algorithm, Key string }
		Compression    struct{ Algorithm string }
		Meta           struct {
			Type   string
			Config struct {
				Prefix   string
				Backends []struct{ Address, Namespace, Password string }
			}
		}
		Groups []struct {
			Backends []struct{ Address, Namespace, Password string }
		}
	}
	if _, err := toml.Decode(ZstorConfig(&d, "/var/qsfs/1-1-fs", "/var/pool/qsfs/1-1-fs"), &conf); err != nil {
		t.Fatalf("%v\n%s", err, ZstorConfig(&d, "/var/qsfs/1-1-fs", "/var/pool/qsfs/1-1-fs"))
	}
	if conf.MinimalShards != 2 || conf.ExpectedShards != 3 || conf.Mountpoint != "/var/qsfs/1-1-fs/mnt" ||
		conf.Encryption.Key != d.EncryptionKey || conf.Compression.Algorithm != "snappy" ||
		conf.Meta.Config.Prefix != "fs1" || conf.Meta.Config.Backends[0].Password != "pa\"ss\\\x01é" ||
		len(conf.Groups) != 1 || len(conf.Groups[0].Backends) != 3 || conf.Groups[0].Backends[1].Address != "10.0.0.3:9900" {
		t.Fatalf("parsed %+v", conf)
	}
}
