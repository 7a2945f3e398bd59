package provisiond

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/grid4/grid4/gridtypes"
)

// DBFile is the name of the engine's database in its directory.
const DBFile = "provision.db"

// Defaults of Config.
const (
	DefaultMaxAttempts = 3
	DefaultOpTimeout   = 10 * time.Minute
)

// Config configures an Engine.
type Config struct {
	// Dir is the node's data directory for the engine; the database is
	// Dir/provision.db. Required.
	Dir string
	// Managers maps each workload type to its manager. A deployment using
	// a type without a manager is refused.
	Managers map[gridtypes.WorkloadType]Manager
	// Keys looks up twins' keys to verify deployment signatures. Required.
	Keys gridtypes.TwinKeys
	// Capacity is the node's total capacity. Required.
	Capacity CapacityProvider
	// Admission, when set, decides whether a deployment's contract lets
	// it run on this node (Contracts is the registrar-backed one); nil
	// admits every deployment (a node with --contracts off).
	Admission Admission
	// MaxAttempts is how many times an operation may be interrupted (the
	// process dies while it runs) before it is rolled back instead of run
	// again (DefaultMaxAttempts).
	MaxAttempts int
	// OpTimeout bounds one manager call (DefaultOpTimeout).
	OpTimeout time.Duration
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger receives the engine's records (nil: discarded).
	Logger *slog.Logger
}

// Engine is provisiond: it admits deployments, queues their operations
// and runs them (Run). Its methods are safe for concurrent use.
type Engine struct {
	c   Config
	db  *bolt.DB
	log *slog.Logger

	// wake has a value when a job was queued; the worker waits on it.
	wake chan struct{}

	mu sync.Mutex
	// changed is closed (and replaced) whenever the worker records a
	// result, so Wait can sleep until something happens.
	changed chan struct{}
	running bool
	// restored is set once Restore ran: Run does not restore twice.
	restored bool
}

// Open opens (creating if needed) the engine's database in c.Dir. The
// queue is not processed until Run.
func Open(c Config) (*Engine, error) {
	if c.Dir == "" || c.Keys == nil || c.Capacity == nil {
		return nil, errors.New("provision: Config.Dir, Keys and Capacity are required")
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = DefaultOpTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("provision: data directory: %w", err)
	}
	// The timeout turns a second engine on the same directory into an
	// error instead of a hang on the file lock.
	db, err := bolt.Open(filepath.Join(c.Dir, DBFile), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("provision: open %s: %w", filepath.Join(c.Dir, DBFile), err)
	}
	if err := initStore(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("provision: %w", err)
	}
	return &Engine{c: c, db: db, log: c.Logger, wake: make(chan struct{}, 1), changed: make(chan struct{})}, nil
}

// WorkloadTypes lists the types this engine has managers for, in
// processing order.
func (e *Engine) WorkloadTypes() []gridtypes.WorkloadType {
	var out []gridtypes.WorkloadType
	for _, t := range gridtypes.Types() {
		if _, ok := e.c.Managers[t]; ok {
			out = append(out, t)
		}
	}
	return out
}

// Close closes the database. Stop Run first.
func (e *Engine) Close() error { return e.db.Close() }

func (e *Engine) now() time.Time { return e.c.Now().UTC() }

func (e *Engine) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *Engine) notify() {
	e.mu.Lock()
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
}

func (e *Engine) changedCh() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changed
}

// ---------------------------------------------------------------------------
// Admission

// admit checks a deployment as far as it can without the database:
// schema, references, managers present.
func (e *Engine) admit(d *gridtypes.Deployment) error {
	if err := d.Validate(); err != nil {
		return err
	}
	for i, w := range d.Workloads {
		if _, ok := e.c.Managers[w.Type]; !ok {
			return &gridtypes.ValidationError{Field: fmt.Sprintf("workloads[%d].type", i), Reason: fmt.Sprintf("this node does not run %s workloads", w.Type)}
		}
	}
	return nil
}

