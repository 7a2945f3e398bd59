package hostinfo

import (
	"errors"
	"os"
)

const (
	firmwarePath = "/sys/firmware"
	efiPath      = "/sys/firmware/efi"
	efivarsPath  = "/sys/firmware/efi/efivars"
	// secureBootVar is the SecureBoot variable of the EFI global variable
	// namespace (EFI_GLOBAL_VARIABLE, UEFI specification 3.3).
	secureBootVar = efivarsPath + "/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
)

// SecureBoot tells whether the machine booted with UEFI secure boot on.
//
// On efivarfs a variable is 4 bytes of attributes followed by its data;
// SecureBoot's data is one byte, 1 when on. A machine whose /sys/firmware
// shows other firmware (acpi, devicetree) but no efi booted without EFI,
// where secure boot does not exist: known off. Firmware without secure boot
// support has no SecureBoot variable at all: known off too. Unknown means
// the firmware cannot be seen (/sys/firmware missing or empty: container
// runtimes mask it) or EFI is there but its variables cannot be read
// (efivarfs not mounted, permissions, malformed).
func (p *Prober) SecureBoot() Fact[bool] {
	if fw, err := os.ReadDir(p.path(firmwarePath)); err != nil || len(fw) == 0 {
		return unknown[bool](firmwarePath, "%s is missing or empty (masked in a container?): the firmware cannot be seen", firmwarePath)
	}
	if !p.exists(efiPath) {
		f := known(false, efiPath)
		f.Reason = "not EFI: " + efiPath + " does not exist (booted by BIOS or a device tree, without UEFI)"
		return f
	}
	if entries, err := os.ReadDir(p.path(efivarsPath)); err != nil || len(entries) == 0 {
		// An EFI machine always has variables (BootOrder, ...): an empty or
		// missing directory means efivarfs is not mounted there.
		return unknown[bool](efivarsPath, "EFI variables unavailable: %s is missing or empty (efivarfs not mounted?)", efivarsPath)
	}
	b, err := p.readFile(secureBootVar)
	switch {
	case errors.Is(err, os.ErrNotExist):
		f := known(false, secureBootVar)
		f.Reason = "firmware has no SecureBoot variable (no secure boot support)"
		return f
	case err != nil:
		return unknown[bool](secureBootVar, "%s", p.describe(secureBootVar, err))
	case len(b) != 5:
		return unknown[bool](secureBootVar, "SecureBoot variable is %d bytes, want 4 of attributes and 1 of value", len(b))
	}
	switch b[4] {
	case 0:
		return known(false, secureBootVar)
	case 1:
		return known(true, secureBootVar)
	}
	return unknown[bool](secureBootVar, "SecureBoot variable has value %d, want 0 or 1", b[4])
}
