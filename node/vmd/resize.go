package vmd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Resizing a running machine (Service.Update): QEMU boots every machine
// with room to grow — maxcpus vCPU slots and maxmem of address space in
// memory slots — and plugs vCPUs and DIMMs in through QMP; the guest
// onlines them (the kernel, memhp_default_state, memory; the init,
// vCPUs). Nothing is unplugged from a running machine: QEMU 7.2 (Debian
// 12's) corrupts its heap when memory is plugged in after a vCPU or a
// DIMM was unplugged from a machine with virtiofs (vhost-user) devices,
// which every machine has. Fewer vCPUs or less memory need a restart.
const (
	// memoryBlock is the guest kernel's memory block on x86-64: DIMMs
	// are whole blocks.
	memoryBlock = 128 << 20
	// memorySlots is how many DIMMs a machine can take.
	memorySlots = 8
	// idCPU, idMemory and idBackend prefix the ids of what Update plugs
	// in.
	idCPU, idMemory, idBackend = "hcpu", "hdimm", "hmem"
)

// resizer is a backend that changes a running machine's vCPUs and memory.
type resizer interface {
	resize(ctx context.Context, dir string, cpu uint8, memory uint64) error
}

// resize plugs vCPUs and DIMMs in until the machine in dir has cpu vCPUs
// and memory bytes; ErrUnsupported for fewer vCPUs, less memory, memory
// not in whole 128 MiB blocks, or more than the machine has room for.
func (q qemu) resize(ctx context.Context, dir string, cpu uint8, memory uint64) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := qmpDial(ctx, q.control(dir))
	if err != nil {
		return err
	}
	defer c.close()
	// Both are checked before either changes anything.
	plugged, free, err := cpuSlots(c)
	if err != nil {
		return err
	}
	switch want, have := int(cpu), len(plugged); {
	case want < have:
		return fmt.Errorf("vmd: %w: %d vCPUs, fewer than the machine's %d: vCPUs are not removed from a running machine", ErrUnsupported, want, have)
	case want-have > len(free):
		return fmt.Errorf("vmd: %w: %d vCPUs: the machine has room for %d", ErrUnsupported, want, have+len(free))
	}
	ds, have, err := dimms(c)
	if err != nil {
		return err
	}
	switch {
	case memory < have:
		return fmt.Errorf("vmd: %w: %d MiB of memory, less than the machine's %d MiB: memory is not removed from a running machine", ErrUnsupported, memory>>20, have>>20)
	case (memory-have)%memoryBlock != 0:
		return fmt.Errorf("vmd: %w: memory grows in steps of %d MiB (from %d MiB to %d MiB)", ErrUnsupported, memoryBlock>>20, have>>20, memory>>20)
	case memory > have && len(ds) >= memorySlots:
		return fmt.Errorf("vmd: %w: the machine's %d memory slots are used", ErrUnsupported, memorySlots)
	}
	if memory > have {
		if err := plugMemory(c, ds, memory-have); err != nil {
			return err
		}
	}
	for _, h := range free[:int(cpu)-len(plugged)] {
		args := map[string]any{"driver": h.Type, "id": h.slotID()}
		for k, v := range h.Props {
			args[k] = v
		}
		if err := c.run("device_add", args, nil); err != nil {
			return err
		}
	}
	return nil
}

// hotCPU is an entry of query-hotpluggable-cpus: a vCPU slot, plugged
// when it has a QOM path.
type hotCPU struct {
	Type    string         `json:"type"`
	Props   map[string]int `json:"props"`
	QOMPath string         `json:"qom-path"`
}

// slotID names slot h's vCPU by its topology.
func (h hotCPU) slotID() string {
	return fmt.Sprintf("%s-%d-%d-%d", idCPU, h.Props["socket-id"], h.Props["core-id"], h.Props["thread-id"])
}

