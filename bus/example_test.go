package bus_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os/signal"
	"syscall"
	"time"

	"github.com/grid4/grid4/bus"
)

// Manager is what identityd serves.
type Manager struct{ nodeID uint64 }

// NodeID returns the node's id.
func (m *Manager) NodeID(context.Context) (uint64, error) { return m.nodeID, nil }

// Sign signs msg with the node key.
func (m *Manager) Sign(_ context.Context, msg []byte) ([]byte, error) {
	if len(msg) == 0 {
		return nil, bus.Errorf(ErrEmpty, "nothing to sign")
	}
	return msg, nil
}

// ErrEmpty is identityd's error for an empty message; callers match it with
// errors.Is, locally or across the bus.
const ErrEmpty bus.Code = "empty_message"

// IdentityStub is what other modules call identityd through.
type IdentityStub struct{ c *bus.Client }

const identityManager = "identityd/manager@1.0"

// NodeID calls identityd's NodeID.
func (s IdentityStub) NodeID(ctx context.Context) (uint64, error) {
	return bus.Call[uint64](ctx, s.c, identityManager, "NodeID")
}

// Sign calls identityd's Sign.
func (s IdentityStub) Sign(ctx context.Context, msg []byte) ([]byte, error) {
	return bus.Call[[]byte](ctx, s.c, identityManager, "Sign", msg)
}

// A module serving an object until SIGTERM.
func ExampleServer() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()

	c, err := bus.Open("unix:///var/run/redis.sock", bus.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	m := &Manager{nodeID: 42}
	srv := bus.NewServer(c, bus.ServerOptions{Workers: 8})
	if err := srv.Handle(identityManager, bus.Methods{
		"NodeID": bus.Func0(m.NodeID),
		"Sign":   bus.Func1(m.Sign),
	}); err != nil {
		log.Fatal(err)
	}
	// Serve returns after a graceful shutdown once ctx ends.
	if err := srv.Serve(ctx); err != nil {
		log.Fatal(err)
	}
}

// A module calling another through a typed stub.
func ExampleCall() {
	c, err := bus.Open("redis://127.0.0.1:6379/0", bus.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	identity := IdentityStub{c: c}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id, err := identity.NodeID(ctx)
	if err != nil {
		log.Fatal(err) // e.g. "bus: no reply from identityd/manager@1.0.NodeID within 5s (nobody took the call: is identityd running?)"
	}
	fmt.Println("node", id)

	if _, err := identity.Sign(ctx, nil); errors.Is(err, ErrEmpty) {
		fmt.Println("identityd says:", err)
	}
}

// AddressChange is an event of netlightd's "addresses" stream.
type AddressChange struct {
	Interface string   `json:"interface"`
	Addresses []string `json:"addresses"`
}

// Publishing and following a stream of events, resuming after a restart.
func ExampleStream_Events() {
	c, err := bus.Open("redis://127.0.0.1:6379/0", bus.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	addrs, err := bus.NewStream[AddressChange](c, "netlightd/addresses")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	// Publisher side.
	if _, err := addrs.Publish(ctx, AddressChange{Interface: "zos", Addresses: []string{"10.0.0.5/24"}}); err != nil {
		log.Print(err)
	}

	// Subscriber side: lastSeen is persisted by the subscriber ("" the
	// first time, which means bus.FromNow).
	lastSeen := loadLastSeen()
	for ev, err := range addrs.Events(ctx, lastSeen) {
		if errors.Is(err, bus.ErrEventsLost) {
			resync()
			continue
		}
		if err != nil {
			log.Print(err) // Redis down: the subscription retries by itself
			continue
		}
		fmt.Println(ev.Data.Interface, ev.Data.Addresses)
		saveLastSeen(ev.ID)
	}
}

func loadLastSeen() string { return "" }
func saveLastSeen(string)  {}
func resync()              {}
