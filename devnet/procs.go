package devnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/grid4/grid4/internal/process"
)

// marker is what a component's command line contains, and nothing else's:
// how a pid file's process is told from a process that got its pid later
// (internal/process). A node's data directory is given with a trailing
// slash so that node1's marker is not part of node10's.
func (d Dir) marker(component string) string {
	switch component {
	case Registrar:
		return "sqlite:" + d.Path("registrar.db")
	case Hub:
		return d.Path("hub") + "/"
	default:
		return d.nodeData(component) + "/"
	}
}

// Running returns the pid of the component's process if it runs.
func (d Dir) Running(component string) (int, bool) {
	return process.Running(d.pidFile(component), d.marker(component))
}

// start runs argv detached (a session of its own: it outlives gridctl),
// its output appended to the component's log, its pid in its pid file.
func (d Dir) start(component string, argv []string) error {
	for _, sub := range []string{"logs", "run"} {
		if err := os.MkdirAll(d.Path(sub), 0o700); err != nil {
			return err
		}
	}
	_, err := process.StartEnv(argv[0], argv[1:], childEnv(os.Environ()), d.pidFile(component), d.Log(component), d.marker(component))
	return err
}

// childEnv is env without the variables the devnet's programs read as
// settings (ZOSD_REDIS in the user's shell would move every node's bus):
// they get their settings from the devnet's flags alone.
func childEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		settings := false
		for _, prefix := range []string{"ZOSD_", "REGISTRAR_", "HUB_", "BOOTSTRAP_"} {
			settings = settings || strings.HasPrefix(kv, prefix)
		}
		if !settings {
			out = append(out, kv)
		}
	}
	return out
}

// stop ends the component's process: SIGTERM, SIGKILL after grace.
func (d Dir) stop(ctx context.Context, component string, grace time.Duration) error {
	return process.Stop(ctx, d.pidFile(component), d.marker(component), grace)
}

// errExited says a component's process ended while it was awaited.
var errExited = errors.New("exited")

// await polls ready until it succeeds, the component's process ends, or
// timeout passes; the error says which, with ready's last error.
func (d Dir) await(ctx context.Context, component string, timeout time.Duration, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// A process between two programs (ip netns exec running the
	// bootstrap) has no command line for a moment: gone means gone for
	// three checks in a row.
	missing := 0
	var last error // the last reason that is not the deadline itself
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		err = last
		if _, ok := d.Running(component); ok {
			missing = 0
		} else if missing++; missing == 3 {
			return fmt.Errorf("%w (%v)", errExited, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready within %s: %w", timeout, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// healthz checks that url/healthz answers 200.
func healthz(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s/healthz: %s", url, resp.Status)
	}
	return nil
}

// freePort returns preferred if host:preferred is free, else a port the
// kernel picks.
func freePort(host string, preferred int) (int, error) {
	if preferred > 0 {
		if l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(preferred))); err == nil {
			l.Close()
			return preferred, nil
		}
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// checkBinaries returns the paths of the programs in dir, or an error
// naming the first one missing.
func checkBinaries(dir string) (map[string]string, error) {
	out := map[string]string{}
	for _, name := range []string{BinRegistrar, BinHub, BinZosd, BinBootstrap} {
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("%s is missing in %s: build the binaries with 'make build' (they go to bin/) or give their directory with --bin", name, dir)
		}
		out[name] = p
	}
	return out, nil
}
