package provisiond

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/grid4/grid4/gridtypes"
	regapi "github.com/grid4/grid4/registrar/api"
	regclient "github.com/grid4/grid4/registrar/client"
)

// Run follows the node's contracts until ctx ends, every poll interval:
// it reads them from the registrar into the cache, pauses the
// deployments of contracts in grace, resumes those it paused once their
// contract is active again, removes the deployments of deleted
// contracts, records what each contract holds in the current hour and
// reports the finished hours not reported yet. While the registrar cannot
// be reached it goes on from the cache and reports later. Between polls
// it records usage again whenever the engine finished an operation, so
// that a deployment living less than a poll interval is counted too.
func (b *Contracts) Run(ctx context.Context, e *Engine) error {
	b.tick(ctx, e)
	timer := b.c.Clock.NewTimer(b.c.Poll)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-e.changedCh():
			b.sampleNow(e)
		case <-timer.C():
			b.tick(ctx, e)
			timer.Reset(b.c.Poll)
		}
	}
}

// sampleNow records what the deployments hold now (sample).
func (b *Contracts) sampleNow(e *Engine) {
	live, err := contractDeployments(e)
	if err != nil {
		b.log.Error("cannot read the deployments", "err", err)
		return
	}
	cache, err := b.all()
	if err != nil {
		b.log.Error("cannot read the contract cache", "err", err)
		return
	}
	if err := b.sample(live, cache, b.c.Clock.Now().UTC()); err != nil {
		b.log.Error("cannot record usage", "err", err)
	}
}

// tick is one round of Run.
func (b *Contracts) tick(ctx context.Context, e *Engine) {
	now := b.c.Clock.Now().UTC()
	live, err := contractDeployments(e)
	if err != nil {
		b.log.Error("cannot read the deployments", "err", err)
		return
	}
	if err := b.sync(ctx, live); err != nil {
		if ctx.Err() != nil {
			return
		}
		b.m.polls.WithLabelValues("failed").Inc()
		b.log.Warn("cannot read the node's contracts; following the cache", "err", err)
	} else {
		b.m.polls.WithLabelValues("ok").Inc()
	}
	cache, err := b.all()
	if err != nil {
		b.log.Error("cannot read the contract cache", "err", err)
		return
	}
	b.follow(ctx, e, live, cache)
	b.sampleNow(e)
	b.report(ctx, now)
}

// liveDeployment is a deployment that runs under a contract.
type liveDeployment struct {
	id, twin, contract uint64
	// holds is what its workloads hold now.
	holds gridtypes.Resources
	// pausable: a workload is ok and its manager can pause it.
	pausable bool
}

// contractDeployments lists the deployments that name a contract and are
// not deleted.
func contractDeployments(e *Engine) ([]liveDeployment, error) {
	var out []liveDeployment
	err := e.db.View(func(tx *bolt.Tx) error {
		return txStore{tx}.records(func(r *gridtypes.Record) bool {
			if r.Deleted || r.Deployment.ContractID == 0 {
				return true
			}
			l := liveDeployment{id: r.Deployment.ID, twin: r.Deployment.TwinID, contract: r.Deployment.ContractID}
			for i := range r.Deployment.Workloads {
				w := &r.Deployment.Workloads[i]
				if w.Result == nil || !holdsResources(w.Result.State) {
					continue
				}
				l.holds = l.holds.Add(gridtypes.WorkloadResources(w))
				if _, can := e.c.Managers[w.Type].(Pauser); can && w.Result.State == gridtypes.StateOk {
					l.pausable = true
				}
			}
			out = append(out, l)
			return true
		})
	})
	return out, err
}

