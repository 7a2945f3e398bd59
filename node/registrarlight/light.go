package registrarlight

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/hostinfo"
	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/node/internal/supervisor"
	"github.com/grid4/grid4/node/location"
	"github.com/grid4/grid4/node/powerd"
	"github.com/grid4/grid4/node/storaged"
	"github.com/grid4/grid4/registrar/api"
)

// LightObject is the bus object registrar_light serves.
const LightObject = "registrar_light/registration@1.0"

// ErrNotRegistered is registrar_light's error for the node and twin ids
// while the node is not registered yet.
const ErrNotRegistered bus.Code = "not_registered"

// Defaults of Config: the seed's schedule.
const (
	DefaultAccountCheck = 30 * time.Minute
	DefaultUpdate       = 24 * time.Hour
	DefaultUptime       = 40 * time.Minute
	DefaultUptimeMin    = time.Minute
	DefaultRetryMin     = time.Second
	DefaultRetryMax     = 5 * time.Minute
	DefaultCallTimeout  = 2 * time.Minute
)

// Registrar is what registrar_light needs of registrar_gateway;
// GatewayStub is one. Errors carry the gateway's codes (ErrNotFound,
// ErrConflict, ...).
type Registrar interface {
	EnsureAccount(ctx context.Context) (api.Account, error)
	NodeByTwin(ctx context.Context, twinID uint64) (api.Node, error)
	RegisterNode(ctx context.Context, req api.RegisterNodeRequest) (uint64, error)
	UpdateNode(ctx context.Context, nodeID uint64, req api.RegisterNodeRequest) error
	ReportUptime(ctx context.Context, nodeID uint64, uptime time.Duration) (api.UptimeReply, error)
	ReportStatus(ctx context.Context, nodeID uint64, rep api.NodeStatusReport) error
}

// FactSource gives the node's facts; facts.Stub (noded) is one.
type FactSource interface {
	Facts(ctx context.Context) (hostinfo.Facts, error)
}

// StorageSource gives the storage the node offers, from its pools;
// storaged.Stub (storaged) is one.
type StorageSource interface {
	Capacity(ctx context.Context) (storaged.Capacity, error)
}

// LocationSource gives the node's location; location.Stub is one.
type LocationSource interface {
	Location(ctx context.Context) (location.Result, error)
}

// FarmSource gives the node's farm; identity.Stub (identityd) is one.
type FarmSource interface {
	FarmID(ctx context.Context) (uint64, error)
}

// PowerSource gives uptime and health; powerd.Stub (powerd) is one.
type PowerSource interface {
	Uptime(ctx context.Context) (time.Duration, error)
	Health(ctx context.Context) (powerd.Health, error)
}

// ProvisionSource gives what the node hosts: its capacity as the
// provisioning engine accounts it, and its deployments and workloads;
// provisiond.Stub is one.
type ProvisionSource interface {
	Capacity(ctx context.Context) (gridtypes.CapacityReport, error)
	Statistics(ctx context.Context) (gridtypes.Statistics, error)
}

// PeerSource probes a few other nodes of the farm for the status report
// (the noderpc module's stub).
type PeerSource interface {
	Probe(ctx context.Context) (api.PeerReachability, error)
}

// ModuleSource gives the state of each of the node's modules; zosd's
// SupervisorStub is one.
type ModuleSource interface {
	Modules(ctx context.Context) ([]supervisor.Status, error)
}

// VersionSource gives the ZOS version the node runs; upgrade.Installed
// is one.
type VersionSource interface {
	RunningVersion(ctx context.Context) (string, error)
}

