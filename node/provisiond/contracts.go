package provisiond

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/internal/clock"
	regapi "github.com/grid4/grid4/registrar/api"
	regclient "github.com/grid4/grid4/registrar/client"
)

// ContractSource is where the node reads its contracts: the registrar's
// public reads (*regclient.Client, unsigned, is one).
type ContractSource interface {
	// NodeContracts returns the node's live contracts and those deleted
	// within the last day.
	NodeContracts(ctx context.Context, nodeID uint64) ([]regapi.Contract, error)
	// Contract returns one contract (regclient.ErrNotFound when there is
	// none).
	Contract(ctx context.Context, contractID uint64) (regapi.Contract, error)
}

// UsageReporter sends what the node's contracts used during a finished
// hour, signed as the node (registrar_gateway in zosd; a signed
// *regclient.Client in tests). Reports are idempotent per contract and
// period.
type UsageReporter interface {
	ReportUsage(ctx context.Context, nodeID uint64, period time.Time, usage []regapi.Usage) error
}

// Defaults and bounds of ContractsConfig.
const (
	// DefaultContractPoll is how often the node reads its contracts,
	// follows their states, samples usage and reports finished hours.
	DefaultContractPoll = 5 * time.Minute
	// MaxContractPoll bounds the poll interval: a contract's state change
	// reaches the node within one interval, and usage is reported before
	// the registrar bills the hour (10 minutes after it ends by default).
	MaxContractPoll = 5 * time.Minute
	// MaxUsageCatchUp is how long an hour's usage is kept for reporting
	// while the registrar cannot be reached (or refuses it); older hours
	// are dropped with a warning.
	MaxUsageCatchUp = 7 * 24 * time.Hour
	// ContractsFile is the contract cache's bbolt file in the engine's
	// directory.
	ContractsFile = "contracts.db"
	// contractLookupTimeout bounds the registrar lookup of a deployment's
	// contract while the caller waits.
	contractLookupTimeout = 10 * time.Second
)

// ErrContractsUnsupported: the registrar has no contract routes (an older
// registrar). It is wrapped with gridtypes.ErrContract: such a node
// refuses deployments rather than running them unpaid; run it with
// contracts off, or upgrade the registrar.
var ErrContractsUnsupported = errors.New("the registrar does not support contracts (GET /nodes/{id}/contracts answers 404): upgrade the registrar, or run the node with --contracts off")

// ContractsConfig configures Contracts.
type ContractsConfig struct {
	// Dir holds ContractsFile (the engine's directory). Required.
	Dir string
	// NodeID is this node. Required.
	NodeID uint64
	// Source reads contracts; Usage reports usage. Required.
	Source ContractSource
	Usage  UsageReporter
	// Poll is the poll interval (DefaultContractPoll; at most
	// MaxContractPoll).
	Poll time.Duration
	// Clock drives the poll and dates usage (clock.Real).
	Clock clock.Clock
	// Registry, when set, gets the metrics (the node's /metrics).
	Registry prometheus.Registerer
	// Logger receives the records (nil: discarded).
	Logger *slog.Logger
}

// Contracts is the node's side of contracts: the Admission that checks a
// deployment's contract against the registrar (falling back to the cache
// when it cannot be reached), and the loop (Run) that caches the node's
// contracts, pauses, resumes and removes deployments as their contracts
// change state, and reports each finished hour's usage.
//
// The cache is a bbolt file of its own:
//
//	contracts  contract id (8) -> regapi.Contract (JSON)
//	usage      period start (8, unix seconds) -> []regapi.Usage (JSON), the most each contract held in that hour, until reported
//	paused     deployment id (8) -> contract id (8): deployments the node paused for a contract in grace
type Contracts struct {
	c   ContractsConfig
	db  *bolt.DB
	log *slog.Logger
	m   contractMetrics
}

// contractMetrics are Contracts' Prometheus metrics.
type contractMetrics struct {
	refused *prometheus.CounterVec
	actions *prometheus.CounterVec
	reports *prometheus.CounterVec
	pending prometheus.Gauge
	polls   *prometheus.CounterVec
}

func newContractMetrics(reg prometheus.Registerer) (contractMetrics, error) {
	m := contractMetrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provisiond_contract_refusals_total",
			Help: "Deployments, updates and resumptions refused for their contract, by reason.",
		}, []string{"reason"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provisiond_contract_actions_total",
			Help: "Operations the node queued on deployments for their contract's state (pause, resume, delete).",
		}, []string{"action"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provisiond_usage_reports_total",
			Help: "Hourly usage reports sent to the registrar, by result (ok, failed, dropped).",
		}, []string{"result"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "provisiond_usage_hours_pending",
			Help: "Finished hours whose usage the registrar has not accepted yet.",
		}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provisiond_contract_polls_total",
			Help: "Reads of the node's contracts from the registrar, by result (ok, failed).",
		}, []string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.refused, m.actions, m.reports, m.pending, m.polls} {
		if err := reg.Register(c); err != nil {
			return m, err
		}
	}
	return m, nil
}

