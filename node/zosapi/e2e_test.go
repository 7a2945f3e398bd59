package zosapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/zosapi/api"
)

// deployment is the end-to-end deployment of owner: a disk, a volume, a
// network, a machine on it using both, and its log stream to collector.
func deployment(owner twin, collector string) gridtypes.Deployment {
	return gridtypes.Deployment{
		TwinID:      owner.id,
		Description: "e2e",
		Workloads: []gridtypes.Workload{
			{Name: "logs", Type: gridtypes.ZLogsType, Data: raw(gridtypes.ZLogsData{ZMachine: "vm", Output: collector})},
			{Name: "vm", Type: gridtypes.ZMachineLightType, Data: raw(gridtypes.ZMachineLightData{
				Flist:           "https://hub.grid.tf/tf-official-apps/base:latest.flist",
				ComputeCapacity: gridtypes.ComputeCapacity{CPU: 2, Memory: gridtypes.GiB},
				Network:         gridtypes.MachineNetwork{Interfaces: []gridtypes.MachineInterface{{Network: "net", IP: "10.99.0.5"}}},
				Mounts:          []gridtypes.MachineMount{{Name: "disk", Mountpoint: "/disk"}, {Name: "vol", Mountpoint: "/vol"}},
			})},
			{Name: "net", Type: gridtypes.NetworkLightType, Data: raw(gridtypes.NetworkLightData{Subnet: "10.99.0.0/24"})},
			{Name: "disk", Type: gridtypes.ZMountType, Data: raw(gridtypes.ZMountData{Size: 64 * gridtypes.MiB})},
			{Name: "vol", Type: gridtypes.VolumeType, Data: raw(gridtypes.VolumeData{Size: 32 * gridtypes.MiB})},
		},
	}
}

func sign(t *testing.T, d *gridtypes.Deployment, tw twin) {
	t.Helper()
	if err := d.Sign(tw.id, tw.key); err != nil {
		t.Fatal(err)
	}
}

