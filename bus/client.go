package bus

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of Options.
const (
	DefaultPrefix       = "bus:"
	DefaultTimeout      = 30 * time.Second
	DefaultReplyTTL     = time.Minute
	DefaultStreamMaxLen = 1000
)

// How long the blocking reads of the bus's background loops wait before
// looking around (they are woken earlier when told to stop).
const (
	listenBlock = 5 * time.Second
	fetchBlock  = 5 * time.Second
	// cleanupTimeout bounds the housekeeping commands run after the
	// caller's context is gone (removing a timed-out request, replying).
	cleanupTimeout = 5 * time.Second
)

// Options configure a Client. The zero value is usable.
type Options struct {
	// Prefix is put in front of every Redis key the bus uses; default
	// "bus:". All modules of a node must use the same prefix.
	Prefix string
	// DefaultTimeout is the deadline given to a call whose context has
	// none; default 30s. Every request carries a deadline.
	DefaultTimeout time.Duration
	// ReplyTTL is how long a reply list lives in Redis after the last
	// reply pushed to it, so the replies of a caller that went away do
	// not stay forever; default 1 minute.
	ReplyTTL time.Duration
	// StreamMaxLen bounds each event stream this client publishes on (the
	// approximate number of events Redis keeps); default 1000.
	StreamMaxLen int64
	// Logger receives the bus's logs; default slog.Default().
	Logger *slog.Logger
	// User and Password are the Redis ACL user the client authenticates
	// as (Open overrides the URL's), for a Redis that gives each module a
	// user of its own (see ACLRules). User also names the client's reply
	// and control lists ("reply:<user>:<id>"), so that each user may read
	// only its own. Both empty: the URL's credentials, if any.
	User     string
	Password Secret
}

func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.DefaultTimeout <= 0 {
		o.DefaultTimeout = DefaultTimeout
	}
	if o.ReplyTTL <= 0 {
		o.ReplyTTL = DefaultReplyTTL
	}
	if o.StreamMaxLen <= 0 {
		o.StreamMaxLen = DefaultStreamMaxLen
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Client is a module's connection to the bus: it makes calls, publishes and
// reads events, and is what a Server serves through. It is safe for
// concurrent use. Replies to all of a client's calls come back on one Redis
// list read by one background goroutine, started with the first call.
type Client struct {
	rdb   *redis.Client
	owned bool
	opts  Options
	keys  keys
	log   *slog.Logger
	// id names this client; its replies go to keys.reply(id).
	id       string
	replyKey string

	mu        sync.Mutex
	pending   map[string]chan *reply
	listening bool
	closed    bool
	stop      chan struct{} // closed by Close
	done      chan struct{} // closed when the listener has exited
}

// Open returns a Client for the Redis at url: "redis://host:port/db"
// (rediss:// for TLS) or "unix:///path/to/redis.sock" (database with
// "?db=N"). Open does not touch the network: commands connect on first use
// and reconnect after Redis restarts. Close the client when done.
func Open(url string, opts Options) (*Client, error) {
	ro, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("bus: redis url: %w", err)
	}
	if opts.User != "" || opts.Password != "" {
		ro.Username, ro.Password = opts.User, string(opts.Password)
	}
	c := NewClient(redis.NewClient(ro), opts)
	c.owned = true
	return c, nil
}

// NewClient returns a Client over an existing go-redis client, which Close
// leaves open.
func NewClient(rdb *redis.Client, opts Options) *Client {
	opts = opts.withDefaults()
	id := newID(opts.User)
	k := keys{prefix: opts.Prefix}
	return &Client{
		rdb:      rdb,
		opts:     opts,
		keys:     k,
		log:      opts.Logger.With("component", "bus"),
		id:       id,
		replyKey: k.reply(id),
		pending:  make(map[string]chan *reply),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// newID names a client or a server: random, after its user when it has
// one.
func newID(user string) string {
	if user == "" {
		return rand.Text()
	}
	return user + ":" + rand.Text()
}

// Redis returns the underlying go-redis client (for health checks).
func (c *Client) Redis() *redis.Client { return c.rdb }

// Ping checks that Redis answers.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("bus: redis ping: %w", c.denied(err))
	}
	return nil
}

