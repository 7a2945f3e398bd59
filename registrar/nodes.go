package registrar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// nodeBody is the body of POST /nodes and PATCH /nodes/{node_id}. The
// public Go client sends its whole Node struct, so these read-only fields
// of the node are accepted and ignored on these two routes (and only
// here): node_id, uptime, last_seen, online, and approved both as
// documented and as that client spells it ("Approved": its field has no
// JSON tag); so are the status fields a node is served with (healthy,
// status_at, free_resources) and the public registrar's status. Field names are matched exactly (see decodeJSON), so each
// accepted spelling is a field of its own.
type nodeBody struct {
	api.RegisterNodeRequest
	NodeID     json.RawMessage `json:"node_id"`
	Uptime     json.RawMessage `json:"uptime"`
	LastSeen   json.RawMessage `json:"last_seen"`
	Online     json.RawMessage `json:"online"`
	Approved   json.RawMessage `json:"approved"`
	ApprovedGo json.RawMessage `json:"Approved"`
	// Read-only status fields of a node as served (grid4), and the
	// public registrar's status, which clients may send back.
	Healthy  json.RawMessage `json:"healthy"`
	Status   json.RawMessage `json:"status"`
	StatusAt json.RawMessage `json:"status_at"`
	Free     json.RawMessage `json:"free_resources"`
}

// maxLastSeenMinutes bounds the last_seen filter (one year).
const maxLastSeenMinutes = 366 * 24 * 60

// onlineCutoff returns the current online cutoff.
func (s *Server) onlineCutoff(ctx context.Context) time.Duration {
	return s.sched.cutoff(s.sched.interval(s.nodes.get(ctx)))
}

// setOnline computes Online from LastSeen (it is never stored).
func setOnline(n *api.Node, now time.Time, cutoff time.Duration) {
	n.Online = n.LastSeen != nil && now.Sub(*n.LastSeen) < cutoff
}

// listNodes is GET /nodes with filters node_id, farm_id, twin_id, online
// (true/false), last_seen (seen within that many minutes) and the status
// filters (free_cru, free_mru, ..., healthy, status: see statusFilters),
// and paging: page and size, or after_node_id (the nodes after that id)
// and size. A full page carries a Link to the next one by after_node_id.
func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	page, err := parsePage(q)
	if err != nil {
		return err
	}
	ids := idFilters{q: q}
	f := store.NodeFilter{
		NodeID: ids.get("node_id"),
		FarmID: ids.get("farm_id"),
		TwinID: ids.get("twin_id"),
		// Keyset pagination (see store.NodeFilter.AfterNodeID): the pages
		// of a large farm stay as fast to the last as the first.
		AfterNodeID: ids.get("after_node_id"),
	}
	if ids.err != nil {
		return ids.err
	}
	now := s.now()
	cutoff := s.onlineCutoff(r.Context())
	if v := q.Get("online"); v != "" {
		online, err := strconv.ParseBool(v)
		if err != nil {
			return invalid("online", "%q: want true or false", v)
		}
		t := now.Add(-cutoff)
		if online {
			f.SeenSince = &t
		} else {
			f.NotSeenSince = &t
		}
	}
	if v := q.Get("last_seen"); v != "" {
		m, err := strconv.ParseUint(v, 10, 32)
		if err != nil || m > maxLastSeenMinutes {
			return invalid("last_seen", "%q: want minutes, 0 to %d", v, maxLastSeenMinutes)
		}
		t := now.Add(-time.Duration(m) * time.Minute)
		if f.SeenSince == nil || t.After(*f.SeenSince) {
			f.SeenSince = &t
		}
	}
	if err := statusFilters(q, &f, now, cutoff); err != nil {
		return err
	}
	nodes, err := s.store.ListNodes(r.Context(), f, page)
	if err != nil {
		return err
	}
	if nodes == nil {
		nodes = []api.Node{}
	}
	for i := range nodes {
		setOnline(&nodes[i], now, cutoff)
		setHealth(&nodes[i], now, cutoff)
	}
	if len(nodes) > 0 && uint64(len(nodes)) == page.Size {
		// The next page, by keyset (RFC 8288 link).
		next := *r.URL
		nq := next.Query()
		nq.Del("page")
		nq.Set("after_node_id", strconv.FormatUint(nodes[len(nodes)-1].NodeID, 10))
		next.RawQuery = nq.Encode()
		w.Header().Set("Link", "<"+next.RequestURI()+`>; rel="next"`)
	}
	writeNodes(w, nodes)
	return nil
}

// loadNode fetches a node, 404 when absent.
func (s *Server) loadNode(ctx context.Context, id uint64) (api.Node, error) {
	n, err := s.store.Node(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return n, notFound("node %d not found", id)
	}
	if err == nil {
		s.owners.put(n.NodeID, n.TwinID)
	}
	return n, err
}

// getNode is GET /nodes/{node_id}.
func (s *Server) getNode(w http.ResponseWriter, r *http.Request) error {
	id, err := parseID("node_id", r.PathValue("node_id"))
	if err != nil {
		return err
	}
	n, err := s.loadNode(r.Context(), id)
	if err != nil {
		return err
	}
	now, cutoff := s.now(), s.onlineCutoff(r.Context())
	setOnline(&n, now, cutoff)
	setHealth(&n, now, cutoff)
	writeJSON(w, http.StatusOK, n)
	return nil
}

