package vmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grid4/grid4/internal/atomicfile"
	"github.com/grid4/grid4/internal/ctxsleep"
	"github.com/grid4/grid4/internal/mountinfo"
	"github.com/grid4/grid4/internal/process"
	"github.com/grid4/grid4/node/internal/iproute"
	"github.com/grid4/grid4/node/internal/linkguard"
	"github.com/grid4/grid4/node/internal/record"
)

// machine is where one machine's parts are.
type machine struct {
	id    string // the workload's
	short string // iproute.ShortID(salt + id)
	dir   string
}

func (s *Service) machine(id string) machine {
	short := iproute.ShortID(s.c.Salt + id)
	return machine{id: id, short: short, dir: filepath.Join(machinesDir(s.c.Dir), short)}
}

func (m machine) name() string             { return TapPrefix + m.short }
func (m machine) backendFile() string      { return filepath.Join(m.dir, "backend") }
func (m machine) initrd() string           { return filepath.Join(m.dir, "initrd.img") }
func (m machine) statusFile() string       { return filepath.Join(m.dir, "status") }
func (m machine) pidFile() string          { return filepath.Join(m.dir, "vmm.pid") }
func (m machine) processLog() string       { return filepath.Join(m.dir, "processes.log") }
func (m machine) tap(i int) string         { return m.name() + strconv.Itoa(i) }
func (m machine) socket(tag string) string { return filepath.Join(m.dir, tag+".sock") }
func (m machine) fsdPid(tag string) string { return filepath.Join(m.dir, tag+".virtiofsd.pid") }
func (m machine) readOnly(i int) string    { return filepath.Join(m.dir, "ro", strconv.Itoa(i)) }

// mac is the MAC of card i when the Spec gives none: locally administered,
// derived from the salt, the ID and i.
func (s *Service) mac(id string, i int) string {
	h := iproute.ShortID(s.c.Salt + id + "/nic/" + strconv.Itoa(i))
	return "02:" + h[0:2] + ":" + h[2:4] + ":" + h[4:6] + ":" + h[6:8] + ":" + h[8:10]
}

// hypervisorOf is the backend machine m was made with (nil: none
// recorded).
func (s *Service) hypervisorOf(m machine) hypervisor {
	b, err := os.ReadFile(m.backendFile())
	if err != nil {
		return nil
	}
	return s.hvs[strings.TrimSpace(string(b))]
}

// running returns m's backend and its monitor's pid if it runs.
func (s *Service) running(m machine) (hypervisor, int, bool) {
	hv := s.hypervisorOf(m)
	if hv == nil {
		return nil, 0, false
	}
	pid, ok := process.Running(m.pidFile(), hv.control(m.dir))
	return hv, pid, ok
}

// Start runs the machine sp describes. A machine already running (or
// paused) with the same Spec is left alone; one that is stopped, or runs
// with another Spec, is removed and made again from sp.
func (s *Service) Start(ctx context.Context, sp Spec) error {
	if err := sp.check(); err != nil {
		return err
	}
	hv, err := s.backend()
	if err != nil {
		return err
	}
	defer s.lock(sp.ID)()
	m := s.machine(sp.ID)
	want, err := json.Marshal(sp)
	if err != nil {
		return fmt.Errorf("vmd: %w", err)
	}
	if old, _, ok := s.running(m); ok {
		if record.Holds(m.dir, want) {
			return nil
		}
		s.log.Info("machine runs with another spec: making it again", "id", sp.ID)
		s.shutdown(ctx, m, old)
	}
	if err := s.teardown(ctx, m); err != nil {
		return err
	}
	if err := record.Write(m.dir, want); err != nil {
		return fmt.Errorf("vmd: %w", err)
	}
	if err := atomicfile.WriteFile(m.backendFile(), []byte(hv.name()+"\n"), 0o600); err != nil {
		return fmt.Errorf("vmd: %w", err)
	}
	if err := s.create(ctx, m, sp, hv); err != nil {
		// Leave nothing half made; the record goes too, so that State
		// says not_found rather than a machine that never ran.
		if terr := s.teardown(ctx, m); terr != nil {
			s.log.Warn("cleaning up after a failed start", "id", sp.ID, "err", terr)
		}
		return err
	}
	s.log.Info("machine started", "id", sp.ID, "machine", m.name(), "backend", hv.name())
	return nil
}

