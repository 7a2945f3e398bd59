package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grid4/grid4/registrar/api"
)

// nodeCols are the node columns, qualified so that they work both in a
// SELECT joined with node_liveness and in an UPDATE's RETURNING.
const nodeCols = `nodes.node_id, nodes.farm_id, nodes.twin_id, nodes.country, nodes.city, nodes.longitude, nodes.latitude,
	nodes.hru, nodes.sru, nodes.cru, nodes.mru, nodes.interfaces, nodes.secure_boot, nodes.virtualized,
	nodes.serial_number, nodes.zos_version, nodes.api_endpoints, nodes.approved, nodes.created_at, nodes.updated_at`

// nodeSelect selects nodeCols and the node's last_seen.
const nodeSelect = `SELECT ` + nodeCols + `, l.last_seen
	FROM nodes LEFT JOIN node_liveness l ON l.node_id = nodes.node_id`

// nodeReturning returns nodeCols and the node's last_seen from an INSERT
// or UPDATE of nodes.
const nodeReturning = ` RETURNING ` + nodeCols +
	`, (SELECT l.last_seen FROM node_liveness l WHERE l.node_id = nodes.node_id)`

// scanNode reads nodeCols and last_seen.
func scanNode(row interface{ Scan(...any) error }) (api.Node, error) {
	var (
		n     api.Node
		ifs   []byte
		eps   []byte
		resrc = &n.Resources
		loc   = &n.Location
	)
	err := row.Scan(u64Col{&n.NodeID}, u64Col{&n.FarmID}, u64Col{&n.TwinID},
		&loc.Country, &loc.City, &loc.Longitude, &loc.Latitude,
		u64Col{&resrc.HRU}, u64Col{&resrc.SRU}, u64Col{&resrc.CRU}, u64Col{&resrc.MRU},
		&ifs, &n.SecureBoot, &n.Virtualized, &n.SerialNumber, &n.ZosVersion, &eps, &n.Approved,
		timeCol{&n.CreatedAt}, timeCol{&n.UpdatedAt}, nullTimeCol{&n.LastSeen})
	if err != nil {
		return api.Node{}, err
	}
	var ok bool
	if n.APIEndpoints, ok = parseStrings(eps); !ok {
		if err := json.Unmarshal(eps, &n.APIEndpoints); err != nil {
			return api.Node{}, fmt.Errorf("decode api_endpoints: %w", err)
		}
	}
	if len(n.APIEndpoints) == 0 {
		n.APIEndpoints = nil // none: absent from the node's JSON
	}
	// The store wrote this JSON (ips always as an array or null): decode
	// it with a scanner for exactly that shape, which costs a fraction of
	// json.Unmarshal (a quarter of a node list's CPU); anything else (an
	// escaped character, say) goes to json.Unmarshal.
	if n.Interfaces, ok = parseInterfaces(ifs); !ok {
		var stored []struct {
			Name string   `json:"name"`
			Mac  string   `json:"mac"`
			IPs  []string `json:"ips"`
		}
		if err := json.Unmarshal(ifs, &stored); err != nil {
			return api.Node{}, fmt.Errorf("decode interfaces: %w", err)
		}
		n.Interfaces = make([]api.Interface, len(stored))
		for i, s := range stored {
			n.Interfaces[i] = api.Interface{Name: s.Name, Mac: s.Mac, IPs: s.IPs}
		}
	}
	return n, nil
}

// ifaceScanner reads the interfaces column: [{"name": s, "mac": s, "ips":
// [s, ...] | null}, ...] in any key order and spacing, strings without
// escapes. Any other input makes it fail, and the caller decodes with
// encoding/json.
type ifaceScanner struct {
	b   []byte
	i   int
	bad bool
}

func (s *ifaceScanner) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\n' || s.b[s.i] == '\t' || s.b[s.i] == '\r') {
		s.i++
	}
}

// eat consumes c (after spaces), or fails.
func (s *ifaceScanner) eat(c byte) {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return
	}
	s.bad = true
}

// peek reports whether c is next (after spaces).
func (s *ifaceScanner) peek(c byte) bool {
	s.space()
	return !s.bad && s.i < len(s.b) && s.b[s.i] == c
}

// str reads a string without escapes.
func (s *ifaceScanner) str() string {
	s.eat('"')
	if s.bad {
		return ""
	}
	j := bytes.IndexByte(s.b[s.i:], '"')
	if j < 0 || bytes.IndexByte(s.b[s.i:s.i+j], '\\') >= 0 {
		s.bad = true
		return ""
	}
	v := string(s.b[s.i : s.i+j])
	s.i += j + 1
	return v
}

