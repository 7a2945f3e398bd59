package registrar

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// parsePage reads page (from 1, default 1) and size (1..maxPageSize,
// default defaultPageSize) from a query.
func parsePage(q url.Values) (store.Page, error) {
	p := store.Page{Number: 1, Size: defaultPageSize}
	if v := q.Get("page"); v != "" {
		n, err := parseUint("page", v)
		if err != nil {
			return p, err
		}
		if n == 0 {
			return p, invalid("page", "%q is not a page number (1, 2, ...)", v)
		}
		p.Number = n
	}
	if v := q.Get("size"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return p, invalid("size", "%q is not a page size (1 to %d)", truncate(v, 40), maxPageSize)
		}
		if n > maxPageSize {
			return p, invalid("size", "%d is above the maximum page size %d", n, maxPageSize)
		}
		p.Size = n
	}
	return p, nil
}

// optionalID reads an id filter from a query; absent or 0 means any (old
// clients always send farm_id=0).
func optionalID(q url.Values, name string) (uint64, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	return parseUint(name, v)
}

// idFilters reads optional id filters from a query (see optionalID),
// keeping the first error, so that a handler reads them all and checks
// once.
type idFilters struct {
	q   url.Values
	err error
}

// get returns the filter called name (0: any), or 0 once a filter was
// refused.
func (f *idFilters) get(name string) uint64 {
	if f.err != nil {
		return 0
	}
	var id uint64
	id, f.err = optionalID(f.q, name)
	return id
}

// listFarms is GET /farms with filters farm_name (case-insensitive
// substring), farm_id, twin_id, and paging.
func (s *Server) listFarms(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	page, err := parsePage(q)
	if err != nil {
		return err
	}
	ids := idFilters{q: q}
	f := store.FarmFilter{FarmID: ids.get("farm_id"), TwinID: ids.get("twin_id")}
	if ids.err != nil {
		return ids.err
	}
	if name := q.Get("farm_name"); name != "" {
		if err := validateFarmName("farm_name", name); err != nil {
			return err
		}
		f.NameContains = name
	}
	farms, err := s.store.ListFarms(r.Context(), f, page)
	if err != nil {
		return err
	}
	if farms == nil {
		farms = []api.Farm{}
	}
	writeJSON(w, http.StatusOK, farms)
	return nil
}

// getFarm is GET /farms/{farm_id}.
func (s *Server) getFarm(w http.ResponseWriter, r *http.Request) error {
	farm, err := s.pathFarm(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, farm)
	return nil
}

// pathFarm loads the farm of the path's farm_id.
func (s *Server) pathFarm(r *http.Request) (api.Farm, error) {
	id, err := parseID("farm_id", r.PathValue("farm_id"))
	if err != nil {
		return api.Farm{}, err
	}
	return s.loadFarm(r, id)
}

func (s *Server) loadFarm(r *http.Request, id uint64) (api.Farm, error) {
	farm, err := s.store.Farm(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return farm, notFound("farm %d not found", id)
	}
	return farm, err
}

// createFarmBody is the body of POST /farms. FarmID is sent (as 0) by the
// public Go client, which posts its whole Farm struct: accepted and
// ignored, the registrar assigns the id.
type createFarmBody struct {
	FarmName       string          `json:"farm_name"`
	TwinID         uint64          `json:"twin_id"`
	StellarAddress string          `json:"stellar_address"`
	Dedicated      bool            `json:"dedicated"`
	FarmID         json.RawMessage `json:"farm_id"`
}

// createFarm is POST /farms: the caller creates a farm it owns.
func (s *Server) createFarm(w http.ResponseWriter, r *http.Request) error {
	var req createFarmBody
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	var err error
	if req.TwinID, err = ownTwin(r, req.TwinID, "a twin can only create farms it owns"); err != nil {
		return err
	}
	if err := validateFarmName("farm_name", req.FarmName); err != nil {
		return err
	}
	if req.StellarAddress != "" {
		if err := validateStellarAddress("stellar_address", req.StellarAddress); err != nil {
			return err
		}
	}
	farm, err := s.store.CreateFarm(r.Context(), api.Farm{
		FarmName: req.FarmName, TwinID: req.TwinID, StellarAddress: req.StellarAddress, Dedicated: req.Dedicated,
	})
	if errors.Is(err, store.ErrConflict) {
		return conflict("a farm named %q already exists (names are unique regardless of case)", req.FarmName)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, api.FarmID{FarmID: farm.FarmID})
	return nil
}