// Deploy accepts a new deployment of caller: validates it completely,
// checks its signatures and the node's free capacity, stores it with id
// assigned and queues its provisioning. Nothing is queued when any check
// fails.
func (e *Engine) Deploy(ctx context.Context, caller uint64, d gridtypes.Deployment) (gridtypes.Record, error) {
	// A missing twin_id (0) is left to validation, which names the field:
	// it is a mistake in the document, not another twin's deployment.
	if d.TwinID != caller && d.TwinID != 0 {
		return gridtypes.Record{}, fmt.Errorf("%w: twin_id is %d but the caller is twin %d", gridtypes.ErrForbidden, d.TwinID, caller)
	}
	if d.ID != 0 {
		return gridtypes.Record{}, &gridtypes.ValidationError{Field: "id", Reason: fmt.Sprintf("must be 0 in a new deployment (the node assigns it); use update for deployment %d", d.ID)}
	}
	if d.Version != 0 {
		return gridtypes.Record{}, &gridtypes.ValidationError{Field: "version", Reason: "a new deployment has version 0"}
	}
	stripResults(&d)
	if err := e.admit(&d); err != nil {
		return gridtypes.Record{}, err
	}
	if err := gridtypes.VerifySignatures(ctx, e.c.Keys, &d, d.SignatureRequirement); err != nil {
		return gridtypes.Record{}, err
	}
	total, err := e.c.Capacity.Total(ctx)
	if err != nil {
		return gridtypes.Record{}, err
	}
	need, err := d.Resources()
	if err != nil {
		return gridtypes.Record{}, err
	}
	grant, err := e.admitContract(ctx, &d, need)
	if err != nil {
		return gridtypes.Record{}, err
	}
	var rec gridtypes.Record
	err = e.db.Update(func(tx *bolt.Tx) error {
		s := txStore{tx}
		if err := checkContractFree(s, grant, d.ContractID, 0); err != nil {
			return err
		}
		used, err := usedResources(s, 0)
		if err != nil {
			return err
		}
		if err := fits(total, used, need); err != nil {
			return err
		}
		id, err := s.nextID()
		if err != nil {
			return err
		}
		now := e.now()
		d.ID = id
		rec = gridtypes.Record{Deployment: d, Created: now, Updated: now, Pending: "deploy"}
		j := &job{Deployment: id, TwinID: d.TwinID, Kind: "deploy", Version: d.Version}
		for i := range rec.Deployment.Workloads {
			w := &rec.Deployment.Workloads[i]
			w.Result = &gridtypes.Result{State: gridtypes.StateInit, Created: now}
			j.Steps = append(j.Steps, step{Op: gridtypes.OpProvision, Workload: withoutResult(*w)})
			if err := s.addChange(id, gridtypes.Change{Time: now, Version: d.Version, Workload: w.Name, Type: w.Type, Op: gridtypes.OpAccept, State: gridtypes.StateInit}); err != nil {
				return err
			}
		}
		sortSteps(j.Steps, false)
		if err := s.putRecord(&rec); err != nil {
			return err
		}
		return s.enqueue(j)
	})
	if err != nil {
		return gridtypes.Record{}, err
	}
	e.log.Info("deployment accepted", "twin", d.TwinID, "deployment", rec.Deployment.ID, "workloads", len(d.Workloads))
	e.signal()
	return rec, nil
}

// Update accepts a new version of a deployment of caller. Workloads added
// are provisioned, removed ones deprovisioned, changed ones updated (or
// redeployed when their manager cannot update), failed ones provisioned
// again; other unchanged workloads are not touched. The new version must be signed as the current and the new
// signature requirements ask.
func (e *Engine) Update(ctx context.Context, caller uint64, next gridtypes.Deployment) (gridtypes.Record, error) {
	cur, err := e.Get(ctx, caller, next.ID)
	if err != nil {
		return gridtypes.Record{}, err
	}
	if err := checkChangeable(&cur); err != nil {
		return gridtypes.Record{}, err
	}
	stripResults(&next)
	if err := e.admit(&next); err != nil {
		return gridtypes.Record{}, err
	}
	curSpec := cur.Deployment
	stripResults(&curSpec)
	if err := curSpec.Validate(); err != nil {
		return gridtypes.Record{}, fmt.Errorf("stored deployment %d: %w", cur.Deployment.ID, err)
	}
	if err := gridtypes.CheckUpdate(&curSpec, &next); err != nil {
		return gridtypes.Record{}, err
	}
	for _, req := range []gridtypes.SignatureRequirement{curSpec.SignatureRequirement, next.SignatureRequirement} {
		if err := gridtypes.VerifySignatures(ctx, e.c.Keys, &next, req); err != nil {
			return gridtypes.Record{}, err
		}
	}
	total, err := e.c.Capacity.Total(ctx)
	if err != nil {
		return gridtypes.Record{}, err
	}
	need, err := next.Resources()
	if err != nil {
		return gridtypes.Record{}, err
	}
	grant, err := e.admitContract(ctx, &next, need)
	if err != nil {
		return gridtypes.Record{}, err
	}
	var rec gridtypes.Record
	queued := false
	err = e.db.Update(func(tx *bolt.Tx) error {
		s := txStore{tx}
		r, err := s.record(next.ID)
		if err != nil {
			return err
		}
		if r.Deployment.Version != cur.Deployment.Version {
			return fmt.Errorf("%w: deployment %d changed meanwhile (now version %d)", gridtypes.ErrConflict, next.ID, r.Deployment.Version)
		}
		if err := checkChangeable(r); err != nil {
			return err
		}
		if err := checkContractFree(s, grant, next.ContractID, next.ID); err != nil {
			return err
		}
		used, err := usedResources(s, next.ID)
		if err != nil {
			return err
		}
		if err := fits(total, used, need); err != nil {
			return err
		}
		now := e.now()
		steps, err := updateSteps(&r.Deployment, &next, now)
		if err != nil {
			return err
		}
		for _, w := range next.Workloads {
			if w.Result != nil && w.Result.State == gridtypes.StateInit {
				if err := s.addChange(next.ID, gridtypes.Change{Time: now, Version: next.Version, Workload: w.Name, Type: w.Type, Op: gridtypes.OpAccept, State: gridtypes.StateInit}); err != nil {
					return err
				}
			}
		}
		j := &job{Deployment: next.ID, TwinID: next.TwinID, Kind: "update", Version: next.Version, Steps: steps}
		r.Deployment = next
		r.Updated = now
		if len(j.Steps) > 0 {
			r.Pending = "update"
			if err := s.enqueue(j); err != nil {
				return err
			}
			queued = true
		}
		rec = *r
		return s.putRecord(r)
	})
	if err != nil {
		return gridtypes.Record{}, err
	}
	e.log.Info("deployment update accepted", "twin", next.TwinID, "deployment", next.ID, "version", next.Version, "queued", queued)
	if queued {
		e.signal()
	}
	return rec, nil
}

