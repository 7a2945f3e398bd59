package zosd

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/node/identityd"
	"github.com/grid4/grid4/node/internal/regtest"
)

// TestBusAccessTable: every module has a line, and only registrar_gateway
// and noderpc (the modules that speak as the node, to the registrar and
// to other nodes) may have the node sign.
func TestBusAccessTable(t *testing.T) {
	access := busAccess()
	for _, m := range Modules() {
		if _, ok := access[m]; !ok {
			t.Errorf("module %s has no bus access", m)
		}
	}
	for user, a := range access {
		if slices.Contains(a.Call, identityd.SignerObject) != (user == ModuleGateway || user == ModuleNodeRPC) {
			t.Errorf("%s calls %s: %v", user, identityd.SignerObject, a.Call)
		}
		if _, err := bus.ACLRules(DefaultBusPrefix, user, a); err != nil {
			t.Errorf("%s: %v", user, err)
		}
	}
	users, err := newBusUsers()
	if err != nil {
		t.Fatal(err)
	}
	acl, err := users.aclFile(DefaultBusPrefix)
	if err != nil {
		t.Fatal(err)
	}
	for name, pw := range users {
		if strings.Contains(string(acl), string(pw)) {
			t.Errorf("the ACL file holds %s's password in clear", name)
		}
	}
	if !strings.HasPrefix(string(acl), "user default off ") {
		t.Errorf("the default user is not disabled:\n%s", acl)
	}
}

// TestBusSecurity: a node on its private Redis (modules in process) gives
// each module its own Redis user. It registers with a real registrar
// (registrar_gateway signs through identityd), `zosd status` reads the bus
// as the status user, a client without credentials is refused, and a user
// not allowed to sign gets bus.ErrNotAllowed.
func TestBusSecurity(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("needs redis-server (make test-services)")
	}
	reg := regtest.Start(t, 2*time.Second)
	data := t.TempDir()
	n := newTestNode(t, reg, reg.Farm(t), data, DefaultBusPrefix, "--redis", "")
	n.start()
	r := n.waitReport("registration through the signing module", registered)
	if r.Run.BusUser != BusUserStatus || r.Identity == nil {
		t.Fatalf("status: run %+v identity %+v", r.Run, r.Identity)
	}
	for part, e := range r.Errors {
		if strings.Contains(e, bus.ErrNotAllowed.Error()) {
			t.Errorf("zosd status may not read %s: %s", part, e)
		}
	}
	cfg := Config{DataDir: data}
	for _, f := range []string{cfg.ACLFile(), cfg.StatusSecretFile()} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, fi, err)
		}
	}
	ctx := context.Background()
	url := "unix://" + filepath.Join(data, "redis.sock")
	open := func(o bus.Options) *bus.Client {
		o.Prefix, o.Logger, o.DefaultTimeout = DefaultBusPrefix, slog.New(slog.DiscardHandler), 3*time.Second
		c, err := bus.Open(url, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	outside := open(bus.Options{})
	if err := outside.Ping(ctx); !errors.Is(err, bus.ErrUnauthenticated) {
		t.Errorf("ping without credentials: want ErrUnauthenticated, got %v", err)
	}
	if _, err := identityd.NewStub(outside).Sign(ctx, []byte("make me a node")); !errors.Is(err, bus.ErrUnauthenticated) {
		t.Errorf("sign without credentials: want ErrUnauthenticated, got %v", err)
	}
	wrong := open(bus.Options{User: ModuleGateway, Password: "guess"})
	if _, err := identityd.NewStub(wrong).Sign(ctx, []byte("x")); !errors.Is(err, bus.ErrUnauthenticated) {
		t.Errorf("sign with a wrong password: want ErrUnauthenticated, got %v", err)
	}

	secret, err := readStatusSecret(cfg)
	if err != nil {
		t.Fatal(err)
	}
	status := open(bus.Options{User: BusUserStatus, Password: secret})
	if info, err := identityd.NewStub(status).Info(ctx); err != nil || info.Address != r.Identity.Address {
		t.Errorf("status user reads the identity: %+v %v", info, err)
	}
	_, err = identityd.NewStub(status).Sign(ctx, []byte("x"))
	if !errors.Is(err, bus.ErrNotAllowed) || !strings.Contains(err.Error(), identityd.SignerObject) || !strings.Contains(err.Error(), BusUserStatus) {
		t.Errorf("status user signs: want ErrNotAllowed naming the object and the user, got %v", err)
	}
	// It reads the modules' states, and may not restart them.
	if mods, err := NewModulesStub(status).Modules(ctx); err != nil || len(mods) == 0 {
		t.Errorf("status user reads the modules: %v %v", mods, err)
	}
	if err := NewSupervisorStub(status).Restart(ctx, ModuleLight); !errors.Is(err, bus.ErrNotAllowed) || !strings.Contains(err.Error(), SupervisorObject) {
		t.Errorf("status user restarts a module: want ErrNotAllowed, got %v", err)
	}

	if code := n.stop(); code != 0 {
		t.Fatalf("exit %d\n%s", code, n.stderr.String())
	}
	if _, err := os.Stat(cfg.StatusSecretFile()); !os.IsNotExist(err) {
		t.Errorf("status secret left after the node stopped: %v", err)
	}
}
