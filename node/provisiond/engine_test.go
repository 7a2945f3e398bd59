package provisiond

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/grid4/grid4/gridtypes"
)

func TestDeployOrderAndDeleteReverse(t *testing.T) {
	te := newEngine(t, nil)
	r := te.deploy(t, sample(1))
	if r.Pending != "" || r.Deployment.ID != 1 {
		t.Fatalf("record %+v", r)
	}
	for name, st := range states(r) {
		if st != gridtypes.StateOk {
			t.Errorf("%s: %s", name, st)
		}
	}
	// Storage in deployment order, then networks, machines, logs.
	want := []string{"provision disk", "provision vol", "provision fs", "provision net", "provision ip", "provision vm", "provision logs"}
	if got := te.rec.j.list(); !slices.Equal(got, want) {
		t.Fatalf("provision order\n got %v\nwant %v", got, want)
	}
	w, _ := r.Deployment.Get("disk")
	if string(w.Result.Data) != `{"id":"1-1-disk"}` || w.Result.Created.IsZero() {
		t.Fatalf("result %+v", w.Result)
	}

	te.rec.j.reset()
	if _, err := te.Delete(context.Background(), 1, r.Deployment.ID); err != nil {
		t.Fatal(err)
	}
	r = te.wait(t, 1, r.Deployment.ID)
	want = []string{"deprovision logs", "deprovision vm", "deprovision net", "deprovision ip", "deprovision disk", "deprovision vol", "deprovision fs"}
	if got := te.rec.j.list(); !slices.Equal(got, want) {
		t.Fatalf("deprovision order\n got %v\nwant %v", got, want)
	}
	if !r.Deleted {
		t.Fatal("not marked deleted")
	}
	for name, st := range states(r) {
		if st != gridtypes.StateDeleted {
			t.Errorf("%s: %s", name, st)
		}
	}
	// A deleted deployment frees its capacity and cannot change again.
	c, err := te.Capacity(context.Background())
	if err != nil || c.Used != (gridtypes.Resources{}) {
		t.Fatalf("capacity after delete %+v %v", c, err)
	}
	_, err = te.Delete(context.Background(), 1, r.Deployment.ID)
	wantErr(t, err, gridtypes.ErrConflict, "deleted")
}

func TestUpdateTouchesOnlyChangedWorkloads(t *testing.T) {
	te := newEngine(t, nil)
	r := te.deploy(t, sample(1))
	te.rec.j.reset()

	next := r.Deployment
	next.Workloads = slices.Clone(next.Workloads)
	stripResults(&next)
	next.SignatureRequirement.Signatures = nil
	// Change the machine (updated in place) and the disk (redeployed),
	// only describe the network differently (no operation), drop the
	// public IP (the machine stops using it) and add a volume.
	vm, _ := next.Get("vm")
	vm.Data = raw(strings.Replace(string(vm.Data), `"cpu":2`, `"cpu":4`, 1))
	vm.Data = raw(strings.Replace(string(vm.Data), `,"public_ip":"ip"`, ``, 1))
	disk, _ := next.Get("disk")
	disk.Data = raw(`{"size":2147483648}`)
	net, _ := next.Get("net")
	net.Description = "renamed"
	next.Workloads = slices.DeleteFunc(next.Workloads, func(w gridtypes.Workload) bool { return w.Name == "ip" })
	next.Workloads = append(next.Workloads, gridtypes.Workload{Name: "vol2", Type: gridtypes.VolumeType, Data: raw(`{"size":1048576}`)})
	next, err := gridtypes.PrepareUpdate(r.Deployment, next)
	if err != nil {
		t.Fatal(err)
	}
	te.twins.sign(t, &next)
	if _, err := te.Update(context.Background(), 1, next); err != nil {
		t.Fatalf("Update: %v", err)
	}
	r2 := te.wait(t, 1, r.Deployment.ID)
	want := []string{"deprovision ip", "deprovision disk", "provision disk", "provision vol2", "update vm"}
	if got := te.rec.j.list(); !slices.Equal(got, want) {
		t.Fatalf("update operations\n got %v\nwant %v", got, want)
	}
	if r2.Deployment.Version != 1 {
		t.Fatalf("version %d", r2.Deployment.Version)
	}
	// An in-place update is told the state the workload was in before
	// the update was accepted (a running machine grows in place only
	// when it is ok), not the init it reads while queued.
	te.rec.mu.Lock()
	was := te.rec.updated["vm"]
	te.rec.mu.Unlock()
	if was != gridtypes.StateOk {
		t.Fatalf("the machine's update was given state %q, want ok", was)
	}
	for _, w := range r2.Deployment.Workloads {
		wantVersion := uint32(0)
		if w.Name == "vm" || w.Name == "disk" || w.Name == "net" || w.Name == "vol2" {
			wantVersion = 1
		}
		if w.Version != wantVersion || w.Result.State != gridtypes.StateOk {
			t.Errorf("%s: version %d state %s", w.Name, w.Version, w.Result.State)
		}
	}
	if _, ok := r2.Deployment.Get("ip"); ok {
		t.Error("removed workload still listed")
	}
	changes, err := te.Changes(context.Background(), 1, r.Deployment.ID)
	if err != nil {
		t.Fatal(err)
	}
	last := changes[len(changes)-1]
	if last.Op != gridtypes.OpUpdate || last.Workload != "vm" || last.Version != 1 || last.State != gridtypes.StateOk {
		t.Fatalf("last change %+v", last)
	}

	// A stale version, a skipped version and an unchanged workload with a
	// new version are refused.
	stale := next
	te.twins.sign(t, &stale)
	_, err = te.Update(context.Background(), 1, stale)
	wantErr(t, err, gridtypes.ErrConflict, "version must be 2")
	bad, _ := gridtypes.PrepareUpdate(r2.Deployment, r2.Deployment)
	bad.Workloads[0].Version = bad.Version
	te.twins.sign(t, &bad)
	_, err = te.Update(context.Background(), 1, bad)
	wantErr(t, err, gridtypes.ErrInvalid, "unchanged workload must keep its version")
	// A zmount cannot shrink.
	shrink := r2.Deployment
	shrink.Workloads = slices.Clone(shrink.Workloads)
	d, _ := shrink.Get("disk")
	d.Data = raw(`{"size":1048576}`)
	shrink, _ = gridtypes.PrepareUpdate(r2.Deployment, shrink)
	te.twins.sign(t, &shrink)
	_, err = te.Update(context.Background(), 1, shrink)
	wantErr(t, err, gridtypes.ErrInvalid, "cannot shrink")
}

