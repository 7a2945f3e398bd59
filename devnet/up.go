package devnet

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/grid4/grid4/keys"
	regclient "github.com/grid4/grid4/registrar/client"
)

// Config is how Up starts a devnet.
type Config struct {
	// Dir is the devnet's directory (made if missing).
	Dir string
	// Nodes is how many nodes it has: more than the devnet has adds nodes;
	// 0 keeps a devnet's count, DefaultNodes for a new one.
	Nodes int
	// BinDir holds the registrar, hub, zosd and bootstrap programs.
	BinDir string
	// Version is the ZOS version of a new devnet's nodes (DefaultVersion
	// when empty): the first release on its hub.
	Version string
	// Progress shows the components as they start (nil: nothing).
	Progress *Progress
	// Timeout bounds each component's start (DefaultTimeout when 0).
	Timeout time.Duration
}

// Defaults of Config.
const (
	DefaultNodes   = 3
	DefaultVersion = "v4.1.0"
	DefaultTimeout = 2 * time.Minute
)

// Timings of the nodes: a devnet shows upgrades and power targets within
// seconds, where a real node checks hourly (upgrades) or every 30 s
// (powerd's health, power targets).
var nodeTimingFlags = []string{
	"--upgrade-interval", "10s", "--upgrade-jitter", "2s",
	"--upgrade-health-stable", "5s", "--upgrade-health-deadline", "1m",
	"--health-interval", "5s",
}

// upper is Up at work: the configuration, the state and what it made.
type upper struct {
	cfg  Config
	dir  Dir
	bins map[string]string
	st   *State
	ids  identities
}

// Up starts the devnet in cfg.Dir, or what of it is not running: a new
// one is made; a stopped one resumes with its identities, registrar
// database and node ids. It returns the state once every node is
// approved, online and answering on its API.
func Up(ctx context.Context, cfg Config) (*State, error) {
	if cfg.Progress == nil {
		cfg.Progress = NewProgress(nil, false)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	abs, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	u := &upper{cfg: cfg, dir: Dir(abs)}
	if u.bins, err = checkBinaries(cfg.BinDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, err
	}
	unlock, err := u.dir.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := u.loadOrPlan(); err != nil {
		return nil, err
	}
	if u.ids, err = ensureIdentities(u.dir); err != nil {
		return nil, err
	}
	steps := []func(context.Context) error{u.network, u.registrar, u.accounts, u.hub, u.baseRelease, u.nodes, u.approve}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return u.st, err
		}
	}
	return u.st, nil
}

// loadOrPlan reads the devnet's state, or lays out a new one.
func (u *upper) loadOrPlan() error {
	root := os.Geteuid() == 0
	st, err := u.dir.LoadState()
	switch {
	case errors.Is(err, ErrNoDevnet):
		st = &State{Root: root, Tag: tagOf(string(u.dir)), Version: u.cfg.Version, Host: "127.0.0.1"}
		if st.Version == "" {
			st.Version = DefaultVersion
		}
		if root {
			if st.Subnet, err = pickSubnet(st.Tag); err != nil {
				return err
			}
			st.Host = strings.TrimSuffix(st.Subnet, "0/24") + "1"
		}
	case err != nil:
		return err
	default:
		if err := st.requireRoot(u.dir); err != nil {
			return err
		}
	}
	u.st = st
	return nil
}

// requireRoot refuses to work on a root devnet without root: its
// processes, namespaces and mounts are root's.
func (s *State) requireRoot(d Dir) error {
	if s.Root && os.Geteuid() != 0 {
		return fmt.Errorf("the devnet in %s was made as root (its nodes have network namespaces): run this as root", d)
	}
	return nil
}

// ports picks the registrar's and hub's ports once, preferring the usual
// ones. On the bridge's address they are free at once: the address is
// the devnet's own.
func (u *upper) ports() error {
	var err error
	if u.st.RegistrarPort == 0 {
		if u.st.RegistrarPort, err = freePort(u.st.Host, 8080); err != nil {
			return err
		}
	}
	if u.st.HubPort == 0 {
		if u.st.HubPort, err = freePort(u.st.Host, 8090); err != nil {
			return err
		}
	}
	return u.dir.saveState(u.st)
}

// network makes the bridge (root), and picks the ports.
func (u *upper) network(ctx context.Context) error {
	if u.st.Root {
		err := u.cfg.Progress.Step("network", "making the bridge", "", func() (string, error) {
			if err := u.st.ensureBridge(ctx); err != nil {
				return "", err
			}
			return fmt.Sprintf("bridge %s, %s", u.st.bridge(), u.st.Subnet), nil
		})
		if err != nil {
			return err
		}
	}
	return u.ports()
}