// sync replaces the cache with the node's contracts on the registrar. A
// contract a deployment names that the list lacks (deleted more than a
// day ago, while the node was away) is read on its own.
func (b *Contracts) sync(ctx context.Context, live []liveDeployment) error {
	list, err := b.c.Source.NodeContracts(ctx, b.c.NodeID)
	if errors.Is(err, regclient.ErrNotFound) {
		return ErrContractsUnsupported
	}
	if err != nil {
		return err
	}
	keep := make(map[uint64]bool, len(list))
	for _, c := range list {
		keep[c.ContractID] = true
	}
	for _, l := range live {
		if keep[l.contract] {
			continue
		}
		c, err := b.c.Source.Contract(ctx, l.contract)
		if err != nil {
			b.log.Warn("cannot read a deployment's contract", "deployment", l.id, "contract", l.contract, "err", err)
			continue
		}
		list = append(list, c)
		keep[c.ContractID] = true
	}
	for _, l := range live {
		keep[l.contract] = true // keep what the node follows, even unread
	}
	if err := b.put(list...); err != nil {
		return err
	}
	return b.keep(keep)
}

// follow brings each deployment to what its contract's state asks.
// Operations refused because the deployment is busy are tried again at
// the next round.
func (b *Contracts) follow(ctx context.Context, e *Engine, live []liveDeployment, cache map[uint64]regapi.Contract) {
	paused, err := b.pausedSet()
	if err != nil {
		b.log.Error("cannot read the paused deployments", "err", err)
		return
	}
	alive := make(map[uint64]bool, len(live))
	for _, l := range live {
		alive[l.id] = true
	}
	for id := range paused {
		if !alive[id] {
			b.setPaused(id, false) // removed meanwhile
		}
	}
	for _, l := range live {
		c, ok := cache[l.contract]
		if !ok {
			continue
		}
		log := b.log.With("deployment", l.id, "contract", l.contract)
		switch c.State {
		case regapi.StateDeleted:
			if _, err := e.Delete(ctx, l.twin, l.id); err != nil {
				log.Warn("cannot remove the deployment of a deleted contract yet", "err", err)
				continue
			}
			log.Info("contract deleted: removing the deployment", "reason", c.DeletedReason)
			b.m.actions.WithLabelValues("delete").Inc()
			b.setPaused(l.id, false)
		case regapi.StateGrace:
			if !l.pausable {
				continue
			}
			if _, err := e.Pause(ctx, l.twin, l.id); err != nil {
				log.Warn("cannot pause the deployment of a contract in grace yet", "err", err)
				continue
			}
			log.Info("contract in grace: pausing the deployment")
			b.m.actions.WithLabelValues("pause").Inc()
			b.setPaused(l.id, true)
		case regapi.StateActive:
			if !paused[l.id] {
				continue
			}
			_, err := e.resume(ctx, l.twin, l.id)
			switch {
			case errors.Is(err, gridtypes.ErrBusy):
				continue
			case err != nil && !errors.Is(err, gridtypes.ErrConflict):
				log.Warn("cannot resume the deployment of an active contract yet", "err", err)
				continue
			}
			log.Info("contract active again: resuming the deployment")
			b.m.actions.WithLabelValues("resume").Inc()
			b.setPaused(l.id, false)
		}
	}
}

func (b *Contracts) pausedSet() (map[uint64]bool, error) {
	out := map[uint64]bool{}
	err := b.db.View(func(tx *bolt.Tx) error {
		return bucket(tx, bucketPaused).ForEach(func(k, _ []byte) error {
			if len(k) == 8 {
				out[be64(k)] = true
			}
			return nil
		})
	})
	return out, err
}

// setPaused records (or forgets) that the node paused a deployment for
// its contract, so that it resumes only what it paused itself.
func (b *Contracts) setPaused(id uint64, on bool) {
	err := b.db.Update(func(tx *bolt.Tx) error {
		if on {
			return bucket(tx, bucketPaused).Put(u64key(id), []byte{1})
		}
		return bucket(tx, bucketPaused).Delete(u64key(id))
	})
	if err != nil {
		b.log.Error("cannot record the paused deployment", "deployment", id, "err", err)
	}
}

