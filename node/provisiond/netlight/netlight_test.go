package netlight

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/internal/iproute"
	"github.com/grid4/grid4/node/netlightd"
	"github.com/grid4/grid4/node/provisiond"
)

// The connectivity test runs this test binary inside network namespaces
// (ip netns exec) as a tiny TCP server or client.
const helperEnv = "GRID4_NETLIGHT_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "listen":
		ln, err := net.Listen("tcp", os.Getenv("HELPER_ADDR"))
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
		fmt.Println("ready")
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
		c, err := ln.Accept()
		if err != nil {
			os.Exit(3)
		}
		fmt.Fprintf(c, "hello from %s\n", c.LocalAddr())
		c.Close()
		os.Exit(0)
	case "dial":
		// 15 s: across a mesh, a first WireGuard handshake that is lost
		// (sent before the peer's socket was up) is tried again after
		// 5 s (REKEY_TIMEOUT), and the connection waits for it.
		c, err := net.DialTimeout("tcp", os.Getenv("HELPER_ADDR"), 15*time.Second)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
		io.Copy(os.Stdout, c)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func task(twin uint64, subnet string) provisiond.Task {
	data, _ := json.Marshal(gridtypes.NetworkLightData{Subnet: subnet})
	return provisiond.Task{TwinID: twin, DeploymentID: 1, Workload: gridtypes.Workload{Name: "net", Type: gridtypes.NetworkLightType, Data: data}}
}

func needNetAdmin(t *testing.T) {
	t.Helper()
	if err := (iproute.IP{}).Check(); err != nil {
		t.Skipf("cannot create networks here: %v", err)
	}
}

