package noded

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/node/hostinfo"
	"github.com/grid4/grid4/node/internal/bustest"
	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/registrar/api"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// iface is a management interface whose addresses the test changes.
type iface struct {
	mu  sync.Mutex
	ips []string
}

func (i *iface) set(ips ...string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.ips = ips
}

func (i *iface) Interface() hostinfo.Fact[api.Interface] {
	i.mu.Lock()
	defer i.mu.Unlock()
	return hostinfo.Fact[api.Interface]{Known: true, Value: api.Interface{Name: "eth0", Mac: "02:00:00:00:00:01", IPs: slices.Clone(i.ips)}}
}

// publisher records events; it fails while fail is set.
type publisher struct {
	mu     sync.Mutex
	events []AddressChange
	fail   bool
	got    chan struct{}
}

func newPublisher() *publisher { return &publisher{got: make(chan struct{}, 100)} }

func (p *publisher) Publish(_ context.Context, ev AddressChange) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer func() { p.got <- struct{}{} }()
	if p.fail {
		return "", errors.New("redis down")
	}
	p.events = append(p.events, ev)
	return "1-0", nil
}

func (p *publisher) setFail(f bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = f
}

func (p *publisher) list() []AddressChange {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

// watch runs a Watcher polling every minute on a fake clock.
func watch(t *testing.T, r InterfaceReader, p Publisher, wake chan struct{}) *clock.Fake {
	t.Helper()
	c := clock.NewFake(t0)
	w := NewWatcher(r, p, c, time.Minute, wake, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return c
}

func settle(t *testing.T, c *clock.Fake) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitTimers(ctx, 1); err != nil {
		t.Fatal(err)
	}
}

func TestWatcherPublishesChanges(t *testing.T) {
	ifc := &iface{ips: []string{"10.0.0.5"}}
	pub := newPublisher()
	c := watch(t, ifc, pub, nil)
	settle(t, c) // the initial state is published at start
	c.AdvanceToNext()
	settle(t, c) // no change: nothing published
	ifc.set("10.0.0.5", "10.0.0.6")
	if now, _ := c.AdvanceToNext(); !now.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("poll at %v", now)
	}
	settle(t, c)
	evs := pub.list()
	if len(evs) != 2 {
		t.Fatalf("events: %+v", evs)
	}
	if evs[0].Previous != nil || !slices.Equal(evs[0].IPs, []string{"10.0.0.5"}) || !evs[0].Known || evs[0].Interface != "eth0" {
		t.Errorf("first event: %+v", evs[0])
	}
	if !slices.Equal(evs[1].IPs, []string{"10.0.0.5", "10.0.0.6"}) || !slices.Equal(evs[1].Previous, []string{"10.0.0.5"}) || !evs[1].At.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("second event: %+v", evs[1])
	}
}

// TestWatcherWakesUp: a netlink wake-up re-reads at once, without waiting
// for the poll.
func TestWatcherWakesUp(t *testing.T) {
	ifc := &iface{}
	pub := newPublisher()
	wake := make(chan struct{})
	c := watch(t, ifc, pub, wake)
	settle(t, c)
	<-pub.got
	ifc.set("198.18.0.1")
	wake <- struct{}{}
	select {
	case <-pub.got:
	case <-time.After(5 * time.Second):
		t.Fatal("no event after a wake-up")
	}
	if evs := pub.list(); len(evs) != 2 || !evs[1].At.Equal(t0) || !slices.Equal(evs[1].IPs, []string{"198.18.0.1"}) {
		t.Errorf("events: %+v", evs)
	}
	if !slices.Equal(pub.list()[0].IPs, []string{}) {
		t.Errorf("no addresses is an empty list, not null: %#v", pub.list()[0].IPs)
	}
}

// TestWatcherRetriesPublish: a change that cannot be published is
// published at the next poll.
func TestWatcherRetriesPublish(t *testing.T) {
	ifc := &iface{ips: []string{"10.0.0.5"}}
	pub := newPublisher()
	pub.setFail(true)
	c := watch(t, ifc, pub, nil)
	settle(t, c)
	pub.setFail(false)
	c.AdvanceToNext()
	settle(t, c)
	if evs := pub.list(); len(evs) != 1 || !evs[0].At.Equal(t0.Add(time.Minute)) {
		t.Errorf("events: %+v", evs)
	}
}

type addrs []netip.Prefix

func (a addrs) Addrs(string) ([]netip.Prefix, error) { return a, nil }

// TestServiceOverBus: noded serves hostinfo's facts of a fixture tree.
func TestServiceOverBus(t *testing.T) {
	root := t.TempDir()
	for path, content := range map[string]string{
		"sys/devices/system/cpu/online": "0-3\n",
		"proc/meminfo":                  "MemTotal:       8000000 kB\n",
		"sys/class/net/eth0/address":    "02:00:00:00:00:01\n",
	} {
		p := filepath.Join(root, path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := hostinfo.New(hostinfo.Config{Root: root, Interface: "eth0", Addrs: addrs{netip.MustParsePrefix("10.1.2.3/24"), netip.MustParsePrefix("fe80::1/64")}})
	if err != nil {
		t.Fatal(err)
	}
	c := bustest.New(t)
	bustest.Serve(t, c, Object, NewService(p).Methods())
	s := NewStub(c)
	f, err := s.Facts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f.CPUs.Value != 4 || f.Memory.Value != 8000000*1024 || !f.Interface.Known || !slices.Equal([]string(f.Interface.Value.IPs), []string{"10.1.2.3"}) {
		t.Errorf("facts: %+v", f)
	}
	if f.Serial.Known || f.Serial.Reason == "" {
		t.Errorf("missing serial not reported as such: %+v", f.Serial)
	}
	in, err := s.Interface(context.Background())
	if err != nil || in.Value.Mac != "02:00:00:00:00:01" {
		t.Errorf("Interface: %+v %v", in, err)
	}
}

// TestChanges: the subscription signals each change published after it
// started, not older ones.
func TestChanges(t *testing.T) {
	c := bustest.New(t)
	stream, err := NewAddressStream(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := stream.Publish(ctx, AddressChange{Interface: "old"}); err != nil {
		t.Fatal(err)
	}
	ch := Changes(ctx, stream, nil)
	select {
	case <-ch:
		t.Fatal("an event published before the subscription was replayed")
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := stream.Publish(ctx, AddressChange{Interface: "eth0", IPs: []string{"10.0.0.9"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no signal after a change")
	}
}