// updateSteps compares the stored deployment cur with its next version and
// returns the steps that take the node from one to the other: removed
// workloads deprovisioned (in reverse order), new ones provisioned,
// changed ones updated, failed ones tried again (a failed workload holds
// nothing: it was rolled back). It sets the result of every workload of
// next: kept from cur when unchanged, StateInit at now when a step will
// run for it.
func updateSteps(cur, next *gridtypes.Deployment, now time.Time) ([]step, error) {
	var removals, changes []step
	for _, old := range cur.Workloads {
		if _, ok := next.Get(old.Name); !ok && old.Result != nil && old.Result.State != gridtypes.StateDeleted {
			removals = append(removals, step{Op: gridtypes.OpDeprovision, Workload: withoutResult(old)})
		}
	}
	for i := range next.Workloads {
		w := &next.Workloads[i]
		old, existed := cur.Get(w.Name)
		if !existed {
			changes = append(changes, step{Op: gridtypes.OpProvision, Workload: withoutResult(*w)})
			w.Result = &gridtypes.Result{State: gridtypes.StateInit, Created: now}
			continue
		}
		oh, err1 := old.DataHash()
		nh, err2 := w.DataHash()
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		w.Result = old.Result
		switch {
		case oh != nh:
			var was gridtypes.State
			if old.Result != nil {
				was = old.Result.State
			}
			changes = append(changes, step{Op: gridtypes.OpUpdate, Workload: withoutResult(*w), Was: was})
			w.Result = &gridtypes.Result{State: gridtypes.StateInit, Created: now}
		case old.Result != nil && old.Result.State == gridtypes.StateError:
			changes = append(changes, step{Op: gridtypes.OpProvision, Workload: withoutResult(*w)})
			w.Result = &gridtypes.Result{State: gridtypes.StateInit, Created: now}
		}
	}
	sortSteps(removals, true)
	sortSteps(changes, false)
	return append(removals, changes...), nil
}

// checkChangeable refuses changes to a deleted or busy deployment.
func checkChangeable(r *gridtypes.Record) error {
	if r.Deleted {
		return fmt.Errorf("%w: deployment %d is deleted", gridtypes.ErrConflict, r.Deployment.ID)
	}
	if r.Pending != "" {
		return fmt.Errorf("%w: deployment %d has a queued %s; retry when it is done", gridtypes.ErrBusy, r.Deployment.ID, r.Pending)
	}
	return nil
}

// Delete queues the removal of every workload of a deployment of caller,
// in reverse order. The record stays, with its workloads deleted.
func (e *Engine) Delete(ctx context.Context, caller, id uint64) (gridtypes.Record, error) {
	return e.queueAll(ctx, caller, id, "delete", func(r *gridtypes.Record, w *gridtypes.Workload) (gridtypes.Op, bool) {
		return gridtypes.OpDeprovision, w.Result == nil || w.Result.State != gridtypes.StateDeleted
	})
}

// Pause suspends the workloads of a deployment that can be suspended (and
// are ok), machines first.
func (e *Engine) Pause(ctx context.Context, caller, id uint64) (gridtypes.Record, error) {
	return e.queueAll(ctx, caller, id, "pause", func(r *gridtypes.Record, w *gridtypes.Workload) (gridtypes.Op, bool) {
		_, can := e.c.Managers[w.Type].(Pauser)
		return gridtypes.OpPause, can && w.Result != nil && w.Result.State == gridtypes.StateOk
	})
}

