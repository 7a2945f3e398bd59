package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Positions to read a stream from (see Stream.Events).
const (
	// FromStart reads every event the stream still holds, then new ones.
	FromStart = "0-0"
	// FromNow reads only the events published after the subscription
	// started.
	FromNow = "$"
)

// How a subscription reads: at most streamBatch events per read, blocking
// at most streamBlock for new ones.
const (
	streamBatch = 128
	streamBlock = 2 * time.Second
)

// ErrEventsLost is reported by Stream.Events when events after the last one
// the subscriber saw may be gone: they were trimmed off the stream before
// it could read them (it was away, or slower than the publishers, for
// longer than the stream's length), or Redis restarted without persistence.
// A subscriber that gets it should resync the state the events describe;
// the subscription goes on with the oldest event still held.
var ErrEventsLost = errors.New("bus: events were lost")

// Stream is a typed handle on the event stream "module/stream": a Redis
// stream of JSON-encoded events of type T, bounded to about
// Options.StreamMaxLen events. Anyone may publish; every subscriber sees
// every event in order, and can resume from the last event it saw.
type Stream[T any] struct {
	c    *Client
	name StreamName
	key  string
}

// Event is one event of a stream.
type Event[T any] struct {
	// ID is the event's position in the stream ("<ms>-<seq>"); resume
	// after it with Events(ctx, ID).
	ID string
	// Time is when the event was published (from the ID).
	Time time.Time
	// Data is the event.
	Data T
}

// NewStream returns a handle on the stream name ("module/stream") carrying
// events of type T.
func NewStream[T any](c *Client, name string) (*Stream[T], error) {
	n, err := ParseStream(name)
	if err != nil {
		return nil, err
	}
	return &Stream[T]{c: c, name: n, key: c.keys.stream(n)}, nil
}

// Name returns "module/stream".
func (s *Stream[T]) Name() string { return s.name.String() }

// Publish appends an event to the stream and returns its ID. Redis trims
// the stream's oldest events beyond about Options.StreamMaxLen.
func (s *Stream[T]) Publish(ctx context.Context, event T) (string, error) {
	b, err := json.Marshal(event)
	if err != nil {
		return "", fmt.Errorf("bus: publish on %s: encode event: %w", s.name, err)
	}
	id, err := s.c.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: s.key,
		MaxLen: s.c.opts.StreamMaxLen,
		Approx: true,
		Values: []string{streamField, string(b)},
	}).Result()
	if err != nil {
		return "", fmt.Errorf("bus: publish on %s: %w", s.name, s.c.denied(err))
	}
	return id, nil
}

// Last returns the latest event of the stream; ok is false when the stream
// holds none.
func (s *Stream[T]) Last(ctx context.Context) (ev Event[T], ok bool, err error) {
	msgs, err := s.c.rdb.XRevRangeN(ctx, s.key, "+", "-", 1).Result()
	if err != nil {
		return ev, false, fmt.Errorf("bus: last event of %s: %w", s.name, s.c.denied(err))
	}
	if len(msgs) == 0 {
		return ev, false, nil
	}
	ev, err = s.decode(msgs[0])
	return ev, err == nil, err
}

// Events subscribes to the stream and yields its events in order, starting
// after the event with ID after, or from FromStart or FromNow. Iteration
// ends when ctx ends or the loop breaks.
//
// Errors are yielded too, and iteration goes on after them unless the loop
// breaks: a Redis failure (the subscription retries with backoff and
// resumes after the last event yielded, so nothing is skipped while the
// events are still in the stream), an event that does not decode into a T
// (yielded with its ID and the decoding error), and ErrEventsLost when
// events were trimmed before they could be read.
func (s *Stream[T]) Events(ctx context.Context, after string) iter.Seq2[Event[T], error] {
	return func(yield func(Event[T], error) bool) {
		last := after
		if last == "" {
			last = FromNow
		}
		check := last != FromNow
		var b backoff
		fail := func(err error) bool {
			if !yield(Event[T]{}, err) {
				return false
			}
			check = true
			return sleepCtx(ctx, b.next())
		}
		for ctx.Err() == nil {
			if last == FromNow {
				// Pin "now" to an ID, so that a retry after a failure
				// does not skip what was published in between.
				id, err := s.lastID(ctx)
				if err != nil {
					if !fail(err) {
						return
					}
					continue
				}
				last = id
			}
			if check {
				if err := s.checkLost(ctx, last); err != nil {
					if !errors.Is(err, ErrEventsLost) {
						if !fail(err) {
							return
						}
						continue
					}
					if !yield(Event[T]{}, err) {
						return
					}
				}
				check = false
			}
			msgs, err := s.read(ctx, last)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				if !fail(fmt.Errorf("bus: read stream %s: %w", s.name, s.c.denied(err))) {
					return
				}
				continue
			}
			b.reset()
			for _, m := range msgs {
				ev, err := s.decode(m)
				last = m.ID
				if !yield(ev, err) {
					return
				}
			}
			// A full batch means the subscriber may be behind; see
			// whether the publisher trimmed past it.
			check = len(msgs) == streamBatch
		}
	}
}

