package devnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/grid4/grid4/flist"
	hubclient "github.com/grid4/grid4/hub/client"
	"github.com/grid4/grid4/registrar/api"
	regclient "github.com/grid4/grid4/registrar/client"
)

// versionRE is what a ZOS version looks like (zosd's --zos-version).
var versionRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+$`)

// publishRelease builds the release version — a zos package whose
// bin/zosd is the program at zosd — publishes it on the devnet's hub as
// the flist zos-<version> and signs the tag tf/zos:<version>.
func publishRelease(ctx context.Context, d Dir, st *State, ids identities, zosd, version string) error {
	if !versionRE.MatchString(version) {
		return fmt.Errorf("version %q: want vMAJOR.MINOR.PATCH", version)
	}
	tree := d.Path("releases", version, "zos")
	if err := os.MkdirAll(filepath.Join(tree, "bin"), 0o755); err != nil {
		return err
	}
	if err := copyFile(zosd, filepath.Join(tree, "bin", "zosd"), 0o755); err != nil {
		return fmt.Errorf("building the release: %w", err)
	}
	anon, err := hubclient.New(st.HubURL(), &http.Client{Timeout: time.Minute})
	if err != nil {
		return err
	}
	pub, err := anon.AsPublisher(ctx, Publisher, ids.publisher)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	res, err := pub.PublishDir(ctx, Publisher, Repo, "zos-"+version, tree, hubclient.PublishOptions{ScratchDir: d.Path("releases", version)})
	if err != nil {
		return fmt.Errorf("publishing %s: %w", version, err)
	}
	tag := &flist.Tag{Publisher: Publisher, Repo: Repo, Name: version, Created: time.Now().Unix(),
		Entries: []flist.TagEntry{{Name: "zos", Flist: res.Flist.ID(), Role: flist.RoleZos}}}
	signed, err := flist.SignTag(tag, ids.publisher)
	if err != nil {
		return err
	}
	if _, err := pub.PutTag(ctx, signed); err != nil {
		return fmt.Errorf("tagging %s: %w", version, err)
	}
	if !slices.Contains(st.Releases, version) {
		st.Releases = append(st.Releases, version)
	}
	return d.saveState(st)
}

// copyFile copies src to dst with mode perm.
func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// setVersion sets the registrar's ZOS version as the admin: for the test
// farm only, or safe to upgrade for every node. Setting what is already
// set is not an error.
func setVersion(ctx context.Context, st *State, ids identities, version string, safe bool) error {
	admin, err := regclient.New(st.RegistrarURL(), regclient.WithIdentity(ids.admin, st.AdminTwin))
	if err != nil {
		return err
	}
	v := api.ZosVersion{Version: version, SafeToUpgrade: safe}
	if !safe {
		v.TestFarms = []uint64{st.TestFarm}
	}
	if _, err := admin.SetZosVersion(ctx, v); err != nil && !errors.Is(err, regclient.ErrConflict) {
		return fmt.Errorf("setting the version %s: %w", version, err)
	}
	return nil
}

// ReleaseConfig is a release for Release.
type ReleaseConfig struct {
	// Dir is the devnet's directory.
	Dir string
	// BinDir holds the zosd the release carries.
	BinDir string
	// Version is the release's version (vMAJOR.MINOR.PATCH).
	Version string
	// Wait is how long to wait for the nodes to run it (0: do not wait:
	// the version is set safe to upgrade at once).
	Wait time.Duration
	// Progress shows the steps.
	Progress *Progress
}

// Release publishes a release on the devnet's hub and rolls it out the
// way an operator does: the test farm first; once its nodes run it (or
// at once without Wait), every node. With Wait it returns when every
// node runs it.
func Release(ctx context.Context, cfg ReleaseConfig) error {
	if cfg.Progress == nil {
		cfg.Progress = NewProgress(nil, false)
	}
	d, st, err := open(cfg.Dir)
	if err != nil {
		return err
	}
	// Refused before anything runs, in its own words: not as the hub's
	// failure (with the hub's log to read) that it would become.
	if !versionRE.MatchString(cfg.Version) {
		return fmt.Errorf("version %q: want vMAJOR.MINOR.PATCH, such as v4.1.1", cfg.Version)
	}
	if slices.Contains(st.Releases, cfg.Version) {
		return fmt.Errorf("%s is already released on this devnet (releases: %s); a hub's tags are immutable: release a new version", cfg.Version, strings.Join(st.Releases, ", "))
	}
	unlock, err := d.lock()
	if err != nil {
		return err
	}
	defer unlock()
	ids, err := loadIdentities(d)
	if err != nil {
		return err
	}
	zosd := filepath.Join(cfg.BinDir, BinZosd)
	if _, err := os.Stat(zosd); err != nil {
		return fmt.Errorf("%s is missing: build it with 'make build' or give its directory with --bin", zosd)
	}
	err = cfg.Progress.Step("release", "publishing "+cfg.Version, d.Log(Hub), func() (string, error) {
		if err := publishRelease(ctx, d, st, ids, zosd, cfg.Version); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s/%s:%s published on %s", Publisher, Repo, cfg.Version, st.HubURL()), nil
	})
	if err != nil {
		return err
	}
	stages := []struct {
		safe  bool
		nodes []Node
		what  string
	}{
		{false, st.nodesOf(st.TestFarm), fmt.Sprintf("test farm %d", st.TestFarm)},
		{true, st.Nodes, "every farm"},
	}
	for _, s := range stages {
		err := cfg.Progress.Step("rollout", "to "+s.what, "", func() (string, error) {
			if err := setVersion(ctx, st, ids, cfg.Version, s.safe); err != nil {
				return "", err
			}
			if cfg.Wait == 0 {
				return "set for " + s.what, nil
			}
			done, err := waitVersion(ctx, st, s.nodes, cfg.Version, cfg.Wait)
			return s.what + ": " + done, err
		})
		if err != nil {
			return err
		}
		if cfg.Wait == 0 {
			return setVersion(ctx, st, ids, cfg.Version, true)
		}
	}
	return nil
}

// nodesOf returns the nodes of farm.
func (s *State) nodesOf(farm uint64) []Node {
	var out []Node
	for _, n := range s.Nodes {
		if n.Farm == farm {
			out = append(out, n)
		}
	}
	return out
}

// waitVersion waits until the registrar shows every one of nodes running
// version.
func waitVersion(ctx context.Context, st *State, nodes []Node, version string, timeout time.Duration) (string, error) {
	reg, err := regclient.New(st.RegistrarURL(), regclient.WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		var behind []string
		for _, n := range nodes {
			nd, err := reg.Node(ctx, n.NodeID)
			if err != nil || nd.ZosVersion != version {
				behind = append(behind, fmt.Sprintf("%s (node %d) runs %s", n.Name, n.NodeID, nd.ZosVersion))
			}
		}
		if len(behind) == 0 {
			var names []string
			for _, n := range nodes {
				names = append(names, n.Name)
			}
			return fmt.Sprintf("%s runs on %s", version, strings.Join(names, ", ")), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("not upgraded within %s: %s (see 'zosd status --data <dir>/nodes/<node>')", timeout, strings.Join(behind, "; "))
		case <-time.After(time.Second):
		}
	}
}