// Config is registrar_light's schedule. Zero fields take the defaults.
type Config struct {
	// AccountCheck is how often the account (and that the registrar still
	// has the node) is checked: 30 minutes.
	AccountCheck time.Duration
	// Update is how often the node's information is sent again: 24 hours.
	Update time.Duration
	// Uptime is how often uptime is reported when the registrar gives no
	// next_report_in: 40 minutes.
	Uptime time.Duration
	// UptimeMin and UptimeMax bound the registrar's next_report_in (1
	// minute and 4 × Uptime by default), so a confused registrar can
	// neither make the node report in a tight loop nor silence it.
	UptimeMin, UptimeMax time.Duration
	// RetryMin and RetryMax bound the backoff after a failure: the wait
	// starts at RetryMin and doubles up to RetryMax (1 s and 5 minutes),
	// with jitter; a periodic job never waits longer than its interval.
	RetryMin, RetryMax time.Duration
	// CallTimeout bounds each call to another module (2 minutes: the
	// gateway's client retries within it).
	CallTimeout time.Duration
	// ZosVersion is sent as the node's version when not empty and
	// Deps.Version gives none.
	ZosVersion string
	// Capacity overrides what the node measured: each non-zero field is
	// registered instead of the measured figure (a farmer keeping memory
	// or disk for the host). provisiond offers what was registered, so
	// the override applies to both.
	Capacity api.Resources
	// APIListen is where the node's zos-api-light listens (host:port) and
	// APIURL, when set, its public URL: together they give the endpoints
	// the node publishes (see APIEndpoints). Both empty: none.
	APIListen, APIURL string
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.AccountCheck, DefaultAccountCheck)
	def(&c.Update, DefaultUpdate)
	def(&c.Uptime, DefaultUptime)
	def(&c.UptimeMin, DefaultUptimeMin)
	def(&c.UptimeMax, 4*c.Uptime)
	def(&c.RetryMin, DefaultRetryMin)
	def(&c.RetryMax, DefaultRetryMax)
	def(&c.CallTimeout, DefaultCallTimeout)
	c.UptimeMax = max(c.UptimeMax, c.UptimeMin)
	c.RetryMax = max(c.RetryMax, c.RetryMin)
	return c
}

// Deps are registrar_light's collaborators.
type Deps struct {
	Registrar Registrar
	Facts     FactSource
	// Storage gives SRU and HRU from storaged's pools; nil: the disks'
	// sizes as noded measured them.
	Storage  StorageSource
	Location LocationSource
	Farm     FarmSource
	Power    PowerSource
	// Version, when set, gives the version sent with each registration
	// and update (the upgrader's current generation), read afresh each
	// time; Config.ZosVersion is sent when it gives none.
	Version VersionSource
	// Provision, when set, makes registrar_light send a status report
	// (capacity used and free, deployments, workloads, health) with each
	// uptime report; nil: no status reports.
	Provision ProvisionSource
	// Modules gives the modules' states for the status report; nil: none
	// are reported.
	Modules ModuleSource
	// Peers probes other nodes for the status report; nil: no probes
	// are reported.
	Peers PeerSource
	// Addresses receives when the management interface's addresses may
	// have changed (facts.Watcher events); nil: never.
	Addresses <-chan struct{}
	// Clock drives every timer (clock.Real{} when nil).
	Clock clock.Clock
	// Jitter draws a backoff wait from its cap: it must return a duration
	// in [limit/2, limit]. Nil: uniformly random.
	Jitter func(limit time.Duration) time.Duration
	Logger *slog.Logger
}

// Light is registrar_light.
type Light struct {
	cfg Config
	d   Deps

	mu    sync.Mutex
	state State
	// location is the last location obtained, reused when the location
	// module does not answer.
	location *location.Result
}

// NewLight returns registrar_light with cfg and its collaborators.
func NewLight(cfg Config, d Deps) (*Light, error) {
	if d.Registrar == nil || d.Facts == nil || d.Location == nil || d.Farm == nil || d.Power == nil {
		return nil, errors.New("registration: Registrar, Facts, Location, Farm and Power are required")
	}
	if d.Clock == nil {
		d.Clock = clock.Real{}
	}
	if d.Jitter == nil {
		d.Jitter = func(limit time.Duration) time.Duration {
			if limit <= 1 {
				return limit
			}
			return limit/2 + rand.N(limit-limit/2)
		}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return &Light{cfg: cfg.withDefaults(), d: d, state: State{Phase: InProgress}}, nil
}

// State returns a copy of the current state.
func (l *Light) State(context.Context) (State, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.state
	s.Missing = slices.Clone(s.Missing)
	s.Reasons = slices.Clone(s.Reasons)
	s.APIEndpoints = slices.Clone(s.APIEndpoints)
	return s, nil
}

// NodeID returns the node's id, or ErrNotRegistered.
func (l *Light) NodeID(context.Context) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state.NodeID == 0 {
		return 0, bus.Errorf(ErrNotRegistered, "the node is not registered yet (%s)", l.state.Phase)
	}
	return l.state.NodeID, nil
}

