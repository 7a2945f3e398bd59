package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDevnet is the devnet's end to end, with the programs built from
// this repository: a node that cannot start fails `up`, naming itself
// and its log; `gridctl devnet up --nodes 3` brings up a registrar, a
// hub and three nodes in network namespaces of their own; a deployment
// (a disk, a network and a public IPv4 address, reachable from the host)
// goes to node 2 by its id with `gridctl deploy`;
// `status` shows everything running; a release reaches the test farm's
// node, then every node; a node and the registrar killed
// with SIGKILL come back with `up`, with their ids and the workloads;
// the farmer powers node 3 off: the node stops, not the machine, and
// comes back with up; `down` leaves no process, namespace, link, mount or
// loop device.
//
// It needs root (namespaces, the workloads' mounts), iproute2 and
// redis-server, as make test-services installs them.
func TestDevnet(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the devnet test needs root: its nodes run in network namespaces and host workloads")
	}
	for _, tool := range []string{"ip", "redis-server", "losetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the devnet test needs %s: run make test-services", tool)
		}
	}
	begin := time.Now()
	step := func(name string, since time.Time) { t.Logf("%-48s %6.2fs", name, time.Since(since).Seconds()) }
	bin := buildAll(t)
	step("built gridctl, registrar, hub, zosd, bootstrap", begin)
	dir := filepath.Join(t.TempDir(), "dn")
	devnet := func(args ...string) procResult {
		return runBinary(t, filepath.Join(bin, "gridctl"), []string{"HOME=" + t.TempDir()}, "", append([]string{"devnet", "--dir", dir}, args...)...)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("--- %s (end)\n%s", l, tail(b, 3000))
			}
		}
		devnet("down", "--purge")
	})

	// Binaries missing: the error names the first one.
	if r := devnet("up", "--bin", t.TempDir()); r.code != 1 || !strings.Contains(r.stderr, "registrar is missing in") {
		t.Fatalf("up without binaries: %+v", r)
	}

	checkFailure(t, bin)

	s := time.Now()
	r := devnet("up", "--nodes", "3", "--bin", bin)
	if r.code != 0 {
		t.Fatalf("up: %+v", r)
	}
	t.Logf("up's progress:\n%s", r.stderr)
	for _, c := range []string{"registrar", "hub", "release", "node1", "node2", "node3"} {
		if !regexp.MustCompile(`(?m)^` + c + ` `).MatchString(r.stderr) {
			t.Errorf("no progress line for %s:\n%s", c, r.stderr)
		}
	}
	if strings.ContainsAny(r.stderr, "\r\x1b") {
		t.Errorf("progress to a pipe has escape codes: %q", r.stderr)
	}
	if !strings.Contains(r.stdout, "export GRID_REGISTRAR=http://") || !strings.Contains(r.stdout, "explorer:") {
		t.Errorf("up's summary:\n%s", r.stdout)
	}
	step("devnet up --nodes 3", s)

	env := devnetEnv(t, devnet("env"))
	run := func(args ...string) procResult {
		return runBinary(t, filepath.Join(bin, "gridctl"), env, "", args...)
	}
	s = time.Now()
	dep := filepath.Join(t.TempDir(), "dep.json")
	os.WriteFile(dep, []byte(`{"description": "devnet test", "workloads": [
		{"name": "disk", "type": "zmount", "data": {"size": 16777216}},
		{"name": "net", "type": "network-light", "data": {"subnet": "10.42.7.0/24"}},
		{"name": "public", "type": "ipv4", "data": {}}]}`), 0o600)
	if r := run("deploy", "--node", "2", dep, "--wait"); r.code != 0 || strings.Count(r.stdout, " ok ") != 3 {
		t.Fatalf("deploy on node 2: %+v", r)
	}
	checkPublicIP(t, run("deployment", "show", "1", "--node", "2", "-o", "json"))
	step("deploy --node 2 (zmount, network-light, ipv4)", s)

	checkStatus(t, devnet("status"), "v4.1.0")
	if r := devnet("logs", "2"); r.code != 0 || !strings.Contains(r.stdout, "zos-api-light listening") {
		t.Errorf("logs 2: code %d, %d bytes", r.code, len(r.stdout))
	}
	if r := devnet("logs", "9"); r.code != 1 || !strings.Contains(r.stderr, `no component "node9"`) {
		t.Errorf("logs 9: %+v", r)
	}

	// A release: the test farm's node1 first, then every node.
	s = time.Now()
	r = devnet("release", "v4.1.1", "--bin", bin, "--wait", "2m")
	if r.code != 0 || !strings.Contains(r.stderr, "test farm 1: v4.1.1 runs on node1 (") ||
		!strings.Contains(r.stderr, "every farm: v4.1.1 runs on node1, node2, node3 (") {
		t.Fatalf("release: %+v", r)
	}
	checkStatus(t, devnet("status"), "v4.1.1")
	step("release v4.1.1: test farm, then every node", s)

	// A node and the registrar killed: up brings them back as they were.
	s = time.Now()
	for _, c := range []string{"node2", "registrar"} {
		pid, _ := strconv.Atoi(strings.TrimSpace(readFile(t, filepath.Join(dir, "run", c+".pid"))))
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %s: %v", c, err)
		}
	}
	if r := devnet("up"); r.code != 0 || !strings.Contains(r.stderr, "node2      registered: node 2 ") {
		t.Fatalf("up after a kill: %+v", r)
	}
	if r := run("deployment", "list", "--node", "2"); r.code != 0 || !strings.Contains(r.stdout, "3 ok") {
		t.Fatalf("node 2's workloads after its restart: %+v", r)
	}
	checkPublicIP(t, run("deployment", "show", "1", "--node", "2", "-o", "json"))
	checkStatus(t, devnet("status"), "v4.1.1")
	step("node2 and the registrar killed, up again", s)

	checkPowerOff(t, dir, devnet, run)

	s = time.Now()
	tag := stateTag(t, dir)
	if r := devnet("down"); r.code != 0 {
		t.Fatalf("down: %+v", r)
	}
	checkNothingLeft(t, dir, tag)
	step("down: nothing left", s)
	t.Logf("%-48s %6.2fs", "total", time.Since(begin).Seconds())
}

