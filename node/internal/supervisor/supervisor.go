// Package supervisor starts the node's processes in order, restarts one
// that dies (with exponential backoff), and stops them in reverse order.
// zosd uses it for its private redis-server and its modules, each a
// `zosd run <module>` process (Exec) or, when configured, a goroutine
// (Func).
//
// A process that exits with a fatal error (ErrFatal; for Exec, exit
// status ExitFatal) is not restarted: it refuses to run for a reason a
// restart will not fix, such as a corrupt identity. The supervisor then
// stops everything and Run returns that error.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/grid4/grid4/node/internal/clock"
)

// ErrFatal marks the error of a process that must not be restarted.
var ErrFatal = errors.New("fatal")

// ErrUnknownProcess: Restart was asked for a name no Spec has.
var ErrUnknownProcess = errors.New("no such process")

// Defaults of Config.
const (
	DefaultRestartMin  = time.Second
	DefaultRestartMax  = time.Minute
	DefaultStableAfter = time.Minute
	DefaultStopTimeout = 10 * time.Second
	DefaultReadyWait   = 30 * time.Second
)

// Process is a running child.
type Process interface {
	// Wait waits for the process to end and returns why (nil for a clean
	// exit).
	Wait() error
	// Stop asks the process to stop (SIGTERM, or canceling a goroutine).
	Stop()
	// Kill ends it at once.
	Kill()
	// PID is the process id (0 for a goroutine).
	PID() int
}

// Spec is one supervised child.
type Spec struct {
	// Name names it in logs and statuses.
	Name string
	// Start starts it.
	Start func(ctx context.Context) (Process, error)
	// Ready, when set, is waited for (at most ReadyWait) after the first
	// start, before the next Spec starts: a service the others need.
	Ready func(ctx context.Context) error
}

// Config configures a Supervisor. Zero fields take the defaults.
type Config struct {
	// RestartMin and RestartMax bound the wait before a restart: it starts
	// at RestartMin and doubles with each quick death, up to RestartMax.
	RestartMin, RestartMax time.Duration
	// StableAfter: a process that ran this long before dying is restarted
	// after RestartMin again.
	StableAfter time.Duration
	// StopTimeout is how long Stop waits for a process before killing it.
	StopTimeout time.Duration
	// ReadyWait bounds the wait for a Spec's Ready.
	ReadyWait time.Duration
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.RestartMin, DefaultRestartMin)
	def(&c.RestartMax, DefaultRestartMax)
	def(&c.StableAfter, DefaultStableAfter)
	def(&c.StopTimeout, DefaultStopTimeout)
	def(&c.ReadyWait, DefaultReadyWait)
	c.RestartMax = max(c.RestartMax, c.RestartMin)
	return c
}

// State is a child's state.
type State string

// Child states.
const (
	Starting   State = "starting"
	Running    State = "running"
	Restarting State = "restarting" // dead, waiting for its restart
	Stopping   State = "stopping"
	Stopped    State = "stopped"
	Failed     State = "failed" // fatal: not restarted
)

// Status is the state of one child.
type Status struct {
	Name  string `json:"name"`
	State State  `json:"state"`
	PID   int    `json:"pid,omitempty"`
	// Since is when it entered State.
	Since time.Time `json:"since"`
	// Restarts counts its restarts.
	Restarts int `json:"restarts"`
	// LastExit is why it last ended.
	LastExit string `json:"last_exit,omitempty"`
	// NextStart is when it restarts (State Restarting).
	NextStart time.Time `json:"next_start,omitzero"`
}

// FatalError is Run's error when a child failed fatally.
type FatalError struct {
	Name string
	Err  error
}

// Error returns "<name>: <the child's error>".
func (e *FatalError) Error() string { return fmt.Sprintf("%s: %v", e.Name, e.Err) }

// Unwrap returns the child's error (which wraps ErrFatal).
func (e *FatalError) Unwrap() error { return e.Err }

// Supervisor runs Specs.
type Supervisor struct {
	cfg   Config
	specs []Spec
	clock clock.Clock
	log   *slog.Logger

	// restarts carries Restart's requests to Run's loop.
	restarts chan restartRequest

	mu     sync.Mutex
	status []Status
}

// restartRequest asks Run to restart some children.
type restartRequest struct {
	names []string
	done  chan error
}

