package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Built-in methods every server answers for each object it serves.
const (
	// methodPing answers null: the object is served.
	methodPing = "bus.ping"
	// methodMethods answers the sorted list of the object's method names.
	methodMethods = "bus.methods"
)

func isBuiltin(method string) bool { return strings.HasPrefix(method, "bus.") }

// Handler serves one method. It receives the call's context, whose deadline
// is the caller's, and the arguments, and returns the result (encoded as
// JSON; nil for none) or an error, which crosses the bus as an *Error (see
// Code). Most handlers are made from plain functions with Func0…Func3 and
// Proc0…Proc3.
type Handler func(ctx context.Context, args Args) (any, error)

// Methods maps method names (Go identifiers) to their handlers.
type Methods map[string]Handler

// Args are a call's arguments, still JSON.
type Args struct{ raw []json.RawMessage }

// NewArgs encodes values as the Args a handler receives (for tests and for
// calling a Handler directly).
func NewArgs(values ...any) (Args, error) {
	raw := make([]json.RawMessage, len(values))
	for i, v := range values {
		b, err := json.Marshal(v)
		if err != nil {
			return Args{}, fmt.Errorf("bus: encode argument %d: %w", i, err)
		}
		raw[i] = b
	}
	return Args{raw: raw}, nil
}

// Len returns the number of arguments.
func (a Args) Len() int { return len(a.raw) }

// Raw returns argument i as JSON (nil when there is no such argument).
func (a Args) Raw(i int) json.RawMessage {
	if i < 0 || i >= len(a.raw) {
		return nil
	}
	return a.raw[i]
}

// Decode decodes the arguments into ptrs, one pointer per argument. A
// count that differs from len(ptrs), or an argument that does not decode,
// is a CodeBadArguments error.
func (a Args) Decode(ptrs ...any) error {
	if len(a.raw) != len(ptrs) {
		return Errorf(CodeBadArguments, "bad arguments: want %d, got %d", len(ptrs), len(a.raw))
	}
	for i, p := range ptrs {
		if err := json.Unmarshal(a.raw[i], p); err != nil {
			return Errorf(CodeBadArguments, "bad argument %d: %v", i+1, err)
		}
	}
	return nil
}

// ServerOptions configure a Server. The zero value is usable.
type ServerOptions struct {
	// Workers bounds how many calls run at once; default 16. The server
	// only takes a request from Redis when a worker is free, so other
	// servers of the same object (if any) get the rest.
	Workers int
	// ShutdownTimeout is how long in-flight calls get to finish when
	// Serve's context ends; default 10s. Shutdown takes its own context.
	ShutdownTimeout time.Duration
}

// Server serves objects: it takes requests from their queues, runs the
// handlers on a bounded number of workers and pushes the replies back.
// Register objects with Handle, then run Serve. A request whose deadline
// has passed when it is taken is dropped; a panicking handler becomes a
// CodePanic error reply.
type Server struct {
	c       *Client
	log     *slog.Logger
	workers int
	grace   time.Duration
	id      string
	control string

	mu      sync.Mutex
	objects map[string]*served // by queue key
	queues  []string           // queue keys, in registration order
	state   serverState
	started bool          // Serve has run
	stop    chan struct{} // closed when shutdown starts
	done    chan struct{} // closed when Serve has returned

	// base is the parent of every handler's context; cancelBase ends the
	// handlers that outlive a shutdown's grace.
	base       context.Context
	cancelBase context.CancelFunc
	inflight   sync.WaitGroup
}

type serverState int

const (
	stateNew serverState = iota
	stateServing
	stateStopped
)

type served struct {
	object  Object
	methods Methods
	names   []string
}

// NewServer returns a Server that serves through c.
func NewServer(c *Client, opts ServerOptions) *Server {
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	id := newID(c.opts.User)
	base, cancel := context.WithCancel(context.Background())
	return &Server{
		c:          c,
		log:        c.log,
		workers:    opts.Workers,
		grace:      opts.ShutdownTimeout,
		id:         id,
		control:    c.keys.control(id),
		objects:    make(map[string]*served),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		base:       base,
		cancelBase: cancel,
	}
}

