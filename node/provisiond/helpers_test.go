package provisiond

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/keys"
)

// twins is an in-memory TwinKeys with key pairs to sign with.
type twins struct {
	mu   sync.Mutex
	keys map[uint64]keys.KeyPair
}

func newTwins(t testing.TB, ids ...uint64) *twins {
	t.Helper()
	tw := &twins{keys: map[uint64]keys.KeyPair{}}
	for i, id := range ids {
		scheme := keys.Ed25519
		if i%2 == 1 {
			scheme = keys.Sr25519
		}
		kp, err := keys.Generate(scheme)
		if err != nil {
			t.Fatal(err)
		}
		tw.keys[id] = kp
	}
	return tw
}

func (tw *twins) TwinPublicKey(_ context.Context, id uint64) ([]byte, error) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	kp, ok := tw.keys[id]
	if !ok {
		return nil, fmt.Errorf("twin %d: %w", id, auth.ErrUnknownTwin)
	}
	return kp.Public().Key, nil
}

func (tw *twins) sign(t testing.TB, d *gridtypes.Deployment, ids ...uint64) {
	t.Helper()
	if len(ids) == 0 {
		ids = []uint64{d.TwinID}
	}
	for _, id := range ids {
		if err := d.Sign(id, tw.keys[id]); err != nil {
			t.Fatal(err)
		}
	}
}

// journal records the operations of recording managers, in order.
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

func (j *journal) reset() {
	j.mu.Lock()
	j.ops = nil
	j.mu.Unlock()
}

// recorder is a manager that records "<op> <workload>" and can be told to
// fail or block on a workload.
type recorder struct {
	j *journal
	// fail maps a workload name to the error its Provision returns.
	fail map[string]error
	// block, when set for a workload, makes Provision wait for the
	// channel to close (or ctx to end).
	block map[string]chan struct{}
	// started receives the workload name when a blocked Provision starts.
	started chan string
	// updated maps a workload name to the state its last Update was given.
	updated map[string]gridtypes.State
	mu      sync.Mutex
}

