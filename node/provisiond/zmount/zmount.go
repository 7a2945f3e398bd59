// Package zmount is the type manager of ZMount workloads: raw disks for
// machines. storaged owns the space: it makes each disk as a sparse image
// file of the asked size in one of its pools, and refuses a disk its
// pools cannot hold (what it promised to existing disks counts, not only
// what statfs shows free). The manager asks for the image, reports where
// it is, checks it is still there when the node restarts and gives it
// back when the workload goes.
package zmount

import (
	"context"
	"errors"
	"fmt"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/storaged"
)

// ErrNoSpace is matched by the refusal of a disk no pool can hold.
var ErrNoSpace = storaged.ErrNoSpace

// Storage is what the manager needs of storaged (storaged.Stub over the
// bus, *storaged.Service in-process).
type Storage interface {
	Allocate(ctx context.Context, r storaged.Request) (storaged.Allocation, error)
	Get(ctx context.Context, id string) (storaged.Allocation, error)
	Release(ctx context.Context, id string) error
}

// Manager makes ZMount disks through storaged.
type Manager struct{ storage Storage }

// New returns a manager taking its disks from storage.
func New(storage Storage) (*Manager, error) {
	if storage == nil {
		return nil, errors.New("zmount: a storage is required")
	}
	return &Manager{storage: storage}, nil
}

// Result is what a ZMount workload reports.
type Result struct {
	// Path is the disk image on the node.
	Path string `json:"path"`
	// Size is its size in bytes.
	Size uint64 `json:"size"`
}

// Provision makes the disk: a sparse image of the asked size. An existing
// disk of that size is kept as it is (the call is idempotent); one of
// another size is grown (storaged refuses shrinking).
func (m *Manager) Provision(ctx context.Context, t provisiond.Task) (any, error) {
	var d gridtypes.ZMountData
	if err := t.Workload.DecodeData(&d); err != nil {
		return nil, fmt.Errorf("zmount: %w", err)
	}
	a, err := m.storage.Allocate(ctx, storaged.Request{ID: t.ID(), Kind: storaged.ZMount, Size: d.Size})
	if err != nil {
		return nil, fmt.Errorf("zmount: %w", err)
	}
	return Result{Path: a.Path, Size: a.Size}, nil
}

// Update grows the disk to the new size (validation refuses shrinking).
func (m *Manager) Update(ctx context.Context, t provisiond.Task) (any, error) {
	return m.Provision(ctx, t)
}

// Restore implements provisiond.Restorer: the image must still be there,
// of its size (nothing to bring back: a file survives a reboot, and a
// disk that did not is reported rather than silently made empty again).
func (m *Manager) Restore(ctx context.Context, t provisiond.Task) error {
	if _, err := m.storage.Get(ctx, t.ID()); err != nil {
		return fmt.Errorf("zmount: %w", err)
	}
	return nil
}

// Deprovision gives the disk back to storaged, which removes the image.
func (m *Manager) Deprovision(ctx context.Context, t provisiond.Task) error {
	if err := m.storage.Release(ctx, t.ID()); err != nil {
		return fmt.Errorf("zmount: %w", err)
	}
	return nil
}