// Resume resumes the paused workloads of a deployment, in order. With an
// Admission, the deployment's contract must allow it to run (a twin
// cannot resume what the node paused for a contract in grace).
func (e *Engine) Resume(ctx context.Context, caller, id uint64) (gridtypes.Record, error) {
	if e.c.Admission != nil {
		// Deployments accepted before the node enforced contracts have
		// none; they resume as they always did.
		cur, err := e.Get(ctx, caller, id)
		if err != nil {
			return gridtypes.Record{}, err
		}
		if err := e.admitStored(ctx, cur.Deployment); err != nil {
			return gridtypes.Record{}, err
		}
	}
	return e.resume(ctx, caller, id)
}

// resume queues the resumption of the paused workloads of a deployment.
func (e *Engine) resume(ctx context.Context, caller, id uint64) (gridtypes.Record, error) {
	return e.queueAll(ctx, caller, id, "resume", func(r *gridtypes.Record, w *gridtypes.Workload) (gridtypes.Op, bool) {
		return gridtypes.OpResume, w.Result != nil && w.Result.State == gridtypes.StatePaused
	})
}

// queueAll queues one operation for every workload pick selects.
func (e *Engine) queueAll(_ context.Context, caller, id uint64, kind string, pick func(*gridtypes.Record, *gridtypes.Workload) (gridtypes.Op, bool)) (gridtypes.Record, error) {
	var rec gridtypes.Record
	err := e.db.Update(func(tx *bolt.Tx) error {
		s := txStore{tx}
		r, err := s.record(id)
		if err != nil {
			return err
		}
		if r.Deployment.TwinID != caller {
			return fmt.Errorf("%w: deployment %d", gridtypes.ErrForbidden, id)
		}
		if err := checkChangeable(r); err != nil {
			return err
		}
		j := &job{Deployment: id, TwinID: r.Deployment.TwinID, Kind: kind, Version: r.Deployment.Version}
		for i := range r.Deployment.Workloads {
			w := &r.Deployment.Workloads[i]
			if op, ok := pick(r, w); ok {
				j.Steps = append(j.Steps, step{Op: op, Workload: withoutResult(*w)})
			}
		}
		if len(j.Steps) == 0 && kind != "delete" {
			return fmt.Errorf("%w: deployment %d has no workload to %s", gridtypes.ErrConflict, id, kind)
		}
		// Removal and suspension go from the top (logs, machines) down
		// to storage; resumption from storage up.
		sortSteps(j.Steps, kind != "resume")
		now := e.now()
		r.Updated = now
		if kind == "delete" {
			r.Deleted = true
		}
		if len(j.Steps) > 0 {
			r.Pending = kind
			if err := s.enqueue(j); err != nil {
				return err
			}
		}
		rec = *r
		return s.putRecord(r)
	})
	if err != nil {
		return gridtypes.Record{}, err
	}
	e.log.Info("deployment operation accepted", "op", kind, "twin", caller, "deployment", id)
	e.signal()
	return rec, nil
}

// sortSteps orders steps by the stage of their workload type (storage,
// networks, machines, logs), reversed for removal; the deployment's order
// is kept within a stage.
func sortSteps(steps []step, reverse bool) {
	slices.SortStableFunc(steps, func(a, b step) int {
		c := cmp.Compare(a.Workload.Type.Stage(), b.Workload.Type.Stage())
		if reverse {
			return -c
		}
		return c
	})
}

func withoutResult(w gridtypes.Workload) gridtypes.Workload {
	w.Result = nil
	return w
}

func stripResults(d *gridtypes.Deployment) {
	for i := range d.Workloads {
		d.Workloads[i].Result = nil
	}
}

// usedResources adds up what the workloads of every deployment except
// skip hold.
func usedResources(s txStore, skip uint64) (gridtypes.Resources, error) {
	var used gridtypes.Resources
	err := s.records(func(r *gridtypes.Record) bool {
		if r.Deployment.ID == skip {
			return true
		}
		for i := range r.Deployment.Workloads {
			w := &r.Deployment.Workloads[i]
			if w.Result != nil && holdsResources(w.Result.State) {
				used = used.Add(gridtypes.WorkloadResources(w))
			}
		}
		return true
	})
	return used, err
}

