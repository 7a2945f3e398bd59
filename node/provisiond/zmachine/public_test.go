package zmachine

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/contd"
	"github.com/grid4/grid4/node/internal/hosttest"
	"github.com/grid4/grid4/node/internal/iproute"
	"github.com/grid4/grid4/node/netlightd"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/provisiond/netlight"
	"github.com/grid4/grid4/node/provisiond/publicip"
)

// TestPublicIPMachine gives a machine (a container) the address of a
// PublicIPv4 workload of its deployment: the ipv4 workload's own
// namespace goes while the machine holds the address, the machine answers
// on it from the internet (the default route is the public one) and still
// answers on its private address to someone beyond the network's router
// (policy routing) and not on a neighbour's address it takes; a restore of the ipv4 workload does not take the
// address back; removing the machine gives it back to the workload.
func TestPublicIPMachine(t *testing.T) {
	e := newEnv(t)
	parent, up := hosttest.NewUplink(t, 215)
	pubs, err := netlightd.New(netlightd.Config{
		Dir: t.TempDir(), Salt: e.salt + "p", PublicInterface: parent,
		PublicPool: []netip.Prefix{up.Addr(20), up.Addr(22)}, PublicGateway: up.Addr(1).Addr(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ips, err := publicip.New(pubs)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	ipData, _ := json.Marshal(gridtypes.PublicIPv4Data{})
	ipTask := provisiond.Task{TwinID: e.twin, DeploymentID: 1, Workload: gridtypes.Workload{Name: "pub", Type: gridtypes.PublicIPv4Type, Data: ipData}}
	t.Cleanup(func() { _ = ips.Deprovision(context.Background(), ipTask) })
	res, err := ips.Provision(ctx, ipTask)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(res)
	ns := netlightd.PublicNamespaceOf(e.salt+"p", ipTask.ID())
	if !iproute.NetnsExists(ns) {
		t.Fatal("the ipv4 workload has no namespace")
	}

	m, err := New(Config{Dir: filepath.Join(e.dir, "machines"), LogDir: filepath.Join(e.dir, "logs"), Backends: []Kind{Container},
		Containers: e.conts, Flists: e.flists, Public: pubs})
	if err != nil {
		t.Fatal(err)
	}
	web := e.machine("web", e.publishWeb(), "", "10.77.1.30")
	var d gridtypes.ZMachineLightData
	if err := web.Workload.DecodeData(&d); err != nil {
		t.Fatal(err)
	}
	d.Network.PublicIP = "pub"
	web.Workload.Data, _ = json.Marshal(d)
	web.Siblings["pub"] = gridtypes.Result{State: gridtypes.StateOk, Data: raw}
	t.Cleanup(func() { _ = m.Deprovision(context.Background(), web) })
	mres, err := m.Provision(ctx, web)
	if err != nil {
		t.Fatal(err)
	}
	if r := mres.(Result); r.PublicIP != up.Addr(20).String() || len(r.IPs) != 1 || r.IPs[0] != "10.77.1.30" {
		t.Fatalf("result %+v", r)
	}
	if iproute.NetnsExists(ns) {
		t.Error("the ipv4 workload's namespace is still there while the machine holds its address")
	}
	fetch := func(what string, get func() (string, error)) {
		t.Helper()
		hosttest.Eventually(t, 30*time.Second, what, func() error {
			out, err := get()
			if err == nil && out != "served from an image\n" {
				return fmt.Errorf("got %q", out)
			}
			return err
		})
	}
	pub := fmt.Sprintf("http://%s/index.html", up.Addr(20).Addr())
	fetch("the public address, from its subnet", func() (string, error) { return up.Fetch(pub) })
	fetch("the public address, from the internet", func() (string, error) { return up.FetchFrom(netip.MustParseAddr("198.18.0.9"), pub) })
	// From an address beyond the network's router (which holds it here):
	// the answer leaves from the private address, so through the router.
	router := netlight.NamesOf(e.salt, e.network.ID()).Namespace
	hosttest.Sh(t, "ip", "-n", router, "addr", "add", "192.0.2.7/32", "dev", "lo")
	fetch("the private address, from beyond its router", func() (string, error) {
		out, err := exec.Command("ip", "netns", "exec", router, "curl", "-sS", "--max-time", "3", "--interface", "192.0.2.7", "http://10.77.1.30/index.html").CombinedOutput()
		return string(out), err
	})

	// No raw sockets on the public network (they could send past the
	// guard).
	st, err := e.conts.State(ctx, web.ID())
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", st.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
			var caps uint64
			fmt.Sscanf(strings.TrimSpace(v), "%x", &caps)
			if caps&(1<<unix.CAP_NET_RAW) != 0 || caps&(1<<unix.CAP_NET_BIND_SERVICE) == 0 {
				t.Errorf("capabilities %x: want CAP_NET_BIND_SERVICE without CAP_NET_RAW", caps)
			}
		}
	}
	// The container takes a neighbour's address (as the host can): nobody
	// hears it (linkguard).
	cns := contd.NamespacePrefix + iproute.ShortID(e.salt+web.ID())
	hosttest.Sh(t, "ip", "-n", cns, "addr", "add", up.Addr(21).String(), "dev", contd.PublicLink)
	if out, err := up.Fetch(fmt.Sprintf("http://%s/index.html", up.Addr(21).Addr())); err == nil {
		t.Errorf("the container answered as its neighbour: %q", out)
	}

	// A restart of the node restores the ipv4 workload before machines:
	// it leaves the address with the machine.
	if err := ips.Restore(ctx, ipTask); err != nil {
		t.Fatal(err)
	}
	if iproute.NetnsExists(ns) {
		t.Error("restoring the ipv4 workload took the address back from the machine")
	}
	if err := m.Restore(ctx, web); err != nil {
		t.Fatal(err)
	}
	fetch("the public address after the restore", func() (string, error) { return up.Fetch(pub) })

	// An update to another address: the machine restarts with it, the
	// first goes back to its workload.
	ip2 := provisiond.Task{TwinID: e.twin, DeploymentID: 1, Workload: gridtypes.Workload{Name: "pub2", Type: gridtypes.PublicIPv4Type, Data: ipData}}
	t.Cleanup(func() { _ = ips.Deprovision(context.Background(), ip2) })
	res2, err := ips.Provision(ctx, ip2)
	if err != nil {
		t.Fatal(err)
	}
	raw2, _ := json.Marshal(res2)
	d.Network.PublicIP = "pub2"
	web.Workload.Data, _ = json.Marshal(d)
	web.Siblings["pub2"] = gridtypes.Result{State: gridtypes.StateOk, Data: raw2}
	if r, err := m.Update(ctx, web); err != nil || r.(Result).PublicIP != up.Addr(22).String() {
		t.Fatalf("update to pub2: %+v, %v", r, err)
	}
	fetch("the new public address", func() (string, error) { return up.Fetch(fmt.Sprintf("http://%s/index.html", up.Addr(22).Addr())) })
	out := hosttest.Sh(t, "ip", "-n", ns, "-o", "addr", "show", "dev", netlightd.PublicLink)
	if !strings.Contains(out, up.Addr(20).String()) {
		t.Fatalf("the first address is not back on its workload's namespace: %s", out)
	}
	ns2 := netlightd.PublicNamespaceOf(e.salt+"p", ip2.ID())
	if iproute.NetnsExists(ns2) {
		t.Error("the second address's namespace is there while the machine holds it")
	}

	if err := m.Deprovision(ctx, web); err != nil {
		t.Fatal(err)
	}
	out = hosttest.Sh(t, "ip", "-n", ns2, "-o", "addr", "show", "dev", netlightd.PublicLink)
	if !strings.Contains(out, up.Addr(22).String()) {
		t.Fatalf("the address is not back on the ipv4 workload's namespace: %s", out)
	}
	if err := ips.Deprovision(ctx, ipTask); err != nil {
		t.Fatal(err)
	}
	if iproute.NetnsExists(ns) {
		t.Error("namespace left")
	}
}

// A virtual machine is not resized in place when its public address
// changes (another card): the update restarts it, giving the old address
// back first.
func TestResizeInPlaceRefusesAnotherPublicAddress(t *testing.T) {
	m, err := New(Config{Dir: t.TempDir(), LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	tk := provisiond.Task{TwinID: 1, DeploymentID: 2, Workload: gridtypes.Workload{Name: "vm", Type: gridtypes.ZMachineLightType}}
	if err := os.MkdirAll(m.dir(tk), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(publicFile(m.dir(tk)), []byte(tk.Sibling("pub1")), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, pub := range []string{"pub2", ""} {
		d := &gridtypes.ZMachineLightData{Network: gridtypes.MachineNetwork{PublicIP: pub}}
		if _, err := m.resizeInPlace(context.Background(), tk, d, VM, nil); err == nil || err.Error() != "the public address changed" {
			t.Errorf("public_ip %q: %v", pub, err)
		}
	}
}