// strs reads an array of strings without escapes; nil for null.
func (s *ifaceScanner) strs() []string {
	if s.peek('n') && bytes.HasPrefix(s.b[s.i:], []byte("null")) {
		s.i += 4
		return nil
	}
	s.eat('[')
	out := []string{}
	for !s.bad && !s.peek(']') {
		if len(out) > 0 {
			s.eat(',')
		}
		out = append(out, s.str())
	}
	s.eat(']')
	return out
}

// parseStrings decodes a column holding a JSON array of strings (the
// api_endpoints); ok is false when it is not in the shape ifaceScanner
// reads.
func parseStrings(b []byte) (_ []string, ok bool) {
	s := ifaceScanner{b: b}
	out := s.strs()
	s.space()
	return out, !s.bad && s.i == len(s.b)
}

// parseInterfaces decodes the interfaces column; ok is false when it is
// not in the shape ifaceScanner reads.
func parseInterfaces(b []byte) (_ []api.Interface, ok bool) {
	s := ifaceScanner{b: b}
	out := []api.Interface{}
	s.eat('[')
	for !s.bad && !s.peek(']') {
		if len(out) > 0 {
			s.eat(',')
		}
		var f api.Interface
		s.eat('{')
		for k := 0; !s.bad && !s.peek('}'); k++ {
			if k > 0 {
				s.eat(',')
			}
			key := s.str()
			s.eat(':')
			switch key {
			case "name":
				f.Name = s.str()
			case "mac":
				f.Mac = s.str()
			case "ips":
				f.IPs = s.strs()
			default:
				s.bad = true
			}
		}
		s.eat('}')
		out = append(out, f)
	}
	s.eat(']')
	s.space()
	return out, !s.bad && s.i == len(s.b)
}

// nodeValues are the stored forms of a node's writable fields, in the
// order of the columns farm_id, country, city, longitude, latitude, hru,
// sru, cru, mru, interfaces, secure_boot, virtualized, serial_number,
// zos_version, api_endpoints.
func nodeValues(n api.Node) ([]any, error) {
	farm, ok := idArg(n.FarmID)
	if !ok {
		return nil, fmt.Errorf("farm %d: %w", n.FarmID, ErrFarmNotFound)
	}
	var res [4]int64
	for i, f := range []struct {
		name string
		v    uint64
	}{{"hru", n.Resources.HRU}, {"sru", n.Resources.SRU}, {"cru", n.Resources.CRU}, {"mru", n.Resources.MRU}} {
		v, err := toInt64("resources."+f.name, f.v)
		if err != nil {
			return nil, err
		}
		res[i] = v
	}
	ifs, err := jsonList(n.Interfaces)
	if err != nil {
		return nil, fmt.Errorf("interfaces: %w", err)
	}
	eps, err := jsonList(n.APIEndpoints)
	if err != nil {
		return nil, fmt.Errorf("api_endpoints: %w", err)
	}
	return []any{farm, n.Location.Country, n.Location.City, n.Location.Longitude, n.Location.Latitude,
		res[0], res[1], res[2], res[3], ifs, n.SecureBoot, n.Virtualized, n.SerialNumber, n.ZosVersion, eps}, nil
}

// NodeFilter selects nodes for ListNodes. Zero fields match every node.
type NodeFilter struct {
	NodeID uint64
	FarmID uint64
	TwinID uint64
	// SeenSince keeps nodes whose last report is at or after it.
	SeenSince *time.Time
	// NotSeenSince keeps nodes whose last report is before it, or that
	// never reported.
	NotSeenSince *time.Time
	// AfterNodeID keeps the nodes whose id is above it: keyset
	// pagination. With the last id of a page it gives the next page, as
	// fast on the last page of a million-node farm as on the first (an
	// index range scan), where a page number makes the database skip
	// every node before the page. A page number still applies on top of
	// it (normally 1).
	AfterNodeID uint64
	// Approved, when set, keeps the nodes whose farmer approved them
	// (true) or did not (false).
	Approved *bool
	// Country and Version, when not empty, keep the nodes registered
	// with exactly that country or ZOS version.
	Country, Version string
	// FreeAtLeast keeps the nodes whose latest status report left at
	// least this much of each resource free; a zero field does not
	// filter. When a field is set, nodes that never reported a status
	// are left out.
	FreeAtLeast api.Capacity
	// Health keeps the healthy (HealthHealthy) or the unhealthy
	// (HealthUnhealthy) nodes; HealthAny does not filter. A node is
	// healthy when its latest status report says so and was received
	// after StatusSince; unhealthy when it has a report that says
	// otherwise or is older. A node that never reported a status is
	// neither.
	Health      Health
	StatusSince time.Time
}