// checkFailure: a node whose zosd cannot start stops `up` with exit
// status 1, the node and its log named.
func checkFailure(t *testing.T, bin string) {
	t.Helper()
	s := time.Now()
	broken := t.TempDir()
	for _, b := range []string{"registrar", "hub", "bootstrap"} {
		if err := os.Symlink(filepath.Join(bin, b), filepath.Join(broken, b)); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(broken, "zosd"), []byte("#!/bin/sh\necho 'zosd: cannot start' >&2\nexit 1\n"), 0o755)
	dir := filepath.Join(t.TempDir(), "broken")
	devnet := func(args ...string) procResult {
		return runBinary(t, filepath.Join(bin, "gridctl"), nil, "", append([]string{"devnet", "--dir", dir, "--bin", broken}, args...)...)
	}
	defer devnet("down", "--purge")
	r := devnet("up", "--nodes", "1", "--timeout", "3s")
	want := regexp.MustCompile(`\ngridctl: node1: not ready within 3s: .* \(log: ` + regexp.QuoteMeta(filepath.Join(dir, "logs", "node1.log")) + `\)\n$`)
	if r.code != 1 || !want.MatchString(r.stderr) || !strings.Contains(r.stderr, "\nnode1      FAILED: node1: not ready") {
		t.Fatalf("up with a broken zosd: %+v", r)
	}
	if !strings.Contains(readFile(t, filepath.Join(dir, "logs", "node1.log")), "zosd: cannot start") {
		t.Errorf("node1's log does not say why")
	}
	t.Logf("%-48s %6.2fs", "a broken node: up fails, naming it and its log", time.Since(s).Seconds())
}

// checkPublicIP: the ipv4 workload's address answers from the host (a
// refused connection: nothing listens, but the address is up; an address
// nobody holds would time out).
func checkPublicIP(t *testing.T, r procResult) {
	t.Helper()
	m := regexp.MustCompile(`"ip": *"([0-9.]+)/24"`).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("the ipv4 workload's address: %+v", r)
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort(m[1], "9"), 3*time.Second)
	if err == nil {
		c.Close()
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("the public address %s from the host: %v, want connection refused", m[1], err)
	}
}