func TestPauseResume(t *testing.T) {
	te := newEngine(t, nil)
	r := te.deploy(t, sample(1))
	te.rec.j.reset()
	ctx := context.Background()
	if _, err := te.Pause(ctx, 1, r.Deployment.ID); err != nil {
		t.Fatal(err)
	}
	r = te.wait(t, 1, r.Deployment.ID)
	if got, want := te.rec.j.list(), []string{"pause logs", "pause vm"}; !slices.Equal(got, want) {
		t.Fatalf("pause %v, want %v", got, want)
	}
	st := states(r)
	if st["vm"] != gridtypes.StatePaused || st["logs"] != gridtypes.StatePaused || st["disk"] != gridtypes.StateOk {
		t.Fatalf("states %v", st)
	}
	_, err := te.Pause(ctx, 1, r.Deployment.ID)
	wantErr(t, err, gridtypes.ErrConflict, "no workload to pause")
	te.rec.j.reset()
	if _, err := te.Resume(ctx, 1, r.Deployment.ID); err != nil {
		t.Fatal(err)
	}
	r = te.wait(t, 1, r.Deployment.ID)
	if got, want := te.rec.j.list(), []string{"resume vm", "resume logs"}; !slices.Equal(got, want) {
		t.Fatalf("resume %v, want %v", got, want)
	}
	if st := states(r); st["vm"] != gridtypes.StateOk || st["logs"] != gridtypes.StateOk {
		t.Fatalf("states %v", st)
	}
	// Pausing and resuming keep what the manager reported (a machine's
	// addresses, its console).
	if vm, _ := r.Deployment.Get("vm"); vm.Result == nil || !strings.Contains(string(vm.Result.Data), `"id"`) {
		t.Fatalf("vm's result after pause and resume: %+v", vm.Result)
	}
}

