package zosd

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/internal/atomicfile"
	"github.com/grid4/grid4/node/contd"
	"github.com/grid4/grid4/node/flistd"
	"github.com/grid4/grid4/node/identityd"
	"github.com/grid4/grid4/node/location"
	"github.com/grid4/grid4/node/netlightd"
	"github.com/grid4/grid4/node/noded"
	"github.com/grid4/grid4/node/noderpc"
	"github.com/grid4/grid4/node/powerd"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/registrarlight"
	"github.com/grid4/grid4/node/storaged"
	"github.com/grid4/grid4/node/upgrader"
	"github.com/grid4/grid4/node/vmd"
)

// The bus users that are not modules.
const (
	// BusUserZosd is zosd itself: it serves SupervisorObject and
	// ModulesObject.
	BusUserZosd = "zosd"
	// BusUserStatus is the user `zosd status` reads the bus as; its
	// password is in Config.StatusSecretFile.
	BusUserStatus = "zosd-status"
)

// BusPasswordEnv carries a module's bus password from zosd to `zosd run
// <module>`: in the child's environment, never on its command line. The
// module removes it from its own environment once read, so that what it
// starts does not inherit it.
const BusPasswordEnv = "ZOSD_BUS_PASSWORD"

// busAccess is what each module, zosd and `zosd status` may do on the
// private Redis's bus: the objects each serves and calls, the streams it
// publishes and reads. It is the one place to change when a module is
// added or starts calling another (docs/node.md, "Bus security"); a module
// missing here stops zosd at start.
func busAccess() map[string]bus.Access {
	return map[string]bus.Access{
		ModuleIdentity: {Serve: []string{identityd.Object, identityd.SignerObject}},
		ModuleNoded:    {Serve: []string{noded.Object}, Publish: []string{noded.AddressStream}},
		ModuleStorage:  {Serve: []string{storaged.Object}},
		ModuleFlist:    {Serve: []string{flistd.Object}},
		ModuleLocation: {Serve: []string{location.Object}},
		// Its power keeper reads the node's ids, counts the deployments
		// and tells the farm through noderpc.
		ModulePower: {Serve: []string{powerd.Object}, Call: []string{registrarlight.LightObject, provisiond.Object, noderpc.Object}},
		// One of the two modules that speak as the node (noderpc is the
		// other): it signs.
		ModuleGateway: {Serve: []string{registrarlight.GatewayObject}, Call: []string{identityd.Object, identityd.SignerObject}},
		ModuleLight: {
			Serve: []string{registrarlight.LightObject},
			// provisiond, zosd's read-only modules object and noderpc's
			// probes for the status report.
			Call: []string{registrarlight.GatewayObject, noded.Object, storaged.Object, location.Object, identityd.Object, powerd.Object,
				provisiond.Object, ModulesObject, noderpc.Object},
			Read: []string{noded.AddressStream},
		},
		ModuleNetwork:    {Serve: []string{netlightd.Object}},
		ModuleContainers: {Serve: []string{contd.Object}},
		ModuleMachines:   {Serve: []string{vmd.Object}},
		// Its managers allocate from storaged and netlightd, mount flists
		// through flistd and run machines with vmd and contd.
		// It forwards the node-to-node API's routes to noderpc and calls
		// other nodes through it (networks across nodes); it reports
		// contracts' usage through registrar_gateway (signed as the node).
		ModuleProvision: {Serve: []string{provisiond.Object}, Call: []string{registrarlight.LightObject, registrarlight.GatewayObject, storaged.Object, netlightd.Object, flistd.Object, vmd.Object, contd.Object, noderpc.Object}},
		// The other module that speaks as the node: it signs its calls to
		// other nodes.
		ModuleNodeRPC: {Serve: []string{noderpc.Object}, Call: []string{identityd.Object, identityd.SignerObject, registrarlight.LightObject, powerd.Object, provisiond.Object}},
		ModuleUpgrader: {
			Serve: []string{upgrader.Object},
			Call:  []string{registrarlight.GatewayObject, powerd.Object, SupervisorObject, flistd.Object},
		},
		BusUserZosd: {Serve: []string{SupervisorObject, ModulesObject}},
		BusUserStatus: {
			Call: []string{ModulesObject, identityd.Object, registrarlight.LightObject, powerd.Object, provisiond.Object, upgrader.Object, vmd.Object},
		},
	}
}

// busUsers are the bus users of a node with their passwords, made at each
// start.
type busUsers map[string]bus.Secret

// newBusUsers gives each module, zosd and `zosd status` a user with a
// random password. A module of Modules() missing from busAccess is an
// error: it would have no right at all, and no module runs unlisted.
func newBusUsers() (busUsers, error) {
	access := busAccess()
	for _, m := range Modules() {
		if _, ok := access[m]; !ok {
			return nil, fmt.Errorf("module %s has no bus access: add its line to busAccess (node/zosd/acl.go)", m)
		}
	}
	users := busUsers{}
	for name := range access {
		users[name] = bus.Secret(rand.Text())
	}
	return users, nil
}

// aclFile renders the private Redis's ACL file: the default user can do
// nothing (a client without credentials gets NOAUTH), each user only what
// busAccess gives it. Passwords are stored hashed.
func (u busUsers) aclFile(prefix string) ([]byte, error) {
	access := busAccess()
	var b strings.Builder
	b.WriteString("user default off resetpass resetkeys resetchannels -@all\n")
	names := make([]string, 0, len(u))
	for name := range u {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		rules, err := bus.ACLRules(prefix, name, access[name])
		if err != nil {
			return nil, fmt.Errorf("bus access of %s: %w", name, err)
		}
		sum := sha256.Sum256([]byte(u[name]))
		fmt.Fprintf(&b, "user %s on #%s %s\n", name, hex.EncodeToString(sum[:]), strings.Join(rules, " "))
	}
	return []byte(b.String()), nil
}

// options returns the bus options of user (none when u is nil: a Redis
// zosd does not manage).
func (u busUsers) options(user string, o bus.Options) bus.Options {
	if u != nil {
		o.User, o.Password = user, u[user]
	}
	return o
}

// ACLFile is the private Redis's ACL file (hashed passwords).
func (c Config) ACLFile() string { return filepath.Join(c.DataDir, "bus.acl") }

// StatusSecretFile holds the password of BusUserStatus, readable by the
// owner only (root on a node).
func (c Config) StatusSecretFile() string { return filepath.Join(c.DataDir, "bus-status.secret") }

// writeBusUsers writes the ACL file and the status secret, both 0600.
func writeBusUsers(cfg Config, u busUsers) error {
	acl, err := u.aclFile(cfg.BusPrefix)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(cfg.ACLFile(), acl, 0o600); err != nil {
		return fmt.Errorf("bus acl file: %w", err)
	}
	if err := atomicfile.WriteFile(cfg.StatusSecretFile(), []byte(u[BusUserStatus]), 0o600); err != nil {
		return fmt.Errorf("bus status secret: %w", err)
	}
	return nil
}

// readStatusSecret reads the password of BusUserStatus.
func readStatusSecret(cfg Config) (bus.Secret, error) {
	b, err := os.ReadFile(cfg.StatusSecretFile())
	if err != nil {
		return "", fmt.Errorf("the bus password of %s: %w", BusUserStatus, err)
	}
	return bus.Secret(strings.TrimSpace(string(b))), nil
}