// checkPowerOff: the farmer powers node 3 off; the devnet's node stops
// (the machine does not: its power-off command is the devnet's script,
// checked before), and is back with its target on and up.
func checkPowerOff(t *testing.T, dir string, devnet, run func(...string) procResult) {
	t.Helper()
	s := time.Now()
	pid, _ := strconv.Atoi(strings.TrimSpace(readFile(t, filepath.Join(dir, "run", "node3.pid"))))
	script := filepath.Join(dir, "run", "node3.poweroff")
	if !strings.Contains(readFile(t, "/proc/"+strconv.Itoa(pid)+"/cmdline"), "\x00--power-off-command\x00"+script+"\x00") {
		t.Fatalf("node3 does not run with --power-off-command %s: not powering it off", script)
	}
	if r := run("node", "power", "off", "3"); r.code != 0 {
		t.Fatalf("power off: %+v", r)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !regexp.MustCompile(`(?m)^node3 +- +stopped `).MatchString(devnet("status").stdout) {
		if time.Now().After(deadline) {
			t.Fatalf("node3 still runs 30s after its power target went off:\n%s", devnet("status").stdout)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if r := run("node", "power", "on", "3"); r.code != 0 {
		t.Fatalf("power on: %+v", r)
	}
	if r := devnet("up"); r.code != 0 {
		t.Fatalf("up after the power off: %+v", r)
	}
	t.Logf("%-48s %6.2fs", "node3 powered off (stopped), on and up again", time.Since(s).Seconds())
}

// buildAll builds the programs a devnet runs, and gridctl, into one
// directory, as make build does.
func buildAll(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bin")
	args := []string{"build", "-o", bin + "/"}
	for _, c := range []string{"gridctl", "registrar", "hub", "zosd", "bootstrap"} {
		args = append(args, "github.com/grid4/grid4/cmd/"+c)
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// devnetEnv turns `gridctl devnet env` into an environment.
func devnetEnv(t *testing.T, r procResult) []string {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("env: %+v", r)
	}
	var env []string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		kv := strings.TrimPrefix(l, "export ")
		if v, ok := strings.CutPrefix(kv, "GRID_MNEMONIC=\"$(cat "); ok {
			kv = "GRID_MNEMONIC=" + strings.TrimSpace(readFile(t, strings.TrimSuffix(v, ")\"")))
		}
		env = append(env, kv)
	}
	if len(env) != 3 || !strings.HasPrefix(env[0], "GRID_REGISTRAR=http://") {
		t.Fatalf("env: %q", r.stdout)
	}
	return env
}

// checkStatus wants every component running and each node online and
// approved on the registrar with its id, running version.
func checkStatus(t *testing.T, r procResult, version string) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("status: %+v", r)
	}
	for _, c := range []string{"registrar", "hub", "node1", "node2", "node3"} {
		if !regexp.MustCompile(`(?m)^` + c + ` +[0-9]+ +running `).MatchString(r.stdout) {
			t.Errorf("%s is not running:\n%s", c, r.stdout)
		}
	}
	for i := 1; i <= 3; i++ {
		if !regexp.MustCompile(`(?m)^node` + strconv.Itoa(i) + ` .* node ` + strconv.Itoa(i) + `: online, approved, ` + regexp.QuoteMeta(version) + `$`).MatchString(r.stdout) {
			t.Errorf("node%d on the registrar:\n%s", i, r.stdout)
		}
	}
}

// stateTag reads the devnet's tag, the part of its interface and
// namespace names of its own.
func stateTag(t *testing.T, dir string) string {
	t.Helper()
	var st struct {
		Tag string `json:"tag"`
	}
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, "devnet.json"))), &st); err != nil || st.Tag == "" {
		t.Fatalf("devnet.json: %v", err)
	}
	return st.Tag
}

// checkNothingLeft fails for any process running from dir, namespace or
// link of the devnet, mount under dir or loop device backed by a file in
// it.
func checkNothingLeft(t *testing.T, dir, tag string) {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); bytes.Contains(b, []byte(dir)) {
			t.Errorf("process %s left: %s", e.Name(), bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		}
	}
	for _, d := range []string{"/run/netns", "/sys/class/net"} {
		names, _ := os.ReadDir(d)
		for _, n := range names {
			if strings.Contains(n.Name(), tag) {
				t.Errorf("%s/%s left", d, n.Name())
			}
		}
	}
	if b := readFile(t, "/proc/self/mountinfo"); strings.Contains(b, " "+dir) {
		t.Errorf("mounts left under %s:\n%s", dir, b)
	}
	if out, _ := exec.Command("losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE").Output(); bytes.Contains(out, []byte(dir)) {
		t.Errorf("loop devices left:\n%s", out)
	}
	if pids, _ := filepath.Glob(filepath.Join(dir, "run", "*.pid")); len(pids) != 0 {
		t.Errorf("pid files left: %v", pids)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
