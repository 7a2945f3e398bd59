package provisiond

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/node/internal/regtest"
	"github.com/grid4/grid4/node/zosapi"
	"github.com/grid4/grid4/registrar"
	regapi "github.com/grid4/grid4/registrar/api"
	regclient "github.com/grid4/grid4/registrar/client"
)

// contractWorld is a real registrar on a fake clock with a priced farm,
// a registered node and a user, and the node's engine enforcing
// contracts with its contract loop, on the same clock. The node reaches
// the registrar through a proxy the test can cut (an outage).
type contractWorld struct {
	t      *testing.T
	clock  *clock.Fake
	reg    *regtest.Registrar
	cut    *atomic.Bool
	node   uint64
	other  uint64 // another node of the farm
	user   *regclient.Client
	userK  keys.KeyPair
	twin   uint64
	engine *Engine
	book   *Contracts
	rec    *recorder
	prices regapi.Prices
}

const testPoll = 5 * time.Minute

func newContractWorld(t *testing.T, grace time.Duration) *contractWorld {
	t.Helper()
	// A quarter past an hour: the hour a contract is made in is billed,
	// and an hour later that hour is due (ended more than the billing
	// delay, 10 minutes, ago).
	start := time.Now().UTC().Truncate(time.Hour).Add(15 * time.Minute)
	fake := clock.NewFake(start)
	reg := regtest.StartWith(t, regtest.Options{Now: fake.Now, Admin: true, Configure: func(c *registrar.Config) { c.GracePeriod = grace }})
	ctx := context.Background()
	w := &contractWorld{t: t, clock: fake, reg: reg, cut: &atomic.Bool{},
		prices: regapi.Prices{CRU: 1000, MRU: 2000, SRU: 100, HRU: 7, IPv4: 5000}}

	_, farmer, _ := reg.Account(t, "farmer")
	farm, err := farmer.CreateFarm(ctx, regclient.NewFarm{Name: "contracts"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := farmer.SetFarmPricing(ctx, farm, w.prices); err != nil {
		t.Fatal(err)
	}
	var nodeKey keys.KeyPair
	var nodeTwin uint64
	w.node, nodeKey, nodeTwin = w.registerNode(farm)
	w.other, _, _ = w.registerNode(farm)
	w.userK, w.user, _ = reg.Account(t, "user")
	if w.twin, err = w.user.TwinID(ctx); err != nil {
		t.Fatal(err)
	}

	// The node's view of the registrar: through the proxy, one attempt
	// per call (the loop is the retry).
	target, _ := url.Parse(reg.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if w.cut.Load() {
			panic(http.ErrAbortHandler) // the connection drops: unreachable
		}
		rp.ServeHTTP(rw, r)
	}))
	t.Cleanup(proxy.Close)
	once := regclient.WithRetry(regclient.RetryPolicy{MaxAttempts: 1})
	source, err := regclient.New(proxy.URL, once)
	if err != nil {
		t.Fatal(err)
	}
	usage, err := regclient.New(proxy.URL, once, regclient.WithIdentity(nodeKey, nodeTwin), regclient.WithClock(fake.Now))
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	book, err := OpenContracts(ContractsConfig{Dir: dir, NodeID: w.node, Source: source, Usage: usage,
		Poll: testPoll, Clock: fake, Registry: prometheus.NewRegistry(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	w.book = book
	w.rec = &recorder{j: &journal{}, fail: map[string]error{}, block: map[string]chan struct{}{}}
	w.engine, err = Open(Config{Dir: dir, Managers: managers(w.rec), Keys: zosapi.NewTwinKeyCache(reg.Client(t), zosapi.KeyCacheConfig{}),
		Capacity: bigCapacity, Admission: book, Now: fake.Now, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	go func() { w.engine.Run(runCtx); done <- struct{}{} }()
	go func() { book.Run(runCtx, w.engine); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
		w.engine.Close()
		book.Close()
	})
	w.waitTick()
	return w
}

// registerNode registers a node with capacity in farm and returns its
// id, key and twin.
func (w *contractWorld) registerNode(farm uint64) (uint64, keys.KeyPair, uint64) {
	w.t.Helper()
	kp, c, acc := w.reg.Account(w.t, "node")
	id, err := c.RegisterNode(context.Background(), regapi.RegisterNodeRequest{
		FarmID: farm, SerialNumber: "test",
		Resources:  regapi.Resources{CRU: 16, MRU: 64 << 30, SRU: 1 << 40, HRU: 1 << 40},
		Interfaces: []regapi.Interface{{Name: "eth0", Mac: "52:54:00:12:34:56", IPs: regapi.IPList{"10.0.0.2/24"}}},
	})
	if err != nil {
		w.t.Fatalf("node: %v", err)
	}
	return id, kp, acc.TwinID
}

// waitTick waits until the contract loop sleeps again (it handled what
// the clock's last move fired).
func (w *contractWorld) waitTick() {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.clock.WaitTimers(ctx, 1); err != nil {
		w.t.Fatal("the contract loop never slept again")
	}
}

// advance moves the clock by d in poll steps, letting the loop run each.
func (w *contractWorld) advance(d time.Duration) {
	w.t.Helper()
	for ; d > 0; d -= testPoll {
		w.clock.Advance(min(d, testPoll))
		w.waitTick()
	}
}

// bill runs the registrar's billing at the current time.
func (w *contractWorld) bill() {
	w.t.Helper()
	if _, err := w.reg.Server.BillDue(context.Background()); err != nil {
		w.t.Fatalf("billing: %v", err)
	}
}

// deployment is the user's deployment: a machine with a disk, a network
// and a public IPv4 address.
func (w *contractWorld) deployment(contract uint64) gridtypes.Deployment {
	return gridtypes.Deployment{TwinID: w.twin, ContractID: contract, Workloads: []gridtypes.Workload{
		{Name: "net", Type: gridtypes.NetworkLightType, Data: raw(`{"subnet":"10.20.1.0/24"}`)},
		{Name: "ip", Type: gridtypes.PublicIPv4Type, Data: raw(`{}`)},
		{Name: "disk", Type: gridtypes.ZMountType, Data: raw(`{"size":1073741824}`)},
		{Name: "vm", Type: gridtypes.ZMachineLightType, Data: raw(`{"flist":"https://hub.grid.tf/tf-official-apps/base:latest.flist","entrypoint":"/sbin/zinit init","compute_capacity":{"cpu":2,"memory":1073741824},"size":10737418240,"network":{"interfaces":[{"network":"net","ip":"10.20.1.5"}],"public_ip":"ip"},"mounts":[{"name":"disk","mountpoint":"/data"}],"corex":false}`)},
	}}
}

// contractFor makes a node contract on node for d's hash reserving res.
func (w *contractWorld) contractFor(c *regclient.Client, node uint64, d gridtypes.Deployment, res gridtypes.Resources) regapi.Contract {
	w.t.Helper()
	hash, err := d.HashHex()
	if err != nil {
		w.t.Fatal(err)
	}
	k, err := c.CreateNodeContract(context.Background(), node, hash, regapi.Capacity{CRU: res.CRU, MRU: res.MRU, SRU: res.SRU, HRU: res.HRU, IPv4: res.IPv4})
	if err != nil {
		w.t.Fatalf("contract: %v", err)
	}
	return k
}

func (w *contractWorld) deploy(d gridtypes.Deployment) (gridtypes.Record, error) {
	if err := d.Sign(w.twin, w.userK); err != nil {
		w.t.Fatal(err)
	}
	return w.engine.Deploy(context.Background(), w.twin, d)
}

func (w *contractWorld) waitRecord(id uint64, what string, cond func(gridtypes.Record) bool) gridtypes.Record {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		r, err := w.engine.Wait(ctx, w.twin, id)
		if err != nil {
			w.t.Fatalf("deployment %d never %s: %v", id, what, err)
		}
		if cond(r) {
			return r
		}
		select {
		case <-w.engine.changedCh():
		case <-ctx.Done():
			w.t.Fatalf("deployment %d never %s: %v", id, what, states(r))
		}
	}
}

func (w *contractWorld) balance() int64 {
	w.t.Helper()
	b, err := w.user.Balance(context.Background(), 0)
	if err != nil {
		w.t.Fatal(err)
	}
	return b.Balance
}

func (w *contractWorld) contract(id uint64) regapi.Contract {
	w.t.Helper()
	c, err := w.user.Contract(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// TestNodeRefusesWithoutAFittingContract: the node admits a deployment
// only under an active contract of this node, this twin and this hash
// that covers what it needs, and says why otherwise.
func TestNodeRefusesWithoutAFittingContract(t *testing.T) {
	w := newContractWorld(t, time.Hour)
	ctx := context.Background()
	d := w.deployment(0)
	need, err := d.Resources()
	if err != nil {
		t.Fatal(err)
	}
	_, stranger, _ := w.reg.Account(t, "stranger")
	theirs := w.contractFor(stranger, w.node, d, need)
	elsewhere := w.contractFor(w.user, w.other, d, need)
	small := need
	small.CRU--
	tooSmall := w.contractFor(w.user, w.node, d, small)
	otherHash := w.deployment(0)
	otherHash.Description = "another deployment"
	mismatch := w.contractFor(w.user, w.node, otherHash, need)
	cancelled := w.contractFor(w.user, w.node, d, need)
	if _, err := w.user.CancelContract(ctx, cancelled.ContractID); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		contract uint64
		says     string
	}{
		{"no contract", 0, "names no contract_id"},
		{"unknown contract", 999, "contract 999 does not exist"},
		{"another twin's", theirs.ContractID, fmt.Sprintf("belongs to twin %d", theirs.TwinID)},
		{"another node's", elsewhere.ContractID, fmt.Sprintf("is for node %d", w.other)},
		{"too small", tooSmall.ContractID, fmt.Sprintf("cru: need %d, contract %d", need.CRU, small.CRU)},
		{"another hash", mismatch.ContractID, "update the contract first"},
		{"deleted", cancelled.ContractID, "is deleted (cancelled)"},
	} {
		_, err := w.deploy(w.deployment(c.contract))
		wantErr(t, err, gridtypes.ErrContract, c.says)
		t.Logf("%s: %v", c.name, err)
	}
	if n := len(w.rec.j.list()); n != 0 {
		t.Fatalf("refused deployments ran %d operations", n)
	}
	for reason, n := range map[string]float64{"none": 1, "lookup": 1, "twin": 1, "node": 1, "size": 1, "hash": 1, "deleted": 1} {
		if got := metricValue(t, w.book.m.refused.WithLabelValues(reason)); got != n {
			t.Errorf("provisiond_contract_refusals_total{reason=%q} = %v, want %v", reason, got, n)
		}
	}

	// The right contract admits it, once: another deployment with the same
	// content (the same hash) needs its own contract.
	good := w.contractFor(w.user, w.node, d, need)
	r, err := w.deploy(w.deployment(good.ContractID))
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.deploy(w.deployment(good.ContractID))
	wantErr(t, err, gridtypes.ErrContract, fmt.Sprintf("already covers deployment %d", r.Deployment.ID))

	// An update needs the contract updated first.
	r = w.waitRecord(r.Deployment.ID, "settled", func(r gridtypes.Record) bool { return r.Pending == "" })
	want := w.deployment(0)
	want.Description = "bigger"
	next, err := gridtypes.PrepareUpdate(r.Deployment, want)
	if err != nil {
		t.Fatal(err)
	}
	if err := next.Sign(w.twin, w.userK); err != nil {
		t.Fatal(err)
	}
	_, err = w.engine.Update(ctx, w.twin, next)
	wantErr(t, err, gridtypes.ErrContract, "update the contract first")
	hash, _ := next.HashHex()
	if _, err := w.user.UpdateContract(ctx, good.ContractID, regapi.UpdateContractRequest{DeploymentHash: &hash}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.engine.Update(ctx, w.twin, next); err != nil {
		t.Fatalf("update after the contract's: %v", err)
	}
}

// TestContractLifecycleOnTheNode: hours pass on a fake clock shared by the
// registrar and the node; the node reports each hour's usage, the
// registrar bills it to the unit; the balance runs out and the node
// pauses the deployment, a credit resumes it, and when the grace period
// ends the node removes it.
func TestContractLifecycleOnTheNode(t *testing.T) {
	w := newContractWorld(t, 2*time.Hour)
	ctx := context.Background()
	admin := w.reg.Admin()
	d := w.deployment(0)
	need, err := d.Resources()
	if err != nil {
		t.Fatal(err)
	}
	k := w.contractFor(w.user, w.node, d, need)
	hourly := w.prices.Cost(regapi.Capacity{CRU: need.CRU, MRU: need.MRU, SRU: need.SRU, HRU: need.HRU, IPv4: need.IPv4})
	// 2 cores, 1 address, floor((1 GiB × 2000 + 11 GiB × 100) / 1 GiB).
	if hourly != 2*1000+1*5000+2000+11*100 {
		t.Fatalf("hourly cost %d", hourly)
	}
	if _, err := admin.Credit(ctx, w.twin, 2*hourly+hourly/2, "first"); err != nil {
		t.Fatal(err)
	}
	r, err := w.deploy(w.deployment(k.ContractID))
	if err != nil {
		t.Fatal(err)
	}
	id := r.Deployment.ID
	w.waitRecord(id, "ok", allIn(gridtypes.StateOk))

	// Three hours billed from the node's reports: the third crosses zero.
	for h := range 3 {
		w.advance(time.Hour)
		w.bill()
		if got, want := w.balance(), 2*hourly+hourly/2-int64(h+1)*hourly; got != want {
			t.Fatalf("after hour %d: balance %d, want %d", h+1, got, want)
		}
	}
	lines, err := w.user.Ledger(ctx, 0, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	bills := 0
	for _, l := range lines {
		sum += l.Amount
		if l.Kind == regapi.KindBill {
			bills++
			if l.Amount != -hourly || l.ContractID != k.ContractID {
				t.Errorf("bill line %+v, want %d for contract %d", l, -hourly, k.ContractID)
			}
		}
	}
	if bills != 3 || sum != w.balance() {
		t.Fatalf("ledger %+v: %d bills summing with the credit to %d, balance %d", lines, bills, sum, w.balance())
	}
	if c := w.contract(k.ContractID); c.State != regapi.StateGrace {
		t.Fatalf("contract %+v, want grace", c)
	}

	// Grace: the node pauses the machine within a poll; the twin cannot
	// resume it.
	w.advance(testPoll)
	r = w.waitRecord(id, "paused", func(r gridtypes.Record) bool { return r.Pending == "" && states(r)["vm"] == gridtypes.StatePaused })
	_, err = w.engine.Resume(ctx, w.twin, id)
	wantErr(t, err, gridtypes.ErrContract, "in grace")

	// A credit makes it active: the node resumes what it paused.
	if _, err := admin.Credit(ctx, w.twin, hourly, "second"); err != nil {
		t.Fatal(err)
	}
	w.advance(testPoll)
	w.waitRecord(id, "resumed", func(r gridtypes.Record) bool { return r.Pending == "" && states(r)["vm"] == gridtypes.StateOk })

	// Unpaid again, and the grace period ends: the node removes it.
	for w.contract(k.ContractID).State != regapi.StateGrace {
		w.advance(time.Hour)
		w.bill()
	}
	w.advance(2*time.Hour + testPoll)
	w.bill()
	if c := w.contract(k.ContractID); c.State != regapi.StateDeleted || c.DeletedReason != regapi.ReasonGraceExpired {
		t.Fatalf("contract %+v, want deleted (grace_expired)", c)
	}
	w.advance(testPoll)
	w.waitRecord(id, "removed", func(r gridtypes.Record) bool { return r.Deleted && r.Pending == "" && allIn(gridtypes.StateDeleted)(r) })
	// Paused twice (the second grace ended in the removal).
	for action, n := range map[string]float64{"pause": 2, "resume": 1, "delete": 1} {
		if got := metricValue(t, w.book.m.actions.WithLabelValues(action)); got != n {
			t.Errorf("provisiond_contract_actions_total{action=%q} = %v, want %v", action, got, n)
		}
	}
}

// metricValue reads a counter or gauge.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// allIn is a condition: every workload is in state s.
func allIn(s gridtypes.State) func(gridtypes.Record) bool {
	return func(r gridtypes.Record) bool {
		for _, w := range r.Deployment.Workloads {
			if w.Result == nil || w.Result.State != s {
				return false
			}
		}
		return r.Pending == ""
	}
}

// TestUsageReportedAfterAnOutage: while the registrar cannot be reached
// the node admits a deployment under a contract it has cached and keeps
// each hour's usage, and the registrar's billing waits for the reports;
// once it can, the node reports every hour, and the registrar bills each
// one from the node's figures. A contract deleted
// while the node was away for longer than the registrar lists deleted
// contracts still gets its deployment removed.
func TestUsageReportedAfterAnOutage(t *testing.T) {
	w := newContractWorld(t, time.Hour)
	ctx := context.Background()
	d := w.deployment(0)
	need, err := d.Resources()
	if err != nil {
		t.Fatal(err)
	}
	k := w.contractFor(w.user, w.node, d, need)
	hourly := w.prices.Cost(regapi.Capacity{CRU: need.CRU, MRU: need.MRU, SRU: need.SRU, HRU: need.HRU, IPv4: need.IPv4})
	if _, err := w.reg.Admin().Credit(ctx, w.twin, 100*hourly, "outage"); err != nil {
		t.Fatal(err)
	}
	w.advance(testPoll) // the node caches the contract

	w.cut.Store(true)
	r, err := w.deploy(w.deployment(k.ContractID))
	if err != nil {
		t.Fatalf("deploy under a cached contract while the registrar is away: %v", err)
	}
	other := w.contractFor(w.user, w.node, w.deployment(0), need) // made meanwhile: unknown to the node
	_, err = w.deploy(w.deployment(other.ContractID))
	wantErr(t, err, gridtypes.ErrContract, "cannot check contract")
	w.advance(3 * time.Hour)
	// The registrar bills meanwhile: the node's hours wait for its
	// reports (--usage-wait) rather than being billed as nothing used.
	w.bill()
	if got := w.balance(); got != 100*hourly {
		t.Fatalf("balance %d: hours billed before the node reported them, want %d", got, 100*hourly)
	}
	w.cut.Store(false)
	w.advance(testPoll)
	// The next hourly run bills the three hours of the outage, and the
	// hour that ended since.
	w.advance(time.Hour)
	w.bill()
	if got, want := w.balance(), 100*hourly-4*hourly; got != want {
		t.Fatalf("balance %d after four reported hours, want %d", got, want)
	}
	if got := metricValue(t, w.book.m.pending); got != 0 {
		t.Errorf("provisiond_usage_hours_pending = %v after the catch-up", got)
	}

	// Away longer than a day: the contract, cancelled meanwhile, is no
	// longer in the node's list; the node reads it on its own and removes
	// the deployment.
	w.cut.Store(true)
	if _, err := w.user.CancelContract(ctx, k.ContractID); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(25 * time.Hour) // the loop's timer fires once: one round while away
	w.waitTick()
	w.cut.Store(false)
	w.advance(testPoll)
	w.waitRecord(r.Deployment.ID, "removed", func(r gridtypes.Record) bool { return r.Deleted && r.Pending == "" })
}

// TestRentContract: a twin renting the node deploys under its rent
// contract, any number of deployments, except those with public IPv4
// addresses, which need node contracts.
func TestRentContract(t *testing.T) {
	w := newContractWorld(t, time.Hour)
	rent, err := w.user.CreateContract(context.Background(), regapi.CreateContractRequest{Type: regapi.ContractRent, NodeID: w.node})
	if err != nil {
		t.Fatal(err)
	}
	private := w.deployment(rent.ContractID)
	private.Workloads = private.Workloads[2:3] // the disk alone
	for i := range 2 {
		private.Description = fmt.Sprintf("disk %d", i)
		if _, err := w.deploy(private); err != nil {
			t.Fatalf("deployment %d under the rent contract: %v", i, err)
		}
	}
	_, err = w.deploy(w.deployment(rent.ContractID))
	wantErr(t, err, gridtypes.ErrContract, "does not pay for public IPv4")
}

// TestResumeANewDeploymentUnderItsContract: the owner pauses and resumes
// a deployment never updated. Its contract is for the hash of the
// document as signed, with id 0 (the node assigns the id afterwards), so
// the check at resume hashes it so too.
func TestResumeANewDeploymentUnderItsContract(t *testing.T) {
	w := newContractWorld(t, 2*time.Hour)
	ctx := context.Background()
	d := w.deployment(0)
	need, err := d.Resources()
	if err != nil {
		t.Fatal(err)
	}
	k := w.contractFor(w.user, w.node, d, need)
	if _, err := w.reg.Admin().Credit(ctx, w.twin, 1_000_000, "credit"); err != nil {
		t.Fatal(err)
	}
	r, err := w.deploy(w.deployment(k.ContractID))
	if err != nil {
		t.Fatal(err)
	}
	id := r.Deployment.ID
	w.waitRecord(id, "ok", allIn(gridtypes.StateOk))
	if _, err := w.engine.Pause(ctx, w.twin, id); err != nil {
		t.Fatal(err)
	}
	w.waitRecord(id, "paused", func(r gridtypes.Record) bool { return r.Pending == "" && states(r)["vm"] == gridtypes.StatePaused })
	if _, err := w.engine.Resume(ctx, w.twin, id); err != nil {
		t.Fatalf("resume: %v", err)
	}
	w.waitRecord(id, "resumed", func(r gridtypes.Record) bool { return r.Pending == "" && states(r)["vm"] == gridtypes.StateOk })
}