// Handle registers object ("module/object@version") with its methods. It
// must be called before Serve; an object is registered once.
func (s *Server) Handle(object string, methods Methods) error {
	obj, err := ParseObject(object)
	if err != nil {
		return err
	}
	if len(methods) == 0 {
		return fmt.Errorf("bus: handle %s: no methods", object)
	}
	names := make([]string, 0, len(methods))
	for name, h := range methods {
		if err := checkMethod(name); err != nil {
			return fmt.Errorf("bus: handle %s: %w", object, err)
		}
		if h == nil {
			return fmt.Errorf("bus: handle %s: method %s has a nil handler", object, name)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return fmt.Errorf("bus: handle %s: server already started", object)
	}
	q := s.c.keys.queue(obj)
	if _, dup := s.objects[q]; dup {
		return fmt.Errorf("bus: handle %s: already registered", object)
	}
	s.objects[q] = &served{object: obj, methods: maps.Clone(methods), names: names}
	s.queues = append(s.queues, q)
	return nil
}

// Serve takes and runs requests until Shutdown is called or ctx ends. When
// ctx ends, Serve shuts down as Shutdown does, giving in-flight calls
// ServerOptions.ShutdownTimeout to finish. Serve returns nil after a
// shutdown, once every handler has returned; ErrClosed when the Client was
// closed under it. Redis errors do not stop it: it retries until Redis is
// back.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	switch {
	case s.started:
		s.mu.Unlock()
		return errors.New("bus: Serve called twice")
	case s.state == stateStopped:
		s.mu.Unlock()
		return nil
	case len(s.queues) == 0:
		s.mu.Unlock()
		return errors.New("bus: Serve with no object registered")
	}
	s.state = stateServing
	s.started = true
	queues := slices.Clone(s.queues)
	s.mu.Unlock()
	defer close(s.done)

	watchDone := make(chan struct{})
	defer close(watchDone)
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), s.grace)
			defer cancel()
			if err := s.Shutdown(sctx); err != nil {
				s.log.Warn("bus: shutdown: in-flight calls canceled", "err", err)
			}
		case <-s.stop:
		case <-watchDone:
		}
	}()

	for _, q := range queues {
		s.log.Info("bus: serving", "object", s.objects[q].object.String(), "workers", s.workers)
	}
	err := s.fetch(queues)
	s.inflight.Wait()
	s.cancelBase()
	cctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	s.c.rdb.Del(cctx, s.control)
	cancel()
	return err
}

// fetch takes requests while there is a free worker, until the server
// stops.
func (s *Server) fetch(queues []string) error {
	sem := make(chan struct{}, s.workers)
	keys := make([]string, len(queues)+1)
	var b backoff
	for turn := 0; ; turn++ {
		select {
		case sem <- struct{}{}:
		case <-s.stop:
			return nil
		}
		if s.stopping() {
			return nil
		}
		// Rotate the queues so that a busy object does not starve the
		// others (BRPOP serves the first non-empty key it is given); the
		// control list comes last.
		for i := range queues {
			keys[i] = queues[(turn+i)%len(queues)]
		}
		keys[len(queues)] = s.control
		res, err := s.c.rdb.BRPop(context.Background(), fetchBlock, keys...).Result()
		if err != nil {
			<-sem
			if errors.Is(err, redis.Nil) {
				continue
			}
			if errors.Is(err, redis.ErrClosed) || s.c.isClosed() {
				return ErrClosed
			}
			if err := s.c.denied(err); errors.Is(err, ErrNotAllowed) {
				// Not a passing failure: this user may not serve these
				// objects.
				return fmt.Errorf("bus: serve %s: %w", s.names(queues), err)
			}
			d := b.next()
			s.log.Warn("bus: taking requests failed; retrying", "err", err, "retry_in", d)
			if !sleep(d, s.stop) {
				return nil
			}
			continue
		}
		b.reset()
		if res[0] == s.control {
			<-sem
			continue
		}
		if s.stopping() && s.requeue(res[0], res[1]) {
			// Taken in the moment between Shutdown and the wake-up: put
			// back at the head of its queue, for another server.
			<-sem
			return nil
		}
		s.inflight.Add(1)
		go func(queue, body string) {
			defer func() { <-sem }()
			defer s.inflight.Done()
			s.serve(queue, body)
		}(res[0], res[1])
	}
}

// names lists the objects of queues, for messages.
func (s *Server) names(queues []string) string {
	names := make([]string, len(queues))
	for i, q := range queues {
		names[i] = s.objects[q].object.String()
	}
	return strings.Join(names, ", ")
}

func (s *Server) stopping() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// requeue puts a request back where BRPOP takes the next one from; it
// reports whether it did (if not, the server runs the request after all).
func (s *Server) requeue(queue, body string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := s.c.rdb.RPush(ctx, queue, body).Err(); err != nil {
		s.log.Warn("bus: shutting down: could not put a request back; running it", "queue", queue, "err", err)
		return false
	}
	return true
}

