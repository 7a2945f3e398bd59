package registrar

import (
	"errors"
	"net/http"

	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// setNodePower is PUT /nodes/{node_id}/power: the farmer of the node's
// farm sets its power target.
func (s *Server) setNodePower(w http.ResponseWriter, r *http.Request) error {
	id, err := parseID("node_id", r.PathValue("node_id"))
	if err != nil {
		return err
	}
	var body api.NodePower
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if body.PowerTarget != api.PowerOn && body.PowerTarget != api.PowerOff {
		return invalid("power_target", "%q: must be %q or %q", body.PowerTarget, api.PowerOn, api.PowerOff)
	}
	n, err := s.loadNode(r.Context(), id)
	if err != nil {
		return err
	}
	farm, err := s.loadFarm(r, n.FarmID)
	if err != nil {
		return err
	}
	if c := caller(r); farm.TwinID != c {
		return notAuthorized("node %d is in farm %d of twin %d, not of the signing twin %d", id, farm.FarmID, farm.TwinID, c)
	}
	if err := s.store.SetPowerTarget(r.Context(), id, body.PowerTarget, caller(r), s.now()); err != nil {
		return err
	}
	return s.writePower(w, r, id)
}

// nodePower is GET /nodes/{node_id}/power.
func (s *Server) nodePower(w http.ResponseWriter, r *http.Request) error {
	id, err := parseID("node_id", r.PathValue("node_id"))
	if err != nil {
		return err
	}
	return s.writePower(w, r, id)
}

// writePower answers node id's power target.
func (s *Server) writePower(w http.ResponseWriter, r *http.Request, id uint64) error {
	p, err := s.store.PowerTarget(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("node %d not found", id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}
