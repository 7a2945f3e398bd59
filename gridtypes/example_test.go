package gridtypes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/keys"
)

// twinKeys is the one-twin key directory a user's program has at hand:
// the node asks the registrar instead.
type twinKeys map[uint64][]byte

// TwinPublicKey implements gridtypes.TwinKeys.
func (t twinKeys) TwinPublicKey(_ context.Context, id uint64) ([]byte, error) {
	return t[id], nil
}

// data encodes a workload's typed data; the wire carries it as raw JSON so
// that each type keeps its own schema.
func data(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		log.Fatal(err)
	}
	return b
}

// Example builds a deployment (a private network, a disk and a machine
// using both), checks it with the rules the node applies, signs it as its
// owner and verifies the signature as the node will. It imports gridtypes
// and keys only: what a user's program needs to deploy, without the
// engine. The JSON printed last is what zos-api-light's deployment.deploy
// takes.
func Example() {
	const twin = 7
	kp, err := keys.FromMnemonic(keys.Ed25519, keys.DevPhrase, "", "//alice")
	if err != nil {
		log.Fatal(err)
	}
	d := gridtypes.Deployment{
		TwinID:      twin,
		Description: "a machine with a disk",
		Workloads: []gridtypes.Workload{
			{Name: "net", Type: gridtypes.NetworkLightType, Data: data(gridtypes.NetworkLightData{Subnet: "10.20.1.0/24"})},
			{Name: "disk", Type: gridtypes.ZMountType, Data: data(gridtypes.ZMountData{Size: 10 * gridtypes.GiB})},
			{Name: "vm", Type: gridtypes.ZMachineLightType, Data: data(gridtypes.ZMachineLightData{
				Flist:           "https://hub.grid.tf/tf-official-apps/base:latest.flist",
				Entrypoint:      "/sbin/zinit init",
				ComputeCapacity: gridtypes.ComputeCapacity{CPU: 2, Memory: 2 * gridtypes.GiB},
				Network:         gridtypes.MachineNetwork{Interfaces: []gridtypes.MachineInterface{{Network: "net", IP: "10.20.1.5"}}},
				Mounts:          []gridtypes.MachineMount{{Name: "disk", Mountpoint: "/data"}},
			})},
		},
	}
	// Validate refuses what the node would refuse, naming the field.
	if err := d.Validate(); err != nil {
		log.Fatal(err)
	}
	need, err := d.Resources()
	if err != nil {
		log.Fatal(err)
	}
	// Sign last: any change but to signatures invalidates them.
	if err := d.Sign(twin, kp); err != nil {
		log.Fatal(err)
	}
	hash, err := d.HashHex()
	if err != nil {
		log.Fatal(err)
	}
	verr := gridtypes.VerifySignatures(context.Background(), twinKeys{twin: kp.Public().Key}, &d, d.SignatureRequirement)
	body, err := d.Marshal()
	if err != nil {
		log.Fatal(err)
	}
	back, err := gridtypes.ParseDeployment(body)
	if err != nil {
		log.Fatal(err)
	}
	again, _ := back.HashHex()

	fmt.Println("cpu:", need.CRU, "memory GiB:", need.MRU/gridtypes.GiB, "disk GiB:", need.SRU/gridtypes.GiB)
	fmt.Println("hash:", hash)
	fmt.Println("signatures:", len(d.SignatureRequirement.Signatures), "verified:", verr == nil)
	fmt.Println("same hash after the wire:", again == hash)
	// Output:
	// cpu: 2 memory GiB: 2 disk GiB: 10
	// hash: 44fb7e84e2d36ccf96c13a046639f1cffe72302bea2c22703f9483d8a39b64c0
	// signatures: 1 verified: true
	// same hash after the wire: true
}