// read waits for the events after last. The blocking read runs in its own
// goroutine so that the subscription ends as soon as ctx does.
func (s *Stream[T]) read(ctx context.Context, last string) ([]redis.XMessage, error) {
	type result struct {
		msgs []redis.XMessage
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		res, err := s.c.rdb.XRead(context.WithoutCancel(ctx), &redis.XReadArgs{
			Streams: []string{s.key, last},
			Count:   streamBatch,
			Block:   streamBlock,
		}).Result()
		var msgs []redis.XMessage
		if len(res) > 0 {
			msgs = res[0].Messages
		}
		if errors.Is(err, redis.Nil) {
			err = nil
		}
		ch <- result{msgs, err}
	}()
	select {
	case r := <-ch:
		return r.msgs, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// lastID returns the ID of the stream's latest event, "0-0" when empty.
func (s *Stream[T]) lastID(ctx context.Context) (string, error) {
	msgs, err := s.c.rdb.XRevRangeN(ctx, s.key, "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("bus: read stream %s: %w", s.name, s.c.denied(err))
	}
	if len(msgs) == 0 {
		return FromStart, nil
	}
	return msgs[0].ID, nil
}

// checkLost reports ErrEventsLost when the stream's oldest event is newer
// than last, the last event the subscriber saw: the events between were
// trimmed (or Redis lost the stream, restarting without persistence). When
// the trim happened to fall just after last nothing was lost; the report
// errs on the side of a needless resync.
func (s *Stream[T]) checkLost(ctx context.Context, last string) error {
	seen, ok := parseID(last)
	if !ok || seen == (streamID{}) {
		return nil
	}
	msgs, err := s.c.rdb.XRangeN(ctx, s.key, "-", "+", 1).Result()
	if err != nil {
		return fmt.Errorf("bus: read stream %s: %w", s.name, s.c.denied(err))
	}
	if len(msgs) == 0 {
		return nil
	}
	if oldest, ok := parseID(msgs[0].ID); ok && seen.less(oldest) {
		return fmt.Errorf("%w: %s no longer holds the events after %s (its oldest is %s)",
			ErrEventsLost, s.name, last, msgs[0].ID)
	}
	return nil
}

func (s *Stream[T]) decode(m redis.XMessage) (Event[T], error) {
	ev := Event[T]{ID: m.ID}
	if id, ok := parseID(m.ID); ok {
		ev.Time = time.UnixMilli(int64(id.ms))
	}
	raw, ok := m.Values[streamField].(string)
	if !ok {
		return ev, fmt.Errorf("bus: stream %s: event %s has no %q field", s.name, m.ID, streamField)
	}
	if err := json.Unmarshal([]byte(raw), &ev.Data); err != nil {
		return ev, fmt.Errorf("bus: stream %s: decode event %s: %w", s.name, m.ID, err)
	}
	return ev, nil
}

// streamID is a parsed stream entry ID "<ms>-<seq>".
type streamID struct{ ms, seq uint64 }

func parseID(s string) (streamID, bool) {
	msPart, seqPart, ok := strings.Cut(s, "-")
	if !ok {
		seqPart = "0"
	}
	ms, err1 := strconv.ParseUint(msPart, 10, 64)
	seq, err2 := strconv.ParseUint(seqPart, 10, 64)
	if err1 != nil || err2 != nil {
		return streamID{}, false
	}
	return streamID{ms, seq}, true
}

func (a streamID) less(b streamID) bool {
	return a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq)
}

// sleepCtx waits for d or until ctx ends; it reports whether it waited the
// whole time.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	return sleep(d, ctx.Done())
}