const (
	bucketContracts = "contracts"
	bucketUsage     = "usage"
	bucketPaused    = "paused"
)

// OpenContracts opens (creating if needed) the contract cache.
func OpenContracts(c ContractsConfig) (*Contracts, error) {
	if c.Dir == "" || c.NodeID == 0 || c.Source == nil || c.Usage == nil {
		return nil, errors.New("contracts: Dir, NodeID, Source and Usage are required")
	}
	if c.Poll <= 0 {
		c.Poll = DefaultContractPoll
	}
	if c.Poll > MaxContractPoll {
		return nil, fmt.Errorf("contracts: poll interval %s is longer than %s", c.Poll, MaxContractPoll)
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newContractMetrics(c.Registry)
	if err != nil {
		return nil, fmt.Errorf("contracts: metrics: %w", err)
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("contracts: %w", err)
	}
	path := filepath.Join(c.Dir, ContractsFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("contracts: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{bucketContracts, bucketUsage, bucketPaused} {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("contracts: %w", err)
	}
	return &Contracts{c: c, db: db, log: c.Logger.With("part", "contracts"), m: m}, nil
}

// Close closes the cache. Stop Run first.
func (b *Contracts) Close() error { return b.db.Close() }

// contractErr is a refusal matching gridtypes.ErrContract.
func contractErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{gridtypes.ErrContract}, args...)...)
}

// Admit implements Admission: the contract d names must be active, for
// this node and d's twin, and either a node contract for d's hash whose
// resources cover need, or the twin's rent contract of this node (for a
// deployment without public IPv4, which only node contracts pay for).
func (b *Contracts) Admit(ctx context.Context, d *gridtypes.Deployment, need gridtypes.Resources) (Grant, error) {
	g, reason, err := b.admit(ctx, d, need)
	if err != nil && reason != "" {
		b.m.refused.WithLabelValues(reason).Inc()
	}
	return g, err
}

// admit is Admit, with the reason of a refusal as a metric label.
func (b *Contracts) admit(ctx context.Context, d *gridtypes.Deployment, need gridtypes.Resources) (Grant, string, error) {
	if d.ContractID == 0 {
		return Grant{}, "none", contractErr("the deployment names no contract_id: node %d runs deployments under a registrar contract (a node contract for the deployment's hash, or your rent contract of this node); gridctl deploy makes one", b.c.NodeID)
	}
	c, err := b.lookup(ctx, d.ContractID)
	if err != nil {
		return Grant{}, "lookup", err
	}
	g, reason, err := b.check(c, d, need)
	return g, reason, err
}

// check applies the rules of Admit to contract c; a refusal comes with
// its reason (a metric label).
func (b *Contracts) check(c regapi.Contract, d *gridtypes.Deployment, need gridtypes.Resources) (Grant, string, error) {
	switch {
	case c.NodeID != b.c.NodeID:
		return Grant{}, "node", contractErr("contract %d is for node %d, this is node %d", c.ContractID, c.NodeID, b.c.NodeID)
	case c.TwinID != d.TwinID:
		return Grant{}, "twin", contractErr("contract %d belongs to twin %d, not to twin %d", c.ContractID, c.TwinID, d.TwinID)
	case c.State == regapi.StateGrace:
		return Grant{}, "grace", contractErr("contract %d is in grace: its twin's balance is negative; credit the account to make it active again", c.ContractID)
	case c.State == regapi.StateDeleted:
		return Grant{}, "deleted", contractErr("contract %d is deleted (%s)", c.ContractID, c.DeletedReason)
	case c.State != regapi.StateActive:
		return Grant{}, "state", contractErr("contract %d is %q, not active", c.ContractID, c.State)
	}
	switch c.Type {
	case regapi.ContractRent:
		if need.IPv4 > 0 {
			return Grant{}, "rent_ipv4", contractErr("rent contract %d does not pay for public IPv4 addresses: make a node contract for this deployment", c.ContractID)
		}
		return Grant{}, "", nil
	case regapi.ContractNode:
	default:
		return Grant{}, "type", contractErr("contract %d has type %q", c.ContractID, c.Type)
	}
	hash, err := d.HashHex()
	if err != nil {
		return Grant{}, "", err
	}
	if !strings.EqualFold(c.DeploymentHash, hash) {
		return Grant{}, "hash", contractErr("contract %d is for deployment hash %s, this deployment's hash is %s: update the contract first (PATCH /contracts/%d)", c.ContractID, c.DeploymentHash, hash, c.ContractID)
	}
	have := resourcesOf(c.Resources)
	if over := need.Exceeds(have); len(over) > 0 {
		parts := make([]string, 0, len(over))
		for _, name := range over {
			n, h := component(need, name), component(have, name)
			parts = append(parts, fmt.Sprintf("%s: need %d, contract %d", name, n, h))
		}
		return Grant{}, "size", contractErr("the deployment needs more than contract %d reserves (%s)", c.ContractID, strings.Join(parts, "; "))
	}
	return Grant{Exclusive: true}, "", nil
}

