package zmachine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/hub"
	hubclient "github.com/grid4/grid4/hub/client"
	"github.com/grid4/grid4/internal/mountinfo"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/contd"
	"github.com/grid4/grid4/node/flistd"
	"github.com/grid4/grid4/node/netlightd"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/provisiond/netlight"
	"github.com/grid4/grid4/oci"
	"github.com/grid4/grid4/oci/ocitest"
)

// env is a node's parts in process around a Manager: a hub with a
// busybox image, flistd, netlightd and contd, all real.
type env struct {
	t       *testing.T
	hubURL  string
	pub     *hubclient.Client
	flists  *flistd.Mounter
	nets    *netlightd.Service
	conts   *contd.Service
	dir     string
	salt    string
	twin    uint64
	network provisiond.Task
	netRes  gridtypes.Result
}

// serveArg makes the test binary a lazy flist mount's server (TestMain).
const serveArg = "grid4-flistd-serve-lazy"

// TestMain runs the test binary as a lazy flist mount's server when
// flistd's Mounter starts it so (serveCommand), or the tests.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == serveArg {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		err := flistd.ServeLazyMain(ctx, os.Args[2:], os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveCommand runs the test binary as a lazy flist mount's server: a
// process of its own, as on a node.
func serveCommand(t *testing.T) []string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{exe, serveArg}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// needHost fails when the host lacks what make test installs, and skips
// when not root (mounts, namespaces, containers).
func needHost(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("machines need root")
	}
	for _, tool := range []string{contd.DefaultRuntime, "ip", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (make test-services installs it)", tool)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Fatal("/bin/busybox is not installed (busybox-static; make test-services installs it)")
	}
}

func newEnv(t *testing.T) *env {
	t.Helper()
	needHost(t)
	e := &env{t: t, dir: t.TempDir(), twin: rand.Uint64N(1<<40) + 1}
	kp, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	cfg := hub.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Publishers = []hub.Publisher{{Name: "tf", ID: hub.PublisherID("tf"), PublicKey: kp.Public().Key}}
	srv, err := hub.New(cfg, hub.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	e.hubURL = ts.URL
	anon, err := hubclient.New(ts.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.pub, err = anon.AsPublisher(ctxT(t), "tf", kp); err != nil {
		t.Fatal(err)
	}
	fm, err := flistd.New(flistd.Config{HubURL: ts.URL, CacheDir: filepath.Join(e.dir, "cache")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fm.Close() })
	if e.flists, err = flistd.NewMounter(fm, flistd.MounterConfig{Dir: filepath.Join(e.dir, "flist"), Root: e.dir, Lazy: true, ServeCommand: serveCommand(t)}); err != nil {
		t.Fatal(err)
	}
	salt := fmt.Sprintf("t%x", rand.Uint64())
	e.salt = salt
	if e.nets, err = netlightd.New(netlightd.Config{Dir: t.TempDir(), Salt: salt}); err != nil {
		t.Fatal(err)
	}
	if e.conts, err = contd.New(contd.Config{Dir: t.TempDir(), Salt: salt, StopGrace: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		list, _ := e.conts.List(context.Background())
		for _, st := range list {
			_ = e.conts.Stop(context.Background(), st.ID)
		}
		for _, mi := range e.flists.Mounts() {
			// Stops the lazy mount's server with the last user.
			if err := e.flists.Unmount(context.Background(), mi.Target); err != nil {
				t.Log(err)
				_ = unix.Unmount(mi.Target, unix.MNT_DETACH)
			}
		}
	})
	e.makeNetwork()
	return e
}

// makeNetwork provisions the deployment's network "net", 10.77.X.0/24.
func (e *env) makeNetwork() {
	data, _ := json.Marshal(gridtypes.NetworkLightData{Subnet: "10.77.1.0/24"})
	e.network = provisiond.Task{TwinID: e.twin, DeploymentID: 1, Workload: gridtypes.Workload{Name: "net", Type: gridtypes.NetworkLightType, Data: data}}
	nl, err := netlight.New(netlight.Config{Networks: e.nets})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = nl.Deprovision(context.Background(), e.network) })
	res, err := nl.Provision(ctxT(e.t), e.network)
	if err != nil {
		e.t.Fatal(err)
	}
	raw, _ := json.Marshal(res)
	e.netRes = gridtypes.Result{State: gridtypes.StateOk, Data: raw}
}

