package registrar

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// nodeDeletedWindow is how long a node's contract list keeps contracts
// after their deletion by default: a node offline for longer finds a
// contract it still runs gone from the list and asks for it by id.
const nodeDeletedWindow = 24 * time.Hour

// contractError answers the store's refusals of a contract change.
func contractError(err error, id uint64) error {
	for _, e := range []error{store.ErrNodeRented, store.ErrRentedAlready, store.ErrNodeInUse, store.ErrDedicated, store.ErrContractDeleted, store.ErrNotNodeContract} {
		if errors.Is(err, e) {
			return conflict("%s", e.Error())
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		if id != 0 {
			return notFound("contract %d not found", id)
		}
		return notFound("%s", err.Error())
	}
	return err
}

// validateHash checks a deployment hash: hex, at most
// api.MaxDeploymentHashLen characters, required for node contracts.
func validateHash(h string) error {
	if h == "" {
		return invalid("deployment_hash", "required for a node contract: the hex hash of the deployment")
	}
	if len(h) > api.MaxDeploymentHashLen {
		return invalid("deployment_hash", "longer than %d characters", api.MaxDeploymentHashLen)
	}
	if _, err := hex.DecodeString(h); err != nil {
		if errors.Is(err, hex.ErrLength) {
			return invalid("deployment_hash", "%q has an odd number of hex digits", truncate(h, 40))
		}
		return invalid("deployment_hash", "%q is not hexadecimal", truncate(h, 40))
	}
	return nil
}

// checkFits refuses resources a node cannot hold: each of CRU, MRU, SRU
// and HRU at most the node's registered capacity.
func checkFits(r api.Capacity, n api.Node) error {
	for _, f := range []struct {
		name      string
		want, has uint64
	}{{"cru", r.CRU, n.Resources.CRU}, {"mru", r.MRU, n.Resources.MRU}, {"sru", r.SRU, n.Resources.SRU}, {"hru", r.HRU, n.Resources.HRU}} {
		if f.want > f.has {
			return invalid("resources."+f.name, "%d is more than node %d has (%d)", f.want, n.NodeID, f.has)
		}
	}
	return nil
}

// createContract is POST /contracts: the signing twin makes a node
// contract (deployment hash and resources) or a rent contract on a node.
func (s *Server) createContract(w http.ResponseWriter, r *http.Request) error {
	var req api.CreateContractRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.NodeID == 0 {
		return invalid("node_id", "required")
	}
	c := api.Contract{TwinID: caller(r), NodeID: req.NodeID, Type: req.Type}
	switch req.Type {
	case api.ContractNode:
		if err := validateHash(req.DeploymentHash); err != nil {
			return err
		}
		if req.Resources == nil {
			return invalid("resources", "required for a node contract: what the deployment needs")
		}
		c.DeploymentHash, c.Resources = req.DeploymentHash, *req.Resources
	case api.ContractRent:
		if req.DeploymentHash != "" || req.Resources != nil {
			return badRequest("invalid request body: a rent contract takes the whole node: no deployment_hash or resources")
		}
	default:
		return invalid("type", "%q: want \"node\" or \"rent\"", truncate(req.Type, 40))
	}
	node, err := s.loadNode(r.Context(), req.NodeID)
	if err != nil {
		return err
	}
	if err := checkFits(c.Resources, node); err != nil {
		return err
	}
	out, err := s.store.CreateContract(r.Context(), c, s.now())
	if err != nil {
		return contractError(err, 0)
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// loadContract reads the contract of the path.
func (s *Server) loadContract(r *http.Request) (api.Contract, error) {
	id, err := parseID("contract_id", r.PathValue("contract_id"))
	if err != nil {
		return api.Contract{}, err
	}
	c, err := s.store.Contract(r.Context(), id)
	if err != nil {
		return c, contractError(err, id)
	}
	return c, nil
}

// ownContract reads the contract of the path and checks the caller is its
// twin.
func (s *Server) ownContract(r *http.Request) (api.Contract, error) {
	c, err := s.loadContract(r)
	if err != nil {
		return c, err
	}
	if tw := caller(r); c.TwinID != tw {
		return c, notAuthorized("contract %d belongs to twin %d, not to the signing twin %d", c.ContractID, c.TwinID, tw)
	}
	return c, nil
}

// getContract is GET /contracts/{contract_id}.
func (s *Server) getContract(w http.ResponseWriter, r *http.Request) error {
	c, err := s.loadContract(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// contractFilter reads the filters of GET /contracts and GET
// /nodes/{node_id}/contracts: state, after_id and size.
func contractFilter(r *http.Request) (store.ContractFilter, error) {
	q := r.URL.Query()
	ids := idFilters{q: q}
	f := store.ContractFilter{TwinID: ids.get("twin_id"), NodeID: ids.get("node_id"), AfterID: ids.get("after_id"), Size: ids.get("size")}
	if ids.err != nil {
		return f, ids.err
	}
	if f.Size > maxPageSize {
		return f, invalid("size", "%d is above the maximum page size %d", f.Size, maxPageSize)
	}
	switch st := q.Get("state"); st {
	case "", api.StateActive, api.StateGrace, api.StateDeleted:
		f.State = st
	default:
		return f, invalid("state", "%q: want active, grace or deleted", truncate(st, 40))
	}
	return f, nil
}

// listContracts is GET /contracts?twin_id=&node_id=&state=&after_id=&size=,
// in contract_id order (page on with after_id = the last id seen).
func (s *Server) listContracts(w http.ResponseWriter, r *http.Request) error {
	f, err := contractFilter(r)
	if err != nil {
		return err
	}
	return s.writeContracts(w, r, f)
}

// writeContracts answers the contracts matching f.
func (s *Server) writeContracts(w http.ResponseWriter, r *http.Request, f store.ContractFilter) error {
	cs, err := s.store.ListContracts(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, cs)
	return nil
}

// nodeContracts is GET /nodes/{node_id}/contracts: what a node follows,
// its live contracts and those deleted since deleted_since (default: the
// last 24 hours), filtered by state, paged with after_id and size.
func (s *Server) nodeContracts(w http.ResponseWriter, r *http.Request) error {
	id, err := parseID("node_id", r.PathValue("node_id"))
	if err != nil {
		return err
	}
	f, err := contractFilter(r)
	if err != nil {
		return err
	}
	if f.NodeID != 0 || f.TwinID != 0 {
		return badRequest("invalid query: node_id and twin_id are not filters of a node's contracts")
	}
	f.NodeID = id
	if f.DeletedSince, err = parseTimeParam(r.URL.Query(), "deleted_since", s.now().Add(-nodeDeletedWindow)); err != nil {
		return err
	}
	if _, err := s.loadNode(r.Context(), id); err != nil {
		return err
	}
	return s.writeContracts(w, r, f)
}

// updateContract is PATCH /contracts/{contract_id}: the contract's twin
// changes the deployment hash and resources of a node contract (before
// updating the deployment on the node).
func (s *Server) updateContract(w http.ResponseWriter, r *http.Request) error {
	var req api.UpdateContractRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	c, err := s.ownContract(r)
	if err != nil {
		return err
	}
	if req.DeploymentHash != nil {
		if err := validateHash(*req.DeploymentHash); err != nil {
			return err
		}
	}
	if req.Resources != nil {
		node, err := s.loadNode(r.Context(), c.NodeID)
		if err != nil {
			return err
		}
		if err := checkFits(*req.Resources, node); err != nil {
			return err
		}
	}
	out, err := s.store.UpdateContract(r.Context(), c.ContractID, req.DeploymentHash, req.Resources, s.now())
	if err != nil {
		return contractError(err, c.ContractID)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deleteContract is DELETE /contracts/{contract_id}: its twin cancels it.
// Cancelling a deleted contract answers it as it is.
func (s *Server) deleteContract(w http.ResponseWriter, r *http.Request) error {
	c, err := s.ownContract(r)
	if err != nil {
		return err
	}
	out, err := s.store.DeleteContract(r.Context(), c.ContractID, api.ReasonCancelled, s.now())
	if err != nil {
		return contractError(err, c.ContractID)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// reportUsage is POST /nodes/{node_id}/usage: the node tells what each of
// its contracts used during a finished hour. Idempotent per contract and
// period: the same figures again are accepted, other figures refused
// (409) and nothing of the report kept.
func (s *Server) reportUsage(w http.ResponseWriter, r *http.Request) error {
	id, err := parseID("node_id", r.PathValue("node_id"))
	if err != nil {
		return err
	}
	if err := s.ownNode(r, id); err != nil {
		return err
	}
	var rep api.UsageReport
	if err := decodeBody(r, &rep); err != nil {
		return err
	}
	if err := s.checkUsageReport(rep); err != nil {
		return err
	}
	err = s.store.RecordUsage(r.Context(), id, rep.PeriodStart, rep.Contracts, s.now())
	var ue *store.UsageError
	if errors.As(err, &ue) {
		switch {
		case errors.Is(err, store.ErrUsageChanged):
			return conflict("contract %d: usage of this period already reported with other figures; nothing of this report was kept", ue.ContractID)
		case errors.Is(err, store.ErrNotNodesContract):
			return notAuthorized("contract %d is not on node %d: a node reports its own contracts only", ue.ContractID, id)
		case errors.Is(err, store.ErrNotFound):
			return notFound("contract %d not found", ue.ContractID)
		}
	}
	if err != nil {
		return err
	}
	if !rep.PeriodStart.After(dueThrough(s.now(), s.cfg.BillingDelay)) {
		// A period already due: it may have waited for this report.
		s.bill.late.Store(true)
	}
	writeJSON(w, http.StatusOK, api.Message{Message: fmt.Sprintf("usage of %d contracts recorded", len(rep.Contracts))})
	return nil
}

// checkUsageReport validates a usage report: a finished UTC hour, at most
// api.MaxUsageContracts contracts, each once.
func (s *Server) checkUsageReport(rep api.UsageReport) error {
	p := rep.PeriodStart
	switch {
	case p.IsZero():
		return invalid("period_start", "required: the start of the hour (RFC 3339, UTC)")
	case !p.Equal(api.Period(p)):
		return invalid("period_start", "%s is not the start of an hour", p.Format(time.RFC3339Nano))
	case p.Add(time.Hour).After(s.now()):
		return invalid("period_start", "the hour starting %s has not ended yet", p.UTC().Format(time.RFC3339))
	case len(rep.Contracts) > api.MaxUsageContracts:
		return invalid("contracts", "%d contracts: at most %d per report", len(rep.Contracts), api.MaxUsageContracts)
	}
	seen := make(map[uint64]bool, len(rep.Contracts))
	for i, u := range rep.Contracts {
		if u.ContractID == 0 {
			return invalid(fmt.Sprintf("contracts[%d].contract_id", i), "required")
		}
		if seen[u.ContractID] {
			return invalid(fmt.Sprintf("contracts[%d].contract_id", i), "contract %d twice", u.ContractID)
		}
		seen[u.ContractID] = true
	}
	return nil
}
