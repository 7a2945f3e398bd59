package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/zosapi/client"
	"github.com/grid4/grid4/oci/ocitest"
)

// TestNetworkAcrossNodes: two nodes, on two releases, each host a part of
// one twin's private network with a container machine on it; each
// machine reaches the other by its private address over the nodes'
// WireGuard mesh, again after one node restarts; when a part is removed
// the other node drops it.
func TestNetworkAcrossNodes(t *testing.T) {
	e := newE2E(t)
	bin := filepath.Dir(e.zosd)
	if out, err := exec.Command("go", "build", "-o", bin+"/", "github.com/grid4/grid4/cmd/gridctl").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	h := startHub(t, e.dir)
	archive := ocitest.Archive(t, t.TempDir(), peerImage())
	push := exec.Command(filepath.Join(bin, "gridctl"), "hub", "push-image", "tf/apps", "peer", archive,
		"--hub", h.url, "--seed-file", h.seedFile, "-o", "json")
	var stderr strings.Builder
	push.Stderr = &stderr
	out, err := push.Output()
	if err != nil {
		t.Fatalf("gridctl hub push-image: %v\n%s", err, stderr.String())
	}
	var pushed struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(out, &pushed); err != nil || pushed.URL == "" {
		t.Fatalf("push-image output: %v\n%s", err, out)
	}

	port := 40000 + rand.IntN(20000)
	node := func(name, version string, ports int) *workloadNode {
		n := e.hostingNode(t, name, "--hub", h.url, "--upgrade-publisher-key", hex.EncodeToString(h.key.Public().Key),
			"--upgrade-first-check", "24h", "--machine-backends", "container", "--zos-version", version,
			"--mesh-ports", fmt.Sprintf("%d-%d", ports, ports+9))
		t.Cleanup(func() { killWorkloads(n.data) })
		n.up(t)
		return n
	}
	a, b := node("mesha", "v4.0.1", port), node("meshb", "v4.1.0", port+10)
	// One twin deploys on both nodes.
	b.twin, b.key, b.user = a.twin, a.key, a.user
	if b.api, err = client.New("http://"+b.apiAddr, a.key, a.twin, nil); err != nil {
		t.Fatal(err)
	}
	idA, idB := a.status(t).Registration.NodeID, b.status(t).Registration.NodeID

	x := rand.IntN(200) + 20
	ipA, ipB := fmt.Sprintf("10.%d.1.5", x), fmt.Sprintf("10.%d.2.5", x)
	depA := a.deploy(t, peerMachine(x, 1, idB, pushed.URL, "a", ipB))
	allOK(t, a, depA)
	depB := b.deploy(t, peerMachine(x, 2, idA, pushed.URL, "b", ipA))
	allOK(t, b, depB)

	peerFile := func(n *workloadNode, dep uint64) string {
		r := n.settled(t, dep)
		vol, _ := r.Deployment.Get("data")
		return filepath.Join(result(*vol)["path"].(string), "peer")
	}
	fileA, fileB := peerFile(a, depA), peerFile(b, depB)
	waitForFile(t, fileA, "b\n", a)
	waitForFile(t, fileB, "a\n", b)

	// Node a restarts: the mesh comes back with its key and port, and the
	// machines reach each other again.
	if code := a.stop(t); code != 0 {
		t.Fatalf("zosd exited %d; log:\n%s", code, a.logTail())
	}
	os.Remove(fileA)
	os.Remove(fileB)
	a.up(t)
	allOK(t, a, depA)
	waitForFile(t, fileA, "b\n", a)
	waitForFile(t, fileB, "a\n", b)

	// b's part goes: a drops its peer.
	b.removeAll(t, depB)
	deadline := time.Now().Add(20 * time.Second)
	for slices.Contains(meshPeers(t, a), idB) {
		if time.Now().After(deadline) {
			t.Fatalf("node a still has node b as a peer after b's part was removed; log:\n%s", a.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
	a.removeAll(t, depA)
}

// peerImage is a busybox image whose entrypoint serves its name ($ME)
// and copies what its peer ($PEER) serves into /data/peer, every second
// (busybox's own wget -T crashes in the static build: timeout bounds it).
func peerImage() ocitest.Image {
	start := `#!/bin/sh
mkdir -p /www
echo "$ME" > /www/index.html
httpd -p 80 -h /www
while true; do
  if timeout 3 wget -q -O /data/peer.tmp "http://$PEER/index.html"; then mv /data/peer.tmp /data/peer; fi
  sleep 1
done
`
	layer := ocitest.Layer{"bin/busybox": ocitest.FileFrom("/bin/busybox", 0o755), "bin/start": ocitest.Text(start, 0o755), "data/.keep": ocitest.Text("", 0o644)}
	for _, applet := range []string{"sh", "mkdir", "httpd", "wget", "timeout", "mv", "sleep"} {
		layer["bin/"+applet] = ocitest.Symlink("busybox")
	}
	return ocitest.Image{Layers: []ocitest.Layer{layer}, Config: ocitest.Config{Entrypoint: []string{"/bin/start"}}}
}

// peerMachine is a twin's part on one node: subnet 10.x.part.0/24 of the
// network 10.x.0.0/16 shared with node other, a volume, and a container
// machine at .5 named me that fetches from peer.
func peerMachine(x, part int, other uint64, flistURL, me, peer string) gridtypes.Deployment {
	ip := fmt.Sprintf("10.%d.%d.5", x, part)
	nw, _ := json.Marshal(gridtypes.NetworkLightData{
		Subnet: fmt.Sprintf("10.%d.%d.0/24", x, part),
		Mesh:   &gridtypes.NetworkMesh{Range: fmt.Sprintf("10.%d.0.0/16", x), Nodes: []uint64{other}},
	})
	vm, _ := json.Marshal(gridtypes.ZMachineLightData{
		Flist:           flistURL,
		Env:             map[string]string{"ME": me, "PEER": peer},
		ComputeCapacity: gridtypes.ComputeCapacity{CPU: 1, Memory: 256 * gridtypes.MiB},
		Network:         gridtypes.MachineNetwork{Interfaces: []gridtypes.MachineInterface{{Network: "net", IP: ip}}},
		Mounts:          []gridtypes.MachineMount{{Name: "data", Mountpoint: "/data"}},
	})
	return gridtypes.Deployment{Workloads: []gridtypes.Workload{
		{Name: "net", Type: gridtypes.NetworkLightType, Data: nw},
		{Name: "data", Type: gridtypes.VolumeType, Data: json.RawMessage(`{"size":104857600}`)},
		{Name: "vm", Type: gridtypes.ZMachineLightType, Data: vm},
	}}
}

// waitForFile waits until file holds want.
func waitForFile(t *testing.T, file, want string, n *workloadNode) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(file)
		if string(b) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %q, want %q; log of %s:\n%s", file, b, want, n.name, n.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// meshPeers are the nodes node n's netlightd has as peers, in any network
// (its state file, docs/node.md).
func meshPeers(t *testing.T, n *workloadNode) []uint64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.data, "netlight", "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Networks map[string]struct {
			Mesh *struct {
				Peers []struct {
					Node uint64 `json:"node"`
				} `json:"peers"`
			} `json:"mesh"`
		} `json:"networks"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, nw := range st.Networks {
		if nw.Mesh != nil {
			for _, p := range nw.Mesh.Peers {
				out = append(out, p.Node)
			}
		}
	}
	return out
}