func TestOwnerOnly(t *testing.T) {
	te := newEngine(t, nil)
	r := te.deploy(t, sample(1))
	ctx := context.Background()
	id := r.Deployment.ID
	_, err := te.Get(ctx, 2, id)
	wantErr(t, err, gridtypes.ErrForbidden, "")
	_, err = te.Changes(ctx, 2, id)
	wantErr(t, err, gridtypes.ErrForbidden, "")
	for _, f := range []func(context.Context, uint64, uint64) (gridtypes.Record, error){te.Delete, te.Pause, te.Resume} {
		_, err = f(ctx, 2, id)
		wantErr(t, err, gridtypes.ErrForbidden, "")
	}
	if l, _ := te.List(ctx, 2); len(l) != 0 {
		t.Fatalf("twin 2 lists %v", l)
	}
	// Twin 2 cannot deploy in twin 1's name, even with twin 1's signature.
	d := sample(1)
	te.twins.sign(t, &d)
	_, err = te.Deploy(ctx, 2, d)
	wantErr(t, err, gridtypes.ErrForbidden, "caller is twin 2")
	// A deployment without twin_id is invalid (the field named), not
	// another twin's.
	d = sample(1)
	d.TwinID = 0
	_, err = te.Deploy(ctx, 1, d)
	var ve *gridtypes.ValidationError
	if !errors.As(err, &ve) || ve.Field != "twin_id" {
		t.Fatalf("no twin_id: %v", err)
	}
	// Nor update it.
	next, _ := gridtypes.PrepareUpdate(r.Deployment, r.Deployment)
	te.twins.sign(t, &next, 2)
	_, err = te.Update(ctx, 2, next)
	wantErr(t, err, gridtypes.ErrForbidden, "")
	_, err = te.Get(ctx, 1, 99)
	wantErr(t, err, gridtypes.ErrNotFound, "")
}

func TestSignatures(t *testing.T) {
	te := newEngine(t, nil)
	ctx := context.Background()
	unsigned := sample(1)
	_, err := te.Deploy(ctx, 1, unsigned)
	wantErr(t, err, gridtypes.ErrSignature, "twin 1 must sign")

	wrongKey := sample(1)
	if err := wrongKey.Sign(1, te.twins.keys[2]); err != nil {
		t.Fatal(err)
	}
	_, err = te.Deploy(ctx, 1, wrongKey)
	wantErr(t, err, gridtypes.ErrSignature, "does not verify")

	tampered := sample(1)
	te.twins.sign(t, &tampered)
	tampered.Description = "changed after signing"
	_, err = te.Deploy(ctx, 1, tampered)
	wantErr(t, err, gridtypes.ErrSignature, "does not verify")

	// Several twins: owner required, two of three weights needed.
	multi := sample(1)
	multi.SignatureRequirement = gridtypes.SignatureRequirement{
		Requests:       []gridtypes.SignatureRequest{{TwinID: 1, Required: true, Weight: 1}, {TwinID: 2, Weight: 1}, {TwinID: 3, Weight: 1}},
		WeightRequired: 2,
	}
	te.twins.sign(t, &multi)
	_, err = te.Deploy(ctx, 1, multi)
	wantErr(t, err, gridtypes.ErrSignature, "weigh 1, 2 needed")
	te.twins.sign(t, &multi, 3)
	r, err := te.Deploy(ctx, 1, multi)
	if err != nil {
		t.Fatalf("two of three: %v", err)
	}
	r = te.wait(t, 1, r.Deployment.ID)

	// The update must satisfy the current requirement too: dropping it
	// while signing alone is refused.
	next, _ := gridtypes.PrepareUpdate(r.Deployment, r.Deployment)
	next.Description = "only me now"
	next.SignatureRequirement = gridtypes.SignatureRequirement{}
	te.twins.sign(t, &next)
	_, err = te.Update(ctx, 1, next)
	wantErr(t, err, gridtypes.ErrSignature, "weigh 1, 2 needed")
	te.twins.sign(t, &next, 2)
	if _, err := te.Update(ctx, 1, next); err != nil {
		t.Fatalf("update signed as the current requirement asks: %v", err)
	}
	te.wait(t, 1, r.Deployment.ID)

	// A twin unknown to the registrar cannot sign.
	unknown := sample(1)
	unknown.SignatureRequirement = gridtypes.SignatureRequirement{Requests: []gridtypes.SignatureRequest{{TwinID: 1, Weight: 1}, {TwinID: 9, Weight: 1}}, WeightRequired: 2}
	te.twins.sign(t, &unknown)
	kp := te.twins.keys[2]
	if err := unknown.Sign(9, kp); err != nil {
		t.Fatal(err)
	}
	_, err = te.Deploy(ctx, 1, unknown)
	wantErr(t, err, gridtypes.ErrSignature, "twin 9")
}

