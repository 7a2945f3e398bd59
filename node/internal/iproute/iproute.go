// Package iproute drives iproute2's ip tool for the network type managers:
// network namespaces, bridges, veth and macvlan links, addresses, routes.
package iproute

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/grid4/grid4/node/internal/command"
)

// capNetAdmin is the bit of CAP_NET_ADMIN in the capability sets.
const capNetAdmin = 12

// IP runs ip commands.
type IP struct {
	// Bin is the ip binary ("ip" when empty).
	Bin string
	// Run runs it (command.Exec{} when nil).
	Run command.Runner
}

func (ip IP) bin() string {
	if ip.Bin == "" {
		return "ip"
	}
	return ip.Bin
}

func (ip IP) runner() command.Runner {
	if ip.Run == nil {
		return command.Exec{}
	}
	return ip.Run
}

// Check reports why the host cannot run ip commands: the tool missing or
// the process lacking CAP_NET_ADMIN.
func (ip IP) Check() error {
	if _, err := exec.LookPath(ip.bin()); err != nil {
		return fmt.Errorf("%s (iproute2) %w", ip.bin(), command.ErrNotFound)
	}
	ok, err := hasCapability(capNetAdmin)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("the node process lacks CAP_NET_ADMIN")
	}
	return nil
}

// hasCapability reads the effective capability set of this process.
func hasCapability(bit uint) (bool, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return false, err
			}
			return mask&(1<<bit) != 0, nil
		}
	}
	return false, errors.New("no CapEff in /proc/self/status")
}

// Do runs "ip args...".
func (ip IP) Do(ctx context.Context, args ...string) error {
	_, err := ip.runner().Run(ctx, ip.bin(), args...)
	return err
}

// In runs "ip -n ns args...".
func (ip IP) In(ctx context.Context, ns string, args ...string) error {
	return ip.Do(ctx, append([]string{"-n", ns}, args...)...)
}

// Output runs "ip args..." and returns its output.
func (ip IP) Output(ctx context.Context, args ...string) (string, error) {
	return ip.runner().Run(ctx, ip.bin(), args...)
}

// LinkExists reports whether the root namespace has a link called name.
func LinkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// NetnsExists reports whether the named network namespace exists.
func NetnsExists(name string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", name))
	return err == nil
}

// LinkExistsIn reports whether namespace ns has a link called name.
func (ip IP) LinkExistsIn(ctx context.Context, ns, name string) bool {
	return ip.In(ctx, ns, "link", "show", "dev", name) == nil
}

// ShortID turns a workload ID into 10 hex characters: link names are at
// most 15 bytes, too short for the ID itself.
func ShortID(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:5])
}
