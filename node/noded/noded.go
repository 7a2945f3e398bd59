// Package facts is noded: it serves the node's capacity and hardware facts
// (probed by package hostinfo) over the bus, and watches the management
// interface's addresses, publishing each change on the bus stream
// "noded/addresses" so that registrar_light re-registers the node at once.
//
// Addresses are watched two ways: the kernel's netlink notifications of
// address and link changes wake the watcher immediately, and a poll every
// PollInterval catches anything a notification missed (or every change,
// where netlink is unavailable). Each wake-up re-reads the interface and
// publishes only when its name, MAC or addresses differ from the last
// published state. The current state is published once at start, so a
// change made while noded was down is not missed either.
package noded

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/node/hostinfo"
	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/registrar/api"
)

// Object is the bus object noded serves.
const Object = "noded/facts@1.0"

// AddressStream is the bus stream of management address changes.
const AddressStream = "noded/addresses"

// DefaultPollInterval is how often the watcher re-reads the addresses when
// no netlink notification woke it.
const DefaultPollInterval = 10 * time.Second

// Prober reads the machine's facts; *hostinfo.Prober is one.
type Prober interface {
	Probe(ctx context.Context) (hostinfo.Facts, error)
	Interface() hostinfo.Fact[api.Interface]
}

// Service serves a Prober's facts on the bus.
type Service struct{ p Prober }

// NewService returns a Service over p.
func NewService(p Prober) *Service { return &Service{p: p} }

// Methods returns the bus methods of Object: Facts (everything) and
// Interface (the management interface alone).
func (s *Service) Methods() bus.Methods {
	return bus.Methods{
		"Facts": bus.Func0(s.p.Probe),
		"Interface": bus.Func0(func(context.Context) (hostinfo.Fact[api.Interface], error) {
			return s.p.Interface(), nil
		}),
	}
}

// Stub calls noded over the bus.
type Stub struct{ c *bus.Client }

// NewStub returns a stub calling noded through c.
func NewStub(c *bus.Client) Stub { return Stub{c: c} }

// Facts probes every fact of the machine.
func (s Stub) Facts(ctx context.Context) (hostinfo.Facts, error) {
	return bus.Call[hostinfo.Facts](ctx, s.c, Object, "Facts")
}

// Interface reads the management interface.
func (s Stub) Interface(ctx context.Context) (hostinfo.Fact[api.Interface], error) {
	return bus.Call[hostinfo.Fact[api.Interface]](ctx, s.c, Object, "Interface")
}

// AddressChange is an event of AddressStream: the management interface as
// it is now, and the addresses it had before.
type AddressChange struct {
	// Interface is the management interface's name ("" when unknown).
	Interface string `json:"interface"`
	// Mac is its MAC address.
	Mac string `json:"mac"`
	// IPs are its reportable addresses (see hostinfo), sorted.
	IPs []string `json:"ips"`
	// Previous are the addresses of the previous event (nil for the first
	// event after noded started).
	Previous []string `json:"previous"`
	// Known is false when the interface could not be read; Reason says why.
	Known  bool      `json:"known"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// NewAddressStream returns the AddressStream handle on c.
func NewAddressStream(c *bus.Client) (*bus.Stream[AddressChange], error) {
	return bus.NewStream[AddressChange](c, AddressStream)
}

// Publisher publishes address changes; *bus.Stream[AddressChange] is one.
type Publisher interface {
	Publish(ctx context.Context, ev AddressChange) (string, error)
}

// InterfaceReader reads the management interface; *hostinfo.Prober is one.
type InterfaceReader interface {
	Interface() hostinfo.Fact[api.Interface]
}

// Watcher publishes the management interface's address changes.
type Watcher struct {
	read  InterfaceReader
	pub   Publisher
	clock clock.Clock
	poll  time.Duration
	wake  <-chan struct{}
	log   *slog.Logger
}

// NewWatcher returns a Watcher reading the interface with r and publishing
// on pub every poll (DefaultPollInterval when 0) and whenever wake
// receives (nil: polling only).
func NewWatcher(r InterfaceReader, pub Publisher, c clock.Clock, poll time.Duration, wake <-chan struct{}, log *slog.Logger) *Watcher {
	if poll <= 0 {
		poll = DefaultPollInterval
	}
	if c == nil {
		c = clock.Real{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{read: r, pub: pub, clock: c, poll: poll, wake: wake, log: log}
}

// Run watches until ctx ends. A change that cannot be published (Redis
// down) is published at the next wake-up.
func (w *Watcher) Run(ctx context.Context) error {
	t := w.clock.NewTimer(0)
	defer t.Stop()
	var last *AddressChange
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		case <-w.wake:
		}
		f := w.read.Interface()
		ev := AddressChange{Interface: f.Value.Name, Mac: f.Value.Mac, IPs: []string(f.Value.IPs), Known: f.Known, Reason: f.Reason, At: w.clock.Now()}
		if ev.IPs == nil {
			ev.IPs = []string{}
		}
		if last == nil || !same(*last, ev) {
			if last != nil {
				ev.Previous = last.IPs
			}
			if _, err := w.pub.Publish(ctx, ev); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				w.log.Warn("cannot publish the management addresses; will retry", "err", err)
			} else {
				if last != nil {
					w.log.Info("management addresses changed", "interface", ev.Interface, "ips", ev.IPs, "previous", ev.Previous)
				}
				last = &ev
			}
		}
		t.Reset(w.poll)
	}
}

// same reports whether two events describe the same interface state.
func same(a, b AddressChange) bool {
	return a.Interface == b.Interface && a.Mac == b.Mac && a.Known == b.Known && slices.Equal(a.IPs, b.IPs)
}

// Changes subscribes to stream and returns a channel that receives
// (coalesced: one pending signal at most) after each address change, and
// after events were lost, until ctx ends. The subscription starts after
// the latest event present now, so old changes are not replayed; a
// receiver re-reads the interface rather than trusting the event.
func Changes(ctx context.Context, stream *bus.Stream[AddressChange], log *slog.Logger) <-chan struct{} {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ch := make(chan struct{}, 1)
	// The starting point is taken now, before returning, so that a change
	// published right after Changes returns is seen. If Redis does not
	// answer, all retained events are read: a spurious signal only makes
	// the receiver re-read the interface.
	after := bus.FromStart
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	if last, ok, err := stream.Last(lctx); err == nil && ok {
		after = last.ID
	}
	cancel()
	go func() {
		for _, err := range stream.Events(ctx, after) {
			if ctx.Err() != nil {
				return
			}
			if err != nil && !errors.Is(err, bus.ErrEventsLost) {
				log.Debug("address events", "err", err)
				continue
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return ch
}