// New returns a Supervisor of specs.
func New(cfg Config, specs []Spec, c clock.Clock, log *slog.Logger) *Supervisor {
	if c == nil {
		c = clock.Real{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st := make([]Status, len(specs))
	for i, s := range specs {
		st[i] = Status{Name: s.Name, State: Stopped}
	}
	return &Supervisor{cfg: cfg.withDefaults(), specs: specs, clock: c, log: log, status: st, restarts: make(chan restartRequest)}
}

// Statuses returns the state of every child, in start order.
func (s *Supervisor) Statuses(context.Context) ([]Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Status(nil), s.status...), nil
}

// Restart stops the named children (every child when names is empty) in
// reverse start order and starts them again in start order, waiting for
// each one's Ready like the first start, and returns once they are
// started. A child waiting for its restart after a death starts at once.
// Deliberate restarts do not count in Status.Restarts. The upgrader uses
// it to move the modules onto a new generation: a Spec whose Start looks
// up its program when called starts the new program. Restart waits for
// Run to be running (or ctx to end); an unknown name is ErrUnknownProcess
// and restarts nothing.
func (s *Supervisor) Restart(ctx context.Context, names ...string) error {
	for _, n := range names {
		if !slices.ContainsFunc(s.specs, func(sp Spec) bool { return sp.Name == n }) {
			return fmt.Errorf("supervisor: restart %q: %w", n, ErrUnknownProcess)
		}
	}
	req := restartRequest{names: names, done: make(chan error, 1)}
	select {
	case s.restarts <- req:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (s *Supervisor) set(i int, f func(st *Status)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.status[i])
}

// child is the supervisor's record of one running child.
type child struct {
	proc    Process
	started time.Time
	done    chan struct{} // closed when Wait returned
	err     error         // Wait's result, set before done is closed
}

type exit struct {
	i int
	c *child
}

// due says the restart wait of child i, which died as c, is over; it is
// stale when the child was started again meanwhile (by Restart).
type due struct {
	i int
	c *child
}

// Run starts the children in order and keeps them running until ctx
// ends; then it stops them in reverse order and returns nil. When a child
// fails fatally it stops the others and returns a *FatalError.
func (s *Supervisor) Run(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &runState{
		s:        s,
		ctx:      ctx,
		runCtx:   runCtx,
		cancel:   cancel,
		children: make([]*child, len(s.specs)),
		backoff:  make([]time.Duration, len(s.specs)),
		exits:    make(chan exit),
		dues:     make(chan due),
	}
	for i := range s.specs {
		if ctx.Err() != nil {
			break
		}
		r.startReady(i)
	}
	for {
		select {
		case <-ctx.Done():
			cancel()
			r.stopAll()
			return nil
		case e := <-r.exits:
			if r.children[e.i] != e.c {
				continue // a stale exit
			}
			if err := r.exited(e); err != nil {
				return err
			}
		case d := <-r.dues:
			if r.children[d.i] != d.c {
				continue // started again by Restart meanwhile
			}
			s.set(d.i, func(st *Status) { st.Restarts++ })
			r.start(d.i)
		case req := <-s.restarts:
			r.restart(req)
		}
	}
}

// runState is the state of one Run: the children and their restart backoff,
// owned by Run's goroutine; the goroutines waiting on children report
// through exits and dues.
type runState struct {
	s *Supervisor
	// ctx is Run's context; runCtx is cancelled when Run stops.
	ctx, runCtx context.Context
	cancel      context.CancelFunc
	children    []*child
	backoff     []time.Duration
	exits       chan exit
	dues        chan due
}

// start starts child i and watches for its exit.
func (r *runState) start(i int) {
	s := r.s
	spec := s.specs[i]
	s.set(i, func(st *Status) { st.State, st.Since, st.NextStart = Starting, s.clock.Now(), time.Time{} })
	p, err := spec.Start(r.runCtx)
	if err != nil {
		s.log.Error("cannot start", "process", spec.Name, "err", err)
		c := &child{done: make(chan struct{}), err: fmt.Errorf("start: %w", err), started: s.clock.Now()}
		close(c.done)
		r.children[i] = c
		go r.report(exit{i, c})
		return
	}
	c := &child{proc: p, started: s.clock.Now(), done: make(chan struct{})}
	r.children[i] = c
	s.set(i, func(st *Status) { st.State, st.PID, st.Since = Running, p.PID(), s.clock.Now() })
	s.log.Info("started", "process", spec.Name, "pid", p.PID())
	go func() {
		c.err = p.Wait()
		close(c.done)
		r.report(exit{i, c})
	}()
}

// report hands an exit to Run, unless Run has stopped.
func (r *runState) report(e exit) {
	select {
	case r.exits <- e:
	case <-r.runCtx.Done():
	}
}

// stop stops child i, killing it after StopTimeout.
func (r *runState) stop(i int) {
	s := r.s
	c := r.children[i]
	if c == nil {
		return
	}
	select {
	case <-c.done:
		s.set(i, func(st *Status) { st.State, st.PID, st.Since = Stopped, 0, s.clock.Now() })
		return
	default:
	}
	s.set(i, func(st *Status) { st.State, st.Since = Stopping, s.clock.Now() })
	c.proc.Stop()
	t := s.clock.NewTimer(s.cfg.StopTimeout)
	select {
	case <-c.done:
	case <-t.C():
		s.log.Warn("did not stop in time; killing it", "process", s.specs[i].Name, "timeout", s.cfg.StopTimeout)
		c.proc.Kill()
		t.Reset(s.cfg.StopTimeout)
		select {
		case <-c.done:
		case <-t.C():
			// A goroutine cannot be killed; leave it behind rather than
			// hang the shutdown.
			s.log.Error("still running after kill; abandoning it", "process", s.specs[i].Name)
		}
	}
	t.Stop()
	s.set(i, func(st *Status) { st.State, st.PID, st.Since = Stopped, 0, s.clock.Now() })
	s.log.Info("stopped", "process", s.specs[i].Name)
}

// stopAll stops every child, in reverse start order.
func (r *runState) stopAll() {
	for i := len(r.children) - 1; i >= 0; i-- {
		r.stop(i)
	}
}

// startReady starts child i and waits for its Ready, if any.
func (r *runState) startReady(i int) {
	s := r.s
	spec := s.specs[i]
	r.start(i)
	if spec.Ready != nil && r.children[i].proc != nil {
		rctx, rcancel := context.WithTimeout(r.runCtx, s.cfg.ReadyWait)
		err := spec.Ready(rctx)
		rcancel()
		if err != nil && r.ctx.Err() == nil {
			s.log.Warn("not ready in time; starting the others anyway", "process", spec.Name, "err", err)
		}
	}
}

// exited handles the exit of a current child: a fatal failure stops
// everything and is returned; any other exit schedules a restart after a
// backoff that doubles while the child keeps dying young.
func (r *runState) exited(e exit) error {
	s := r.s
	name := s.specs[e.i].Name
	why := "exited"
	if e.c.err != nil {
		why = e.c.err.Error()
	}
	if errors.Is(e.c.err, ErrFatal) {
		s.log.Error("failed fatally; stopping the node", "process", name, "err", e.c.err)
		s.set(e.i, func(st *Status) { st.State, st.PID, st.Since, st.LastExit = Failed, 0, s.clock.Now(), why })
		r.cancel()
		r.stopAll()
		s.set(e.i, func(st *Status) { st.State = Failed })
		return &FatalError{Name: name, Err: e.c.err}
	}
	ran := s.clock.Now().Sub(e.c.started)
	switch {
	case ran >= s.cfg.StableAfter || r.backoff[e.i] == 0:
		r.backoff[e.i] = s.cfg.RestartMin
	default:
		r.backoff[e.i] = min(r.backoff[e.i]*2, s.cfg.RestartMax)
	}
	wait := r.backoff[e.i]
	next := s.clock.Now().Add(wait)
	s.set(e.i, func(st *Status) {
		st.State, st.PID, st.Since, st.LastExit, st.NextStart = Restarting, 0, s.clock.Now(), why, next
	})
	s.log.Warn("died; restarting", "process", name, "err", why, "ran", ran.Round(time.Millisecond), "in", wait)
	go func(d due) {
		if clock.Sleep(r.runCtx, s.clock, wait) != nil {
			return
		}
		select {
		case r.dues <- d:
		case <-r.runCtx.Done():
		}
	}(due(e))
	return nil
}

// restart serves a Restart request: stop the named children in reverse
// order, then start them again in order, each with a fresh backoff.
func (r *runState) restart(req restartRequest) {
	s := r.s
	var which []int
	for i, spec := range s.specs {
		if len(req.names) == 0 || slices.Contains(req.names, spec.Name) {
			which = append(which, i)
		}
	}
	for k := len(which) - 1; k >= 0; k-- {
		r.stop(which[k])
	}
	for _, i := range which {
		if r.ctx.Err() != nil {
			break
		}
		s.log.Info("restarting on request", "process", s.specs[i].Name)
		r.backoff[i] = 0
		r.startReady(i)
	}
	req.done <- r.ctx.Err()
}