// nodeFromBody copies the writable fields of a request into a node.
func nodeFromBody(b api.RegisterNodeRequest) api.Node {
	return api.Node{
		FarmID:       b.FarmID,
		TwinID:       b.TwinID,
		Location:     b.Location,
		Resources:    b.Resources,
		Interfaces:   b.Interfaces,
		SecureBoot:   b.SecureBoot,
		Virtualized:  b.Virtualized,
		SerialNumber: b.SerialNumber,
		ZosVersion:   b.ZosVersion,
		APIEndpoints: b.APIEndpoints,
	}
}

// bodyFromNode is the inverse of nodeFromBody: the writable fields of a
// stored node, as a PATCH applies to them.
func bodyFromNode(n api.Node) api.RegisterNodeRequest {
	return api.RegisterNodeRequest{
		TwinID:       n.TwinID,
		FarmID:       n.FarmID,
		Resources:    n.Resources,
		Location:     n.Location,
		Interfaces:   n.Interfaces,
		SecureBoot:   n.SecureBoot,
		Virtualized:  n.Virtualized,
		SerialNumber: n.SerialNumber,
		ZosVersion:   n.ZosVersion,
		APIEndpoints: n.APIEndpoints,
	}
}

// registerNode is POST /nodes: a node's own twin registers it in a farm.
func (s *Server) registerNode(w http.ResponseWriter, r *http.Request) error {
	var req nodeBody
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	c, err := ownTwin(r, req.TwinID, "a node registers itself with its own twin")
	if err != nil {
		return err
	}
	req.TwinID = c
	if err := validateNode(req.RegisterNodeRequest); err != nil {
		return err
	}
	n, err := s.store.CreateNode(r.Context(), nodeFromBody(req.RegisterNodeRequest))
	switch {
	case errors.Is(err, store.ErrFarmNotFound):
		return badRequest("farm " + strconv.FormatUint(req.FarmID, 10) + " does not exist")
	case errors.Is(err, store.ErrConflict):
		return conflict("twin %d already has a node; find it with GET /nodes?twin_id=%d and change it with PATCH /nodes/{node_id}", c, c)
	case err != nil:
		return err
	}
	s.owners.put(n.NodeID, n.TwinID)
	writeJSON(w, http.StatusCreated, api.NodeID{NodeID: n.NodeID})
	return nil
}

// ownNode checks that the caller is the twin of node id, using the owner
// cache (a node never changes twin) and the store on a miss.
func (s *Server) ownNode(r *http.Request, id uint64) error {
	twin, ok := s.owners.get(id)
	if !ok {
		n, err := s.loadNode(r.Context(), id)
		if err != nil {
			return err
		}
		twin = n.TwinID
	}
	if c := caller(r); twin != c {
		return notAuthorized("node %d belongs to twin %d, not to the signing twin %d", id, twin, c)
	}
	return nil
}

// updateNode is PATCH /nodes/{node_id}: the node's twin changes its
// farm, capacity, location, interfaces, hardware facts and API endpoints. The body is a
// JSON merge patch (RFC 7396) on the node's writable fields: omitted
// fields keep their value, objects (location, resources) merge field by
// field, arrays (interfaces) are replaced whole, null clears a field that
// may be empty; the result is validated as a registration is. The public
// client sends the whole node, which replaces it. Moving to another farm
// withdraws the farmer's approval.
func (s *Server) updateNode(w http.ResponseWriter, r *http.Request) error {
	id, err := parseID("node_id", r.PathValue("node_id"))
	if err != nil {
		return err
	}
	if err := s.ownNode(r, id); err != nil {
		return err
	}
	patch, err := readBody(r)
	if err != nil {
		return err
	}
	// The patch itself must be a well-formed node body (names, types,
	// text); the merged node is checked again below.
	if err := decodeJSON(patch, &nodeBody{}); err != nil {
		return err
	}
	cur, err := s.loadNode(r.Context(), id)
	if err != nil {
		return err
	}
	curJSON, err := json.Marshal(bodyFromNode(cur))
	if err != nil {
		return fmt.Errorf("update node %d: %w", id, err)
	}
	merged, err := mergePatch(curJSON, patch)
	if err != nil {
		return fmt.Errorf("update node %d: %w", id, err)
	}
	var req nodeBody
	if err := decodeJSON(merged, &req); err != nil {
		return err
	}
	if err := validateNode(req.RegisterNodeRequest); err != nil {
		return err
	}
	n := nodeFromBody(req.RegisterNodeRequest)
	n.TwinID = caller(r) // twin_id of the body is ignored: a node cannot change twin
	_, err = s.store.UpdateNode(r.Context(), id, n)
	switch {
	case errors.Is(err, store.ErrFarmNotFound):
		return badRequest("farm " + strconv.FormatUint(req.FarmID, 10) + " does not exist")
	case errors.Is(err, store.ErrNotFound):
		return notFound("node %d not found", id)
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, api.Message{Message: "node updated successfully"})
	return nil
}
