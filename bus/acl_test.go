package bus

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// aclUser creates a Redis ACL user on the shared test Redis with the rules
// ACLRules gives for a, deleted when the test ends, and returns a client
// authenticated as it.
func aclUser(t *testing.T, admin *Client, a Access) *Client {
	t.Helper()
	ctx := context.Background()
	user := "bustest-" + strings.ToLower(rand.Text()[:10])
	password := rand.Text()
	rules, err := ACLRules(admin.opts.Prefix, user, a)
	if err != nil {
		t.Fatal(err)
	}
	args := []any{"ACL", "SETUSER", user, "on", ">" + password}
	for _, r := range rules {
		args = append(args, r)
	}
	if err := admin.rdb.Do(ctx, args...).Err(); err != nil {
		t.Fatalf("ACL SETUSER %s %v: %v", user, rules, err)
	}
	t.Cleanup(func() { admin.rdb.Do(context.Background(), "ACL", "DELUSER", user) })
	c, err := Open(testRedisURL(), Options{Prefix: admin.opts.Prefix, User: user, Password: Secret(password), Logger: testLogger(t), DefaultTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestACLUsers(t *testing.T) {
	ctx := context.Background()
	admin := newTestClient(t, Options{})
	const info, signer, events = "acl/info@1.0", "acl/signer@1.0", "acl/events"
	srvc := aclUser(t, admin, Access{Serve: []string{info, signer}, Publish: []string{events}})
	caller := aclUser(t, admin, Access{Call: []string{info}, Read: []string{events}})
	signing := aclUser(t, admin, Access{Call: []string{signer}})

	srv := NewServer(srvc, ServerOptions{})
	echo := Methods{"Echo": Func1(func(_ context.Context, s string) (string, error) { return s, nil })}
	if err := srv.Handle(info, echo); err != nil {
		t.Fatal(err)
	}
	if err := srv.Handle(signer, echo); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	if got, err := Call[string](ctx, caller, info, "Echo", "hi"); err != nil || got != "hi" {
		t.Fatalf("allowed call: %q %v", got, err)
	}
	if got, err := Call[string](ctx, signing, signer, "Echo", "sig"); err != nil || got != "sig" {
		t.Fatalf("allowed call of the signer: %q %v", got, err)
	}
	_, err := Call[string](ctx, caller, signer, "Echo", "x")
	if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), signer) || !strings.Contains(err.Error(), caller.opts.User) {
		t.Errorf("call of an object not listed: want ErrNotAllowed naming the object and the user, got %v", err)
	}

	// A caller may push requests but not take them, nor read others' replies.
	q := caller.keys.queue(Object{Module: "acl", Name: "info", Version: "1.0"})
	if err := caller.denied(caller.rdb.BRPop(ctx, time.Second, q).Err()); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("BRPOP of a called object's queue: want ErrNotAllowed, got %v", err)
	}
	if err := caller.denied(caller.rdb.BRPop(ctx, time.Second, srvc.replyKey).Err()); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("BRPOP of another user's reply list: want ErrNotAllowed, got %v", err)
	}
	if err := caller.denied(caller.rdb.Keys(ctx, "*").Err()); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("KEYS: want ErrNotAllowed, got %v", err)
	}

	// Streams: the publisher publishes, the reader reads, not the reverse.
	pub, _ := NewStream[string](srvc, events)
	if _, err := pub.Publish(ctx, "e1"); err != nil {
		t.Fatalf("publish: %v", err)
	}
	sub, _ := NewStream[string](caller, events)
	if ev, ok, err := sub.Last(ctx); err != nil || !ok || ev.Data != "e1" {
		t.Errorf("read a listed stream: %+v %v %v", ev, ok, err)
	}
	if _, err := sub.Publish(ctx, "forged"); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("publish on a stream only read: want ErrNotAllowed, got %v", err)
	}

	// Serving an object not listed fails Serve at once, clearly.
	rogue := NewServer(caller, ServerOptions{})
	if err := rogue.Handle(info, echo); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	if err := rogue.Serve(rctx); !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), info) {
		t.Errorf("serve an object not listed: want ErrNotAllowed naming it, got %v", err)
	}

	// Wrong password, and no credentials where the user needs some.
	bad, err := Open(testRedisURL(), Options{Prefix: admin.opts.Prefix, User: caller.opts.User, Password: "wrong", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.Ping(ctx); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("wrong password: want ErrUnauthenticated, got %v", err)
	}
}

func TestACLRulesRefuses(t *testing.T) {
	for _, c := range []struct {
		prefix, user string
		a            Access
	}{
		{"bus:", "", Access{}},
		{"bus:", "a:b", Access{}},
		{"bus:", "Upper", Access{}},
		{"bus (x)", "m", Access{}},
		{"bus:", "m", Access{Serve: []string{"no-version"}}},
		{"bus:", "m", Access{Call: []string{"m/o"}}},
		{"bus:", "m", Access{Read: []string{"nostream"}}},
	} {
		if rules, err := ACLRules(c.prefix, c.user, c.a); err == nil {
			t.Errorf("ACLRules(%q, %q, %+v) = %v, want an error", c.prefix, c.user, c.a, rules)
		}
	}
	rules, err := ACLRules("n*1:", "m", Access{Call: []string{"x/y@1.0"}})
	if err != nil || !strings.Contains(strings.Join(rules, " "), `~n\*1:x/y@1.0`) {
		t.Errorf("glob characters of the prefix are escaped: %v %v", rules, err)
	}
}

func TestSecretRedacted(t *testing.T) {
	o := Options{User: "m", Password: "hunter2"}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("opts", "password", o.Password, "opts", o)
	for _, s := range []string{fmt.Sprint(o), fmt.Sprintf("%+v", o), fmt.Sprintf("%#v", o), buf.String()} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("password printed: %s", s)
		}
	}
}