// Close stops the client: calls in flight return ErrClosed and the reply
// listener exits. The Redis connection is closed when Open made it. Shut
// down the Servers using the client first.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	listening := c.listening
	close(c.stop)
	c.mu.Unlock()

	var err error
	if c.owned {
		// Closing the connections also ends the listener's blocking read.
		err = c.rdb.Close()
	} else if listening {
		// Wake the listener: an empty reply on its list.
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		c.pushReply(ctx, c.replyKey, []byte(`{"id":""}`))
		cancel()
	}
	if listening {
		<-c.done
	}
	if err != nil {
		return fmt.Errorf("bus: close redis: %w", err)
	}
	return nil
}

// Call calls method of object ("module/object@version") with args and
// decodes the result into an R. It is the building block of typed stubs:
//
//	func (s IdentityStub) NodeID(ctx context.Context) (uint64, error) {
//		return bus.Call[uint64](ctx, s.c, "identityd/manager@1.0", "NodeID")
//	}
//
// See Client.Invoke for errors and deadlines.
func Call[R any](ctx context.Context, c *Client, object, method string, args ...any) (R, error) {
	var r R
	err := c.Invoke(ctx, object, method, &r, args...)
	return r, err
}

// Invoke calls method of object ("module/object@version") with args, each
// encoded as JSON, and decodes the result into result (a pointer; nil to
// ignore the result).
//
// The call's deadline is ctx's, or Options.DefaultTimeout from now when ctx
// has none. When no reply comes in time Invoke returns a *NoReplyError,
// which matches context.DeadlineExceeded and says whether any server took
// the call. When the method fails the error is the server's, as an *Error:
// errors.Is matches its Code (see Code), err.Error() is the server's text.
// A call is delivered at most once: a call lost because Redis restarted
// times out, it is not resent.
func (c *Client) Invoke(ctx context.Context, object, method string, result any, args ...any) error {
	obj, err := ParseObject(object)
	if err != nil {
		return err
	}
	if !isBuiltin(method) {
		if err := checkMethod(method); err != nil {
			return fmt.Errorf("bus: call %s: %w", object, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bus: call %s.%s: %w", object, method, err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		var cancel context.CancelFunc
		deadline = time.Now().Add(c.opts.DefaultTimeout)
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	start := time.Now()

	if args == nil {
		args = []any{}
	}
	rawArgs, err := json.Marshal(args)
	if err != nil {
		return fmt.Errorf("bus: call %s.%s: encode arguments: %w", object, method, err)
	}
	id := rand.Text()
	body, err := json.Marshal(request{
		ID:       id,
		Object:   object,
		Method:   method,
		Args:     rawArgs,
		Deadline: deadline.UnixMilli(),
		ReplyTo:  c.replyKey,
	})
	if err != nil {
		return fmt.Errorf("bus: call %s.%s: encode request: %w", object, method, err)
	}

	ch, err := c.expect(id)
	if err != nil {
		return fmt.Errorf("bus: call %s.%s: %w", object, method, err)
	}
	defer c.forget(id)

	queue := c.keys.queue(obj)
	if err := c.rdb.LPush(ctx, queue, body).Err(); err != nil {
		return fmt.Errorf("bus: call %s.%s: send request: %w", object, method, c.denied(err))
	}

	select {
	case rep := <-ch:
		if rep.Error != nil {
			if rep.Error.Code == "" {
				rep.Error.Code = CodeError
			}
			return rep.Error
		}
		if result != nil && len(rep.Result) > 0 {
			if err := json.Unmarshal(rep.Result, result); err != nil {
				return fmt.Errorf("bus: call %s.%s: decode result: %w", object, method, err)
			}
		}
		return nil
	case <-ctx.Done():
		taken := !c.withdraw(queue, body)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return &NoReplyError{Object: object, Method: method, Timeout: deadline.Sub(start), Taken: taken}
		}
		return fmt.Errorf("bus: call %s.%s: %w", object, method, ctx.Err())
	case <-c.stop:
		c.withdraw(queue, body)
		return fmt.Errorf("bus: call %s.%s: %w", object, method, ErrClosed)
	}
}

// withdraw removes a request nobody answered from its queue, so that a
// server starting later does not run a call its caller gave up on. It
// reports whether the request was still queued.
func (c *Client) withdraw(queue string, body []byte) bool {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	n, err := c.rdb.LRem(ctx, queue, 1, body).Result()
	if err != nil {
		c.log.Debug("bus: withdraw request", "queue", queue, "err", err)
		return false
	}
	return n > 0
}

// expect registers a pending call and makes sure the listener runs.
func (c *Client) expect(id string) (chan *reply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	ch := make(chan *reply, 1)
	c.pending[id] = ch
	if !c.listening {
		c.listening = true
		go c.listen()
	}
	return ch, nil
}

func (c *Client) forget(id string) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// listen reads this client's reply list and hands each reply to its call.
func (c *Client) listen() {
	defer close(c.done)
	var b backoff
	for !c.isClosed() {
		res, err := c.rdb.BRPop(context.Background(), listenBlock, c.replyKey).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if c.isClosed() {
				return
			}
			d := b.next()
			c.log.Warn("bus: reading replies failed; retrying", "key", c.replyKey, "err", c.denied(err), "retry_in", d)
			if !sleep(d, c.stop) {
				return
			}
			continue
		}
		b.reset()
		c.dispatch(res[1])
	}
}

func (c *Client) dispatch(body string) {
	var rep reply
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		c.log.Warn("bus: malformed reply dropped", "key", c.replyKey, "err", err)
		return
	}
	if rep.ID == "" {
		return // a wake-up (see Close)
	}
	c.mu.Lock()
	ch := c.pending[rep.ID]
	c.mu.Unlock()
	if ch == nil {
		c.log.Debug("bus: reply to a call that gave up", "id", rep.ID)
		return
	}
	select {
	case ch <- &rep:
	default:
	}
}