// fits refuses need when it does not fit next to used in total.
func fits(total, used, need gridtypes.Resources) error {
	over := used.Add(need).Exceeds(total)
	if len(over) == 0 {
		return nil
	}
	free := total.Sub(used)
	parts := make([]string, 0, len(over))
	for _, name := range over {
		var n, f uint64
		switch name {
		case "cru":
			n, f = need.CRU, free.CRU
		case "mru":
			n, f = need.MRU, free.MRU
		case "sru":
			n, f = need.SRU, free.SRU
		case "hru":
			n, f = need.HRU, free.HRU
		case "ipv4":
			n, f = need.IPv4, free.IPv4
		}
		parts = append(parts, fmt.Sprintf("%s: need %d, free %d", name, n, f))
	}
	return fmt.Errorf("%w: %s", gridtypes.ErrCapacity, strings.Join(parts, "; "))
}

// ---------------------------------------------------------------------------
// Reading

// Get returns a deployment of caller.
func (e *Engine) Get(_ context.Context, caller, id uint64) (gridtypes.Record, error) {
	var rec gridtypes.Record
	err := e.db.View(func(tx *bolt.Tx) error {
		r, err := txStore{tx}.record(id)
		if err != nil {
			return err
		}
		if r.Deployment.TwinID != caller {
			return fmt.Errorf("%w: deployment %d", gridtypes.ErrForbidden, id)
		}
		rec = *r
		return nil
	})
	return rec, err
}

// List returns the deployments of caller, oldest first.
func (e *Engine) List(_ context.Context, caller uint64) ([]gridtypes.Summary, error) {
	out := []gridtypes.Summary{}
	err := e.db.View(func(tx *bolt.Tx) error {
		return txStore{tx}.records(func(r *gridtypes.Record) bool {
			if r.Deployment.TwinID == caller {
				out = append(out, r.Summary())
			}
			return true
		})
	})
	return out, err
}

// Changes returns the history of a deployment of caller, oldest first.
func (e *Engine) Changes(ctx context.Context, caller, id uint64) ([]gridtypes.Change, error) {
	if _, err := e.Get(ctx, caller, id); err != nil {
		return nil, err
	}
	var out []gridtypes.Change
	err := e.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = txStore{tx}.changes(id)
		return err
	})
	if out == nil {
		out = []gridtypes.Change{}
	}
	return out, err
}

// Capacity reports the node's total, used and free capacity.
func (e *Engine) Capacity(ctx context.Context) (gridtypes.CapacityReport, error) {
	total, err := e.c.Capacity.Total(ctx)
	if err != nil {
		return gridtypes.CapacityReport{}, err
	}
	var used gridtypes.Resources
	err = e.db.View(func(tx *bolt.Tx) error {
		var err error
		used, err = usedResources(txStore{tx}, 0)
		return err
	})
	return gridtypes.CapacityReport{Total: total, Used: used, Free: total.Sub(used)}, err
}

// Statistics returns counts of deployments, workloads and queued jobs.
func (e *Engine) Statistics(_ context.Context) (gridtypes.Statistics, error) {
	st := gridtypes.Statistics{Workloads: map[gridtypes.WorkloadType]map[gridtypes.State]int{}}
	twins := map[uint64]bool{}
	err := e.db.View(func(tx *bolt.Tx) error {
		s := txStore{tx}
		st.Queued = s.jobCount()
		return s.records(func(r *gridtypes.Record) bool {
			if r.Deleted {
				st.Deleted++
			} else {
				st.Deployments++
				twins[r.Deployment.TwinID] = true
			}
			for _, w := range r.Deployment.Workloads {
				state := gridtypes.StateInit
				if w.Result != nil {
					state = w.Result.State
				}
				if st.Workloads[w.Type] == nil {
					st.Workloads[w.Type] = map[gridtypes.State]int{}
				}
				st.Workloads[w.Type][state]++
			}
			return true
		})
	})
	st.Twins = len(twins)
	return st, err
}

// Wait blocks until the deployment of caller has no queued operation, and
// returns it.
func (e *Engine) Wait(ctx context.Context, caller, id uint64) (gridtypes.Record, error) {
	for {
		ch := e.changedCh()
		r, err := e.Get(ctx, caller, id)
		if err != nil || r.Pending == "" {
			return r, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return r, ctx.Err()
		}
	}
}

// ---------------------------------------------------------------------------
// Processing

// Restore brings back the ok and paused workloads of Restorer managers
// (see Restorer), once per Engine. A server calls it before it answers
// users, so that no workload reads ok while it is still being brought
// back; Run calls it when nobody did.
func (e *Engine) Restore(ctx context.Context) error {
	e.mu.Lock()
	done := e.restored
	e.mu.Unlock()
	if done {
		return nil
	}
	if err := e.restore(ctx); err != nil {
		return err
	}
	if ctx.Err() == nil {
		e.mu.Lock()
		e.restored = true
		e.mu.Unlock()
	}
	return nil
}