// TwinID returns the node's twin id, or ErrNotRegistered.
func (l *Light) TwinID(context.Context) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state.TwinID == 0 {
		return 0, bus.Errorf(ErrNotRegistered, "the node has no twin yet (%s)", l.state.Phase)
	}
	return l.state.TwinID, nil
}

// Methods returns the bus methods of LightObject.
func (l *Light) Methods() bus.Methods {
	return bus.Methods{
		"State":  bus.Func0(l.State),
		"NodeID": bus.Func0(l.NodeID),
		"TwinID": bus.Func0(l.TwinID),
	}
}

func (l *Light) update(f func(s *State)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(&l.state)
}

// backoff is the exponential backoff of one job.
type backoff struct {
	min, max time.Duration
	jitter   func(time.Duration) time.Duration
	cur      time.Duration
}

// next returns the next wait, capped at limit when limit > 0.
func (b *backoff) next(limit time.Duration) time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	d := b.jitter(b.cur)
	if limit > 0 {
		d = min(d, limit)
	}
	return d
}

func (b *backoff) reset() { b.cur = 0 }

// timerC is t's channel, or nil (never ready) when t is nil.
func timerC(t clock.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C()
}

// Run runs the registration flow until ctx ends: register (retrying with
// backoff until it succeeds), then the periodic jobs. Each job has its own
// timer, so a frequent job never delays a rare one.
func (l *Light) Run(ctx context.Context) error {
	c := l.d.Clock
	newBackoff := func() *backoff {
		return &backoff{min: l.cfg.RetryMin, max: l.cfg.RetryMax, jitter: l.d.Jitter}
	}
	regBO, accBO, updBO, upBO := newBackoff(), newBackoff(), newBackoff(), newBackoff()

	regT := c.NewTimer(0) // register at once
	var accT, updT, upT clock.Timer
	defer func() {
		for _, t := range []clock.Timer{regT, accT, updT, upT} {
			if t != nil {
				t.Stop()
			}
		}
	}()
	schedule := func(t clock.Timer, task *Task, d time.Duration) {
		l.update(func(*State) { task.Next = c.Now().Add(d) })
		t.Reset(d)
	}
	register := func(why string) {
		if err := l.register(ctx, why); err != nil {
			if ctx.Err() != nil {
				return
			}
			schedule(regT, &l.state.Register, regBO.next(0))
			return
		}
		regBO.reset()
		regT.Stop() // a retry still pending is moot
		l.update(func(s *State) { s.Register.Next = time.Time{} })
		if accT == nil {
			// First success: start the periodic jobs, uptime at once.
			accT = c.NewTimer(l.cfg.AccountCheck)
			updT = c.NewTimer(l.cfg.Update)
			upT = c.NewTimer(0)
			now := c.Now()
			l.update(func(s *State) {
				s.AccountCheck.Next = now.Add(l.cfg.AccountCheck)
				s.Update.Next = now.Add(l.cfg.Update)
				s.Uptime.Next = now
			})
		}
	}

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-regT.C():
			register("registration")
		case <-l.d.Addresses:
			if accT == nil {
				continue // not registered yet: the pending attempt reads the addresses anyway
			}
			changed, err := l.interfaceChanged(ctx)
			if err != nil {
				l.d.Logger.Warn("cannot read the management interface after an address change", "err", err)
				continue
			}
			if changed {
				register("address change")
			}
		case <-timerC(accT):
			lost, err := l.checkAccount(ctx)
			switch {
			case ctx.Err() != nil:
			case err != nil:
				schedule(accT, &l.state.AccountCheck, accBO.next(l.cfg.AccountCheck))
			default:
				accBO.reset()
				if lost != "" {
					register(lost)
				}
				schedule(accT, &l.state.AccountCheck, l.cfg.AccountCheck)
			}
		case <-timerC(updT):
			err := l.register(ctx, "daily update")
			switch {
			case ctx.Err() != nil:
			case err != nil:
				schedule(updT, &l.state.Update, updBO.next(l.cfg.Update))
			default:
				updBO.reset()
				schedule(updT, &l.state.Update, l.cfg.Update)
			}
		case <-timerC(upT):
			next, err := l.report(ctx)
			switch {
			case ctx.Err() != nil:
			case err != nil:
				schedule(upT, &l.state.Uptime, upBO.next(l.cfg.Uptime))
			default:
				upBO.reset()
				schedule(upT, &l.state.Uptime, next)
			}
		}
	}
}