// sample records what each node contract's deployments hold now as the
// usage of the current hour: per component, the most seen in the hour.
func (b *Contracts) sample(live []liveDeployment, cache map[uint64]regapi.Contract, now time.Time) error {
	holds := map[uint64]gridtypes.Resources{}
	for _, l := range live {
		if c, ok := cache[l.contract]; ok && c.Type == regapi.ContractRent {
			continue // billed for the whole node, not from usage
		}
		holds[l.contract] = holds[l.contract].Add(l.holds)
	}
	if len(holds) == 0 {
		return nil
	}
	key := u64key(uint64(regapi.Period(now).Unix()))
	return b.db.Update(func(tx *bolt.Tx) error {
		bk := bucket(tx, bucketUsage)
		var prev []regapi.Usage
		if v := bk.Get(key); v != nil {
			if err := json.Unmarshal(v, &prev); err != nil {
				return fmt.Errorf("usage of %s: corrupt: %w", regapi.Period(now).Format(time.RFC3339), err)
			}
		}
		for _, u := range prev {
			holds[u.ContractID] = maxResources(holds[u.ContractID], resourcesOf(u.Capacity))
		}
		out := make([]regapi.Usage, 0, len(holds))
		for id, r := range holds {
			out = append(out, regapi.Usage{ContractID: id, Capacity: regapi.Capacity{CRU: r.CRU, MRU: r.MRU, SRU: r.SRU, HRU: r.HRU, IPv4: r.IPv4}})
		}
		slices.SortFunc(out, func(a, b regapi.Usage) int { return cmp.Compare(a.ContractID, b.ContractID) })
		v, err := json.Marshal(out)
		if err != nil {
			return err
		}
		return bk.Put(key, v)
	})
}

// maxResources is the larger of a and b per component.
func maxResources(a, b gridtypes.Resources) gridtypes.Resources {
	return gridtypes.Resources{CRU: max(a.CRU, b.CRU), MRU: max(a.MRU, b.MRU), SRU: max(a.SRU, b.SRU), HRU: max(a.HRU, b.HRU), IPv4: max(a.IPv4, b.IPv4)}
}

// report sends the usage of every finished hour not reported yet, oldest
// first, and forgets each once the registrar accepted it. An hour that
// fails stays for the next round, up to MaxUsageCatchUp.
func (b *Contracts) report(ctx context.Context, now time.Time) {
	type hour struct {
		start time.Time
		usage []regapi.Usage
	}
	var due []hour
	err := b.db.View(func(tx *bolt.Tx) error {
		return bucket(tx, bucketUsage).ForEach(func(k, v []byte) error {
			start := time.Unix(int64(be64(k)), 0).UTC()
			if start.Add(time.Hour).After(now) {
				return nil
			}
			var u []regapi.Usage
			if err := json.Unmarshal(v, &u); err != nil {
				b.log.Error("corrupt usage record dropped", "period", start, "err", err)
			}
			due = append(due, hour{start, u})
			return nil
		})
	})
	if err != nil {
		b.log.Error("cannot read usage", "err", err)
		return
	}
	pending := len(due)
	for _, h := range due {
		log := b.log.With("period", h.start.Format(time.RFC3339), "contracts", len(h.usage))
		if now.Sub(h.start) > MaxUsageCatchUp {
			log.Warn("usage never accepted by the registrar: dropped", "older_than", MaxUsageCatchUp)
			b.m.reports.WithLabelValues("dropped").Inc()
			b.forgetUsage(h.start)
			pending--
			continue
		}
		if err := b.send(ctx, h.start, h.usage); err != nil {
			if ctx.Err() == nil {
				b.m.reports.WithLabelValues("failed").Inc()
				log.Warn("usage report failed; trying again at the next poll", "err", err)
			}
			continue
		}
		log.Info("usage reported")
		b.m.reports.WithLabelValues("ok").Inc()
		b.forgetUsage(h.start)
		pending--
	}
	b.m.pending.Set(float64(pending))
}

// send reports one hour in reports of at most regapi.MaxUsageContracts
// contracts (a repeat of a part already accepted is accepted again).
func (b *Contracts) send(ctx context.Context, start time.Time, usage []regapi.Usage) error {
	for part := range slices.Chunk(usage, regapi.MaxUsageContracts) {
		if err := b.c.Usage.ReportUsage(ctx, b.c.NodeID, start, part); err != nil {
			return err
		}
	}
	return nil
}

func (b *Contracts) forgetUsage(start time.Time) {
	err := b.db.Update(func(tx *bolt.Tx) error {
		return bucket(tx, bucketUsage).Delete(u64key(uint64(start.Unix())))
	})
	if err != nil {
		b.log.Error("cannot forget reported usage", "err", err)
	}
}
