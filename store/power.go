package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/grid4/grid4/registrar/api"
)

// SetPowerTarget records node nodeID's power target (api.PowerOn or
// api.PowerOff), set by twin by at at. ErrNotFound if there is no such
// node, ErrInvalid for another target.
func (db *DB) SetPowerTarget(ctx context.Context, nodeID uint64, target string, by uint64, at time.Time) error {
	id, ok := idArg(nodeID)
	if !ok {
		return fmt.Errorf("store: power target of node %d: %w", nodeID, ErrNotFound)
	}
	if target != api.PowerOn && target != api.PowerOff {
		return fmt.Errorf("store: power target %q of node %d: %w", target, nodeID, ErrInvalid)
	}
	setBy, err := toInt64("set_by", by)
	if err != nil {
		return fmt.Errorf("store: power target of node %d: %w", nodeID, err)
	}
	return db.execOwned(ctx, fmt.Sprintf("power target of node %d", nodeID),
		`INSERT INTO node_power (node_id, power_target, set_by, set_at) VALUES ($1, $2, $3, $4)
		 ON CONFLICT (node_id) DO UPDATE SET power_target = excluded.power_target, set_by = excluded.set_by, set_at = excluded.set_at`,
		id, target, setBy, db.ts(at))
}

// PowerTarget returns node nodeID's power target: api.PowerOn with no
// SetBy when none was set. ErrNotFound if there is no such node.
func (db *DB) PowerTarget(ctx context.Context, nodeID uint64) (api.NodePower, error) {
	if _, err := db.Node(ctx, nodeID); err != nil {
		return api.NodePower{}, fmt.Errorf("store: power target of node %d: %w", nodeID, err)
	}
	p := api.NodePower{NodeID: nodeID, PowerTarget: api.PowerOn}
	var at time.Time
	err := db.ro.QueryRowContext(ctx, `SELECT power_target, set_by, set_at FROM node_power WHERE node_id = $1`, int64(nodeID)).
		Scan(&p.PowerTarget, u64Col{&p.SetBy}, timeCol{&at})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return p, nil
	case err != nil:
		return api.NodePower{}, fmt.Errorf("store: power target of node %d: %w", nodeID, err)
	}
	p.SetAt = &at
	return p, nil
}
