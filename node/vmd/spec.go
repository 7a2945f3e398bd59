package vmd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/grid4/grid4/node/vmd/guest"
)

// check validates the spec; it says everything wrong at once.
func (sp Spec) check() error {
	var bad []string
	add := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	if sp.ID == "" {
		add("no machine ID")
	}
	if !filepath.IsAbs(sp.Root) {
		add("root %q is not an absolute path", sp.Root)
	} else if fi, err := os.Stat(sp.Root); err != nil || !fi.IsDir() {
		add("root %s is not a directory", sp.Root)
	}
	if sp.KernelDir != "" && !filepath.IsAbs(sp.KernelDir) {
		add("kernel directory %q is not absolute", sp.KernelDir)
	}
	if len(sp.Args) == 0 || sp.Args[0] == "" {
		add("no entrypoint")
	}
	for _, e := range sp.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			add("environment variable %q is not KEY=VALUE", e)
		}
	}
	if sp.WorkingDir != "" && !filepath.IsAbs(sp.WorkingDir) {
		add("working directory %q is not absolute", sp.WorkingDir)
	}
	if strings.ContainsAny(sp.Hostname, "/\x00 \n") || len(sp.Hostname) > 64 {
		add("hostname %q", sp.Hostname)
	}
	for _, k := range sp.SSHKeys {
		if strings.ContainsAny(k, "\n\r") || strings.TrimSpace(k) == "" {
			add("an SSH key is empty or spans lines")
		}
	}
	for _, m := range sp.Mounts {
		if !filepath.IsAbs(m.Source) || !filepath.IsAbs(m.Target) || filepath.Clean(m.Target) == "/" {
			add("mount %s on %s: source and target must be absolute, the target not /", m.Source, m.Target)
			continue
		}
		fi, err := os.Stat(m.Source)
		if err != nil {
			add("mount source %s: %v", m.Source, err)
		} else if !fi.IsDir() && !fi.Mode().IsRegular() {
			add("mount source %s is neither a directory nor a disk image", m.Source)
		}
	}
	if len(sp.NICs) > MaxNICs {
		add("%d network cards, at most %d", len(sp.NICs), MaxNICs)
	}
	for _, n := range sp.NICs {
		if (n.Bridge == "") == (n.Parent == "") {
			add("a network card needs a bridge or a parent interface, not both")
		}
		if n.Parent != "" && (n.MAC == "" || !n.IP.Addr().Is4()) {
			add("a network card on parent %s needs a MAC and an IPv4 address (it may send only as them)", n.Parent)
		}
		if n.Gateway.IsValid() && (!n.IP.IsValid() || !n.IP.Masked().Contains(n.Gateway)) {
			add("gateway %s is not in %s", n.Gateway, n.IP.Masked())
		}
		if n.MAC != "" {
			if err := (guest.NIC{MAC: n.MAC}).CheckMAC(); err != nil {
				add("%v", err)
			}
		}
	}
	if sp.Memory != 0 && sp.Memory < MinMemory {
		add("memory %d bytes: at least %d MiB", sp.Memory, MinMemory>>20)
	}
	if !filepath.IsAbs(sp.Console) {
		add("console %q is not an absolute path", sp.Console)
	}
	if len(bad) > 0 {
		return fmt.Errorf("vmd: %w: %s", ErrInvalid, strings.Join(bad, "; "))
	}
	return nil
}
