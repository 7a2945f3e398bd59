package zosapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/grid4/grid4/node/zosapi"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/netlightd"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/provisiond/netlight"
	"github.com/grid4/grid4/node/provisiond/qsfs"
	"github.com/grid4/grid4/node/provisiond/volume"
	"github.com/grid4/grid4/node/provisiond/zlogs"
	"github.com/grid4/grid4/node/provisiond/zmachine"
	"github.com/grid4/grid4/node/provisiond/zmount"
	"github.com/grid4/grid4/node/storaged"
	"github.com/grid4/grid4/node/storaged/storagetest"
	zosclient "github.com/grid4/grid4/node/zosapi/client"
	"github.com/grid4/grid4/registrar"
	regclient "github.com/grid4/grid4/registrar/client"
	"github.com/grid4/grid4/store"
)

// startRegistrar runs the real registrar on a fresh SQLite database.
func startRegistrar(t testing.TB) string {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "registrar.db"))
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := registrar.DefaultConfig()
	cfg.RateIP, cfg.RateTwin = 0, 0
	srv, err := registrar.New(cfg, registrar.Deps{Store: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("registrar.New: %v", err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

// twin is a user with an account on the registrar.
type twin struct {
	id  uint64
	key keys.KeyPair
}

func newTwin(t testing.TB, registrarURL string, scheme keys.Scheme) twin {
	t.Helper()
	kp, err := keys.Generate(scheme)
	if err != nil {
		t.Fatal(err)
	}
	c, err := regclient.New(registrarURL, regclient.WithIdentity(kp, 0))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := c.CreateAccount(context.Background(), regclient.AccountOptions{})
	if err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	return twin{id: acc.TwinID, key: kp}
}

// journal records what fake managers are asked to do.
type journal struct {
	mu  sync.Mutex
	ops []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	j.ops = append(j.ops, s)
	j.mu.Unlock()
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.ops)
}

// fakeMachines stands in for ZMachineLight on hosts without a hypervisor:
// it records operations and writes a boot line to the machine's console
// log (where ZLogs reads).
type fakeMachines struct {
	j      *journal
	logDir string
	// block, when it names a workload, makes Provision create the file
	// <logDir>/blocked and wait until the context ends.
	block string
}

func (f fakeMachines) Provision(ctx context.Context, t provisiond.Task) (any, error) {
	f.j.add("provision " + t.Workload.Name)
	if t.Workload.Name == f.block {
		if err := os.WriteFile(filepath.Join(f.logDir, "blocked"), nil, 0o600); err != nil {
			return nil, err
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	log := filepath.Join(f.logDir, t.ID()+".log")
	fh, err := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	fmt.Fprintf(fh, "%s booted\n", t.Workload.Name)
	return map[string]string{"console": log}, nil
}

func (f fakeMachines) Deprovision(_ context.Context, t provisiond.Task) error {
	f.j.add("deprovision " + t.Workload.Name)
	return nil
}

func (f fakeMachines) Update(_ context.Context, t provisiond.Task) (any, error) {
	f.j.add("update " + t.Workload.Name)
	return nil, nil
}

func (f fakeMachines) Pause(_ context.Context, t provisiond.Task) error {
	f.j.add("pause " + t.Workload.Name)
	return nil
}

func (f fakeMachines) Resume(_ context.Context, t provisiond.Task) error {
	f.j.add("resume " + t.Workload.Name)
	return nil
}

// node is a node under test: engine, managers and API server.
type node struct {
	engine   *provisiond.Engine
	server   *zosapi.Server
	url      string
	dir      string
	machines *journal
	zlogs    *zlogs.Manager
	zmount   *zmount.Manager
	cancel   context.CancelFunc
	done     chan error
}

// nodeOptions vary the node.
type nodeOptions struct {
	capacity provisiond.CapacityProvider
	block    string
	// realMachines uses the real zmachine manager (which fails here:
	// this node has no flistd nor backends) instead of the fake.
	realMachines bool
}

// buildNode assembles a node in dir against the registrar; it does not run
// the engine or serve. The crash test's child process uses it too.
func buildNode(dir, registrarURL string, o nodeOptions) (*node, error) {
	logDir := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return nil, err
	}
	storage, err := storaged.New(storaged.Config{Dir: filepath.Join(dir, "storage"), Seeker: storagetest.FastDisk})
	if err != nil {
		return nil, err
	}
	zm, err := zmount.New(storage)
	if err != nil {
		return nil, err
	}
	vol, err := volume.New(volume.Config{Storage: storage, Mode: volume.Accounting})
	if err != nil {
		return nil, err
	}
	zl, err := zlogs.New(zlogs.Config{LogDir: logDir, Poll: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	qs, err := qsfs.New(qsfs.Config{Dir: filepath.Join(dir, "qsfs"), Storage: storage})
	if err != nil {
		return nil, err
	}
	j := &journal{}
	var machines provisiond.Manager = fakeMachines{j: j, logDir: logDir, block: o.block}
	if o.realMachines {
		if machines, err = zmachine.New(zmachine.Config{Dir: filepath.Join(dir, "machines"), LogDir: logDir}); err != nil {
			return nil, err
		}
	}
	var networks provisiond.Manager = fakeMachines{j: j, logDir: logDir}
	if os.Geteuid() == 0 {
		// Namespaces need root; without, the network part is only recorded.
		nets, err := netlightd.New(netlightd.Config{Dir: filepath.Join(dir, "netlight"), Salt: dir})
		if err != nil {
			return nil, err
		}
		if networks, err = netlight.New(netlight.Config{Networks: nets}); err != nil {
			return nil, err
		}
	}
	managers := map[gridtypes.WorkloadType]provisiond.Manager{
		gridtypes.ZMountType:        zm,
		gridtypes.VolumeType:        vol,
		gridtypes.QuantumSafeFSType: qs,
		gridtypes.NetworkLightType:  networks,
		gridtypes.ZMachineLightType: machines,
		gridtypes.ZLogsType:         zl,
	}
	reg, err := regclient.New(registrarURL)
	if err != nil {
		return nil, err
	}
	tk := zosapi.NewTwinKeyCache(reg, zosapi.KeyCacheConfig{})
	capacity := o.capacity
	if capacity == nil {
		capacity = provisiond.FixedCapacity{CRU: 16, MRU: 64 * gridtypes.GiB, SRU: 100 * gridtypes.GiB, HRU: 0, IPv4: 0}
	}
	e, err := provisiond.Open(provisiond.Config{Dir: filepath.Join(dir, "provision"), Managers: managers, Keys: tk, Capacity: capacity})
	if err != nil {
		return nil, err
	}
	srv, err := zosapi.New(zosapi.Config{Engine: e, Keys: tk, NodeVersion: "v0.0.0-test", NodeID: 9, TwinID: 99})
	if err != nil {
		return nil, err
	}
	return &node{engine: e, server: srv, dir: dir, machines: j, zlogs: zl, zmount: zm}, nil
}

// startNode runs a node in a temp dir until the test ends.
func startNode(t *testing.T, registrarURL string, o nodeOptions) *node {
	t.Helper()
	n, err := buildNode(t.TempDir(), registrarURL, o)
	if err != nil {
		t.Fatal(err)
	}
	e, srv := n.engine, n.server
	ts := httptest.NewServer(srv.Handler())
	n.url = ts.URL
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.done = cancel, make(chan error, 1)
	go func() { n.done <- e.Run(ctx) }()
	t.Cleanup(func() {
		ts.Close()
		cancel()
		if err := <-n.done; err != nil {
			t.Errorf("engine: %v", err)
		}
		n.zlogs.Close()
		e.Close()
	})
	return n
}

func (n *node) client(t testing.TB, tw twin) *zosclient.Client {
	t.Helper()
	c, err := zosclient.New(n.url, tw.key, tw.id, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitDone polls deployment.get until nothing is pending.
func waitDone(t testing.TB, c *zosclient.Client, id uint64) gridtypes.Record {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := c.Get(context.Background(), id)
		if err != nil {
			t.Fatalf("get %d: %v", id, err)
		}
		if r.Pending == "" {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("deployment %d still pending %q", id, r.Pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func raw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func stateOf(r gridtypes.Record, name string) gridtypes.State {
	w, ok := r.Deployment.Get(name)
	if !ok || w.Result == nil {
		return ""
	}
	return w.Result.State
}