// Shutdown stops the server gracefully: it takes no new request (one taken
// in the instant Shutdown began is put back at the head of its queue) and
// waits for the calls in flight to finish. When ctx ends first, it cancels the
// handlers' contexts and returns ctx's error (Serve still waits for the
// handlers to return). Shutdown before Serve makes Serve return at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	started := s.started
	if s.state != stateStopped {
		s.state = stateStopped
		close(s.stop)
	}
	s.mu.Unlock()
	if !started {
		return nil
	}
	// Wake the fetch loop out of its blocking read. If Redis is down the
	// loop is not blocked in Redis either; it sees stop on its own.
	wctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	if err := s.c.pushReply(wctx, s.control, []byte("stop")); err != nil {
		s.log.Debug("bus: wake fetch loop", "err", err)
	}
	cancel()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.cancelBase()
		return fmt.Errorf("bus: shutdown: %w", ctx.Err())
	}
}

// serve runs one request and replies.
func (s *Server) serve(queue, body string) {
	var req request
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		s.log.Warn("bus: malformed request dropped", "queue", queue, "err", err)
		return
	}
	if req.ID == "" || !strings.HasPrefix(req.ReplyTo, s.c.keys.prefix+"reply:") {
		s.log.Warn("bus: request without id or valid reply_to dropped", "queue", queue, "id", req.ID, "reply_to", req.ReplyTo)
		return
	}
	obj := s.objects[queue]
	log := s.log.With("object", obj.object.String(), "method", req.Method, "id", req.ID)
	if req.Deadline <= 0 {
		s.reply(log, req, time.Now().Add(time.Minute), nil, &Error{Code: CodeBadRequest, Message: "bad request: no deadline"})
		return
	}
	deadline := time.UnixMilli(req.Deadline)
	if !time.Now().Before(deadline) {
		log.Debug("bus: request expired before it was taken; dropped", "late", time.Since(deadline))
		return
	}
	start := time.Now()
	result, err := s.run(obj, req, deadline)
	log.Debug("bus: call", "took", time.Since(start), "err", err)
	s.reply(log, req, deadline, result, err)
}

// run decodes the arguments and runs the handler, turning a panic into an
// error.
func (s *Server) run(obj *served, req request, deadline time.Time) (result any, err error) {
	var raw []json.RawMessage
	if len(req.Args) > 0 && string(req.Args) != "null" {
		if err := json.Unmarshal(req.Args, &raw); err != nil {
			return nil, Errorf(CodeBadArguments, "bad arguments: want a JSON array: %v", err)
		}
	}
	switch req.Method {
	case methodPing:
		return nil, nil
	case methodMethods:
		return obj.names, nil
	}
	h, ok := obj.methods[req.Method]
	if !ok {
		return nil, Errorf(CodeUnknownMethod, "unknown method %q of %s", req.Method, obj.object)
	}
	ctx, cancel := context.WithDeadline(s.base, deadline)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("bus: handler panicked", "object", obj.object.String(), "method", req.Method,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			result, err = nil, Errorf(CodePanic, "panic in %s.%s: %v", obj.object, req.Method, r)
		}
	}()
	return h(ctx, Args{raw: raw})
}

// reply pushes the outcome of a call to its reply list, unless the caller
// has given up already.
func (s *Server) reply(log *slog.Logger, req request, deadline time.Time, result any, err error) {
	rep := reply{ID: req.ID}
	if err != nil {
		rep.Error = toWire(err)
	} else if result != nil {
		b, merr := json.Marshal(result)
		if merr != nil {
			rep.Error = &Error{Code: CodeInternal, Message: fmt.Sprintf("encode result of %s: %v", req.Method, merr)}
		} else {
			rep.Result = b
		}
	}
	if !time.Now().Before(deadline) {
		log.Debug("bus: reply after the deadline not sent")
		return
	}
	body, merr := json.Marshal(rep)
	if merr != nil {
		log.Error("bus: encode reply", "err", merr)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if perr := s.c.pushReply(ctx, req.ReplyTo, body); perr != nil {
		log.Warn("bus: send reply failed", "err", perr)
	}
}

// Serve serves one object on c until ctx ends: what a node module that
// offers a single object does with its whole life.
func Serve(ctx context.Context, c *Client, object string, methods Methods) error {
	srv := NewServer(c, ServerOptions{})
	if err := srv.Handle(object, methods); err != nil {
		return err
	}
	return srv.Serve(ctx)
}
