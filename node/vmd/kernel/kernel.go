// Package kernel reads a machine kernel unpacked in the layout of a
// Debian kernel package (what scripts/machine-kernel.sh makes, and what an
// flist bringing its own kernel holds): boot/vmlinuz-<version> and
// lib/modules/<version>/kernel/…/*.ko. It finds the kernel image and the
// module files a machine needs in its initramfs, each after the modules it
// depends on, read from the modules themselves (the "depends=" of their
// .modinfo section) since an unpacked package has no modules.dep.
package kernel

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoKernel is wrapped when a directory holds no usable kernel or lacks
// a module a machine needs.
var ErrNoKernel = errors.New("no usable kernel")

// Kernel is an unpacked kernel.
type Kernel struct {
	// Dir is the directory it was found in.
	Dir string
	// Image is the kernel to boot (boot/vmlinuz-<Version>).
	Image string
	// Version is the kernel's release (uname -r).
	Version string
}

// Open finds the kernel in dir: exactly one boot/vmlinuz-<version>.
func Open(dir string) (Kernel, error) {
	images, err := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	if err != nil {
		return Kernel{}, err
	}
	switch len(images) {
	case 0:
		return Kernel{}, fmt.Errorf("%w: no boot/vmlinuz-* in %s (scripts/machine-kernel.sh unpacks one)", ErrNoKernel, dir)
	case 1:
	default:
		return Kernel{}, fmt.Errorf("%w: %s has several kernels: %s", ErrNoKernel, dir, strings.Join(images, ", "))
	}
	// The image may be a link (an flist's /boot/vmlinuz-… to elsewhere).
	fi, err := os.Stat(images[0])
	if err != nil || !fi.Mode().IsRegular() {
		return Kernel{}, fmt.Errorf("%w: %s is not a file", ErrNoKernel, images[0])
	}
	return Kernel{Dir: dir, Image: images[0], Version: strings.TrimPrefix(filepath.Base(images[0]), "vmlinuz-")}, nil
}

// ModulesDir is lib/modules/<version>.
func (k Kernel) ModulesDir() string { return filepath.Join(k.Dir, "lib", "modules", k.Version) }

// Module is a loadable module file.
type Module struct {
	// Name is the module's name (dashes as underscores: virtio_pci).
	Name string
	// Path is its file.
	Path string
}

// Modules returns the files to load, in order, for the modules named:
// each after its dependencies, each once. Modules built into the kernel
// (modules.builtin) need nothing. A kernel without lib/modules/<version>
// is taken as having everything built in: if it has not, the guest's
// mount of its root says so.
func (k Kernel) Modules(names ...string) ([]Module, error) {
	dir := k.ModulesDir()
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	builtin, err := builtins(filepath.Join(dir, "modules.builtin"))
	if err != nil {
		return nil, err
	}
	files, err := index(dir)
	if err != nil {
		return nil, err
	}
	r := resolver{builtin: builtin, files: files, seen: map[string]bool{}}
	for _, n := range names {
		if err := r.add(canonical(n), nil); err != nil {
			return nil, err
		}
	}
	return r.out, nil
}

// resolver orders modules depth first: dependencies before dependents.
type resolver struct {
	builtin map[string]bool
	files   map[string]string
	seen    map[string]bool
	out     []Module
}

func (r *resolver) add(name string, chain []string) error {
	if r.seen[name] || r.builtin[name] {
		return nil
	}
	if len(chain) > 32 {
		return fmt.Errorf("%w: module dependencies too deep: %s", ErrNoKernel, strings.Join(chain, " → "))
	}
	path, ok := r.files[name]
	if !ok {
		if len(chain) > 0 {
			return fmt.Errorf("%w: kernel module %s (needed by %s) not found", ErrNoKernel, name, chain[len(chain)-1])
		}
		return fmt.Errorf("%w: kernel module %s not found (neither built in nor a .ko file)", ErrNoKernel, name)
	}
	r.seen[name] = true
	info, err := ReadModInfo(path)
	if err != nil {
		return err
	}
	for _, d := range info.Depends() {
		if err := r.add(d, append(chain, name)); err != nil {
			return err
		}
	}
	r.out = append(r.out, Module{Name: name, Path: path})
	return nil
}

// canonical is a module's name as the kernel knows it.
func canonical(name string) string { return strings.ReplaceAll(name, "-", "_") }

// moduleName is the name of the module in file path, or "".
func moduleName(path string) string {
	base, ok := strings.CutSuffix(filepath.Base(path), ".ko")
	if !ok {
		return ""
	}
	return canonical(base)
}

// builtins reads modules.builtin (one kernel/…/name.ko a line); a missing
// file lists nothing.
func builtins(path string) (map[string]bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if n := moduleName(strings.TrimSpace(sc.Text())); n != "" {
			out[n] = true
		}
	}
	return out, sc.Err()
}

// index maps each module's name to its file under dir. Compressed
// modules (.ko.xz, .ko.zst) are refused: the guest would need to
// decompress them.
func index(dir string) (map[string]string, error) {
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if n := moduleName(path); n != "" {
			files[n] = path
		} else if strings.Contains(d.Name(), ".ko.") {
			return fmt.Errorf("%w: %s is compressed (grid4 loads uncompressed modules)", ErrNoKernel, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kernel modules: %w", err)
	}
	return files, nil
}

// ModInfo is the content of a module's .modinfo section: key=value
// pairs, a key possibly repeated (alias=…).
type ModInfo map[string][]string

// Depends lists the modules this one needs loaded first.
func (m ModInfo) Depends() []string {
	var out []string
	for _, v := range m["depends"] {
		for d := range strings.SplitSeq(v, ",") {
			if d = strings.TrimSpace(d); d != "" {
				out = append(out, canonical(d))
			}
		}
	}
	return out
}

// ReadModInfo reads the .modinfo section of the module file path.
func ReadModInfo(path string) (ModInfo, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module %s: no .modinfo section", path)
	}
	b, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", path, err)
	}
	return ParseModInfo(b)
}

// ParseModInfo parses a .modinfo section: NUL-terminated key=value
// strings (runs of NULs between them are padding).
func ParseModInfo(b []byte) (ModInfo, error) {
	m := ModInfo{}
	for s := range bytes.SplitSeq(b, []byte{0}) {
		if len(s) == 0 {
			continue
		}
		k, v, ok := bytes.Cut(s, []byte("="))
		if !ok || len(k) == 0 {
			return nil, fmt.Errorf("modinfo: %q is not key=value", s)
		}
		m[string(k)] = append(m[string(k)], string(v))
	}
	return m, nil
}
