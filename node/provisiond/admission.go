package provisiond

import (
	"context"
	"fmt"

	"github.com/grid4/grid4/gridtypes"
)

// Admission decides whether a deployment may run on this node: the
// contract check of docs/contracts.md ("What a node does"). Contracts is
// the registrar-backed one.
type Admission interface {
	// Admit returns nil when the contract d names lets d, which needs
	// need, run on this node; otherwise an error matching
	// gridtypes.ErrContract that says why.
	Admit(ctx context.Context, d *gridtypes.Deployment, need gridtypes.Resources) (Grant, error)
}

// Grant is what an admitted deployment's contract allows.
type Grant struct {
	// Exclusive: the contract covers this deployment alone (a node
	// contract), so no other live deployment may name it. A rent contract
	// covers every deployment of its twin on the node.
	Exclusive bool
}

// admitContract runs the Admission, when there is one.
func (e *Engine) admitContract(ctx context.Context, d *gridtypes.Deployment, need gridtypes.Resources) (Grant, error) {
	if e.c.Admission == nil {
		return Grant{}, nil
	}
	return e.c.Admission.Admit(ctx, d, need)
}

// admitStored checks that the contract of a stored deployment still lets
// it run. A deployment accepted before the node enforced contracts has
// none and passes.
func (e *Engine) admitStored(ctx context.Context, d gridtypes.Deployment) error {
	if d.ContractID == 0 {
		return nil
	}
	stripResults(&d)
	need, err := d.Resources()
	if err != nil {
		return fmt.Errorf("stored deployment %d: %w", d.ID, err)
	}
	if d.Version == 0 {
		// Version 0 was signed, and its contract made, with id 0: the
		// node assigned the id afterwards.
		d.ID = 0
	}
	_, err = e.admitContract(ctx, &d, need)
	return err
}

// checkContractFree refuses an exclusive contract that another live
// deployment than self already runs under: two deployments with the same
// content have the same hash, and one node contract pays for one.
func checkContractFree(s txStore, g Grant, contract, self uint64) error {
	if !g.Exclusive || contract == 0 {
		return nil
	}
	var taken uint64
	err := s.records(func(r *gridtypes.Record) bool {
		if r.Deployment.ID != self && !r.Deleted && r.Deployment.ContractID == contract {
			taken = r.Deployment.ID
			return false
		}
		return true
	})
	if err != nil {
		return err
	}
	if taken != 0 {
		return fmt.Errorf("%w: contract %d already covers deployment %d on this node: make a node contract for this deployment", gridtypes.ErrContract, contract, taken)
	}
	return nil
}