// Run processes the queue until ctx ends. It first restores the
// workloads of Restorer managers (unless Restore did), then resumes the job that was running
// when the process last stopped, at the step that was in flight. Only one
// Run may be active.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.running {
		e.mu.Unlock()
		return errors.New("provision: Run is already active")
	}
	e.running = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.running = false
		e.mu.Unlock()
	}()

	if err := e.Restore(ctx); err != nil {
		return err
	}
	for {
		j, err := e.firstJob()
		if err != nil {
			return err
		}
		if j == nil {
			select {
			case <-ctx.Done():
				return nil
			case <-e.wake:
				continue
			}
		}
		if err := e.runJob(ctx, j); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

func (e *Engine) firstJob() (*job, error) {
	var j *job
	err := e.db.View(func(tx *bolt.Tx) error {
		var err error
		j, err = txStore{tx}.firstJob()
		return err
	})
	return j, err
}

// restore calls Restore for the ok and paused workloads of Restorer
// managers, in processing order, and sets the workloads that cannot be
// brought back to error. Workloads a queued job is about to change are
// restored too: the job resumes from the node's real state.
func (e *Engine) restore(ctx context.Context) error {
	type item struct {
		t       Task
		version uint32
	}
	var items []item
	err := e.db.View(func(tx *bolt.Tx) error {
		return txStore{tx}.records(func(r *gridtypes.Record) bool {
			for _, w := range r.Deployment.Workloads {
				if w.Result == nil || (w.Result.State != gridtypes.StateOk && w.Result.State != gridtypes.StatePaused) {
					continue
				}
				if _, ok := e.c.Managers[w.Type].(Restorer); ok {
					items = append(items, item{Task{TwinID: r.Deployment.TwinID, DeploymentID: r.Deployment.ID, Workload: withoutResult(w), State: w.Result.State}, r.Deployment.Version})
				}
			}
			return true
		})
	})
	if err != nil {
		return err
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].t.Workload.Type.Stage() < items[j].t.Workload.Type.Stage() })
	restored, failed := 0, 0
	for _, it := range items {
		if ctx.Err() != nil {
			return nil
		}
		// Read again: a workload restored before (a machine) may have
		// just been found lost, and this one (its log stream) depends on it.
		if err := e.db.View(func(tx *bolt.Tx) error {
			r, err := txStore{tx}.record(it.t.DeploymentID)
			if err == nil {
				it.t.Siblings = siblingsOf(r, it.t.Workload.Name)
			}
			return err
		}); err != nil {
			return err
		}
		opCtx, cancel := context.WithTimeout(ctx, e.c.OpTimeout)
		rerr := e.c.Managers[it.t.Workload.Type].(Restorer).Restore(opCtx, it.t)
		cancel()
		if rerr == nil {
			restored++
			continue
		}
		if ctx.Err() != nil {
			return nil // stopping: the next start tries again
		}
		failed++
		e.log.Warn("workload cannot be restored", "workload", it.t.ID(), "type", it.t.Workload.Type, "error", rerr)
		if err := e.markLost(it.t, it.version, "restore: "+rerr.Error()); err != nil {
			return err
		}
	}
	if len(items) > 0 {
		e.log.Info("workloads restored", "restored", restored, "failed", failed)
		e.notify()
	}
	return nil
}

// markLost sets a workload that could not be restored to error, with the
// reason, and records it in the deployment's history.
func (e *Engine) markLost(t Task, version uint32, msg string) error {
	return e.db.Update(func(tx *bolt.Tx) error {
		s := txStore{tx}
		r, err := s.record(t.DeploymentID)
		if err != nil {
			return err
		}
		w, ok := r.Deployment.Get(t.Workload.Name)
		if !ok || w.Type != t.Workload.Type || w.Result == nil {
			return nil
		}
		now := e.now()
		w.Result = &gridtypes.Result{State: gridtypes.StateError, Created: now, Message: msg, Data: w.Result.Data}
		if err := s.addChange(t.DeploymentID, gridtypes.Change{Time: now, Version: version, Workload: w.Name, Type: w.Type, Op: gridtypes.OpRestore, State: gridtypes.StateError, Message: msg}); err != nil {
			return err
		}
		r.Updated = now
		return s.putRecord(r)
	})
}