func expectMessage(t *testing.T, lc *logCollector, want string) {
	t.Helper()
	select {
	case got := <-lc.messages:
		if got != want {
			t.Fatalf("log line %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no log line, want %q", want)
	}
}

func TestEndToEnd(t *testing.T) {
	reg := startRegistrar(t)
	alice := newTwin(t, reg, keys.Ed25519)
	bob := newTwin(t, reg, keys.Sr25519)
	n := startNode(t, reg, nodeOptions{})
	ctx := context.Background()
	ca, cb := n.client(t, alice), n.client(t, bob)
	lc := newLogCollector(t)

	// Deploy.
	d := deployment(alice, lc.url("/alice"))
	sign(t, &d, alice)
	rec, err := ca.Deploy(ctx, d)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	id := rec.Deployment.ID
	if id == 0 || rec.Pending != "deploy" || stateOf(rec, "vm") != gridtypes.StateInit {
		t.Fatalf("accepted record %+v", rec)
	}
	rec = waitDone(t, ca, id)
	for _, w := range rec.Deployment.Workloads {
		if w.Result.State != gridtypes.StateOk {
			t.Fatalf("%s: %+v", w.Name, w.Result)
		}
	}
	if got := n.machines.list(); !slices.Contains(got, "provision vm") {
		t.Fatalf("machine journal %v", got)
	}
	// The disk is a real sparse file of the asked size.
	disk, _ := rec.Deployment.Get("disk")
	var zr struct {
		Path string `json:"path"`
		Size uint64 `json:"size"`
	}
	if err := json.Unmarshal(disk.Result.Data, &zr); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(zr.Path, &st); err != nil || st.Size != int64(64*gridtypes.MiB) || st.Blocks*512 > 1<<20 {
		t.Fatalf("disk %s: size %d blocks %d err %v", zr.Path, st.Size, st.Blocks, err)
	}
	// The machine's console reaches the collector over WebSocket.
	expectMessage(t, lc, "vm booted")

	// Update: grow the disk, send logs elsewhere; the machine, volume and
	// network are not touched.
	next, err := gridtypes.PrepareUpdate(rec.Deployment, withData(rec.Deployment, map[string]any{
		"disk": gridtypes.ZMountData{Size: 128 * gridtypes.MiB},
		"logs": gridtypes.ZLogsData{ZMachine: "vm", Output: lc.url("/alice2")},
	}))
	if err != nil {
		t.Fatal(err)
	}
	sign(t, &next, alice)
	before := len(n.machines.list())
	if _, err := ca.Update(ctx, next); err != nil {
		t.Fatalf("update: %v", err)
	}
	rec = waitDone(t, ca, id)
	if rec.Deployment.Version != 1 || stateOf(rec, "disk") != gridtypes.StateOk || stateOf(rec, "logs") != gridtypes.StateOk {
		t.Fatalf("after update %+v", rec)
	}
	if touched := n.machines.list()[before:]; len(touched) != 0 {
		t.Fatalf("update touched unchanged workloads: %v", touched)
	}
	if fi, _ := os.Stat(zr.Path); fi.Size() != int64(128*gridtypes.MiB) {
		t.Fatalf("disk not grown: %d", fi.Size())
	}
	w, _ := rec.Deployment.Get("vm")
	if w.Version != 0 {
		t.Fatalf("unchanged machine has version %d", w.Version)
	}

	// Pause and resume.
	if _, err := ca.Pause(ctx, id); err != nil {
		t.Fatalf("pause: %v", err)
	}
	rec = waitDone(t, ca, id)
	if stateOf(rec, "vm") != gridtypes.StatePaused || stateOf(rec, "logs") != gridtypes.StatePaused || stateOf(rec, "disk") != gridtypes.StateOk {
		t.Fatalf("after pause %+v", rec.Deployment.Workloads)
	}
	if _, err := ca.Resume(ctx, id); err != nil {
		t.Fatalf("resume: %v", err)
	}
	rec = waitDone(t, ca, id)
	if stateOf(rec, "vm") != gridtypes.StateOk || stateOf(rec, "logs") != gridtypes.StateOk {
		t.Fatalf("after resume %+v", rec.Deployment.Workloads)
	}

	// Another twin is refused everything on it.
	_, err = cb.Get(ctx, id)
	wantCode(t, err, api.CodeForbidden, gridtypes.ErrForbidden)
	_, err = cb.Changes(ctx, id)
	wantCode(t, err, api.CodeForbidden, gridtypes.ErrForbidden)
	for _, f := range []func(context.Context, uint64) (gridtypes.Record, error){cb.Delete, cb.Pause, cb.Resume} {
		_, err = f(ctx, id)
		wantCode(t, err, api.CodeForbidden, gridtypes.ErrForbidden)
	}
	bobNext := next
	bobNext.Version = 2
	sign(t, &bobNext, bob)
	_, err = cb.Update(ctx, bobNext)
	wantCode(t, err, api.CodeForbidden, gridtypes.ErrForbidden)
	stolen := deployment(alice, lc.url("/x"))
	sign(t, &stolen, alice)
	_, err = cb.Deploy(ctx, stolen)
	wantCode(t, err, api.CodeForbidden, gridtypes.ErrForbidden)
	if l, err := cb.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("bob lists %v %v", l, err)
	}
	if l, err := ca.List(ctx); err != nil || len(l) != 1 || l[0].ID != id || l[0].Workloads[gridtypes.StateOk] != 5 {
		t.Fatalf("alice lists %+v %v", l, err)
	}

	// Node calls.
	capa, err := ca.Capacity(ctx)
	if err != nil || capa.Used.CRU != 2 || capa.Used.SRU != (128+32)*gridtypes.MiB || capa.Free.CRU != 14 {
		t.Fatalf("capacity %+v %v", capa, err)
	}
	stats, err := cb.Statistics(ctx)
	if err != nil || stats.Deployments != 1 || stats.Twins != 1 || stats.Workloads[gridtypes.ZMountType][gridtypes.StateOk] != 1 {
		t.Fatalf("statistics %+v %v", stats, err)
	}
	v, err := ca.Version(ctx)
	if err != nil || v.Version != "v0.0.0-test" || v.API != api.APIVersion || v.NodeID != 9 || len(v.Types) != 6 {
		t.Fatalf("version %+v %v", v, err)
	}
	ifs, err := ca.Interfaces(ctx)
	if err != nil || !slices.ContainsFunc(ifs, func(i api.Interface) bool { return i.Name == "lo" }) {
		t.Fatalf("interfaces %+v %v", ifs, err)
	}
	doc, err := ca.Discover(ctx)
	if err != nil || !bytes.Contains(doc, []byte(`"openrpc"`)) {
		t.Fatalf("discover %v", err)
	}

	// Delete, in reverse order; history has every step.
	if _, err := ca.Delete(ctx, id); err != nil {
		t.Fatalf("delete: %v", err)
	}
	rec = waitDone(t, ca, id)
	if !rec.Deleted {
		t.Fatal("not deleted")
	}
	for _, w := range rec.Deployment.Workloads {
		if w.Result.State != gridtypes.StateDeleted {
			t.Fatalf("%s: %s", w.Name, w.Result.State)
		}
	}
	if _, err := os.Stat(zr.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("disk file left after delete")
	}
	changes, err := ca.Changes(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var removal []string
	for _, c := range changes {
		if c.Op == gridtypes.OpDeprovision {
			removal = append(removal, c.Workload)
		}
	}
	if want := []string{"logs", "vm", "net", "disk", "vol"}; !slices.Equal(removal, want) {
		t.Fatalf("removal order %v, want %v", removal, want)
	}
	_, err = ca.Delete(ctx, id)
	wantCode(t, err, api.CodeConflict, gridtypes.ErrConflict)

	// Metrics saw the calls.
	resp, err := http.Get(n.url + api.MetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`zosapi_rpc_requests_total{code="0",method="deployment.deploy"} 1`, `zosapi_rpc_requests_total{code="-32002",method="deployment.get"} 1`, `zosapi_deployments{deleted="true"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// withData returns a copy of d with the data of some workloads replaced.
func withData(d gridtypes.Deployment, data map[string]any) gridtypes.Deployment {
	d.Workloads = slices.Clone(d.Workloads)
	for i := range d.Workloads {
		if v, ok := data[d.Workloads[i].Name]; ok {
			d.Workloads[i].Data = raw(v)
		}
	}
	return d
}

func wantCode(t *testing.T, err error, code int, sentinel error) {
	t.Helper()
	var re *api.Error
	if !errors.As(err, &re) || re.Code != code || !errors.Is(err, sentinel) {
		t.Fatalf("error %v, want code %d (%v)", err, code, sentinel)
	}
}

func TestRefusedBeforeQueueing(t *testing.T) {
	reg := startRegistrar(t)
	alice := newTwin(t, reg, keys.Ed25519)
	n := startNode(t, reg, nodeOptions{capacity: provisiond.FixedCapacity{CRU: 1, MRU: 4 * gridtypes.GiB, SRU: 10 * gridtypes.GiB}})
	ctx := context.Background()
	ca := n.client(t, alice)

	// Too big for the node.
	d := deployment(alice, "ws://127.0.0.1:9/x")
	sign(t, &d, alice)
	_, err := ca.Deploy(ctx, d)
	wantCode(t, err, api.CodeCapacity, gridtypes.ErrCapacity)
	if !strings.Contains(err.Error(), "cru: need 2, free 1") {
		t.Fatalf("capacity message %v", err)
	}

	// Bad data: the field is named in the error data.
	bad := deployment(alice, "ws://127.0.0.1:9/x")
	bad.Workloads[3].Data = json.RawMessage(`{"size":"64MiB"}`)
	_ = bad.Sign(alice.id, alice.key)
	err = ca.Call(ctx, api.MethodDeploy, map[string]any{"deployment": bad}, nil)
	var re *api.Error
	if !errors.As(err, &re) || re.Code != api.CodeInvalidParams || re.Data.(map[string]any)["field"] != "workloads[3].data" {
		t.Fatalf("bad data: %#v", err)
	}
	// Unknown type.
	unknown := deployment(alice, "ws://127.0.0.1:9/x")
	unknown.Workloads[3].Type = "gateway-name"
	sign(t, &unknown, alice)
	_, err = ca.Deploy(ctx, unknown)
	wantCode(t, err, api.CodeInvalidParams, gridtypes.ErrInvalid)
	// Unsigned deployment.
	unsigned := deployment(alice, "ws://127.0.0.1:9/x")
	unsigned.Workloads = unsigned.Workloads[3:]
	_, err = ca.Deploy(ctx, unsigned)
	wantCode(t, err, api.CodeSignature, gridtypes.ErrSignature)

	st, err := ca.Statistics(ctx)
	if err != nil || st.Queued != 0 || st.Deployments != 0 {
		t.Fatalf("something was queued: %+v %v", st, err)
	}
}

func TestMissingHardwareFailsClearly(t *testing.T) {
	reg := startRegistrar(t)
	alice := newTwin(t, reg, keys.Ed25519)
	n := startNode(t, reg, nodeOptions{realMachines: true})
	ctx := context.Background()
	ca := n.client(t, alice)
	d := deployment(alice, "ws://127.0.0.1:9/x")
	d.Workloads = d.Workloads[1:] // no log stream
	d.Workloads = append(d.Workloads, gridtypes.Workload{Name: "fs", Type: gridtypes.QuantumSafeFSType, Data: raw(gridtypes.QSFSData{
		Cache: 64 * gridtypes.MiB, MinimalShards: 1, ExpectedShards: 1, EncryptionKey: strings.Repeat("0f", 32), Compression: "none",
		Metadata: gridtypes.QSFSMetadata{Prefix: "p", Backends: []gridtypes.QSFSBackend{{Address: "10.0.0.1:9900", Namespace: "m"}}},
		Groups:   []gridtypes.QSFSGroup{{Backends: []gridtypes.QSFSBackend{{Address: "10.0.0.2:9900", Namespace: "d"}}}},
	})})
	sign(t, &d, alice)
	rec, err := ca.Deploy(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	rec = waitDone(t, ca, rec.Deployment.ID)
	vm, _ := rec.Deployment.Get("vm")
	fs, _ := rec.Deployment.Get("fs")
	t.Logf("vm: %s", vm.Result.Message)
	t.Logf("fs: %s", fs.Result.Message)
	if vm.Result.State != gridtypes.StateError || !strings.HasPrefix(vm.Result.Message, "zmachine-light: ") {
		t.Fatalf("vm %+v", vm.Result)
	}
	if fs.Result.State != gridtypes.StateError || !strings.HasPrefix(fs.Result.Message, "quantum-safe-fs: quantum-safe file systems unsupported on this node: ") {
		t.Fatalf("fs %+v", fs.Result)
	}
	if stateOf(rec, "disk") != gridtypes.StateOk {
		t.Fatalf("disk %s", stateOf(rec, "disk"))
	}
	if _, err := ca.Delete(ctx, rec.Deployment.ID); err != nil {
		t.Fatal(err)
	}
	waitDone(t, ca, rec.Deployment.ID)
}

func TestRawProtocol(t *testing.T) {
	reg := startRegistrar(t)
	alice := newTwin(t, reg, keys.Ed25519)
	n := startNode(t, reg, nodeOptions{})
	signed := &http.Client{Transport: auth.NewTransport(nil, alice.key, alice.id)}
	post := func(hc *http.Client, path, body string) (int, string) {
		t.Helper()
		resp, err := hc.Post(n.url+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Unsigned: 401 before JSON-RPC.
	if code, body := post(http.DefaultClient, api.RPCPath, `{"jsonrpc":"2.0","id":1,"method":"node.version"}`); code != 401 || !strings.Contains(body, "missing credentials") {
		t.Fatalf("unsigned: %d %s", code, body)
	}
	cases := []struct{ body, want string }{
		{`{"jsonrpc":"2.0","id":1,"method":"node.version"`, `"code":-32700`},
		{`{"jsonrpc":"1.0","id":1,"method":"node.version"}`, `"code":-32600`},
		{`{"jsonrpc":"2.0","id":{},"method":"node.version"}`, `"code":-32600`},
		{`{"jsonrpc":"2.0","id":"a","method":"node.reboot"}`, `{"jsonrpc":"2.0","id":"a","error":{"code":-32601,"message":"method not found: node.reboot"}}`},
		{`{"jsonrpc":"2.0","id":2,"method":"deployment.get","params":[1]}`, `"code":-32602`},
		{`{"jsonrpc":"2.0","id":2,"method":"deployment.get","params":{"id":1,"x":2}}`, `"code":-32602`},
		{`{"jsonrpc":"2.0","id":3,"method":"deployment.get","params":{"id":42}}`, `"code":-32001`},
		{`[{"jsonrpc":"2.0","id":1,"method":"node.version"},{"jsonrpc":"2.0","method":"node.version"},{"jsonrpc":"2.0","id":2,"method":"nope"}]`, `"id":2,"error":{"code":-32601`},
		{`[]`, `"code":-32600`},
	}
	for _, c := range cases {
		code, body := post(signed, api.RPCPath, c.body)
		if code != 200 || !strings.Contains(body, c.want) {
			t.Errorf("%s\n -> %d %s\n want %s", c.body, code, body, c.want)
		}
	}
	// A notification gets no answer; the short path works too.
	if code, body := post(signed, api.RPCPathShort, `{"jsonrpc":"2.0","method":"node.version"}`); code != 204 || body != "" {
		t.Fatalf("notification: %d %q", code, body)
	}
	// The batch above answered two of three.
	_, body := post(signed, api.RPCPath, `[{"jsonrpc":"2.0","id":1,"method":"node.version"},{"jsonrpc":"2.0","method":"node.version"}]`)
	var resps []api.Response
	if err := json.Unmarshal([]byte(body), &resps); err != nil || len(resps) != 1 {
		t.Fatalf("batch: %s", body)
	}
	// Legacy X-Auth (the seed's header) is accepted too.
	legacy := &http.Client{Transport: &auth.Transport{Signer: auth.Signer{Key: alice.key, TwinID: alice.id}, Legacy: true}}
	if code, body := post(legacy, api.RPCPath, `{"jsonrpc":"2.0","id":9,"method":"node.version"}`); code != 200 || !strings.Contains(body, `"api":"1.0.0"`) {
		t.Fatalf("legacy: %d %s", code, body)
	}
	// The OpenRPC document is public.
	resp, err := http.Get(n.url + api.OpenRPCPath)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("openrpc: %v", err)
	}
	resp.Body.Close()
}
