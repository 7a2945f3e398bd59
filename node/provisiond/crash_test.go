package provisiond

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/keys"
)

// The crash tests run the engine in a child process (this test binary,
// re-executed with helperEnv set) and kill it with SIGKILL: no deferred
// function, no Close, no flush runs, as when a node loses power.

const helperEnv = "GRID4_PROVISION_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		if err := engineHelper(); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fileJournal is a manager that appends "<op> <workload>" to a file,
// synced, before it acts; it blocks forever on the workload named block
// after creating the file <dir>/blocked, and sleeps delay on every
// operation.
type fileJournal struct {
	path  string
	dir   string
	block string
	delay time.Duration
}

func (f fileJournal) write(line string) error {
	fh, err := os.OpenFile(f.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer fh.Close()
	if _, err := fh.WriteString(line + "\n"); err != nil {
		return err
	}
	return fh.Sync()
}

func (f fileJournal) Provision(ctx context.Context, t Task) (any, error) {
	if err := f.write("provision " + t.Workload.Name); err != nil {
		return nil, err
	}
	if t.Workload.Name == f.block {
		if err := os.WriteFile(filepath.Join(f.dir, "blocked"), nil, 0o600); err != nil {
			return nil, err
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	time.Sleep(f.delay)
	return nil, nil
}

func (f fileJournal) Deprovision(_ context.Context, t Task) error {
	time.Sleep(f.delay)
	return f.write("deprovision " + t.Workload.Name)
}

// engineHelper is the child: it opens the engine in $HELPER_DIR, deploys
// $HELPER_DEPLOY when set, and runs the queue until it is empty.
func engineHelper() error {
	dir := os.Getenv("HELPER_DIR")
	seed, err := hex.DecodeString(os.Getenv("HELPER_SEED"))
	if err != nil {
		return err
	}
	kp, err := keys.FromSeed(keys.Ed25519, seed)
	if err != nil {
		return err
	}
	delay, _ := time.ParseDuration(os.Getenv("HELPER_DELAY"))
	fj := fileJournal{path: filepath.Join(dir, "journal"), dir: dir, block: os.Getenv("HELPER_BLOCK"), delay: delay}
	mgrs := map[gridtypes.WorkloadType]Manager{}
	for _, t := range gridtypes.Types() {
		mgrs[t] = fj
	}
	tk := &twins{keys: map[uint64]keys.KeyPair{1: kp}}
	e, err := Open(Config{Dir: filepath.Join(dir, "data"), Managers: mgrs, Keys: tk, Capacity: bigCapacity})
	if err != nil {
		return err
	}
	ctx := context.Background()
	if p := os.Getenv("HELPER_DEPLOY"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		d, err := gridtypes.ParseDeployment(b)
		if err != nil {
			return err
		}
		if _, err := e.Deploy(ctx, 1, d); err != nil {
			return err
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()
	if _, err := e.Wait(ctx, 1, 1); err != nil {
		return err
	}
	stop()
	if err := <-done; err != nil {
		return err
	}
	return e.Close()
}

type crashRig struct {
	t    *testing.T
	dir  string
	seed string
	kp   keys.KeyPair
}

func newCrashRig(t *testing.T) *crashRig {
	kp, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	return &crashRig{t: t, dir: t.TempDir(), seed: hex.EncodeToString(kp.Seed()), kp: kp}
}

// deploymentFile writes the signed sample deployment of twin 1.
func (c *crashRig) deploymentFile() string {
	d := sample(1)
	if err := d.Sign(1, c.kp); err != nil {
		c.t.Fatal(err)
	}
	b, err := d.Marshal()
	if err != nil {
		c.t.Fatal(err)
	}
	p := filepath.Join(c.dir, "deployment.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		c.t.Fatal(err)
	}
	return p
}

func (c *crashRig) command(env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", "HELPER_DIR="+c.dir, "HELPER_SEED="+c.seed)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	return cmd
}

// killWhenBlocked starts the child, waits until its manager blocks on
// workload, and kills it with SIGKILL.
func (c *crashRig) killWhenBlocked(workload string, env ...string) {
	c.t.Helper()
	marker := filepath.Join(c.dir, "blocked")
	os.Remove(marker)
	cmd := c.command(append(env, "HELPER_BLOCK="+workload)...)
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			c.t.Fatal("the child never reached the blocking manager")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		c.t.Fatal(err)
	}
	_ = cmd.Wait()
}

// runToEnd runs the child until the queue is empty.
func (c *crashRig) runToEnd(env ...string) {
	c.t.Helper()
	cmd := c.command(env...)
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			c.t.Fatalf("child: %v", err)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		c.t.Fatal("child did not finish")
	}
}

func (c *crashRig) journal() []string {
	b, err := os.ReadFile(filepath.Join(c.dir, "journal"))
	if err != nil && !os.IsNotExist(err) {
		c.t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), " ", "_"))
}

// inspect opens the database (the child is dead, its lock gone) and
// returns the record, history and queue.
func (c *crashRig) inspect() (gridtypes.Record, []gridtypes.Change, *job) {
	c.t.Helper()
	e, err := Open(Config{Dir: filepath.Join(c.dir, "data"), Keys: &twins{}, Capacity: bigCapacity})
	if err != nil {
		c.t.Fatal(err)
	}
	defer e.Close()
	r, err := e.Get(context.Background(), 1, 1)
	if err != nil {
		c.t.Fatal(err)
	}
	ch, err := e.Changes(context.Background(), 1, 1)
	if err != nil {
		c.t.Fatal(err)
	}
	j, err := e.firstJob()
	if err != nil {
		c.t.Fatal(err)
	}
	return r, ch, j
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

func TestKilledMidDeploymentFinishes(t *testing.T) {
	c := newCrashRig(t)
	c.killWhenBlocked("vm", "HELPER_DEPLOY="+c.deploymentFile())

	// Dead while the machine was being provisioned: everything before it
	// is recorded, the machine's intent is there.
	r, _, j := c.inspect()
	st := states(r)
	for _, name := range []string{"disk", "vol", "fs", "net", "ip"} {
		if st[name] != gridtypes.StateOk {
			t.Errorf("%s: %s before the crash", name, st[name])
		}
	}
	if st["vm"] != gridtypes.StateInit || st["logs"] != gridtypes.StateInit || r.Pending != "deploy" {
		t.Fatalf("states %v pending %q", st, r.Pending)
	}
	if j == nil || j.Steps[j.Next].Workload.Name != "vm" || j.Attempts != 1 {
		t.Fatalf("intent record %+v", j)
	}

	c.runToEnd()
	r, changes, j := c.inspect()
	if j != nil || r.Pending != "" {
		t.Fatalf("queue not empty after recovery: %+v", j)
	}
	for name, s := range states(r) {
		if s != gridtypes.StateOk {
			t.Errorf("%s: %s after recovery", name, s)
		}
	}
	ops := c.journal()
	// The interrupted step ran again (managers are idempotent); nothing
	// else ran twice, nothing was removed.
	if count(ops, "provision_vm") != 2 || count(ops, "provision_disk") != 1 || slices.ContainsFunc(ops, func(s string) bool { return strings.HasPrefix(s, "deprovision") }) {
		t.Fatalf("journal %v", ops)
	}
	var vmResults int
	for _, ch := range changes {
		if ch.Workload == "vm" && ch.Op == gridtypes.OpProvision {
			vmResults++
		}
	}
	if vmResults != 1 {
		t.Fatalf("vm has %d provision results in its history", vmResults)
	}
}

func TestKilledRepeatedlyRollsBack(t *testing.T) {
	c := newCrashRig(t)
	c.killWhenBlocked("vm", "HELPER_DEPLOY="+c.deploymentFile())
	c.killWhenBlocked("vm")
	c.killWhenBlocked("vm")
	c.runToEnd()
	r, _, j := c.inspect()
	if j != nil {
		t.Fatalf("queue not empty: %+v", j)
	}
	vm, _ := r.Deployment.Get("vm")
	if vm.Result.State != gridtypes.StateError || vm.Result.Message != "provision interrupted 3 times; rolled back" {
		t.Fatalf("vm %+v", vm.Result)
	}
	ops := c.journal()
	if count(ops, "provision_vm") != 3 || count(ops, "deprovision_vm") != 1 {
		t.Fatalf("journal %v", ops)
	}
	// The rest of the deployment went on.
	if st := states(r); st["logs"] != gridtypes.StateOk || st["disk"] != gridtypes.StateOk {
		t.Fatalf("states %v", st)
	}
}

// TestKilledAtRandomPoints kills the child at random moments (during
// manager calls, between them, during commits) and checks that the final
// run leaves a consistent deployment: the queue empty, every workload with
// exactly one result in its history, ok, or rolled back when the kills hit
// its step MaxAttempts times.
func TestKilledAtRandomPoints(t *testing.T) {
	c := newCrashRig(t)
	file := c.deploymentFile()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for i := range 6 {
		env := []string{"HELPER_DELAY=15ms"}
		if i == 0 || !c.accepted() {
			env = append(env, "HELPER_DEPLOY="+file)
		}
		before := len(c.journal())
		cmd := c.command(env...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Let the child make some progress (a manager call started),
		// then kill it at a random moment of the next few steps.
		deadline := time.Now().Add(10 * time.Second)
		for len(c.journal()) == before && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	if c.accepted() {
		c.runToEnd()
	} else {
		// Every child died before its Deploy committed: nothing half
		// made may be left, and a new deploy works.
		c.runToEnd("HELPER_DEPLOY=" + file)
	}
	r, changes, j := c.inspect()
	if j != nil || r.Pending != "" {
		t.Fatalf("queue not empty: %+v", j)
	}
	results := map[string]int{}
	for _, ch := range changes {
		if ch.Op == gridtypes.OpProvision {
			results[ch.Workload]++
		}
	}
	ops := c.journal()
	for _, w := range r.Deployment.Workloads {
		name, res := w.Name, w.Result
		switch {
		case res.State == gridtypes.StateOk && results[name] == 1:
			// Finished.
		case res.State == gridtypes.StateError && strings.HasSuffix(res.Message, "rolled back") && results[name] == 1:
			// Hit by three kills in a row: rolled back, and the last
			// thing done to it was a removal.
			last := ""
			for _, op := range ops {
				if strings.HasSuffix(op, "_"+name) {
					last = op
				}
			}
			if last != "deprovision_"+name {
				t.Errorf("%s rolled back but its last operation was %q", name, last)
			}
		default:
			t.Errorf("%s: %+v, %d provision results", name, res, results[name])
		}
	}
	t.Logf("journal after random kills: %v", ops)
}

// accepted reports whether deployment 1 exists.
func (c *crashRig) accepted() bool {
	e, err := Open(Config{Dir: filepath.Join(c.dir, "data"), Keys: &twins{}, Capacity: bigCapacity})
	if err != nil {
		c.t.Fatal(err)
	}
	defer e.Close()
	_, err = e.Get(context.Background(), 1, 1)
	return err == nil
}