func TestCapacityRefused(t *testing.T) {
	capacity := FixedCapacity{CRU: 4, MRU: 4 * gridtypes.GiB, SRU: 20 * gridtypes.GiB, IPv4: 1}
	te := newEngine(t, capacity)
	ctx := context.Background()
	first := te.deploy(t, sample(1)) // sru 14 GiB + cache 1 GiB, ipv4 1
	c, err := te.Capacity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Used.IPv4 != 1 || c.Used.CRU != 2 || c.Free.SRU != 20*gridtypes.GiB-c.Used.SRU {
		t.Fatalf("capacity %+v", c)
	}
	second := sample(2)
	te.twins.sign(t, &second)
	_, err = te.Deploy(ctx, 2, second)
	wantErr(t, err, gridtypes.ErrCapacity, "ipv4: need 1, free 0")
	if l, _ := te.List(ctx, 2); len(l) != 0 {
		t.Fatal("refused deployment was stored")
	}
	// An update is measured without the deployment's own current use.
	next, _ := gridtypes.PrepareUpdate(first.Deployment, first.Deployment)
	vm, _ := next.Get("vm")
	vm.Data = raw(strings.Replace(string(vm.Data), `"cpu":2`, `"cpu":4`, 1))
	vm.Version = next.Version
	te.twins.sign(t, &next)
	if _, err := te.Update(ctx, 1, next); err != nil {
		t.Fatalf("update within capacity: %v", err)
	}
	te.wait(t, 1, first.Deployment.ID)
	next2, _ := gridtypes.PrepareUpdate(next, next)
	vm, _ = next2.Get("vm")
	vm.Data = raw(strings.Replace(string(vm.Data), `"cpu":4`, `"cpu":5`, 1))
	vm.Version = next2.Version
	te.twins.sign(t, &next2)
	_, err = te.Update(ctx, 1, next2)
	wantErr(t, err, gridtypes.ErrCapacity, "cru: need 5, free 4")
}

func TestBadDataRefusedBeforeQueueing(t *testing.T) {
	te := newEngine(t, nil)
	ctx := context.Background()
	cases := map[string]struct {
		edit func(*gridtypes.Deployment)
		want string
	}{
		"unknown type":      {func(d *gridtypes.Deployment) { d.Workloads[0].Type = "kubernetes" }, `workloads[0].type: unknown workload type "kubernetes"`},
		"bad data":          {func(d *gridtypes.Deployment) { d.Workloads[3].Data = raw(`{"size":"big"}`) }, "workloads[3].data: size: a JSON string is not allowed here"},
		"unknown member":    {func(d *gridtypes.Deployment) { d.Workloads[3].Data = raw(`{"size":1048576,"sise":1}`) }, `unknown member "sise"`},
		"too small":         {func(d *gridtypes.Deployment) { d.Workloads[3].Data = raw(`{"size":1}`) }, "workloads[3].data.size: must be 1 MiB"},
		"null data":         {func(d *gridtypes.Deployment) { d.Workloads[3].Data = raw(`null`) }, "must be a JSON object"},
		"duplicate member":  {func(d *gridtypes.Deployment) { d.Workloads[3].Data = raw(`{"size":1048576,"size":2097152}`) }, `duplicate member "size"`},
		"dangling network":  {func(d *gridtypes.Deployment) { d.Workloads[2].Name = "other" }, `no workload called "net"`},
		"ip outside subnet": {func(d *gridtypes.Deployment) { d.Workloads[2].Data = raw(`{"subnet":"10.30.0.0/24"}`) }, "10.20.1.5 is not in net's subnet"},
		"duplicate names":   {func(d *gridtypes.Deployment) { d.Workloads[1].Name = "logs" }, `"logs" is used by another workload`},
		"no workloads":      {func(d *gridtypes.Deployment) { d.Workloads = nil }, "at least one workload"},
		"with id":           {func(d *gridtypes.Deployment) { d.ID = 7 }, "id: must be 0"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			d := sample(1)
			c.edit(&d)
			_ = d.Sign(1, te.twins.keys[1]) // fails for data the hash refuses
			_, err := te.Deploy(ctx, 1, d)
			wantErr(t, err, gridtypes.ErrInvalid, c.want)
		})
	}
	st, err := te.Statistics(ctx)
	if err != nil || st.Queued != 0 || st.Deployments != 0 || len(te.rec.j.list()) != 0 {
		t.Fatalf("something was queued: %+v %v %v", st, err, te.rec.j.list())
	}
}

