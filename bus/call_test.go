package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const identityObject = "identityd/manager@1.0"

// ErrNoFarm is a module's sentinel, as a module declares it.
const ErrNoFarm Code = "no_farm"

// Twin is a structured argument and result.
type Twin struct {
	ID       uint32   `json:"id"`
	Relays   []string `json:"relays"`
	Verified bool     `json:"verified"`
}

// identity is a fake identityd manager.
type identity struct {
	calls atomic.Int64
}

func (m *identity) NodeID(context.Context) (uint64, error) {
	m.calls.Add(1)
	return 1<<53 + 1, nil // beyond float64 precision: must survive JSON
}

func (m *identity) Sign(_ context.Context, msg []byte) ([]byte, error) {
	return append([]byte("sig:"), msg...), nil
}

func (m *identity) Verify(_ context.Context, t Twin, relay string) (Twin, error) {
	t.Verified = slices.Contains(t.Relays, relay)
	return t, nil
}

func (m *identity) FarmID(context.Context) (uint32, error) {
	return 0, fmt.Errorf("load farm: %w", ErrNoFarm)
}

func (m *identity) Reload(context.Context, string) error { return nil }

func (m *identity) methods() Methods {
	return Methods{
		"NodeID": Func0(m.NodeID),
		"Sign":   Func1(m.Sign),
		"Verify": Func2(m.Verify),
		"FarmID": Func0(m.FarmID),
		"Reload": Proc1(m.Reload),
	}
}

// IdentityStub is a typed stub, as a calling module writes it.
type IdentityStub struct{ c *Client }

func (s IdentityStub) NodeID(ctx context.Context) (uint64, error) {
	return Call[uint64](ctx, s.c, identityObject, "NodeID")
}

func (s IdentityStub) Sign(ctx context.Context, msg []byte) ([]byte, error) {
	return Call[[]byte](ctx, s.c, identityObject, "Sign", msg)
}

func (s IdentityStub) Verify(ctx context.Context, t Twin, relay string) (Twin, error) {
	return Call[Twin](ctx, s.c, identityObject, "Verify", t, relay)
}

func (s IdentityStub) FarmID(ctx context.Context) (uint32, error) {
	return Call[uint32](ctx, s.c, identityObject, "FarmID")
}

func (s IdentityStub) Reload(ctx context.Context, path string) error {
	return s.c.Invoke(ctx, identityObject, "Reload", nil, path)
}