// denied classifies Redis's refusals (see ErrNotAllowed).
func (c *Client) denied(err error) error { return denied(err, c.opts.User) }

// pushReply pushes a reply onto a reply list and renews the list's expiry,
// in one transaction so no list is left without one.
func (c *Client) pushReply(ctx context.Context, key string, body []byte) error {
	_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, key, body)
		p.PExpire(ctx, key, c.opts.ReplyTTL)
		return nil
	})
	return err
}

// Alive checks that some server serves object, with the built-in method
// "bus.ping" every server answers; it fails like any call (a
// *NoReplyError when nobody answers before ctx's deadline).
func (c *Client) Alive(ctx context.Context, object string) error {
	return c.Invoke(ctx, object, methodPing, nil)
}

// Methods lists the methods a server of object offers, with the built-in
// method "bus.methods".
func (c *Client) Methods(ctx context.Context, object string) ([]string, error) {
	return Call[[]string](ctx, c, object, methodMethods)
}

// backoff yields growing delays for retrying a failed Redis command.
type backoff struct{ d time.Duration }

func (b *backoff) next() time.Duration {
	const first, limit = 50 * time.Millisecond, 2 * time.Second
	switch {
	case b.d == 0:
		b.d = first
	case b.d < limit:
		b.d = min(2*b.d, limit)
	}
	return b.d
}

func (b *backoff) reset() { b.d = 0 }

// sleep waits for d, or less when stop is closed; it reports whether it
// waited the whole time.
func sleep(d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}
