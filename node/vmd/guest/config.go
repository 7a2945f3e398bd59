// Package guest is the first process of grid4's virtual machines (the
// /init of the initramfs vmd builds per machine; cmd/g4init is its main).
// It turns a bare kernel into the workload's machine without anything in
// the image: it loads the kernel modules the initramfs carries, mounts the
// root file system shared over virtiofs, the workload's shares and disks,
// configures the network cards by MAC, sets the hostname and SSH keys,
// moves into the root and runs the entrypoint, reaping orphans as process
// 1 must. When the entrypoint exits (or the host presses the ACPI power
// button: vmd's Stop), it reports why on the console and on the status
// device, and powers the machine off.
//
// It must be a static binary: the initramfs has no dynamic loader (vmd
// refuses an init with an ELF interpreter). So it uses golang.org/x/sys/unix
// and net/netip, never package net or os/user.
package guest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"strings"
)

// ConfigPath is where the initramfs holds the machine's Config.
const ConfigPath = "/grid4.json"

// Kinds of Mount.
const (
	// Virtiofs mounts a host directory shared over virtiofs by its tag.
	Virtiofs = "virtiofs"
	// Disk mounts the ext4 file system of a virtio disk found by its
	// serial.
	Disk = "disk"
)

// Config is what the machine is to be, written by vmd as JSON.
type Config struct {
	// Modules are kernel module files in the initramfs, loaded in order.
	Modules []string `json:"modules,omitempty"`
	// RootTag is the virtiofs tag of the root file system.
	RootTag string `json:"root_tag"`
	// NICs are the network cards to configure.
	NICs []NIC `json:"nics,omitempty"`
	// Mounts are the shares and disks, mounted in order.
	Mounts []Mount `json:"mounts,omitempty"`
	// Hostname is the machine's host name ("" leaves the kernel's).
	Hostname string `json:"hostname,omitempty"`
	// SSHKeys are appended to /root/.ssh/authorized_keys.
	SSHKeys []string `json:"ssh_keys,omitempty"`
	// Args is the entrypoint's command line; Args[0] is a path or looked
	// up in the guest's PATH.
	Args []string `json:"args"`
	// Env is its environment, KEY=VALUE (PATH has a default).
	Env []string `json:"env,omitempty"`
	// WorkingDir is where it starts ("/").
	WorkingDir string `json:"working_dir,omitempty"`
	// Status is a device receiving one line saying why the machine
	// powers off (vmd reads it as State.ExitReason); "" for none.
	Status string `json:"status,omitempty"`
	// StopGraceMS is how long the entrypoint has between SIGTERM and
	// SIGKILL once the power button is pressed, in milliseconds.
	StopGraceMS int `json:"stop_grace_ms,omitempty"`
}

// NIC is a network card, found by its MAC.
type NIC struct {
	// MAC identifies the card.
	MAC string `json:"mac"`
	// IP is its address with prefix length (invalid: the link is only
	// brought up).
	IP netip.Prefix `json:"ip,omitzero"`
	// Gateway is the default route's next hop (invalid: none).
	Gateway netip.Addr `json:"gateway,omitzero"`
}

// Mount is a share or a disk.
type Mount struct {
	// Kind is Virtiofs or Disk.
	Kind string `json:"kind"`
	// Tag is a share's virtiofs tag, or a disk's serial.
	Tag string `json:"tag"`
	// Target is where it is mounted in the root (absolute, not /).
	Target string `json:"target"`
	// ReadOnly mounts it read-only.
	ReadOnly bool `json:"read_only,omitempty"`
}

// DefaultPath is PATH when Env has none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ParseConfig reads and checks a Config.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, c.Check()
}

// Check says what is wrong with c, or nil.
func (c Config) Check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.RootTag == "" {
		bad("no root tag")
	}
	if len(c.Args) == 0 || c.Args[0] == "" {
		bad("no entrypoint")
	}
	for _, e := range c.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			bad("environment variable %q is not KEY=VALUE", e)
		}
	}
	if c.WorkingDir != "" && !path.IsAbs(c.WorkingDir) {
		bad("working directory %q is not absolute", c.WorkingDir)
	}
	for _, n := range c.NICs {
		if _, err := parseMAC(n.MAC); err != nil {
			bad("nic: %v", err)
		}
		if n.Gateway.IsValid() && (!n.IP.IsValid() || !n.IP.Masked().Contains(n.Gateway)) {
			bad("nic %s: gateway %s is not in %s", n.MAC, n.Gateway, n.IP)
		}
	}
	for _, m := range c.Mounts {
		if m.Kind != Virtiofs && m.Kind != Disk {
			bad("mount %s: kind %q is neither %s nor %s", m.Target, m.Kind, Virtiofs, Disk)
		}
		if m.Tag == "" || !path.IsAbs(m.Target) || path.Clean(m.Target) == "/" {
			bad("mount %q on %q: a tag and an absolute target other than / are needed", m.Tag, m.Target)
		}
	}
	for _, m := range c.Modules {
		if !path.IsAbs(m) {
			bad("module %q is not an absolute path", m)
		}
	}
	if strings.ContainsAny(c.Hostname, "/\x00 ") || len(c.Hostname) > 64 {
		bad("hostname %q", c.Hostname)
	}
	for _, k := range c.SSHKeys {
		if strings.ContainsAny(k, "\n\r") {
			bad("ssh key spans lines")
		}
	}
	if c.StopGraceMS < 0 {
		bad("stop grace %d ms", c.StopGraceMS)
	}
	return errors.Join(errs...)
}

// parseMAC reads aa:bb:cc:dd:ee:ff (case-insensitive) into its canonical
// lower-case form, the one /sys/class/net/*/address shows.
func parseMAC(s string) (string, error) {
	s = strings.ToLower(s)
	if len(s) != 17 {
		return "", fmt.Errorf("MAC %q is not 6 colon-separated bytes", s)
	}
	for i := range 17 {
		c := s[i]
		if i%3 == 2 {
			if c != ':' {
				return "", fmt.Errorf("MAC %q is not 6 colon-separated bytes", s)
			}
			continue
		}
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", fmt.Errorf("MAC %q is not 6 colon-separated bytes", s)
		}
	}
	return s, nil
}

// CheckMAC says whether n.MAC is a MAC address the guest can find.
func (n NIC) CheckMAC() error {
	_, err := parseMAC(n.MAC)
	return err
}
