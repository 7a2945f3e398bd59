package bus

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// AddressChange is a typed event.
type AddressChange struct {
	Interface string   `json:"interface"`
	Addresses []string `json:"addresses"`
}

func addrEvent(i int) AddressChange {
	return AddressChange{Interface: "zos", Addresses: []string{fmt.Sprintf("10.0.0.%d/24", i)}}
}

// collect reads n events (failing on any error) from the stream.
func collect[T any](t *testing.T, ctx context.Context, s *Stream[T], after string, n int) []Event[T] {
	t.Helper()
	var out []Event[T]
	if n == 0 {
		return out
	}
	for ev, err := range s.Events(ctx, after) {
		if err != nil {
			t.Fatalf("event %d: %v", len(out), err)
		}
		out = append(out, ev)
		if len(out) == n {
			break
		}
	}
	if len(out) != n {
		t.Fatalf("got %d events, want %d (ctx: %v)", len(out), n, ctx.Err())
	}
	return out
}

func TestStreamPublishSubscribeResume(t *testing.T) {
	c := newTestClient(t, Options{})
	ctx := ctxTimeout(t, 10*time.Second)
	pub, err := NewStream[AddressChange](c, "netlightd/addresses")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := NewStream[AddressChange](sibling(t, c), "netlightd/addresses")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := sub.Last(ctx); ok || err != nil {
		t.Fatalf("Last on an empty stream = %v, %v", ok, err)
	}

	// A live subscriber from now on sees what is published next, in order.
	live := make(chan []Event[AddressChange], 1)
	ready := make(chan struct{})
	go func() {
		// Subscribe from the current end explicitly, so the test knows when
		// the subscription is in place.
		id, err := sub.lastID(ctx)
		if err != nil {
			t.Error(err)
		}
		close(ready)
		live <- collect(t, ctx, sub, id, 5)
	}()
	<-ready
	var ids []string
	for i := range 5 {
		id, err := pub.Publish(ctx, addrEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	got := <-live
	for i, ev := range got {
		if ev.ID != ids[i] || ev.Data.Addresses[0] != addrEvent(i).Addresses[0] || ev.Data.Interface != "zos" {
			t.Fatalf("event %d = %+v; want id %s data %+v", i, ev, ids[i], addrEvent(i))
		}
		if d := time.Since(ev.Time); d < 0 || d > time.Minute {
			t.Errorf("event %d time %v", i, ev.Time)
		}
	}

	// From the start: everything retained.
	all := collect(t, ctx, sub, FromStart, 5)
	if all[0].ID != ids[0] || all[4].ID != ids[4] {
		t.Fatalf("FromStart read %s..%s; want %s..%s", all[0].ID, all[4].ID, ids[0], ids[4])
	}

	// Resume after the third: a subscriber that went away and came back.
	rest := collect(t, ctx, sub, ids[2], 2)
	if rest[0].ID != ids[3] || rest[1].ID != ids[4] {
		t.Fatalf("resume after %s read %s, %s; want %s, %s", ids[2], rest[0].ID, rest[1].ID, ids[3], ids[4])
	}

	// FromNow skips the past.
	nowCh := make(chan Event[AddressChange], 1)
	go func() { nowCh <- collect(t, ctx, sub, FromNow, 1)[0] }()
	// Publish until the FromNow subscriber (which pins "now" when it
	// starts) has seen one; the first event it sees must be new.
	var latest string
	for i := 10; ; i++ {
		latest, err = pub.Publish(ctx, addrEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-nowCh:
			if !parseIDMust(ids[4]).less(parseIDMust(ev.ID)) {
				t.Fatalf("FromNow yielded old event %s", ev.ID)
			}
			last, ok, err := sub.Last(ctx)
			if err != nil || !ok || last.ID != latest {
				t.Fatalf("Last = %s, %v, %v; want %s", last.ID, ok, err, latest)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func parseIDMust(s string) streamID {
	id, ok := parseID(s)
	if !ok {
		panic("bad id " + s)
	}
	return id
}

func TestStreamBoundedAndLostEvents(t *testing.T) {
	c := newTestClient(t, Options{StreamMaxLen: 10})
	ctx := ctxTimeout(t, 10*time.Second)
	s, err := NewStream[int](c, "noded/ticks")
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Publish(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 1000; i++ {
		if _, err := s.Publish(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	// MAXLEN ~ trims whole macro nodes (100 entries by default), so the
	// length stays within one node of the bound.
	if n := c.rdb.XLen(ctx, s.key).Val(); n > 10+100 {
		t.Fatalf("stream holds %d events; want about 10", n)
	}

	// A subscriber resuming after a trimmed event is told, then reads on
	// from the oldest retained event.
	var lost bool
	var got []int
	for ev, err := range s.Events(ctx, first) {
		if errors.Is(err, ErrEventsLost) {
			lost = true
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Data)
		if ev.Data == 999 {
			break
		}
	}
	if !lost {
		t.Fatal("no ErrEventsLost after resuming from a trimmed position")
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("events out of order: %v", got)
		}
	}
}

func TestStreamBadEvent(t *testing.T) {
	c := newTestClient(t, Options{})
	ctx := ctxTimeout(t, 10*time.Second)
	text, _ := NewStream[string](c, "mixd/events")
	nums, _ := NewStream[int](c, "mixd/events")
	if _, err := text.Publish(ctx, "not a number"); err != nil {
		t.Fatal(err)
	}
	if _, err := nums.Publish(ctx, 42); err != nil {
		t.Fatal(err)
	}
	var errs, vals int
	for ev, err := range nums.Events(ctx, FromStart) {
		if err != nil {
			errs++
			if ev.ID == "" {
				t.Fatalf("decode error without the event's ID: %v", err)
			}
			continue
		}
		vals++
		if ev.Data != 42 {
			t.Fatalf("got %d", ev.Data)
		}
		break
	}
	if errs != 1 || vals != 1 {
		t.Fatalf("errors %d values %d; want 1 and 1", errs, vals)
	}
	if _, err := NewStream[int](c, "no-slash"); err == nil {
		t.Error("bad stream name accepted")
	}
}

func TestStreamSubscriptionEndsWithContext(t *testing.T) {
	c := newTestClient(t, Options{})
	s, _ := NewStream[int](c, "quietd/nothing")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	for _, err := range s.Events(ctx, FromNow) {
		t.Fatalf("unexpected yield: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("subscription ended %v after its context", d)
	}
}