func TestFailedProvisionRollsBack(t *testing.T) {
	te := newEngine(t, nil)
	te.rec.fail["vm"] = errors.New("zmachine-light: no hypervisor: /dev/kvm not present")
	r := te.deploy(t, sample(1))
	w, _ := r.Deployment.Get("vm")
	if w.Result.State != gridtypes.StateError || w.Result.Message != "zmachine-light: no hypervisor: /dev/kvm not present" {
		t.Fatalf("vm result %+v", w.Result)
	}
	ops := te.rec.j.list()
	i := slices.Index(ops, "provision vm")
	if i < 0 || ops[i+1] != "deprovision vm" {
		t.Fatalf("no cleanup after the failure: %v", ops)
	}
	// A failed workload holds no capacity.
	c, _ := te.Capacity(context.Background())
	if c.Used.CRU != 0 {
		t.Fatalf("failed machine still holds %d CPUs", c.Used.CRU)
	}
	// Statistics see it.
	st, _ := te.Statistics(context.Background())
	if st.Workloads[gridtypes.ZMachineLightType][gridtypes.StateError] != 1 || st.Deployments != 1 || st.Twins != 1 {
		t.Fatalf("statistics %+v", st)
	}
	// Once the host is fixed, any new version tries the failed workload
	// again (and only it).
	te.rec.mu.Lock()
	delete(te.rec.fail, "vm")
	te.rec.mu.Unlock()
	te.rec.j.reset()
	next, _ := gridtypes.PrepareUpdate(r.Deployment, r.Deployment)
	next.Description = "retry"
	te.twins.sign(t, &next)
	if _, err := te.Update(context.Background(), 1, next); err != nil {
		t.Fatal(err)
	}
	r = te.wait(t, 1, r.Deployment.ID)
	if got := te.rec.j.list(); !slices.Equal(got, []string{"provision vm"}) || states(r)["vm"] != gridtypes.StateOk {
		t.Fatalf("retry: %v %v", got, states(r))
	}
}

// TestInterruptedTooOftenRollsBack simulates a step that the process died
// in MaxAttempts times: the next start rolls it back instead of running it
// again.
func TestInterruptedTooOftenRollsBack(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{j: &journal{}, block: map[string]chan struct{}{}}
	tw := newTwins(t, 1)
	cfg := Config{Dir: dir, Managers: managers(rec), Keys: tw, Capacity: bigCapacity}
	e, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := sample(1)
	tw.sign(t, &d)
	r, err := e.Deploy(context.Background(), 1, d)
	if err != nil {
		t.Fatal(err)
	}
	// As if three processes had died in the first step.
	err = e.db.Update(func(tx *bolt.Tx) error {
		s := txStore{tx}
		j, err := s.firstJob()
		if err != nil {
			return err
		}
		j.Attempts = 3
		return s.putJob(j)
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	r, err = e.Wait(wctx, 1, r.Deployment.ID)
	wcancel()
	cancel()
	<-done
	e.Close()
	if err != nil {
		t.Fatal(err)
	}
	disk, _ := r.Deployment.Get("disk")
	if disk.Result.State != gridtypes.StateError || disk.Result.Message != "provision interrupted 3 times; rolled back" {
		t.Fatalf("disk %+v", disk.Result)
	}
	if ops := rec.j.list(); ops[0] != "deprovision disk" || slices.Contains(ops, "provision disk") {
		t.Fatalf("ops %v", ops)
	}
}

// TestCleanStopResumes: stopping the engine while a manager works leaves
// the step to run again (not counted as an attempt, nothing rolled back),
// and the next Run finishes it.
func TestCleanStopResumes(t *testing.T) {
	rec := &recorder{j: &journal{}, block: map[string]chan struct{}{"vm": make(chan struct{})}, started: make(chan string, 1)}
	tw := newTwins(t, 1)
	e, err := Open(Config{Dir: t.TempDir(), Managers: managers(rec), Keys: tw, Capacity: bigCapacity})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	d := sample(1)
	tw.sign(t, &d)
	r, err := e.Deploy(context.Background(), 1, d)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	<-rec.started
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	j, _ := e.firstJob()
	if j == nil || j.Attempts != 0 || j.Steps[j.Next].Workload.Name != "vm" {
		t.Fatalf("job after a clean stop: %+v", j)
	}
	if slices.Contains(rec.j.list(), "deprovision vm") {
		t.Fatalf("cleaned up on a clean stop: %v", rec.j.list())
	}
	rec.mu.Lock()
	delete(rec.block, "vm")
	rec.mu.Unlock()
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- e.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	r, err = e.Wait(wctx, 1, r.Deployment.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st := states(r); st["vm"] != gridtypes.StateOk || st["logs"] != gridtypes.StateOk {
		t.Fatalf("states %v", st)
	}
	cancel()
	<-done
}