// publishWeb publishes a busybox image serving /www over HTTP as
// tf/apps/web and returns its URL.
func (e *env) publishWeb() string {
	e.t.Helper()
	layer := ocitest.Layer{
		"bin/busybox":    ocitest.FileFrom("/bin/busybox", 0o755),
		"bin/sh":         ocitest.Symlink("busybox"),
		"bin/httpd":      ocitest.Symlink("busybox"),
		"bin/echo":       ocitest.Symlink("busybox"),
		"bin/cat":        ocitest.Symlink("busybox"),
		"www/index.html": ocitest.Text("served from an image\n", 0o644),
	}
	archive := ocitest.Archive(e.t, e.t.TempDir(), ocitest.Image{
		Layers: []ocitest.Layer{layer},
		Config: ocitest.Config{Entrypoint: []string{"/bin/httpd", "-f"}, Cmd: []string{"-p", "80", "-h", "/www"}, Env: []string{"GREETING=from-image", "KEEP=image"}, WorkingDir: "/www"},
	})
	if _, err := e.pub.PublishImage(ctxT(e.t), "tf", "apps", "web", archive, oci.Options{}, hubclient.PublishOptions{}); err != nil {
		e.t.Fatal(err)
	}
	return e.hubURL + "/api/v1/repos/tf/apps/flists/web"
}

