// Package hostinfo reads a node's capacity and hardware facts from the
// machine it runs on: what noded reports to the registrar (see the "noded"
// module of docs/node.md and the Grid v4 seed, "Node Registration
// Process").
//
// Every probe reads files under a configurable root (Config.Root, "/" on a
// live system), so tests and tools can point it at a fixture tree that
// mimics /proc and /sys of another machine. Only the management interface's
// addresses come from elsewhere: from an AddrSource, which on a live system
// is the kernel through package net.
//
// A fact that cannot be read is never guessed: each probe returns a
// Fact[T] whose Known is false and whose Reason says why (file missing,
// unreadable, malformed). Facts.Missing lists them all.
//
// # Sources and rules
//
//   - CRU: the logical CPUs the kernel has online, counted from
//     /sys/devices/system/cpu/online ("0-3,8-11"); when that file is absent,
//     the "processor" entries of /proc/cpuinfo. This is the machine's count,
//     not the CPU affinity of this process (runtime.NumCPU), which a
//     container or cpuset can narrow.
//   - MRU: MemTotal of /proc/meminfo, in bytes.
//   - SRU and HRU: the whole disks listed in /sys/block. A disk counts as
//     SSD (SRU) when queue/rotational is 0 and as HDD (HRU) when it is 1; its
//     size is the size file times 512 (the kernel always counts 512-byte
//     sectors there, whatever the device's block size). Skipped, each with
//     the rule that skipped it: virtual devices (loop*, ram*, zram*, dm-*,
//     md<N>, nbd*, and anything without a device link: no hardware behind
//     it), optical drives (sr*) and floppies (fd*), removable media
//     (removable = 1: USB sticks, card readers, the boot stick of a ZOS
//     node), partitions (a partition file), hidden NVMe multipath paths
//     (hidden = 1: the namespace itself is counted once), eMMC boot and
//     RPMB areas (mmcblk<N>boot<M>, mmcblk<N>rpmb) and empty devices (size
//     0). A disk whose size or rotational flag cannot be read is not counted
//     and is reported as a problem rather than guessed.
//   - GPUs: PCI devices of /sys/bus/pci/devices whose class is 0x03xxxx
//     (display controllers). All are listed, including BMC and emulated VGA
//     adapters; VendorName helps tell them apart.
//   - Secure boot: the SecureBoot EFI variable (GUID
//     8be4df61-93ca-11d2-aa0d-00e098032b8c) in
//     /sys/firmware/efi/efivars: 4 bytes of attributes, then 1 byte, 1 when
//     secure boot is on. A machine whose /sys/firmware shows other firmware
//     but no efi did not boot with EFI, so secure boot is known to be off;
//     an empty or missing /sys/firmware (container runtimes mask it) leaves
//     it unknown.
//   - Virtualization: the hypervisor flag in /proc/cpuinfo; DMI vendor and
//     product names (/sys/class/dmi/id) of known hypervisors and clouds; and
//     container markers (/.dockerenv, /run/.containerenv,
//     /run/systemd/container, container runtimes in /proc/1/cgroup,
//     container= in /proc/1/environ). Every piece of evidence found is
//     reported; the machine is virtualized when there is any.
//   - Serial number: /sys/class/dmi/id/product_serial. Placeholders the
//     firmware vendor left ("To Be Filled By O.E.M.", "Default string",
//     "0", "" and similar) are reported as missing.
//   - Management interface: the configured name, or else the interface of
//     the default route (/proc/net/route, then /proc/net/ipv6_route); its
//     MAC from /sys/class/net/<name>/address; its addresses from the
//     AddrSource, without prefix length, sorted, and without loopback,
//     link-local (fe80::/10, 169.254.0.0/16) and multicast addresses:
//     link-local addresses are only meaningful on the link itself, so they
//     tell the grid nothing about how to reach the node.
package hostinfo