// Health selects nodes by health in NodeFilter.
type Health int

// The values of Health.
const (
	HealthAny Health = iota
	HealthHealthy
	HealthUnhealthy
)

// CreateNode registers n (its FarmID, TwinID, location, resources,
// interfaces, secure_boot, virtualized, serial_number, zos_version and
// api_endpoints; the rest is ignored) and returns the node as stored, with NodeID, CreatedAt
// and UpdatedAt assigned and Approved false. ErrConflict if the twin
// already has a node; ErrFarmNotFound if the farm does not exist;
// ErrNotFound if the twin does not exist; ErrInvalid for a resource above
// math.MaxInt64.
func (db *DB) CreateNode(ctx context.Context, n api.Node) (api.Node, error) {
	twin, ok := idArg(n.TwinID)
	if !ok {
		return api.Node{}, fmt.Errorf("store: create node for twin %d: twin: %w", n.TwinID, ErrNotFound)
	}
	vals, err := nodeValues(n)
	if err != nil {
		return api.Node{}, fmt.Errorf("store: create node for twin %d: %w", n.TwinID, err)
	}
	t := db.ts(now())
	out, err := scanNode(db.rw.QueryRowContext(ctx,
		`INSERT INTO nodes (farm_id, country, city, longitude, latitude, hru, sru, cru, mru, interfaces,
		   secure_boot, virtualized, serial_number, zos_version, api_endpoints, twin_id, approved, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, FALSE, $17, $17)`+nodeReturning,
		append(vals, twin, t)...))
	switch {
	case err == nil:
		return out, nil
	case isUnique(err):
		return api.Node{}, fmt.Errorf("store: create node for twin %d: the twin already has a node: %w", n.TwinID, ErrConflict)
	case isForeignKey(err):
		return api.Node{}, fmt.Errorf("store: create node for twin %d: %w", n.TwinID, db.missingParent(ctx, err, n.FarmID, n.TwinID))
	default:
		return api.Node{}, fmt.Errorf("store: create node for twin %d: %w", n.TwinID, err)
	}
}

// missingParent explains a foreign-key violation on nodes: ErrFarmNotFound
// or ErrNotFound (twin). PostgreSQL names the constraint; SQLite does not,
// so then the farm is looked up (farms and accounts are never deleted, so
// the answer cannot change in between).
func (db *DB) missingParent(ctx context.Context, fkErr error, farmID, twinID uint64) error {
	_, constraint := constraintError(fkErr)
	switch constraint {
	case "nodes_farm_id_fkey":
		return fmt.Errorf("farm %d: %w", farmID, ErrFarmNotFound)
	case "nodes_twin_id_fkey":
		return fmt.Errorf("twin %d: %w", twinID, ErrNotFound)
	}
	if _, err := db.Farm(ctx, farmID); errors.Is(err, ErrNotFound) {
		return fmt.Errorf("farm %d: %w", farmID, ErrFarmNotFound)
	} else if err != nil {
		return err
	}
	return fmt.Errorf("twin %d: %w", twinID, ErrNotFound)
}