func cpuSlots(c *qmpConn) (plugged, free []hotCPU, err error) {
	var all []hotCPU
	if err := c.run("query-hotpluggable-cpus", nil, &all); err != nil {
		return nil, nil, err
	}
	for _, h := range all {
		if h.QOMPath != "" {
			plugged = append(plugged, h)
		} else {
			free = append(free, h)
		}
	}
	byTopology := func(a, b hotCPU) int {
		return cmp.Or(cmp.Compare(a.Props["socket-id"], b.Props["socket-id"]),
			cmp.Compare(a.Props["core-id"], b.Props["core-id"]), cmp.Compare(a.Props["thread-id"], b.Props["thread-id"]))
	}
	slices.SortFunc(free, byTopology)
	return plugged, free, nil
}

// dimm is an entry of query-memory-devices.
type dimm struct {
	Type string `json:"type"`
	Data struct {
		ID   string `json:"id"`
		Size uint64 `json:"size"`
	} `json:"data"`
}

// index is the number in a DIMM's id (hdimm<n>), -1 for others'.
func (d dimm) index() int {
	n, err := strconv.Atoi(strings.TrimPrefix(d.Data.ID, idMemory))
	if err != nil || !strings.HasPrefix(d.Data.ID, idMemory) {
		return -1
	}
	return n
}

func dimms(c *qmpConn) ([]dimm, uint64, error) {
	var sum struct {
		Base    uint64 `json:"base-memory"`
		Plugged uint64 `json:"plugged-memory"`
	}
	if err := c.run("query-memory-size-summary", nil, &sum); err != nil {
		return nil, 0, err
	}
	var all []dimm
	if err := c.run("query-memory-devices", nil, &all); err != nil {
		return nil, 0, err
	}
	all = slices.DeleteFunc(all, func(d dimm) bool { return d.index() < 0 })
	return all, sum.Base + sum.Plugged, nil
}

// plugMemory plugs a DIMM of size bytes in, after the DIMMs ds.
func plugMemory(c *qmpConn, ds []dimm, size uint64) error {
	n := 0 // after the highest index plugged
	for _, d := range ds {
		n = max(n, d.index()+1)
	}
	be := idBackend + strconv.Itoa(n)
	if err := c.run("object-add", map[string]any{"qom-type": "memory-backend-memfd", "id": be, "size": size, "share": true}, nil); err != nil {
		return err
	}
	if err := c.run("device_add", map[string]any{"driver": "pc-dimm", "id": idMemory + strconv.Itoa(n), "memdev": be}, nil); err != nil {
		_ = c.run("object-del", map[string]any{"id": be}, nil)
		return err
	}
	return nil
}

// bootMemory is a spec's memory as a machine gets it: DefaultMemory for
// none, whole MiB.
func bootMemory(m uint64) uint64 {
	if m == 0 {
		m = DefaultMemory
	}
	return (m + 1<<20 - 1) &^ (1<<20 - 1)
}

// roomToGrow is how far a machine booted with cpu vCPUs and memory bytes
// can grow in place: to twice its vCPUs or 8, not past the host's
// threads (the guest's kernel keeps per-CPU memory for every possible
// vCPU: a small machine on a big host would lose much of its memory to
// vCPUs it never gets), and to as much memory as the host has (address
// space only; the node's capacity bounds what workloads reserve), at
// least one more block, in whole GiB — and at least 1 GiB more than it
// boots with.
func roomToGrow(cpu uint8, memory uint64) (uint8, uint64) {
	maxCPU := max(int(cpu), min(runtime.NumCPU(), max(2*int(cpu), 8), 255))
	var si unix.Sysinfo_t
	host := uint64(0)
	if unix.Sysinfo(&si) == nil {
		host = uint64(si.Totalram) * uint64(si.Unit)
	}
	maxMem := max(host, memory+memoryBlock)
	return uint8(maxCPU), max((maxMem+1<<30-1)&^(1<<30-1), memory+1<<30)
}

// errResize says why a spec cannot be applied in place.
var errResize = errors.New("the machine differs in more than its CPU and memory")