// newManager returns a manager on an in-process netlightd with names of
// its own, and the salt.
func newManager(t *testing.T, ip *iproute.IP) (*Manager, string) {
	t.Helper()
	salt := fmt.Sprintf("t%x", rand.Uint64())
	svc, err := netlightd.New(netlightd.Config{Dir: t.TempDir(), Salt: salt, IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Networks: svc})
	if err != nil {
		t.Fatal(err)
	}
	return m, salt
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestNetworkCarriesTraffic(t *testing.T) {
	needNetAdmin(t)
	ctx := context.Background()
	m, salt := newManager(t, nil)
	tk := task(rand.Uint64N(1<<40)+1, "10.77.1.0/24")
	t.Cleanup(func() { _ = m.Deprovision(ctx, tk) })
	res, err := m.Provision(ctx, tk)
	if err != nil {
		t.Fatal(err)
	}
	r := res.(Result)
	if r.Gateway != "10.77.1.1/24" || r.Namespace != NamesOf(salt, tk.ID()).Namespace {
		t.Fatalf("result %+v", r)
	}
	// Idempotent.
	if _, err := m.Provision(ctx, tk); err != nil {
		t.Fatalf("again: %v", err)
	}
	if out := sh(t, "ip", "-n", r.Namespace, "-o", "addr", "show", "dev", LAN); !strings.Contains(out, "10.77.1.1/24") {
		t.Fatalf("lan0: %s", out)
	}
	if out := sh(t, "ip", "-o", "link", "show", "dev", r.Veth); !strings.Contains(out, "master "+r.Bridge) {
		t.Fatalf("veth not on the bridge: %s", out)
	}

	// A stand-in machine: its own namespace, a veth on the bridge.
	id := iproute.ShortID(fmt.Sprint(rand.Uint64()))
	mns, mveth := "g4t-"+id, "g4t"+id
	sh(t, "ip", "netns", "add", mns)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", "dev", mveth).Run()
		exec.Command("ip", "netns", "del", mns).Run()
	})
	sh(t, "ip", "link", "add", "name", mveth, "type", "veth", "peer", "name", "eth0", "netns", mns)
	sh(t, "ip", "link", "set", "dev", mveth, "master", r.Bridge, "up")
	sh(t, "ip", "-n", mns, "addr", "add", "10.77.1.5/24", "dev", "eth0")
	sh(t, "ip", "-n", mns, "link", "set", "dev", "eth0", "up")

	// The gateway (in the network's namespace) serves; the machine dials.
	srv := exec.Command("ip", "netns", "exec", r.Namespace, os.Args[0], "-test.run=^$")
	srv.Env = append(os.Environ(), helperEnv+"=listen", "HELPER_ADDR=10.77.1.1:7777")
	out, _ := srv.StdoutPipe()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Wait()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		srv.Process.Kill()
		t.Fatalf("server: %q", line)
	}
	cli := exec.Command("ip", "netns", "exec", mns, os.Args[0], "-test.run=^$")
	cli.Env = append(os.Environ(), helperEnv+"=dial", "HELPER_ADDR=10.77.1.1:7777")
	got, err := cli.CombinedOutput()
	if err != nil || string(got) != "hello from 10.77.1.1:7777\n" {
		srv.Process.Kill()
		t.Fatalf("machine -> gateway: %q %v", got, err)
	}

	exec.Command("ip", "link", "del", "dev", mveth).Run()
	for range 2 {
		if err := m.Deprovision(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	if iproute.NetnsExists(r.Namespace) || iproute.LinkExists(r.Bridge) || iproute.LinkExists(r.Veth) {
		t.Fatal("network not fully removed")
	}
}

func TestHalfMadeNetworkIsCompleted(t *testing.T) {
	needNetAdmin(t)
	ctx := context.Background()
	m, salt := newManager(t, nil)
	tk := task(rand.Uint64N(1<<40)+1, "192.168.50.0/29")
	t.Cleanup(func() { _ = m.Deprovision(ctx, tk) })
	n := NamesOf(salt, tk.ID())
	// As if the process died after creating the namespace and a veth
	// whose other end is missing.
	sh(t, "ip", "netns", "add", n.Namespace)
	sh(t, "ip", "link", "add", "name", n.Veth, "type", "veth", "peer", "name", "stray"+iproute.ShortID("x")[:4])
	if _, err := m.Provision(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if out := sh(t, "ip", "-n", n.Namespace, "-o", "addr", "show", "dev", LAN); !strings.Contains(out, "192.168.50.1/29") {
		t.Fatalf("lan0: %s", out)
	}
}

func TestFailsWithoutIproute(t *testing.T) {
	m, _ := newManager(t, &iproute.IP{Bin: "ip-not-installed"})
	_, err := m.Provision(context.Background(), task(1, "10.1.0.0/16"))
	want := "network-light: netlightd: cannot manage networks on this node: ip-not-installed (iproute2) not found in PATH"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant  %s", err, want)
	}
}

// TestRestoreBringsTheNetworkBack: after a reboot (the namespace gone)
// Restore makes it again, with its address and its way out.
func TestRestoreBringsTheNetworkBack(t *testing.T) {
	needNetAdmin(t)
	ctx := context.Background()
	m, _ := newManager(t, nil)
	tk := task(rand.Uint64N(1<<40)+1, "10.78.0.0/24")
	t.Cleanup(func() { _ = m.Deprovision(ctx, tk) })
	res, err := m.Provision(ctx, tk)
	if err != nil {
		t.Fatal(err)
	}
	r := res.(Result)
	sh(t, "ip", "netns", "del", r.Namespace)
	if err := m.Restore(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if out := sh(t, "ip", "-n", r.Namespace, "-o", "addr", "show"); !strings.Contains(out, "10.78.0.1/24") || !strings.Contains(out, r.TransitAddress) {
		t.Fatalf("after restore: %s", out)
	}
	if out := sh(t, "ip", "-n", r.Namespace, "route", "show", "default"); !strings.Contains(out, "via "+r.TransitGateway) {
		t.Fatalf("no way out after restore: %s", out)
	}
}

// TestSpecCarriesForwards: the workload's port forwards reach netlightd.
func TestSpecCarriesForwards(t *testing.T) {
	tk := task(7, "10.20.1.0/24")
	tk.Workload.Data = []byte(`{"subnet":"10.20.1.0/24","port_forwards":[{"protocol":"udp","host_port":5353,"ip":"10.20.1.9","port":53}]}`)
	s, err := spec(tk)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Forwards) != 1 || s.Forwards[0].Protocol != "udp" || s.Forwards[0].HostPort != 5353 || s.Forwards[0].IP.String() != "10.20.1.9" || s.Forwards[0].Port != 53 {
		t.Fatalf("forwards %+v", s.Forwards)
	}
}