// lookup reads a contract from the registrar and caches it; when the
// registrar cannot be reached it answers from the cache.
func (b *Contracts) lookup(ctx context.Context, id uint64) (regapi.Contract, error) {
	cctx, cancel := context.WithTimeout(ctx, contractLookupTimeout)
	defer cancel()
	c, err := b.c.Source.Contract(cctx, id)
	if err == nil {
		if err := b.put(c); err != nil {
			b.log.Warn("cannot cache contract", "contract", id, "err", err)
		}
		return c, nil
	}
	if errors.Is(err, regclient.ErrNotFound) {
		if _, lerr := b.c.Source.NodeContracts(cctx, b.c.NodeID); errors.Is(lerr, regclient.ErrNotFound) {
			return regapi.Contract{}, fmt.Errorf("%w: %w", gridtypes.ErrContract, ErrContractsUnsupported)
		}
		return regapi.Contract{}, contractErr("contract %d does not exist on the registrar", id)
	}
	if ctx.Err() != nil {
		return regapi.Contract{}, ctx.Err()
	}
	if cached, ok := b.cached(id); ok {
		b.log.Warn("registrar unreachable: checking the contract from the cache", "contract", id, "err", err)
		return cached, nil
	}
	return regapi.Contract{}, contractErr("cannot check contract %d: %v (the node has not seen it yet)", id, err)
}

// resourcesOf is a contract's capacity as deployment resources.
func resourcesOf(c regapi.Capacity) gridtypes.Resources {
	return gridtypes.Resources{CRU: c.CRU, MRU: c.MRU, SRU: c.SRU, HRU: c.HRU, IPv4: c.IPv4}
}

// component is one named component of r ("cru", "mru", ...).
func component(r gridtypes.Resources, name string) uint64 {
	switch name {
	case "cru":
		return r.CRU
	case "mru":
		return r.MRU
	case "sru":
		return r.SRU
	case "hru":
		return r.HRU
	case "ipv4":
		return r.IPv4
	}
	return 0
}

// ---------------------------------------------------------------------------
// The cache

func (b *Contracts) put(cs ...regapi.Contract) error {
	return b.db.Update(func(tx *bolt.Tx) error {
		bk := bucket(tx, bucketContracts)
		for _, c := range cs {
			v, err := json.Marshal(c)
			if err != nil {
				return err
			}
			if err := bk.Put(u64key(c.ContractID), v); err != nil {
				return err
			}
		}
		return nil
	})
}

func (b *Contracts) cached(id uint64) (regapi.Contract, bool) {
	var c regapi.Contract
	found := false
	_ = b.db.View(func(tx *bolt.Tx) error {
		if v := bucket(tx, bucketContracts).Get(u64key(id)); v != nil && json.Unmarshal(v, &c) == nil {
			found = true
		}
		return nil
	})
	return c, found
}

// all returns the cached contracts by id.
func (b *Contracts) all() (map[uint64]regapi.Contract, error) {
	out := map[uint64]regapi.Contract{}
	err := b.db.View(func(tx *bolt.Tx) error {
		return bucket(tx, bucketContracts).ForEach(func(k, v []byte) error {
			var c regapi.Contract
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("contract %x: corrupt cache entry: %w", k, err)
			}
			out[c.ContractID] = c
			return nil
		})
	})
	return out, err
}

// keep drops the cached contracts not in ids.
func (b *Contracts) keep(ids map[uint64]bool) error {
	return b.db.Update(func(tx *bolt.Tx) error {
		bk := bucket(tx, bucketContracts)
		var drop [][]byte
		err := bk.ForEach(func(k, _ []byte) error {
			if len(k) == 8 && !ids[be64(k)] {
				drop = append(drop, slices.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range drop {
			if err := bk.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}