// Stop powers the machine off (the ACPI power button; the guest's init
// ends the entrypoint), kills it after Config.StopGrace, and removes its
// processes, TAP devices, sockets and directory (the console stays).
// Stopping an unknown machine succeeds.
func (s *Service) Stop(ctx context.Context, id string) error {
	defer s.lock(id)()
	m := s.machine(id)
	if hv, _, ok := s.running(m); ok {
		s.shutdown(ctx, m, hv)
	}
	if err := s.teardown(ctx, m); err != nil {
		return err
	}
	s.log.Info("machine stopped", "id", id, "machine", m.name())
	return nil
}

// shutdown presses the power button and waits up to StopGrace for the
// monitor to end (teardown kills what remains).
func (s *Service) shutdown(ctx context.Context, m machine, hv hypervisor) {
	if p, err := hv.paused(ctx, m.dir); err == nil && p {
		// A paused guest cannot act on the button.
		if err := hv.resume(ctx, m.dir); err != nil {
			s.log.Warn("resume before stop", "id", m.id, "err", err)
		}
	}
	if err := hv.powerdown(ctx, m.dir); err != nil {
		s.log.Warn("power button", "id", m.id, "err", err)
		return
	}
	off := ctxsleep.Until(ctx, s.c.StopGrace, 50*time.Millisecond, func(context.Context) bool {
		_, _, ok := s.running(m)
		return !ok
	})
	if !off {
		s.log.Warn("machine did not power off in time: killing it", "id", m.id, "grace", s.c.StopGrace)
	}
}

// teardown removes whatever exists of the machine: its processes
// (killed), TAP devices, read-only bind mounts and directory.
func (s *Service) teardown(ctx context.Context, m machine) error {
	var errs []error
	for _, hv := range s.hvs {
		if _, ok := process.Running(m.pidFile(), hv.control(m.dir)); ok {
			errs = append(errs, process.Stop(ctx, m.pidFile(), hv.control(m.dir), 2*time.Second))
		}
	}
	pids, _ := filepath.Glob(filepath.Join(m.dir, "*.virtiofsd.pid"))
	for _, p := range pids {
		tag := strings.TrimSuffix(filepath.Base(p), ".virtiofsd.pid")
		errs = append(errs, process.Stop(ctx, p, m.socket(tag), 2*time.Second))
	}
	for i := range MaxNICs {
		if iproute.LinkExists(m.tap(i)) {
			errs = append(errs, linkguard.Remove("", m.tap(i)), s.ip.Do(ctx, "link", "del", "dev", m.tap(i)))
		}
	}
	binds, _ := filepath.Glob(filepath.Join(m.dir, "ro", "*"))
	for _, b := range binds {
		errs = append(errs, unbind(b))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("vmd: removing %s: %w", m.id, err)
	}
	if err := mountinfo.RemoveAll(m.dir); err != nil {
		return fmt.Errorf("vmd: %w", err)
	}
	return nil
}

// Pause stops the machine's virtual CPUs. Pausing a paused machine
// succeeds.
func (s *Service) Pause(ctx context.Context, id string) error {
	return s.setPaused(ctx, id, Paused)
}

// Resume continues a paused machine. Resuming a running machine succeeds.
func (s *Service) Resume(ctx context.Context, id string) error {
	return s.setPaused(ctx, id, Running)
}

func (s *Service) setPaused(ctx context.Context, id string, want Status) error {
	defer s.lock(id)()
	m := s.machine(id)
	st, err := s.state(ctx, m)
	if err != nil {
		return err
	}
	hv := s.hypervisorOf(m)
	switch {
	case st.Status == want:
		return nil
	case st.Status == Stopped || hv == nil:
		return fmt.Errorf("vmd: %s: %w", id, ErrNotRunning)
	case want == Paused:
		return hv.pause(ctx, m.dir)
	}
	return hv.resume(ctx, m.dir)
}