// Node returns node nodeID with LastSeen from its liveness (nil if it never
// reported) and Healthy (as the node reported it), StatusAt and Free from
// its latest status report (see RecordNodeStatus). Online is left false: the caller computes it from LastSeen and
// its cutoff. ErrNotFound if none.
func (db *DB) Node(ctx context.Context, nodeID uint64) (api.Node, error) {
	id, ok := idArg(nodeID)
	if !ok {
		return api.Node{}, fmt.Errorf("store: node %d: %w", nodeID, ErrNotFound)
	}
	n, err := scanNode(db.ro.QueryRowContext(ctx, nodeSelect+` WHERE nodes.node_id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return api.Node{}, fmt.Errorf("store: node %d: %w", nodeID, ErrNotFound)
	}
	if err != nil {
		return api.Node{}, fmt.Errorf("store: node %d: %w", nodeID, err)
	}
	ns := []api.Node{n}
	if err := db.fillStatus(ctx, ns); err != nil {
		return api.Node{}, fmt.Errorf("store: node %d: %w", nodeID, err)
	}
	return ns[0], nil
}

// ListNodes returns a page of the nodes matching filter, in node_id order,
// with LastSeen and the status fields filled as by Node. The result is
// never nil.
func (db *DB) ListNodes(ctx context.Context, filter NodeFilter, page Page) ([]api.Node, error) {
	out := []api.Node{}
	q, a, ok := db.listNodesQuery(filter, page)
	if !ok {
		return out, nil
	}
	rows, err := db.ro.QueryContext(ctx, q, a...)
	if err != nil {
		return nil, fmt.Errorf("store: list nodes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list nodes: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list nodes: %w", err)
	}
	if err := db.fillStatus(ctx, out); err != nil {
		return nil, fmt.Errorf("store: list nodes: %w", err)
	}
	return out, nil
}

// listNodesQuery builds the query of ListNodes; ok is false when no node
// can match. The text depends only on which filters are set, never on
// their values, so that each variant is one prepared statement with one
// generic plan (see openPostgres).
func (db *DB) listNodesQuery(filter NodeFilter, page Page) (q string, a args, ok bool) {
	limit, offset, ok := page.limitOffset()
	if !ok {
		return "", nil, false
	}
	conds, order, ok := columnConds(filter, &a)
	if !ok {
		return "", nil, false
	}
	// The liveness filters test each candidate node's liveness row by
	// primary key, in node_id order, until a page is full: a subquery per
	// node, which no plan turns into a join (a join's method would be
	// chosen by the table sizes the generic plan was made for, hashing the
	// whole liveness table where it is small).
	if filter.SeenSince != nil {
		conds = append(conds, `COALESCE((SELECT l.last_seen >= `+a.add(db.ts(*filter.SeenSince))+
			` FROM node_liveness l WHERE l.node_id = nodes.node_id), FALSE)`)
	}
	if filter.NotSeenSince != nil {
		conds = append(conds, `NOT COALESCE((SELECT l.last_seen >= `+a.add(db.ts(*filter.NotSeenSince))+
			` FROM node_liveness l WHERE l.node_id = nodes.node_id), FALSE)`)
	}
	if c, ok := db.statusCond(filter, &a); !ok {
		return "", nil, false
	} else if c != "" {
		conds = append(conds, c)
	}
	// The page size is written into the text, not bound: the statement is
	// planned once (generic plan, see openPostgres), and a plan made
	// without knowing the LIMIT assumes a tenth of the rows are wanted,
	// which on a large farm favours reading the whole table and sorting
	// it. Page sizes are few (1..MaxPageSize, in practice the default), so
	// the statements stay few.
	lim := ` LIMIT ` + strconv.FormatInt(limit, 10)
	// last_seen comes from a subquery per node of the page (a primary key
	// lookup each) rather than a join, for the same reason.
	sel := `SELECT ` + nodeCols + `, (SELECT l.last_seen FROM node_liveness l WHERE l.node_id = nodes.node_id) FROM nodes`
	if offset == 0 {
		// The first page, and every keyset page: the (farm_id, node_id)
		// or primary key index in node_id order, stopped after a page.
		q = sel + where(conds) + order + lim
		return q, a, true
	}
	// A page further on: its ids come from the narrow index, skipping
	// OFFSET entries there (index-only), and only the page's rows are
	// read in full, by primary key. On PostgreSQL the ids are collected
	// into an array first so that the plan cannot join the whole table
	// instead.
	ids := `SELECT nodes.node_id FROM nodes` + where(conds) + order + lim + ` OFFSET ` + a.add(offset)
	if db.pg() {
		q = sel + ` WHERE nodes.node_id = ANY (ARRAY(` + ids + `)) ORDER BY nodes.node_id`
	} else {
		q = sel + ` WHERE nodes.node_id IN (` + ids + `) ORDER BY nodes.node_id`
	}
	return q, a, true
}

// columnConds are the conditions of filter on the nodes table's own
// columns (ids, country, version, approval, the keyset), their arguments
// added to a, and the order of the page: node_id order, read from the
// index of the farm or of the first attribute filtered on when there is
// one (see below). ok is false when no node can match.
func columnConds(filter NodeFilter, a *args) (conds []string, order string, ok bool) {
	for _, f := range []struct {
		col string
		v   uint64
	}{{"nodes.node_id", filter.NodeID}, {"nodes.farm_id", filter.FarmID}, {"nodes.twin_id", filter.TwinID}} {
		if f.v == 0 {
			continue
		}
		id, ok := idArg(f.v)
		if !ok {
			return nil, "", false
		}
		p := a.add(id)
		if f.col == "nodes.farm_id" {
			// A range of one farm rather than farm_id = $N, so that
			// "ORDER BY farm_id, node_id" below stays an order only the
			// (farm_id, node_id) index gives. With an equality the
			// planner drops farm_id from the order, and a generic plan
			// (see openPostgres) may then walk the primary key in
			// node_id order filtering by farm: fine for the big farm
			// the statistics describe, a scan of the whole table for a
			// small one.
			conds = append(conds, f.col+" >= "+p+" AND "+f.col+" <= "+p)
			continue
		}
		conds = append(conds, f.col+" = "+p)
	}
	// The attribute filters: each has an index (column, node_id). The
	// first set of them (after the farm, whose index wins) is written as
	// a range of one value and orders the page, for the reason given for
	// the farm above: so that a rare value (or one no node has) is read
	// from its index rather than by a walk of the whole table.
	order = ` ORDER BY nodes.node_id`
	if filter.FarmID != 0 {
		order = ` ORDER BY nodes.farm_id, nodes.node_id`
	}
	for _, f := range []struct {
		col string
		v   any
		set bool
	}{
		{"nodes.country", filter.Country, filter.Country != ""},
		{"nodes.zos_version", filter.Version, filter.Version != ""},
		{"nodes.approved", filter.Approved != nil && *filter.Approved, filter.Approved != nil},
	} {
		if !f.set {
			continue
		}
		p := a.add(f.v)
		if order == ` ORDER BY nodes.node_id` {
			conds = append(conds, f.col+" >= "+p+" AND "+f.col+" <= "+p)
			order = ` ORDER BY ` + f.col + `, nodes.node_id`
			continue
		}
		conds = append(conds, f.col+" = "+p)
	}
	if filter.AfterNodeID != 0 {
		if filter.AfterNodeID >= math.MaxInt64 {
			return nil, "", false
		}
		conds = append(conds, "nodes.node_id > "+a.add(int64(filter.AfterNodeID)))
	}
	// Within one farm (or country, version, approval), node_id order is
	// the order of its index.
	return conds, order, true
}

// statusCond is the condition of the status filters of filter ("" when
// none is set), its arguments added to a; ok is false when no node can
// match. It probes each candidate node's node_status row by primary key,
// as the liveness filters probe node_liveness.
func (db *DB) statusCond(filter NodeFilter, a *args) (cond string, ok bool) {
	var conds []string
	for _, f := range []struct {
		col string
		v   uint64
	}{{"free_cru", filter.FreeAtLeast.CRU}, {"free_mru", filter.FreeAtLeast.MRU}, {"free_sru", filter.FreeAtLeast.SRU},
		{"free_hru", filter.FreeAtLeast.HRU}, {"free_ipv4", filter.FreeAtLeast.IPv4}} {
		if f.v == 0 {
			continue
		}
		if f.v > math.MaxInt64 {
			return "", false
		}
		conds = append(conds, "s."+f.col+" >= "+a.add(int64(f.v)))
	}
	switch filter.Health {
	case HealthHealthy:
		conds = append(conds, "s.healthy AND s.reported_at > "+a.add(db.ts(filter.StatusSince)))
	case HealthUnhealthy:
		conds = append(conds, "NOT (s.healthy AND s.reported_at > "+a.add(db.ts(filter.StatusSince))+")")
	}
	if len(conds) == 0 {
		return "", true
	}
	// A scalar subquery, not EXISTS: PostgreSQL would plan EXISTS as a
	// semi-join, which a generic plan may make a hash of the whole
	// node_status table (see the liveness filters above).
	return `COALESCE((SELECT ` + strings.Join(conds, " AND ") + ` FROM node_status s WHERE s.node_id = nodes.node_id), FALSE)`, true
}

// UpdateNode replaces the farm, resources, location, interfaces,
// secure_boot, virtualized, serial_number, zos_version and api_endpoints of
// node nodeID
// with those of n (zero values overwrite too; n's other fields are
// ignored) and returns the node as stored. Moving the node to another farm
// clears Approved. ErrNotFound if there is no such node; ErrFarmNotFound
// if the farm does not exist; ErrInvalid for a resource above
// math.MaxInt64.
func (db *DB) UpdateNode(ctx context.Context, nodeID uint64, n api.Node) (api.Node, error) {
	id, ok := idArg(nodeID)
	if !ok {
		return api.Node{}, fmt.Errorf("store: update node %d: %w", nodeID, ErrNotFound)
	}
	vals, err := nodeValues(n)
	if err != nil {
		return api.Node{}, fmt.Errorf("store: update node %d: %w", nodeID, err)
	}
	out, err := scanNode(db.rw.QueryRowContext(ctx,
		`UPDATE nodes SET
		   approved = CASE WHEN farm_id = $1 THEN approved ELSE FALSE END,
		   farm_id = $1, country = $2, city = $3, longitude = $4, latitude = $5,
		   hru = $6, sru = $7, cru = $8, mru = $9, interfaces = $10,
		   secure_boot = $11, virtualized = $12, serial_number = $13, zos_version = $14, api_endpoints = $15,
		   updated_at = $16
		 WHERE node_id = $17`+nodeReturning,
		append(vals, db.ts(now()), id)...))
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, sql.ErrNoRows):
		return api.Node{}, fmt.Errorf("store: update node %d: %w", nodeID, ErrNotFound)
	case isForeignKey(err):
		return api.Node{}, fmt.Errorf("store: update node %d: farm %d: %w", nodeID, n.FarmID, ErrFarmNotFound)
	default:
		return api.Node{}, fmt.Errorf("store: update node %d: %w", nodeID, err)
	}
}

// approvalBatch bounds the ids bound in one statement of SetApproval.
const approvalBatch = 500

// SetApproval sets Approved to approved on the nodes nodeIDs of farm
// farmID, all or nothing, in one transaction. If some of the ids are not
// nodes of that farm nothing changes and the error wraps ErrNotFound and
// names them. Duplicate ids are allowed; an empty list does nothing.
func (db *DB) SetApproval(ctx context.Context, farmID uint64, nodeIDs []uint64, approved bool) error {
	ids := slices.Clone(nodeIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) == 0 {
		return nil
	}
	farm, farmOK := idArg(farmID)
	var missing []uint64
	if !farmOK {
		missing = ids
	}
	for _, v := range ids {
		if _, ok := idArg(v); !ok && farmOK {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("store: set approval in farm %d: %w", farmID, notInFarm(farmID, missing))
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		found := make(map[uint64]bool, len(ids))
		t := db.ts(now())
		for chunk := range slices.Chunk(ids, approvalBatch) {
			a := args{approved, t, farm}
			ph := make([]string, len(chunk))
			for i, v := range chunk {
				ph[i] = a.add(int64(v))
			}
			rows, err := tx.QueryContext(ctx,
				`UPDATE nodes SET approved = $1, updated_at = $2 WHERE farm_id = $3 AND node_id IN (`+
					strings.Join(ph, ", ")+`) RETURNING node_id`, a...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var id uint64
				if err := rows.Scan(u64Col{&id}); err != nil {
					rows.Close()
					return err
				}
				found[id] = true
			}
			if err := rows.Close(); err != nil {
				return err
			}
			if err := rows.Err(); err != nil {
				return err
			}
		}
		for _, v := range ids {
			if !found[v] {
				missing = append(missing, v)
			}
		}
		if len(missing) > 0 {
			return notInFarm(farmID, missing)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: set approval in farm %d: %w", farmID, err)
	}
	return nil
}

// notInFarm is the ErrNotFound of SetApproval, naming the missing nodes.
func notInFarm(farmID uint64, ids []uint64) error {
	s := make([]string, len(ids))
	for i, v := range ids {
		s[i] = fmt.Sprint(v)
	}
	if len(s) == 1 {
		return fmt.Errorf("node %s is not in farm %d: %w", s[0], farmID, ErrNotFound)
	}
	return fmt.Errorf("nodes %s are not in farm %d: %w", strings.Join(s, ", "), farmID, ErrNotFound)
}

// CountNodes returns the number of registered nodes. It counts rows, which
// on PostgreSQL takes tens of milliseconds at a million nodes: callers on a
// hot path should cache it.
func (db *DB) CountNodes(ctx context.Context) (uint64, error) {
	var n uint64
	if err := db.ro.QueryRowContext(ctx, `SELECT COUNT(*) FROM nodes`).Scan(u64Col{&n}); err != nil {
		return 0, fmt.Errorf("store: count nodes: %w", err)
	}
	return n, nil
}