// call runs f with the call timeout.
func (l *Light) call(ctx context.Context, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.CallTimeout)
	defer cancel()
	return f(ctx)
}

// record notes the outcome of one run of a job, and logs when a job that
// failed succeeds again (the failures were logged as they happened).
func (l *Light) record(task func(s *State) *Task, err error) {
	now := l.d.Clock.Now()
	l.update(func(s *State) {
		t := task(s)
		if err == nil && t.Runs > 0 && !t.OK {
			l.d.Logger.Info("succeeded again", "job", l.jobName(s, t), "last_failure", t.Last, "last_error", t.Error)
		}
		t.Last, t.Runs = now, t.Runs+1
		t.OK = err == nil
		t.Error = ""
		if err != nil {
			t.Error = err.Error()
		} else {
			t.LastOK = now
		}
	})
}

// jobName names the job whose record is t, for logs.
func (l *Light) jobName(s *State, t *Task) string {
	switch t {
	case &s.Register:
		return "registration"
	case &s.AccountCheck:
		return "account check"
	case &s.Update:
		return "daily update"
	case &s.Status:
		return "status report"
	}
	return "uptime report"
}

// register ensures the account and registers or updates the node. The
// daily update is the same operation: it sends the node's information as
// it is now.
func (l *Light) register(ctx context.Context, why string) error {
	log := l.d.Logger.With("job", why)
	err := l.doRegister(ctx, log)
	task := func(s *State) *Task { return &s.Register }
	if why == "daily update" {
		task = func(s *State) *Task { return &s.Update }
	}
	l.record(task, err)
	if err != nil {
		l.update(func(s *State) {
			s.Attempts++
			if s.Phase != Done {
				s.Phase, s.Reason = Failed, err.Error()
			}
		})
		if ctx.Err() == nil {
			log.Warn("registration failed; retrying with backoff", "err", err)
		}
		return err
	}
	return nil
}

func (l *Light) doRegister(ctx context.Context, log *slog.Logger) error {
	var acc api.Account
	if err := l.call(ctx, func(ctx context.Context) (err error) {
		acc, err = l.d.Registrar.EnsureAccount(ctx)
		return err
	}); err != nil {
		return fmt.Errorf("ensuring the node's account: %w", err)
	}
	var farm uint64
	if err := l.call(ctx, func(ctx context.Context) (err error) {
		farm, err = l.d.Farm.FarmID(ctx)
		return err
	}); err != nil {
		return fmt.Errorf("farm id from identityd: %w", err)
	}
	var facts hostinfo.Facts
	if err := l.call(ctx, func(ctx context.Context) (err error) {
		facts, err = l.d.Facts.Facts(ctx)
		return err
	}); err != nil {
		return fmt.Errorf("node facts from noded: %w", err)
	}
	loc := l.locate(ctx, log)
	req, err := BuildRequest(facts, loc.Location, farm, l.version(ctx, log))
	if err != nil {
		return err
	}
	if req.Resources, err = l.capacity(ctx, facts); err != nil {
		return err
	}
	req.APIEndpoints = APIEndpoints(l.cfg.APIURL, l.cfg.APIListen, req.Interfaces[0])
	if len(req.APIEndpoints) == 0 && (l.cfg.APIURL != "" || l.cfg.APIListen != "") {
		log.Warn("no zos-api-light endpoint to publish: users cannot find the node's API by its id; set the API's public URL",
			"api_listen", l.cfg.APIListen, "api_url", l.cfg.APIURL, "ips", req.Interfaces[0].IPs)
	}

	nodeID, err := l.registerOrUpdate(ctx, log, acc.TwinID, req)
	if err != nil {
		return err
	}

	iface := req.Interfaces[0]
	now := l.d.Clock.Now()
	l.update(func(s *State) {
		if s.NodeID != nodeID || s.TwinID != acc.TwinID {
			log.Info("registration done", "node_id", nodeID, "twin_id", acc.TwinID, "farm_id", farm, "ips", iface.IPs)
		} else {
			log.Info("node information sent", "node_id", nodeID, "ips", iface.IPs)
		}
		s.Phase, s.Reason, s.Attempts = Done, "", 0
		s.NodeID, s.TwinID, s.FarmID = nodeID, acc.TwinID, farm
		s.Interface = &iface
		s.Resources = &req.Resources
		s.APIEndpoints = req.APIEndpoints
		s.Location, s.LocationSource = &req.Location, loc.Source
		s.Missing = facts.Missing()
		s.RegisteredAt = now
	})
	return nil
}