// Update changes a running machine's CPU and memory to sp's in place,
// without restarting it, when sp differs from the spec it runs with in
// those alone and its backend can: QEMU plugs vCPUs (up to twice the
// machine's or 8, within the host's threads) and memory (whole 128 MiB
// blocks, up to 8 times) in, under vmd's own kernel. ErrUnsupported
// otherwise — a spec that differs in more, a paused machine, fewer vCPUs
// or less memory, an image's own kernel, a change the backend cannot make —
// and the caller restarts the machine with sp (Start). The spec on record
// takes the new figures, so that the machine boots with them next time.
func (s *Service) Update(ctx context.Context, sp Spec) error {
	defer s.lock(sp.ID)()
	m := s.machine(sp.ID)
	st, err := s.state(ctx, m)
	if err != nil {
		return err
	}
	if st.Status == Stopped {
		return fmt.Errorf("vmd: %s: %w", sp.ID, ErrNotRunning)
	}
	if err := sp.check(); err != nil {
		return err
	}
	old, err := readSpec(m)
	if err != nil {
		return err
	}
	want, err := json.Marshal(sp)
	if err != nil {
		return fmt.Errorf("vmd: %w", err)
	}
	if record.Holds(m.dir, want) {
		return nil
	}
	old.CPU, old.Memory = sp.CPU, sp.Memory
	if same, _ := json.Marshal(old); string(same) != string(want) {
		return fmt.Errorf("vmd: %w: %s: %w", ErrUnsupported, sp.ID, errResize)
	}
	hv := s.hypervisorOf(m)
	r, ok := hv.(resizer)
	switch {
	case sp.KernelDir != "":
		// Only vmd's own kernel is known to take memory and vCPUs
		// while it runs (and to online them: its command line).
		return fmt.Errorf("vmd: %w: %s boots the image's own kernel: resized by a restart", ErrUnsupported, sp.ID)
	case !ok:
		return fmt.Errorf("vmd: %w: %s cannot change the CPU or memory of a running machine", ErrUnsupported, st.Backend)
	case st.Status == Paused:
		return fmt.Errorf("vmd: %w: %s is paused: the guest cannot take or give back CPUs and memory", ErrUnsupported, sp.ID)
	}
	if err := r.resize(ctx, m.dir, max(sp.CPU, 1), bootMemory(sp.Memory)); err != nil {
		return err
	}
	if err := record.Write(m.dir, want); err != nil {
		return fmt.Errorf("vmd: %w", err)
	}
	s.log.Info("machine resized in place", "id", sp.ID, "cpu", sp.CPU, "memory", sp.Memory)
	return nil
}

// State returns the machine's state; ErrNotFound when vmd has no such
// machine.
func (s *Service) State(ctx context.Context, id string) (State, error) {
	defer s.lock(id)()
	return s.state(ctx, s.machine(id))
}

func readSpec(m machine) (Spec, error) {
	sp, err := record.Read[Spec](m.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return Spec{}, fmt.Errorf("vmd: %w: no machine %s", ErrNotFound, m.id)
	}
	if err != nil {
		return Spec{}, fmt.Errorf("vmd: %w", err)
	}
	return sp, nil
}

func (s *Service) state(ctx context.Context, m machine) (State, error) {
	sp, err := readSpec(m)
	if err != nil {
		return State{}, err
	}
	st := State{ID: m.id, Status: Stopped, Console: sp.Console}
	hv, pid, ok := s.running(m)
	if hv != nil {
		st.Backend = hv.name()
	}
	if !ok {
		st.ExitReason = exitReason(m)
		return st, nil
	}
	st.Status, st.Pid = Running, pid
	if fi, err := os.Stat(m.pidFile()); err == nil {
		st.Started = fi.ModTime().UTC()
	}
	paused, err := hv.paused(ctx, m.dir)
	if err != nil {
		// It may be ending (QEMU closes its control socket before it
		// exits): give it a moment.
		for range 40 {
			if _, _, ok := s.running(m); !ok {
				return s.state(ctx, m)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return State{}, err
	}
	if paused {
		st.Status = Paused
	}
	return st, nil
}

// exitReason is the init's last word (its status line), else what the
// monitor said last.
func exitReason(m machine) string {
	if line := lastLine(m.statusFile()); line != "" {
		return line
	}
	if _, err := os.Stat(m.dir); err != nil {
		return ""
	}
	if line := lastLine(m.processLog()); line != "" {
		return "the hypervisor ended: " + line
	}
	return "the hypervisor ended (the node rebooted, or it was killed)"
}

// lastLine is the last non-empty line of a small file ("" if none).
func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.ReplaceAll(string(b), "\r", ""), "\n")
	for _, l := range slices.Backward(lines) {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// List returns the state of every machine vmd has.
func (s *Service) List(ctx context.Context) ([]State, error) {
	return record.States(ctx, machinesDir(s.c.Dir), s.State, ErrNotFound)
}