// runJob runs the remaining steps of j, recording each.
func (e *Engine) runJob(ctx context.Context, j *job) error {
	for j.Next < len(j.Steps) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		st := j.Steps[j.Next]
		t, err := e.task(j, st)
		if err != nil {
			return err
		}
		var res outcome
		if j.Attempts >= e.c.MaxAttempts {
			e.log.Warn("operation interrupted too often; rolling back", "op", st.Op, "workload", t.ID(), "attempts", j.Attempts)
			res = e.rollback(ctx, st, t, j.Attempts)
		} else {
			if j.Attempts > 0 {
				e.log.Info("resuming interrupted operation", "op", st.Op, "workload", t.ID(), "attempt", j.Attempts+1)
			}
			// The intent record: written before the manager is called,
			// so a crash during the call is found on the next start.
			j.Attempts++
			j.Started = e.now()
			if err := e.saveJob(j); err != nil {
				return err
			}
			var interrupted bool
			res, interrupted = e.perform(ctx, st, t)
			if interrupted {
				// A clean stop does not count as a failed attempt.
				j.Attempts--
				if err := e.saveJob(j); err != nil {
					return err
				}
				return ctx.Err()
			}
		}
		if err := e.finishStep(j, st, res); err != nil {
			return err
		}
		e.notify()
	}
	return nil
}

func (e *Engine) saveJob(j *job) error {
	return e.db.Update(func(tx *bolt.Tx) error { return txStore{tx}.putJob(j) })
}

// task builds the manager's view of a step, with the workload's state
// before it.
func (e *Engine) task(j *job, st step) (Task, error) {
	t := Task{TwinID: j.TwinID, DeploymentID: j.Deployment, Workload: st.Workload, State: gridtypes.StateInit}
	err := e.db.View(func(tx *bolt.Tx) error {
		r, err := txStore{tx}.record(j.Deployment)
		if err != nil {
			return err
		}
		if w, ok := r.Deployment.Get(st.Workload.Name); ok && w.Result != nil {
			t.State = w.Result.State
		}
		if st.Was != "" { // an update: the state before it was accepted
			t.State = st.Was
		}
		t.Siblings = siblingsOf(r, st.Workload.Name)
		return nil
	})
	return t, err
}

// siblingsOf returns the results of r's workloads other than name.
func siblingsOf(r *gridtypes.Record, name string) map[string]gridtypes.Result {
	out := map[string]gridtypes.Result{}
	for _, w := range r.Deployment.Workloads {
		if w.Name != name && w.Result != nil {
			out[w.Name] = *w.Result
		}
	}
	return out
}

// outcome is what a step ends with.
type outcome struct {
	state gridtypes.State
	msg   string
	data  json.RawMessage
	// keep leaves the workload's recorded state as it was (a failed pause
	// or resume); msg still goes to the history.
	keep bool
}

// perform runs one step through its manager. interrupted is true when ctx
// ended during the call: the step's result is then unknown and it must
// run again.
func (e *Engine) perform(ctx context.Context, st step, t Task) (res outcome, interrupted bool) {
	m := e.c.Managers[st.Workload.Type]
	if m == nil {
		return outcome{state: gridtypes.StateError, msg: fmt.Sprintf("no manager for %s workloads on this node", st.Workload.Type)}, false
	}
	opCtx, cancel := context.WithTimeout(ctx, e.c.OpTimeout)
	defer cancel()
	start := e.now()
	switch st.Op {
	case gridtypes.OpProvision:
		res = e.provision(opCtx, ctx, m, t, "")
	case gridtypes.OpUpdate:
		if u, ok := m.(Updater); ok {
			data, err := u.Update(opCtx, t)
			res = resultOf(gridtypes.StateOk, data, err, "update")
		} else {
			// No in-place update: redeploy. Deprovision and Provision
			// are idempotent, so running both again after a crash is
			// safe.
			if err := m.Deprovision(opCtx, t); err != nil {
				res = outcome{state: gridtypes.StateError, msg: "redeploy: deprovision: " + err.Error()}
			} else {
				res = e.provision(opCtx, ctx, m, t, "redeploy: ")
			}
		}
	case gridtypes.OpDeprovision:
		if err := m.Deprovision(opCtx, t); err != nil {
			res = outcome{state: gridtypes.StateError, msg: "deprovision: " + err.Error()}
		} else {
			res = outcome{state: gridtypes.StateDeleted}
		}
	case gridtypes.OpPause, gridtypes.OpResume:
		p, ok := m.(Pauser)
		switch {
		case !ok:
			res = outcome{keep: true, msg: fmt.Sprintf("%s workloads cannot be paused", st.Workload.Type)}
		case st.Op == gridtypes.OpPause:
			res = pauseResult(p.Pause(opCtx, t), gridtypes.StatePaused, "pause")
		default:
			res = pauseResult(p.Resume(opCtx, t), gridtypes.StateOk, "resume")
		}
	default:
		res = outcome{state: gridtypes.StateError, msg: fmt.Sprintf("unknown operation %q", st.Op)}
	}
	if ctx.Err() != nil && (res.state == gridtypes.StateError || res.keep) {
		return res, true
	}
	e.log.Info("operation done", "op", st.Op, "workload", t.ID(), "type", st.Workload.Type,
		"state", res.state, "error", res.msg, "took", e.now().Sub(start).Round(time.Millisecond))
	return res, false
}