// registrar starts the registrar on SQLite. The admin is twin 1: the
// first account made on its new database.
func (u *upper) registrar(ctx context.Context) error {
	return u.cfg.Progress.Step(Registrar, "starting", u.dir.Log(Registrar), func() (string, error) {
		url := u.st.RegistrarURL()
		if _, ok := u.dir.Running(Registrar); !ok {
			argv := []string{u.bins[BinRegistrar], "--listen", fmt.Sprintf("%s:%d", u.st.Host, u.st.RegistrarPort),
				"--db", "sqlite:" + u.dir.Path("registrar.db"), "--admin-twin", "1"}
			if err := u.dir.start(Registrar, argv); err != nil {
				return "", err
			}
		}
		if err := u.dir.await(ctx, Registrar, u.cfg.Timeout, func(ctx context.Context) error { return healthz(ctx, url) }); err != nil {
			return "", err
		}
		return "running at " + url, nil
	})
}

// accounts makes the admin's and farmer's accounts and the farms.
func (u *upper) accounts(ctx context.Context) error {
	return u.cfg.Progress.Step("accounts", "making accounts and farms", "", func() (string, error) {
		admin, err := u.client(u.ids.admin)
		if err != nil {
			return "", err
		}
		acc, err := admin.EnsureAccount(ctx, regclient.AccountOptions{})
		if err != nil {
			return "", fmt.Errorf("admin account: %w", err)
		}
		if acc.TwinID != 1 {
			return "", fmt.Errorf("the admin is twin %d, not twin 1: the registrar's database was not new (remove %s or start over with 'gridctl devnet down --purge')", acc.TwinID, u.dir.Path("registrar.db"))
		}
		farmer, err := u.client(u.ids.farmer)
		if err != nil {
			return "", err
		}
		facc, err := farmer.EnsureAccount(ctx, regclient.AccountOptions{})
		if err != nil {
			return "", fmt.Errorf("farmer account: %w", err)
		}
		u.st.AdminTwin, u.st.FarmerTwin = acc.TwinID, facc.TwinID
		for _, f := range []struct {
			id   *uint64
			name string
		}{{&u.st.TestFarm, "devtest"}, {&u.st.Farm, "devfarm"}} {
			if *f.id != 0 {
				continue
			}
			if *f.id, err = farmer.CreateFarm(ctx, regclient.NewFarm{Name: f.name}); err != nil {
				return "", fmt.Errorf("farm %s: %w", f.name, err)
			}
		}
		if err := u.dir.saveState(u.st); err != nil {
			return "", err
		}
		return fmt.Sprintf("admin twin %d, farmer twin %d, farms %d (devtest, test farm) and %d (devfarm)",
			u.st.AdminTwin, u.st.FarmerTwin, u.st.TestFarm, u.st.Farm), nil
	})
}

// client is a registrar client signing as kp.
func (u *upper) client(kp keys.KeyPair) (*regclient.Client, error) {
	return regclient.New(u.st.RegistrarURL(), regclient.WithIdentity(kp, 0),
		regclient.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}))
}

// hub starts the hub, where the publisher publishes as tf.
func (u *upper) hub(ctx context.Context) error {
	return u.cfg.Progress.Step(Hub, "starting", u.dir.Log(Hub), func() (string, error) {
		url := u.st.HubURL()
		if _, ok := u.dir.Running(Hub); !ok {
			argv := []string{u.bins[BinHub], "--listen", fmt.Sprintf("%s:%d", u.st.Host, u.st.HubPort),
				"--data-dir", u.dir.Path("hub") + "/", "--publisher", Publisher + "=" + u.ids.publisherKey()}
			if err := u.dir.start(Hub, argv); err != nil {
				return "", err
			}
		}
		if err := u.dir.await(ctx, Hub, u.cfg.Timeout, func(ctx context.Context) error { return healthz(ctx, url) }); err != nil {
			return "", err
		}
		return "running at " + url, nil
	})
}

// baseRelease publishes the nodes' starting version on a new devnet's
// hub and approves it on the registrar, so that nodes start up to date.
func (u *upper) baseRelease(ctx context.Context) error {
	if slices.Contains(u.st.Releases, u.st.Version) {
		return nil
	}
	return u.cfg.Progress.Step("release", "publishing "+u.st.Version, "", func() (string, error) {
		if err := publishRelease(ctx, u.dir, u.st, u.ids, u.bins[BinZosd], u.st.Version); err != nil {
			return "", err
		}
		if err := setVersion(ctx, u.st, u.ids, u.st.Version, true); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s published as %s/%s:%s and approved on the registrar", u.st.Version, Publisher, Repo, u.st.Version), nil
	})
}