// serveIdentity serves a fake identity on c and returns a stub on another
// client of the same bus.
func serveIdentity(t *testing.T, c *Client, opts ServerOptions) (*identity, IdentityStub) {
	t.Helper()
	m := &identity{}
	srv := NewServer(c, opts)
	if err := srv.Handle(identityObject, m.methods()); err != nil {
		t.Fatal(err)
	}
	serve(t, srv)
	return m, IdentityStub{c: sibling(t, c)}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestCallRoundTrip(t *testing.T) {
	c := newTestClient(t, Options{})
	_, stub := serveIdentity(t, c, ServerOptions{})
	ctx := ctxTimeout(t, 5*time.Second)

	id, err := stub.NodeID(ctx)
	if err != nil || id != 1<<53+1 {
		t.Fatalf("NodeID = %d, %v; want %d", id, err, uint64(1<<53+1))
	}
	sig, err := stub.Sign(ctx, []byte{0, 1, 2, 255})
	if err != nil || !bytes.Equal(sig, []byte("sig:\x00\x01\x02\xff")) {
		t.Fatalf("Sign = %q, %v", sig, err)
	}
	tw, err := stub.Verify(ctx, Twin{ID: 7, Relays: []string{"r1", "r2"}}, "r2")
	if err != nil || !tw.Verified || tw.ID != 7 || len(tw.Relays) != 2 {
		t.Fatalf("Verify = %+v, %v", tw, err)
	}
	if err := stub.Reload(ctx, "/etc/seed"); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if err := stub.c.Alive(ctx, identityObject); err != nil {
		t.Fatalf("Alive: %v", err)
	}
	names, err := stub.c.Methods(ctx, identityObject)
	if want := []string{"FarmID", "NodeID", "Reload", "Sign", "Verify"}; err != nil || !slices.Equal(names, want) {
		t.Fatalf("Methods = %v, %v; want %v", names, err, want)
	}
}

// TestWireFormat checks the documents on the wire against docs/bus.md by
// playing a caller by hand, as a module in another language would.
func TestWireFormat(t *testing.T) {
	c := newTestClient(t, Options{})
	serveIdentity(t, c, ServerOptions{})
	ctx := ctxTimeout(t, 5*time.Second)

	replyTo := c.opts.Prefix + "reply:handmade-1"
	req := fmt.Sprintf(`{"id":"r1","object":%q,"method":"Verify","args":[{"id":3,"relays":["a"]},"a"],"deadline":%d,"reply_to":%q}`,
		identityObject, time.Now().Add(5*time.Second).UnixMilli(), replyTo)
	if err := c.rdb.LPush(ctx, c.opts.Prefix+identityObject, req).Err(); err != nil {
		t.Fatal(err)
	}
	res, err := c.rdb.BRPop(ctx, 5*time.Second, replyTo).Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"id":"r1","result":{"id":3,"relays":["a"],"verified":true}}`; res[1] != want {
		t.Fatalf("reply = %s\nwant    %s", res[1], want)
	}

	// An error reply; this time look at the list before taking it.
	req = fmt.Sprintf(`{"id":"r2","object":%q,"method":"FarmID","args":[],"deadline":%d,"reply_to":%q}`,
		identityObject, time.Now().Add(5*time.Second).UnixMilli(), replyTo)
	if err := c.rdb.LPush(ctx, c.opts.Prefix+identityObject, req).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "error reply", func() bool { return c.rdb.LLen(ctx, replyTo).Val() == 1 })
	if ttl := c.rdb.PTTL(ctx, replyTo).Val(); ttl <= 0 || ttl > c.opts.ReplyTTL {
		t.Fatalf("reply list TTL = %v, want in (0, %v]", ttl, c.opts.ReplyTTL)
	}
	body := c.rdb.RPop(ctx, replyTo).Val()
	if want := `{"id":"r2","error":{"code":"no_farm","message":"load farm: no_farm"}}`; body != want {
		t.Fatalf("reply = %s\nwant    %s", body, want)
	}
}

func TestConcurrentCalls(t *testing.T) {
	c := newTestClient(t, Options{})
	const workers = 4
	var running, peak atomic.Int64
	srv := NewServer(c, ServerOptions{Workers: workers})
	err := srv.Handle("mathd/calc@1.0", Methods{
		"Square": Func1(func(ctx context.Context, x int) (int, error) {
			n := running.Add(1)
			defer running.Add(-1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
			return x * x, nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, srv)

	callers := []*Client{sibling(t, c), sibling(t, c), sibling(t, c)}
	ctx := ctxTimeout(t, 20*time.Second)
	const n = 300
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			got, err := Call[int](ctx, callers[i%len(callers)], "mathd/calc@1.0", "Square", i)
			if err == nil && got != i*i {
				err = fmt.Errorf("Square(%d) = %d", i, got)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if p := peak.Load(); p > workers || p < 2 {
		t.Errorf("peak concurrency %d; want between 2 and %d", p, workers)
	}
}

func TestDeadlineExceeded(t *testing.T) {
	c := newTestClient(t, Options{})
	started := make(chan struct{}, 1)
	handlerErr := make(chan error, 1)
	srv := NewServer(c, ServerOptions{})
	err := srv.Handle("slowd/thing@1.0", Methods{
		"Slow": Proc0(func(ctx context.Context) error {
			started <- struct{}{}
			<-ctx.Done() // the handler's context carries the caller's deadline
			handlerErr <- ctx.Err()
			return ctx.Err()
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, srv)
	caller := sibling(t, c)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = caller.Invoke(ctx, "slowd/thing@1.0", "Slow", nil)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v; want context.DeadlineExceeded", err)
	}
	var nr *NoReplyError
	if !errors.As(err, &nr) || !nr.Taken {
		t.Fatalf("err = %#v; want a *NoReplyError with Taken", err)
	}
	if !strings.Contains(err.Error(), "slowd/thing@1.0.Slow") {
		t.Errorf("message %q does not name the call", err)
	}
	if took < 290*time.Millisecond || took > 3*time.Second {
		t.Errorf("call returned after %v; want about 300ms", took)
	}
	<-started
	select {
	case herr := <-handlerErr:
		if !errors.Is(herr, context.DeadlineExceeded) {
			t.Errorf("handler context ended with %v; want DeadlineExceeded", herr)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the handler's context did not end at the caller's deadline")
	}

	// A context canceled (not timed out) is reported as such.
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	go func() { <-started; cancel2() }()
	err = caller.Invoke(ctx2, "slowd/thing@1.0", "Slow", nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
}

func TestServerDropsExpiredRequests(t *testing.T) {
	c := newTestClient(t, Options{})
	ctx := ctxTimeout(t, 10*time.Second)
	m := &identity{}
	// A request whose deadline has passed sits in the queue before any
	// server runs.
	replyTo := c.keys.reply("stale")
	stale := fmt.Sprintf(`{"id":"old","object":%q,"method":"NodeID","args":[],"deadline":%d,"reply_to":%q}`,
		identityObject, time.Now().Add(-time.Second).UnixMilli(), replyTo)
	if err := c.rdb.LPush(ctx, c.opts.Prefix+identityObject, stale).Err(); err != nil {
		t.Fatal(err)
	}
	srv := NewServer(c, ServerOptions{})
	if err := srv.Handle(identityObject, m.methods()); err != nil {
		t.Fatal(err)
	}
	serve(t, srv)
	if _, err := (IdentityStub{c: sibling(t, c)}).NodeID(ctx); err != nil {
		t.Fatal(err)
	}
	if n := m.calls.Load(); n != 1 {
		t.Fatalf("handler ran %d times; want 1 (the expired request must be dropped)", n)
	}
	if n := c.rdb.Exists(ctx, replyTo).Val(); n != 0 {
		t.Fatal("the expired request got a reply")
	}
}

func TestNoServer(t *testing.T) {
	c := newTestClient(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
	defer cancel()
	_, err := Call[uint64](ctx, c, "ghostd/manager@1.0", "NodeID")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v; want context.DeadlineExceeded", err)
	}
	var nr *NoReplyError
	if !errors.As(err, &nr) || nr.Taken {
		t.Fatalf("err = %#v; want a *NoReplyError, not taken", err)
	}
	msg := err.Error()
	for _, want := range []string{"no reply from ghostd/manager@1.0.NodeID within 250ms", "is ghostd running?"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	// The request was withdrawn: a server starting later will not run it.
	if n := c.rdb.LLen(context.Background(), c.opts.Prefix+"ghostd/manager@1.0").Val(); n != 0 {
		t.Fatalf("queue holds %d requests after the timeout; want 0", n)
	}

	// Without a deadline in ctx, Options.DefaultTimeout applies.
	c2 := NewClient(c.rdb, Options{Prefix: c.opts.Prefix, DefaultTimeout: 100 * time.Millisecond, Logger: testLogger(t)})
	defer c2.Close()
	start := time.Now()
	err = c2.Invoke(context.Background(), "ghostd/manager@1.0", "NodeID", nil)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Fatalf("err = %v after %v; want DeadlineExceeded after 100ms", err, time.Since(start))
	}
}

func TestErrorsCrossIntact(t *testing.T) {
	const ErrNotFound Code = "not_found"
	c := newTestClient(t, Options{})
	srv := NewServer(c, ServerOptions{})
	err := srv.Handle("farmerd/farms@2.1", Methods{
		"Wrapped": Proc0(func(context.Context) error {
			return fmt.Errorf("farm %d: %w", 7, ErrNotFound)
		}),
		"Formatted": Proc0(func(context.Context) error {
			return Errorf(ErrNotFound, "farm %d is not registered", 8)
		}),
		"Struct": Proc0(func(context.Context) error {
			return &Error{Code: "conflict", Message: "farm name taken"}
		}),
		"Plain": Proc0(func(context.Context) error {
			return errors.New("disk on fire")
		}),
		"Timeout": Proc0(func(context.Context) error {
			return fmt.Errorf("query registrar: %w", context.DeadlineExceeded)
		}),
		"Nested": Proc0(func(ctx context.Context) error {
			// An error that crossed the bus once crosses it again.
			err := c.Invoke(ctx, "farmerd/farms@2.1", "Formatted", nil)
			return fmt.Errorf("nested: %w", err)
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, srv)
	caller := sibling(t, c)
	ctx := ctxTimeout(t, 10*time.Second)

	tests := []struct {
		method  string
		code    Code
		message string
		is      error
	}{
		{"Wrapped", ErrNotFound, "farm 7: not_found", ErrNotFound},
		{"Formatted", ErrNotFound, "farm 8 is not registered", ErrNotFound},
		{"Struct", "conflict", "farm name taken", &Error{Code: "conflict"}},
		{"Plain", CodeError, "disk on fire", CodeError},
		{"Timeout", CodeDeadlineExceeded, "query registrar: context deadline exceeded", context.DeadlineExceeded},
		{"Nested", ErrNotFound, "nested: farm 8 is not registered", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			err := caller.Invoke(ctx, "farmerd/farms@2.1", tt.method, nil)
			var be *Error
			if !errors.As(err, &be) {
				t.Fatalf("err = %#v; want an *Error", err)
			}
			if be.Code != tt.code || be.Message != tt.message || err.Error() != tt.message {
				t.Errorf("got code %q message %q; want %q %q", be.Code, be.Message, tt.code, tt.message)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(err, %v) = false", tt.is)
			}
			if tt.code != ErrNotFound && errors.Is(err, ErrNotFound) {
				t.Errorf("errors.Is(err, ErrNotFound) = true for code %q", be.Code)
			}
			if errors.Is(err, context.Canceled) {
				t.Errorf("errors.Is(err, context.Canceled) = true")
			}
		})
	}
}

func TestPanicInHandler(t *testing.T) {
	c := newTestClient(t, Options{})
	srv := NewServer(c, ServerOptions{Workers: 1})
	err := srv.Handle("crashd/thing@1.0", Methods{
		"Boom": Proc1(func(_ context.Context, key string) error {
			var slots []int
			slots[len(key)]++ // panics: index out of range
			return nil
		}),
		"Fine": Func0(func(context.Context) (string, error) { return "still here", nil }),
	})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, srv)
	caller := sibling(t, c)
	ctx := ctxTimeout(t, 5*time.Second)
	for range 3 {
		err := caller.Invoke(ctx, "crashd/thing@1.0", "Boom", nil, "x")
		if !errors.Is(err, CodePanic) || !strings.Contains(err.Error(), "index out of range") {
			t.Fatalf("err = %v; want a panic error naming the cause", err)
		}
		// The server (with its single worker) lives on.
		got, err := Call[string](ctx, caller, "crashd/thing@1.0", "Fine")
		if err != nil || got != "still here" {
			t.Fatalf("after panic: %q, %v", got, err)
		}
	}
}

func TestUnknownMethodAndBadArguments(t *testing.T) {
	c := newTestClient(t, Options{})
	_, stub := serveIdentity(t, c, ServerOptions{})
	ctx := ctxTimeout(t, 5*time.Second)

	err := stub.c.Invoke(ctx, identityObject, "Explode", nil)
	if !errors.Is(err, CodeUnknownMethod) || errors.Is(err, CodeBadArguments) {
		t.Fatalf("unknown method: err = %v; want code %s", err, CodeUnknownMethod)
	}
	if !strings.Contains(err.Error(), `"Explode"`) {
		t.Errorf("message %q does not name the method", err)
	}

	bad := []struct {
		method string
		args   []any
	}{
		{"NodeID", []any{1}},                  // too many
		{"Sign", nil},                         // too few
		{"Sign", []any{42}},                   // a number for []byte
		{"Verify", []any{"not a twin", "r1"}}, // a string for a struct
	}
	for _, b := range bad {
		err := stub.c.Invoke(ctx, identityObject, b.method, nil, b.args...)
		if !errors.Is(err, CodeBadArguments) || errors.Is(err, CodeUnknownMethod) {
			t.Errorf("%s%v: err = %v; want code %s", b.method, b.args, err, CodeBadArguments)
		}
	}

	// Args that are not an array at all.
	replyTo := c.keys.reply("bad-args")
	req := fmt.Sprintf(`{"id":"x","object":%q,"method":"NodeID","args":{"a":1},"deadline":%d,"reply_to":%q}`,
		identityObject, time.Now().Add(5*time.Second).UnixMilli(), replyTo)
	c.rdb.LPush(ctx, c.opts.Prefix+identityObject, req)
	res, err := c.rdb.BRPop(ctx, 5*time.Second, replyTo).Result()
	if err != nil {
		t.Fatal(err)
	}
	var rep reply
	if err := json.Unmarshal([]byte(res[1]), &rep); err != nil || rep.Error == nil || rep.Error.Code != CodeBadArguments {
		t.Fatalf("reply %s; want a %s error", res[1], CodeBadArguments)
	}

	// Names are checked on the calling side.
	if err := stub.c.Invoke(ctx, "identityd/manager", "NodeID", nil); err == nil {
		t.Error("object without version accepted")
	}
	if err := stub.c.Invoke(ctx, identityObject, "no-such thing", nil); err == nil {
		t.Error("bad method name accepted")
	}
}

func TestServerRegistration(t *testing.T) {
	c := newTestClient(t, Options{})
	srv := NewServer(c, ServerOptions{})
	h := Proc0(func(context.Context) error { return nil })
	if err := srv.Handle("bad name/x@1", Methods{"A": h}); err == nil {
		t.Error("bad module name accepted")
	}
	if err := srv.Handle("m/x@1", Methods{}); err == nil {
		t.Error("object without methods accepted")
	}
	if err := srv.Handle("m/x@1", Methods{"bus.ping": h}); err == nil {
		t.Error("reserved method name accepted")
	}
	if err := srv.Handle("m/x@1", Methods{"A": nil}); err == nil {
		t.Error("nil handler accepted")
	}
	if err := srv.Handle("m/x@1", Methods{"A": h}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Handle("m/x@1", Methods{"B": h}); err == nil {
		t.Error("object registered twice")
	}
	if err := NewServer(c, ServerOptions{}).Serve(context.Background()); err == nil {
		t.Error("Serve with no object succeeded")
	}
	// Shutdown before Serve: Serve returns at once.
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(context.Background()); err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

func TestTwoObjectsOneServer(t *testing.T) {
	c := newTestClient(t, Options{})
	srv := NewServer(c, ServerOptions{Workers: 2})
	for _, v := range []string{"1.0", "2.0"} {
		err := srv.Handle("versiond/api@"+v, Methods{
			"Version": Func0(func(context.Context) (string, error) { return v, nil }),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	serve(t, srv)
	caller := sibling(t, c)
	ctx := ctxTimeout(t, 5*time.Second)
	for _, v := range []string{"1.0", "2.0", "1.0"} {
		got, err := Call[string](ctx, caller, "versiond/api@"+v, "Version")
		if err != nil || got != v {
			t.Fatalf("api@%s: %q, %v", v, got, err)
		}
	}
	// A version nobody serves is nobody's.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := Call[string](short, caller, "versiond/api@3.0", "Version"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("api@3.0: %v; want DeadlineExceeded", err)
	}
}

func TestClosedClient(t *testing.T) {
	c := newTestClient(t, Options{})
	caller := NewClient(c.rdb, Options{Prefix: c.opts.Prefix, Logger: testLogger(t)})
	done := make(chan error, 1)
	go func() {
		done <- caller.Invoke(context.Background(), "ghostd/manager@1.0", "NodeID", nil)
	}()
	waitFor(t, 5*time.Second, "the request to be queued", func() bool {
		return c.rdb.LLen(context.Background(), c.opts.Prefix+"ghostd/manager@1.0").Val() == 1
	})
	if err := caller.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("in-flight call on Close: %v; want ErrClosed", err)
	}
	if err := caller.Invoke(context.Background(), "ghostd/manager@1.0", "NodeID", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("call after Close: %v; want ErrClosed", err)
	}
}
