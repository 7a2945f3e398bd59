package hostinfo

import (
	"os"
	"path"
	"strconv"
	"strings"
)

const pciDevicesPath = "/sys/bus/pci/devices"

// GPU is a PCI display controller (class 0x03xxxx: VGA, XGA, 3D and other
// display controllers).
type GPU struct {
	// Slot is the PCI address ("0000:01:00.0").
	Slot string `json:"slot"`
	// Vendor and Device are the PCI ids as the kernel writes them
	// ("0x10de", "0x2204").
	Vendor string `json:"vendor"`
	Device string `json:"device"`
	// Class is the PCI class code ("0x030000").
	Class string `json:"class"`
	// VendorName is the vendor's name when it is a well-known display
	// vendor, else "".
	VendorName string `json:"vendor_name,omitempty"`
}

// GPUs lists the PCI display controllers. The fact is unknown when
// /sys/bus/pci/devices cannot be read (no PCI bus, or sysfs not mounted);
// a device whose ids cannot be read is left out, since a GPU nobody can
// identify cannot be offered.
func (p *Prober) GPUs() Fact[[]GPU] {
	entries, err := os.ReadDir(p.path(pciDevicesPath))
	if err != nil {
		return unknown[[]GPU](pciDevicesPath, "%s", p.describe(pciDevicesPath, err))
	}
	gpus := []GPU{}
	for _, e := range entries {
		dir := path.Join(pciDevicesPath, e.Name())
		class, err := p.readLine(path.Join(dir, "class"))
		if err != nil {
			continue
		}
		c, err := strconv.ParseUint(class, 0, 32)
		if err != nil || c>>16 != 0x03 {
			continue
		}
		vendor, verr := p.readLine(path.Join(dir, "vendor"))
		device, derr := p.readLine(path.Join(dir, "device"))
		if verr != nil || derr != nil {
			continue
		}
		gpus = append(gpus, GPU{
			Slot:       e.Name(),
			Vendor:     vendor,
			Device:     device,
			Class:      class,
			VendorName: displayVendor(vendor),
		})
	}
	return known(gpus, pciDevicesPath)
}

// displayVendor names the vendors of display controllers a node is likely
// to have, real and emulated, so that a report can tell a GPU from a BMC's
// VGA port. It is a switch rather than a table so that the package keeps no
// mutable state.
func displayVendor(id string) string {
	switch strings.ToLower(id) {
	case "0x10de":
		return "NVIDIA"
	case "0x1002":
		return "AMD"
	case "0x8086":
		return "Intel"
	case "0x1a03":
		return "ASPEED"
	case "0x102b":
		return "Matrox"
	case "0x1234":
		return "QEMU"
	case "0x1af4":
		return "Red Hat (virtio)"
	case "0x1b36":
		return "Red Hat (QXL)"
	case "0x15ad":
		return "VMware"
	case "0x80ee":
		return "VirtualBox"
	case "0x1414":
		return "Microsoft (Hyper-V)"
	}
	return ""
}