// ownFarm loads the farm of the path and checks the caller owns it.
func (s *Server) ownFarm(r *http.Request) (api.Farm, error) {
	farm, err := s.pathFarm(r)
	if err != nil {
		return farm, err
	}
	if c := caller(r); farm.TwinID != c {
		return farm, notAuthorized("farm %d belongs to twin %d, not to the signing twin %d", farm.FarmID, farm.TwinID, c)
	}
	return farm, nil
}

// updateFarm is PATCH /farms/{farm_id}: the owner renames the farm, sets
// its Stellar address or the dedicated flag. The body is a JSON merge patch
// (RFC 7396): omitted fields are unchanged; null (or "") clears the Stellar
// address, null sets dedicated to false, and a farm always keeps a name.
func (s *Server) updateFarm(w http.ResponseWriter, r *http.Request) error {
	farm, err := s.ownFarm(r)
	if err != nil {
		return err
	}
	data, err := readBody(r)
	if err != nil {
		return err
	}
	var req api.UpdateFarmRequest
	if err := decodeJSON(data, &req); err != nil {
		return err
	}
	nulls, err := nullMembers(data)
	if err != nil {
		return err
	}
	if nulls["farm_name"] {
		return invalid("farm_name", "cannot be cleared: a farm always has a name")
	}
	if nulls["stellar_address"] {
		req.StellarAddress = new(string)
	}
	if nulls["dedicated"] {
		req.Dedicated = new(bool)
	}
	if req.FarmName != nil {
		if err := validateFarmName("farm_name", *req.FarmName); err != nil {
			return err
		}
	}
	if req.StellarAddress != nil && *req.StellarAddress != "" {
		if err := validateStellarAddress("stellar_address", *req.StellarAddress); err != nil {
			return err
		}
	}
	_, err = s.store.UpdateFarm(r.Context(), farm.FarmID, req)
	switch {
	case errors.Is(err, store.ErrConflict):
		name := ""
		if req.FarmName != nil {
			name = *req.FarmName
		}
		return conflict("a farm named %q already exists (names are unique regardless of case)", name)
	case errors.Is(err, store.ErrNotFound):
		return notFound("farm %d not found", farm.FarmID)
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, api.Message{Message: "Farm was updated successfully"})
	return nil
}

// approveNodes is POST /farms/{farm_id}/approve.
func (s *Server) approveNodes(w http.ResponseWriter, r *http.Request) error {
	return s.setApproval(w, r, true)
}

// rejectNodes is POST /farms/{farm_id}/reject: it withdraws approval.
func (s *Server) rejectNodes(w http.ResponseWriter, r *http.Request) error {
	return s.setApproval(w, r, false)
}

func (s *Server) setApproval(w http.ResponseWriter, r *http.Request, approved bool) error {
	farm, err := s.ownFarm(r)
	if err != nil {
		return err
	}
	var req api.ApprovalRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if err := validateNodeIDs(req.NodeIDs); err != nil {
		return err
	}
	err = s.store.SetApproval(r.Context(), farm.FarmID, req.NodeIDs, approved)
	if errors.Is(err, store.ErrNotFound) {
		// The store's error names the missing ids after its own prefix,
		// which is no business of the client's.
		why := "not all node_ids are nodes of farm " + strconv.FormatUint(farm.FarmID, 10) + ", nothing changed"
		if inner := errors.Unwrap(err); inner != nil {
			why += ": " + strings.TrimSuffix(inner.Error(), ": "+store.ErrNotFound.Error())
		}
		return newHTTPError(http.StatusNotFound, "%s", why)
	}
	if err != nil {
		return err
	}
	verb := "approved"
	if !approved {
		verb = "rejected"
	}
	writeJSON(w, http.StatusOK, api.Message{Message: fmt.Sprintf("%d node(s) of farm %d %s", len(req.NodeIDs), farm.FarmID, verb)})
	return nil
}