// capacity is the node's capacity as registered (and offered to
// workloads by provisiond): CRU and MRU as noded measured them, SRU and
// HRU from storaged's pools, each replaced by the farmer's override
// (Config.Capacity) where one is set. It is the one place the node's
// figures are decided.
func (l *Light) capacity(ctx context.Context, facts hostinfo.Facts) (api.Resources, error) {
	measured := facts.Resources()
	if l.d.Storage != nil {
		var c storaged.Capacity
		if err := l.call(ctx, func(ctx context.Context) (err error) {
			c, err = l.d.Storage.Capacity(ctx)
			return err
		}); err != nil {
			return api.Resources{}, fmt.Errorf("storage capacity from storaged: %w", err)
		}
		measured.SRU, measured.HRU = c.SRU, c.HRU
	}
	return override(measured, l.cfg.Capacity), nil
}

// override returns measured with every non-zero field of o in its place.
func override(measured, o api.Resources) api.Resources {
	pick := func(m, v uint64) uint64 {
		if v != 0 {
			return v
		}
		return m
	}
	return api.Resources{CRU: pick(measured.CRU, o.CRU), MRU: pick(measured.MRU, o.MRU), SRU: pick(measured.SRU, o.SRU), HRU: pick(measured.HRU, o.HRU)}
}

// version is the ZOS version to report: Deps.Version's, else
// Config.ZosVersion. A version that cannot be read is not worth failing a
// registration for.
func (l *Light) version(ctx context.Context, log *slog.Logger) string {
	if l.d.Version == nil {
		return l.cfg.ZosVersion
	}
	v, err := l.d.Version.RunningVersion(ctx)
	if err != nil {
		log.Warn("cannot read the running version; reporting the configured one", "err", err, "version", l.cfg.ZosVersion)
	}
	if v == "" {
		return l.cfg.ZosVersion
	}
	return v
}

// registerOrUpdate updates the twin's node when the registrar has one and
// registers it otherwise, and returns the node id.
func (l *Light) registerOrUpdate(ctx context.Context, log *slog.Logger, twinID uint64, req api.RegisterNodeRequest) (uint64, error) {
	for attempt := 0; ; attempt++ {
		var existing api.Node
		err := l.call(ctx, func(ctx context.Context) (err error) {
			existing, err = l.d.Registrar.NodeByTwin(ctx, twinID)
			return err
		})
		switch {
		case err == nil:
			err = l.call(ctx, func(ctx context.Context) error { return l.d.Registrar.UpdateNode(ctx, existing.NodeID, req) })
			if err != nil {
				return 0, fmt.Errorf("updating node %d: %w", existing.NodeID, err)
			}
			return existing.NodeID, nil
		case !errors.Is(err, ErrNotFound):
			return 0, fmt.Errorf("looking up the node of twin %d: %w", twinID, err)
		}
		var nodeID uint64
		err = l.call(ctx, func(ctx context.Context) (err error) {
			nodeID, err = l.d.Registrar.RegisterNode(ctx, req)
			return err
		})
		if errors.Is(err, ErrConflict) && attempt == 0 {
			// Registered by an earlier attempt whose answer was lost:
			// look it up again and update it.
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("registering the node: %w", err)
		}
		log.Info("node registered", "node_id", nodeID, "twin_id", twinID, "farm_id", req.FarmID)
		return nodeID, nil
	}
}