// provision runs Provision and, when it fails, Deprovision to remove
// whatever it made: a workload in error holds nothing. When the engine is
// stopping (parent done) there is no cleanup: the step will run again.
func (e *Engine) provision(ctx, parent context.Context, m Manager, t Task, prefix string) outcome {
	data, err := m.Provision(ctx, t)
	if err == nil {
		return resultOf(gridtypes.StateOk, data, nil, "")
	}
	if parent.Err() != nil {
		return outcome{state: gridtypes.StateError, msg: prefix + err.Error()}
	}
	// The operation's context may be what failed (its timeout); the
	// cleanup gets a fresh one.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(parent), e.c.OpTimeout)
	defer cancel()
	if derr := m.Deprovision(cctx, t); derr != nil {
		e.log.Warn("cleanup after failed provision failed", "workload", t.ID(), "error", derr)
		return outcome{state: gridtypes.StateError, msg: prefix + err.Error() + " (cleanup failed: " + derr.Error() + ")"}
	}
	return outcome{state: gridtypes.StateError, msg: prefix + err.Error()}
}

func resultOf(state gridtypes.State, data any, err error, what string) outcome {
	if err != nil {
		msg := err.Error()
		if what != "" {
			msg = what + ": " + msg
		}
		return outcome{state: gridtypes.StateError, msg: msg}
	}
	res := outcome{state: state}
	if data != nil {
		b, merr := json.Marshal(data)
		if merr != nil {
			return outcome{state: gridtypes.StateError, msg: "result: " + merr.Error()}
		}
		res.data = b
	}
	return res
}

func pauseResult(err error, state gridtypes.State, what string) outcome {
	if err != nil {
		return outcome{keep: true, msg: what + ": " + err.Error()}
	}
	return outcome{state: state}
}

// rollback ends a step whose attempts were all interrupted: what it may
// have made is removed and the workload marked failed (for a removal, the
// removal is tried once more and reported).
func (e *Engine) rollback(ctx context.Context, st step, t Task, attempts int) outcome {
	m := e.c.Managers[st.Workload.Type]
	msg := fmt.Sprintf("%s interrupted %d times; rolled back", st.Op, attempts)
	switch st.Op {
	case gridtypes.OpProvision, gridtypes.OpUpdate, gridtypes.OpDeprovision:
		if m == nil {
			return outcome{state: gridtypes.StateError, msg: msg}
		}
		opCtx, cancel := context.WithTimeout(ctx, e.c.OpTimeout)
		defer cancel()
		if err := m.Deprovision(opCtx, t); err != nil {
			return outcome{state: gridtypes.StateError, msg: msg + " (cleanup failed: " + err.Error() + ")"}
		}
		if st.Op == gridtypes.OpDeprovision {
			return outcome{state: gridtypes.StateDeleted}
		}
		return outcome{state: gridtypes.StateError, msg: msg}
	}
	return outcome{keep: true, msg: fmt.Sprintf("%s interrupted %d times; skipped", st.Op, attempts)}
}

// finishStep records a step's outcome, its history entry and the job's
// progress in one transaction; the job is removed after its last step.
func (e *Engine) finishStep(j *job, st step, res outcome) error {
	return e.db.Update(func(tx *bolt.Tx) error {
		s := txStore{tx}
		r, err := s.record(j.Deployment)
		if err != nil {
			return err
		}
		now := e.now()
		state := res.state
		if w, ok := r.Deployment.Get(st.Workload.Name); ok && w.Type == st.Workload.Type {
			switch {
			case res.keep:
				if w.Result != nil {
					state = w.Result.State
					w.Result.Message = res.msg
				}
			case w.Version == st.Workload.Version || st.Op != gridtypes.OpDeprovision:
				data := res.data
				if (st.Op == gridtypes.OpPause || st.Op == gridtypes.OpResume) && w.Result != nil {
					// Pause and resume report nothing new: what the
					// workload is (a machine's addresses) stays.
					data = w.Result.Data
				}
				w.Result = &gridtypes.Result{State: res.state, Created: now, Message: res.msg, Data: data}
			}
		}
		if state == "" {
			state = gridtypes.StateOk
		}
		if err := s.addChange(j.Deployment, gridtypes.Change{Time: now, Version: j.Version, Workload: st.Workload.Name, Type: st.Workload.Type, Op: st.Op, State: state, Message: res.msg}); err != nil {
			return err
		}
		j.Next++
		j.Attempts = 0
		j.Started = time.Time{}
		r.Updated = now
		if j.Next >= len(j.Steps) {
			r.Pending = ""
			if err := s.deleteJob(j.Seq); err != nil {
				return err
			}
		} else if err := s.putJob(j); err != nil {
			return err
		}
		return s.putRecord(r)
	})
}
