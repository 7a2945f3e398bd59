package vmd

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/grid4/grid4/internal/atomicfile"
	"github.com/grid4/grid4/node/vmd/guest"
	"github.com/grid4/grid4/node/vmd/initramfs"
	"github.com/grid4/grid4/node/vmd/kernel"
)

// InitName is the guest init's program name (cmd/g4init).
const InitName = "g4init"

// cmdline is the kernel's command line: the console on the first serial
// port, a kernel panic (the init failing badly) powering off
// (-no-reboot) at once rather than hanging, and memory plugged in while
// the machine runs put to use at once (Service.Update).
const cmdline = "console=ttyS0 panic=-1 quiet memhp_default_state=online"

// initBinary finds the guest init (Config.Init, else g4init next to the
// running executable, else in PATH) and checks that it can run in an
// initramfs.
func (s *Service) initBinary() (string, error) {
	p := s.c.Init
	if p == "" {
		if exe, err := os.Executable(); err == nil {
			if c := filepath.Join(filepath.Dir(exe), InitName); fileExists(c) {
				p = c
			}
		}
	}
	if p == "" {
		var err error
		if p, err = exec.LookPath(InitName); err != nil {
			return "", fmt.Errorf("vmd: %w: the guest init %s is neither next to %s nor in PATH (make build puts it in bin/)", ErrNoHypervisor, InitName, os.Args[0])
		}
	}
	if err := checkStatic(p); err != nil {
		return "", fmt.Errorf("vmd: %w: guest init %s: %w", ErrNoHypervisor, p, err)
	}
	return p, nil
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// checkStatic refuses anything but a static x86-64 executable: the
// initramfs has no dynamic loader or libraries.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("not an ELF executable: %w", err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("not an x86-64 executable (%v, %v)", f.Machine, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("dynamically linked (it has an ELF interpreter): build it with CGO_ENABLED=0")
		}
	}
	return nil
}

// moduleNames are the kernel modules a machine of sp needs under hv.
func moduleNames(sp Spec, hv hypervisor, disks int) []string {
	names := []string{"virtio_pci", "virtiofs", "button", "evdev"}
	if len(sp.NICs) > 0 {
		names = append(names, "virtio_net")
	}
	if disks > 0 {
		names = append(names, "virtio_blk", "ext4")
	}
	return append(names, hv.extraModules()...)
}

// writeInitramfs writes the machine's initramfs: /init, /grid4.json,
// /dev/console (which the kernel opens for the init) and the modules
// under /modules, in cfg.Modules's order.
func writeInitramfs(path, init string, cfg guest.Config, mods []kernel.Module) error {
	initBin, err := os.ReadFile(init)
	if err != nil {
		return err
	}
	cfg.Modules = nil
	var buf bytes.Buffer
	w := initramfs.NewWriter(&buf)
	files := map[string][]byte{}
	for _, m := range mods {
		name := "/modules/" + m.Name + ".ko"
		b, err := os.ReadFile(m.Path)
		if err != nil {
			return err
		}
		files[name] = b
		cfg.Modules = append(cfg.Modules, name)
	}
	conf, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	errs := []error{
		w.Dir("dev", 0o755),
		w.CharDevice("dev/console", 0o600, 5, 1),
		w.Dir("modules", 0o755),
		w.File("init", 0o755, initBin),
		w.File(guest.ConfigPath, 0o600, conf),
	}
	for _, name := range cfg.Modules {
		errs = append(errs, w.File(name, 0o644, files[name]))
	}
	errs = append(errs, w.Close())
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, buf.Bytes(), 0o600)
}