// locate returns the node's location from the location module, or the
// last one obtained when it does not answer: the location is not worth
// failing a registration for.
func (l *Light) locate(ctx context.Context, log *slog.Logger) location.Result {
	var r location.Result
	err := l.call(ctx, func(ctx context.Context) (err error) {
		r, err = l.d.Location.Location(ctx)
		return err
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		log.Warn("no location from the location module; using the last known", "err", err)
		if l.location != nil {
			return *l.location
		}
		return location.Result{Source: "unknown: " + err.Error()}
	}
	l.location = &r
	return r
}

// BuildRequest makes the registration of a node from its facts. It fails
// when the management interface is unknown (the registrar requires an
// interface); other unknown facts are sent as zero, false or an empty
// serial number (the registrar takes a missing serial as missing).
func BuildRequest(f hostinfo.Facts, loc api.Location, farmID uint64, zosVersion string) (api.RegisterNodeRequest, error) {
	if !f.Interface.Known {
		return api.RegisterNodeRequest{}, fmt.Errorf("the management interface is unknown: %s", f.Interface.Reason)
	}
	iface := f.Interface.Value
	if iface.IPs == nil {
		iface.IPs = api.IPList{}
	}
	serial := f.Serial.Value
	if !f.Serial.Known {
		serial = ""
	}
	return api.RegisterNodeRequest{
		FarmID:       farmID,
		Resources:    f.Resources(),
		Location:     loc,
		Interfaces:   []api.Interface{iface},
		SecureBoot:   f.SecureBoot.Known && f.SecureBoot.Value,
		Virtualized:  f.Virtualization.Known && f.Virtualization.Value.Virtualized,
		SerialNumber: serial,
		ZosVersion:   zosVersion,
	}, nil
}

// interfaceChanged reads the management interface and reports whether it
// differs from the one last registered.
func (l *Light) interfaceChanged(ctx context.Context) (bool, error) {
	var facts hostinfo.Facts
	if err := l.call(ctx, func(ctx context.Context) (err error) {
		facts, err = l.d.Facts.Facts(ctx)
		return err
	}); err != nil {
		return false, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	reg := l.state.Interface
	now := facts.Interface
	if reg == nil || !now.Known {
		return now.Known, nil
	}
	changed := reg.Name != now.Value.Name || reg.Mac != now.Value.Mac || !slices.Equal([]string(reg.IPs), []string(now.Value.IPs))
	if changed {
		l.d.Logger.Info("management interface changed; re-registering", "interface", now.Value.Name, "ips", now.Value.IPs, "registered", reg.IPs)
	}
	return changed, nil
}

// checkAccount ensures the account still exists and the registrar still
// has the node. It returns a non-empty reason when the node must be
// registered again (the twin or the node changed or vanished, e.g. the
// registrar's database was restored from an old backup).
func (l *Light) checkAccount(ctx context.Context) (string, error) {
	st, _ := l.State(ctx)
	var acc api.Account
	err := l.call(ctx, func(ctx context.Context) (err error) {
		acc, err = l.d.Registrar.EnsureAccount(ctx)
		return err
	})
	var lost string
	if err == nil {
		var n api.Node
		err = l.call(ctx, func(ctx context.Context) (err error) {
			n, err = l.d.Registrar.NodeByTwin(ctx, acc.TwinID)
			return err
		})
		switch {
		case acc.TwinID != st.TwinID:
			lost, err = fmt.Sprintf("the twin changed from %d to %d", st.TwinID, acc.TwinID), nil
		case errors.Is(err, ErrNotFound):
			lost, err = fmt.Sprintf("the registrar no longer has node %d", st.NodeID), nil
		case err == nil && n.NodeID != st.NodeID:
			lost = fmt.Sprintf("the node id changed from %d to %d", st.NodeID, n.NodeID)
		case err == nil && n.FarmID != st.FarmID:
			lost = fmt.Sprintf("the registrar has the node in farm %d, not %d", n.FarmID, st.FarmID)
		}
	}
	if err != nil {
		err = fmt.Errorf("account check: %w", err)
		if ctx.Err() == nil {
			l.d.Logger.Warn("account check failed", "err", err)
		}
	}
	l.record(func(s *State) *Task { return &s.AccountCheck }, err)
	if lost != "" {
		l.d.Logger.Warn("account check: registering again", "reason", lost)
		l.update(func(s *State) { s.Phase = InProgress })
	}
	return lost, err
}

// report is the uptime timer's job: the uptime report, whose outcome it
// returns, then the status report when there is a Provision source. The
// uptime goes first: collecting the status probes peers, which may take
// seconds when they do not answer, and the node's being online must not
// wait for that. The status goes also while the node is unhealthy (when
// the uptime report is skipped), so that the registrar learns why; its
// failure is recorded and logged, and does not change the schedule.
func (l *Light) report(ctx context.Context) (time.Duration, error) {
	next, err := l.reportUptime(ctx)
	if l.d.Provision != nil {
		_ = l.reportStatus(ctx)
	}
	return next, err
}

// reportUptime reports the uptime unless the node is unhealthy, and
// returns when to report next: the registrar's next_report_in within
// [UptimeMin, UptimeMax], or the Uptime interval.
func (l *Light) reportUptime(ctx context.Context) (time.Duration, error) {
	task := func(s *State) *Task { return &s.Uptime }
	var h powerd.Health
	err := l.call(ctx, func(ctx context.Context) (err error) {
		h, err = l.d.Power.Health(ctx)
		return err
	})
	if err != nil {
		err = fmt.Errorf("uptime report skipped: no health from powerd: %w", err)
		l.record(task, err)
		return 0, err
	}
	if !h.Healthy {
		// Not an error to retry soon: the node says it is not fit to be
		// counted as up, and reports again at the next interval.
		skip := fmt.Errorf("uptime report skipped: node unhealthy: %s", h.Reason())
		l.d.Logger.Warn("node unhealthy; uptime report skipped", "reason", h.Reason())
		l.record(task, skip)
		return l.cfg.Uptime, nil
	}
	var up time.Duration
	if err := l.call(ctx, func(ctx context.Context) (err error) {
		up, err = l.d.Power.Uptime(ctx)
		return err
	}); err != nil {
		err = fmt.Errorf("uptime report: uptime from powerd: %w", err)
		l.record(task, err)
		return 0, err
	}
	st, _ := l.State(ctx)
	var reply api.UptimeReply
	err = l.call(ctx, func(ctx context.Context) (err error) {
		reply, err = l.d.Registrar.ReportUptime(ctx, st.NodeID, up)
		return err
	})
	if err != nil {
		err = fmt.Errorf("uptime report: %w", err)
		if ctx.Err() == nil {
			l.d.Logger.Warn("uptime report failed", "err", err)
		}
		l.record(task, err)
		return 0, err
	}
	l.record(task, nil)
	next := l.cfg.Uptime
	if reply.NextReportIn > 0 {
		next = min(max(time.Duration(reply.NextReportIn)*time.Second, l.cfg.UptimeMin), l.cfg.UptimeMax)
	}
	l.update(func(s *State) { s.NextReportIn = reply.NextReportIn })
	l.d.Logger.Debug("uptime reported", "uptime", up.Truncate(time.Second), "next", next, "restarted", reply.Restarted)
	return next, nil
}

// LightStub calls registrar_light over the bus.
type LightStub struct{ c *bus.Client }

// NewLightStub returns a stub calling registrar_light through c.
func NewLightStub(c *bus.Client) LightStub { return LightStub{c: c} }

// State returns registrar_light's state.
func (s LightStub) State(ctx context.Context) (State, error) {
	return bus.Call[State](ctx, s.c, LightObject, "State")
}

// NodeID returns the node's id; ErrNotRegistered before registration.
func (s LightStub) NodeID(ctx context.Context) (uint64, error) {
	return bus.Call[uint64](ctx, s.c, LightObject, "NodeID")
}

// TwinID returns the node's twin id; ErrNotRegistered before registration.
func (s LightStub) TwinID(ctx context.Context) (uint64, error) {
	return bus.Call[uint64](ctx, s.c, LightObject, "TwinID")
}