func (r *recorder) Provision(ctx context.Context, t Task) (any, error) {
	r.j.add("provision " + t.Workload.Name)
	r.mu.Lock()
	ch, err := r.block[t.Workload.Name], r.fail[t.Workload.Name]
	r.mu.Unlock()
	if ch != nil {
		if r.started != nil {
			r.started <- t.Workload.Name
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	return map[string]string{"id": t.ID()}, nil
}

func (r *recorder) Deprovision(_ context.Context, t Task) error {
	r.j.add("deprovision " + t.Workload.Name)
	return nil
}

// updatingRecorder also updates in place and pauses.
type updatingRecorder struct{ *recorder }

func (r updatingRecorder) Update(_ context.Context, t Task) (any, error) {
	r.j.add("update " + t.Workload.Name)
	r.mu.Lock()
	if r.updated == nil {
		r.updated = map[string]gridtypes.State{}
	}
	r.updated[t.Workload.Name] = t.State
	r.mu.Unlock()
	return nil, nil
}

func (r updatingRecorder) Pause(_ context.Context, t Task) error {
	r.j.add("pause " + t.Workload.Name)
	return nil
}

func (r updatingRecorder) Resume(_ context.Context, t Task) error {
	r.j.add("resume " + t.Workload.Name)
	return nil
}

// managers returns recording managers for every type: machines and log
// streams update and pause in place, the rest are redeployed.
func managers(rec *recorder) map[gridtypes.WorkloadType]Manager {
	m := map[gridtypes.WorkloadType]Manager{}
	for _, t := range gridtypes.Types() {
		m[t] = rec
	}
	m[gridtypes.ZMachineLightType] = updatingRecorder{rec}
	m[gridtypes.ZLogsType] = updatingRecorder{rec}
	return m
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// sample is a deployment of twin with one workload of every type, listed
// out of processing order on purpose.
func sample(twin uint64) gridtypes.Deployment {
	return gridtypes.Deployment{
		TwinID:      twin,
		Description: "every type",
		Workloads: []gridtypes.Workload{
			{Name: "logs", Type: gridtypes.ZLogsType, Data: raw(`{"zmachine":"vm","output":"ws://127.0.0.1:9/logs"}`)},
			{Name: "vm", Type: gridtypes.ZMachineLightType, Data: raw(`{"flist":"https://hub.grid.tf/tf-official-apps/base:latest.flist","entrypoint":"/sbin/zinit init","env":{"SSH_KEY":"ssh-ed25519 AAAA"},"compute_capacity":{"cpu":2,"memory":1073741824},"size":10737418240,"network":{"interfaces":[{"network":"net","ip":"10.20.1.5"}],"public_ip":"ip"},"mounts":[{"name":"disk","mountpoint":"/data"},{"name":"vol","mountpoint":"/vol"}],"corex":false}`)},
			{Name: "net", Type: gridtypes.NetworkLightType, Data: raw(`{"subnet":"10.20.1.0/24"}`)},
			{Name: "disk", Type: gridtypes.ZMountType, Data: raw(`{"size":1073741824}`)},
			{Name: "ip", Type: gridtypes.PublicIPv4Type, Data: raw(`{}`)},
			{Name: "vol", Type: gridtypes.VolumeType, Data: raw(`{"size":2147483648}`)},
			{Name: "fs", Type: gridtypes.QuantumSafeFSType, Data: raw(`{"cache":1073741824,"minimal_shards":2,"expected_shards":3,"redundant_groups":0,"redundant_nodes":0,"encryption_key":"4d778ba3216e4da4231540c92a55f06157cabba802f9b68fb0f78375d2e825af","compression":"snappy","metadata":{"prefix":"fs1","backends":[{"address":"[2001:db8::1]:9900","namespace":"meta1","password":"secret"}]},"groups":[{"backends":[{"address":"[2001:db8::2]:9900","namespace":"d1","password":""},{"address":"[2001:db8::3]:9900","namespace":"d2","password":""},{"address":"10.0.0.4:9900","namespace":"d3","password":""}]}]}`)},
		},
	}
}

// bigCapacity fits anything the tests deploy.
var bigCapacity = FixedCapacity{CRU: 64, MRU: 256 * gridtypes.GiB, SRU: 10 * gridtypes.TiB, HRU: 10 * gridtypes.TiB, IPv4: 4}

type testEngine struct {
	*Engine
	rec    *recorder
	twins  *twins
	cancel context.CancelFunc
	done   chan error
}

// newEngine opens an engine in a temp dir with recording managers for
// twins 1, 2 and 3, and runs it until the test ends.
func newEngine(t *testing.T, capacity CapacityProvider) *testEngine {
	t.Helper()
	if capacity == nil {
		capacity = bigCapacity
	}
	rec := &recorder{j: &journal{}, fail: map[string]error{}, block: map[string]chan struct{}{}}
	tw := newTwins(t, 1, 2, 3)
	e, err := Open(Config{Dir: t.TempDir(), Managers: managers(rec), Keys: tw, Capacity: capacity, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	te := &testEngine{Engine: e, rec: rec, twins: tw, cancel: cancel, done: make(chan error, 1)}
	go func() { te.done <- e.Run(ctx) }()
	t.Cleanup(func() {
		te.stop(t)
		e.Close()
	})
	return te
}

func (te *testEngine) stop(t *testing.T) {
	te.cancel()
	select {
	case err := <-te.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		te.done <- nil
	case <-time.After(10 * time.Second):
		t.Error("Run did not stop")
	}
}

func (te *testEngine) deploy(t *testing.T, d gridtypes.Deployment) gridtypes.Record {
	t.Helper()
	te.twins.sign(t, &d)
	r, err := te.Deploy(context.Background(), d.TwinID, d)
	if err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	return te.wait(t, r.Deployment.TwinID, r.Deployment.ID)
}

func (te *testEngine) wait(t *testing.T, twin, id uint64) gridtypes.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := te.Wait(ctx, twin, id)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return r
}

func states(r gridtypes.Record) map[string]gridtypes.State {
	out := map[string]gridtypes.State{}
	for _, w := range r.Deployment.Workloads {
		if w.Result != nil {
			out[w.Name] = w.Result.State
		}
	}
	return out
}

func wantErr(t *testing.T, err, target error, contains string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
	if contains != "" && !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %q does not mention %q", err, contains)
	}
}
