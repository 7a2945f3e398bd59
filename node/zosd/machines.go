package zosd

import (
	"fmt"
	"slices"
	"strings"

	"github.com/grid4/grid4/node/provisiond/zmachine"
	"github.com/grid4/grid4/node/vmd"
)

// The backends a farmer may allow machines to run on (--machine-backends),
// virtual machines (vmd's backends) first by default; the container
// backend only where the farmer names it.
const (
	BackendCloudHypervisor = vmd.CloudHypervisor
	BackendQEMUKVM         = vmd.QEMUKVM
	BackendQEMUTCG         = vmd.QEMUTCG
	BackendContainer       = "container"
)

// DefaultMachineBackends are what machines run on unless the farmer says
// otherwise: virtual machines, with KVM where there is one, emulated
// (slow, but on any host) otherwise.
var DefaultMachineBackends = []string{BackendCloudHypervisor, BackendQEMUKVM, BackendQEMUTCG}

var machineBackends = []string{BackendCloudHypervisor, BackendQEMUKVM, BackendQEMUTCG, BackendContainer}

// validateMachines checks --machine-backends (the flag drops repeats).
func (c *Config) validateMachines() error {
	for _, b := range c.MachineBackends {
		if !slices.Contains(machineBackends, b) {
			return fmt.Errorf("%w: --machine-backends: unknown backend %q (known: %s)", ErrUsage, b, strings.Join(machineBackends, ", "))
		}
	}
	return nil
}

// machineBackends is --machine-backends or its default.
func (c Config) machineBackends() []string {
	if len(c.MachineBackends) == 0 {
		return DefaultMachineBackends
	}
	return c.MachineBackends
}

// machineKinds are the kinds of backend the provisioning engine may run
// machines as, in the order of --machine-backends.
func (c Config) machineKinds() []zmachine.Kind {
	var kinds []zmachine.Kind
	for _, b := range c.machineBackends() {
		k := zmachine.VM
		if b == BackendContainer {
			k = zmachine.Container
		}
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	return kinds
}

// vmBackends are the virtual machine backends of --machine-backends, in
// its order: vmd's allow-list (empty, never nil, when the farmer allows
// only containers: vmd then runs none).
func (c Config) vmBackends() []string {
	out := []string{}
	for _, b := range c.machineBackends() {
		if b != BackendContainer {
			out = append(out, b)
		}
	}
	return out
}
