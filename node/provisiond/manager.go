package provisiond

import (
	"context"
	"fmt"

	"github.com/grid4/grid4/gridtypes"
)

// Task is what a type manager works on: one workload of one deployment.
type Task struct {
	// TwinID and DeploymentID name the deployment.
	TwinID       uint64
	DeploymentID uint64
	// Workload is the workload as the deployment version being applied
	// defines it (for a deprovision: its last version).
	Workload gridtypes.Workload
	// State is the workload's state before the operation (for Restore:
	// StateOk or StatePaused; for Update: its state when the update was
	// accepted, not the init it reads while the update is queued).
	State gridtypes.State
	// Siblings are the results of the deployment's other workloads when
	// the operation starts (those that have one), by name: a log stream
	// checks the machine it follows, a machine its network.
	Siblings map[string]gridtypes.Result
}

// ID is a name for the workload unique on the node and safe in file names
// and device names: "<twin>-<deployment>-<workload>".
func (t Task) ID() string {
	return fmt.Sprintf("%d-%d-%s", t.TwinID, t.DeploymentID, t.Workload.Name)
}

// Sibling is the ID of another workload of the same deployment (the
// machine a log stream reads, the network a machine joins).
func (t Task) Sibling(name string) string {
	return fmt.Sprintf("%d-%d-%s", t.TwinID, t.DeploymentID, name)
}

// Manager makes and removes the workloads of one type. Both methods must be
// idempotent: the engine calls them again after a crash, and Deprovision
// also cleans up after a failed Provision, so it must accept a workload
// that exists only in part, or not at all.
type Manager interface {
	// Provision creates the workload and returns what to report about it
	// (JSON-encodable; nil for nothing).
	Provision(ctx context.Context, t Task) (any, error)
	// Deprovision removes the workload and everything it holds.
	Deprovision(ctx context.Context, t Task) error
}

// Updater is implemented by managers that change a workload in place.
// Workloads of other types are redeployed (Deprovision, then Provision).
type Updater interface {
	// Update brings the workload to t.Workload; idempotent.
	Update(ctx context.Context, t Task) (any, error)
}

// Pauser is implemented by managers whose workloads can be suspended.
type Pauser interface {
	// Pause suspends the workload, keeping its resources; idempotent.
	Pause(ctx context.Context, t Task) error
	// Resume undoes Pause; idempotent.
	Resume(ctx context.Context, t Task) error
}

// Restorer is implemented by managers whose workloads hold something a
// restart of the node loses: a mount, a namespace, a firewall rule, a
// process, a log stream. Every time the engine starts, before it runs the
// queue, it calls Restore for each workload in state ok or paused, storage
// first, then networks, machines and logs (the processing order). Restore
// brings back what is gone and checks what should have survived (an image
// file, a volume's data); it must be idempotent and cheap when nothing is
// missing (a process restart, not a reboot, is the common case). When it
// returns an error the engine sets the workload to error with that reason:
// a workload the node cannot bring back never reads ok.
type Restorer interface {
	Restore(ctx context.Context, t Task) error
}