func (e *env) manager(backends ...Kind) *Manager {
	e.t.Helper()
	m, err := New(Config{Dir: filepath.Join(e.dir, "machines"), LogDir: filepath.Join(e.dir, "logs"), Backends: backends, Containers: e.conts, Flists: e.flists})
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// machine is a ZMachineLight task named name on the env's network.
func (e *env) machine(name, flistURL, entrypoint, ip string) provisiond.Task {
	d := gridtypes.ZMachineLightData{
		Flist: flistURL, Entrypoint: entrypoint, Env: map[string]string{"GREETING": "from-workload"},
		ComputeCapacity: gridtypes.ComputeCapacity{CPU: 1, Memory: 256 * gridtypes.MiB},
		Network:         gridtypes.MachineNetwork{Interfaces: []gridtypes.MachineInterface{{Network: "net", IP: ip}}},
	}
	data, _ := json.Marshal(d)
	return provisiond.Task{
		TwinID: e.twin, DeploymentID: 1, State: gridtypes.StateOk,
		Workload: gridtypes.Workload{Name: name, Type: gridtypes.ZMachineLightType, Data: data},
		Siblings: map[string]gridtypes.Result{"net": e.netRes},
	}
}

// get fetches path from ip:80 inside the network's namespace (where the
// router is).
func (e *env) get(ip, path string) (string, error) {
	ns := netlight.NamesOf(e.salt, e.network.ID()).Namespace
	out, err := exec.Command("ip", "netns", "exec", ns, "curl", "-sS", "--max-time", "5", "--retry", "20", "--retry-connrefused", "--retry-delay", "0", "http://"+ip+path).Output()
	return string(out), err
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestContainerMachine runs machines from a container image with the
// container backend: the image's entrypoint by default, the workload's
// over it, env merged, reachable on the network; paused and resumed;
// after a reboot (container and mount gone) Restore runs it again with
// what it wrote; one whose program exits is an error after a restart,
// never ok; Deprovision leaves nothing.
func TestContainerMachine(t *testing.T) {
	e := newEnv(t)
	web := e.publishWeb()
	m := e.manager(VM, Container)
	ctx := ctxT(t)

	byImage := e.machine("web", web, "", "10.77.1.10")
	t.Cleanup(func() { _ = m.Deprovision(context.Background(), byImage) })
	res, err := m.Provision(ctx, byImage)
	if err != nil {
		t.Fatal(err)
	}
	if r := res.(Result); r.Backend != Container || r.IPs[0] != "10.77.1.10" || r.Console != m.Console(byImage) {
		t.Fatalf("result %+v", r)
	}
	if got, err := e.get("10.77.1.10", "/index.html"); err != nil || got != "served from an image\n" {
		t.Fatalf("the image's entrypoint: %q, %v", got, err)
	}

	own := e.machine("own", web, `sh -c 'echo "up: $GREETING $KEEP in $(pwd)"; echo written > /www/mine.html; exec httpd -f -p 80 -h /www'`, "10.77.1.11")
	t.Cleanup(func() { _ = m.Deprovision(context.Background(), own) })
	if _, err := m.Provision(ctx, own); err != nil {
		t.Fatal(err)
	}
	if got, err := e.get("10.77.1.11", "/mine.html"); err != nil || got != "written\n" {
		t.Fatalf("the workload's entrypoint: %q, %v", got, err)
	}
	waitFor(t, "the console line", func() bool {
		b, _ := os.ReadFile(m.Console(own))
		return strings.Contains(string(b), "up: from-workload image in /www\n")
	})

	if err := m.Pause(ctx, own); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.conts.State(ctx, own.ID()); st.Status != contd.Paused {
		t.Fatalf("paused machine: %s", st.Status)
	}
	if err := m.Resume(ctx, own); err != nil {
		t.Fatal(err)
	}

	// A reboot: the container and the root mount are gone, the layer
	// stays. Restore brings the machine back with what it wrote.
	if err := e.conts.Stop(ctx, own.ID()); err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(m.root(own), unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if err := m.Restore(ctx, own); err != nil {
		t.Fatal(err)
	}
	if got, err := e.get("10.77.1.11", "/mine.html"); err != nil || got != "written\n" {
		t.Fatalf("after the restore: %q, %v", got, err)
	}

	// A machine whose program ends does not read ok after a restart.
	done := e.machine("done", web, "echo bye", "10.77.1.12")
	t.Cleanup(func() { _ = m.Deprovision(context.Background(), done) })
	if _, err := m.Provision(ctx, done); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the program to end", func() bool {
		st, err := e.conts.State(ctx, done.ID())
		return err == nil && st.Status == contd.Stopped
	})
	// Restore starts it again; it ends again at once, which a fast
	// check may still see running: wait until it stopped, then ask.
	err = m.Restore(ctx, done)
	for i := 0; err == nil && i < 50; i++ {
		time.Sleep(100 * time.Millisecond)
		err = m.Restore(ctx, done)
	}
	if err == nil || !strings.Contains(err.Error(), "not running after the restart: the container is stopped") {
		t.Fatalf("restore of an ended machine: %v", err)
	}

	for _, tk := range []provisiond.Task{byImage, own, done} {
		for range 2 {
			if err := m.Deprovision(ctx, tk); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := os.Stat(m.dir(tk)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("machine directory left: %v", err)
		}
		if st, err := e.conts.State(ctx, tk.ID()); err == nil && st.Status != contd.Stopped {
			t.Fatalf("container left: %+v", st)
		}
		if ok, _ := mountinfo.IsMountPoint(m.root(tk)); ok {
			t.Fatal("root mount left")
		}
	}
}

// TestBackendChoice: a machine runs on the first backend the node allows
// and has; with none, the error says why each could not.
func TestBackendChoice(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	tk := e.machine("vm", e.hubURL+"/api/v1/repos/tf/apps/flists/none", "", "10.77.1.20")
	m := e.manager(VM)
	_, err := m.Provision(ctx, tk)
	if !errors.Is(err, ErrNoBackend) || err.Error() != "zmachine-light: no backend can run machines on this node: vm: no vmd on this node" {
		t.Fatalf("error %v", err)
	}
	if _, err := New(Config{Dir: "d", LogDir: "l", Backends: []Kind{"docker"}}); err == nil || !strings.Contains(err.Error(), `unknown backend kind "docker"`) {
		t.Fatalf("unknown kind: %v", err)
	}
	// Allowed, but the flist does not exist: the kind is recorded, the
	// error is the flist's, and nothing is left after Deprovision.
	m = e.manager(VM, Container)
	if _, err := m.Provision(ctx, tk); err == nil || !strings.Contains(err.Error(), "flist "+e.hubURL) {
		t.Fatalf("missing flist: %v", err)
	}
	if k, ok := m.recorded(tk); !ok || k != Container {
		t.Fatalf("recorded %q %v", k, ok)
	}
	if err := m.Deprovision(ctx, tk); err != nil {
		t.Fatal(err)
	}
}
