package client

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/grid4/grid4/registrar/api"
)

// idPath formats an id for a path.
func idPath(n uint64) string { return strconv.FormatUint(n, 10) }

// SetFarmPricing sets the prices of a farm the client's twin owns (µTFT
// per unit and hour): PUT /farms/{id}/pricing. It returns the farm's
// pricing as it now is.
func (c *Client) SetFarmPricing(ctx context.Context, farmID uint64, p api.Prices) (api.FarmPricing, error) {
	var out api.FarmPricing
	err := c.do(ctx, request{method: http.MethodPut, path: "/farms/" + idPath(farmID) + "/pricing", in: p, signed: true, out: &out})
	return out, err
}

// FarmPricing returns a farm's prices, scheduled changes and history:
// GET /farms/{id}/pricing.
func (c *Client) FarmPricing(ctx context.Context, farmID uint64) (api.FarmPricing, error) {
	var out api.FarmPricing
	err := c.do(ctx, request{method: http.MethodGet, path: "/farms/" + idPath(farmID) + "/pricing", out: &out})
	return out, err
}

// SetFarmSLA sets the uptime promise of a farm the client's twin owns:
// PUT /farms/{id}/sla.
func (c *Client) SetFarmSLA(ctx context.Context, farmID uint64, sla api.SLA) error {
	return c.do(ctx, request{method: http.MethodPut, path: "/farms/" + idPath(farmID) + "/sla", in: sla, signed: true})
}

// FarmSLA returns a farm's uptime promise (zero: none): GET
// /farms/{id}/sla.
func (c *Client) FarmSLA(ctx context.Context, farmID uint64) (api.SLA, error) {
	var out api.SLA
	err := c.do(ctx, request{method: http.MethodGet, path: "/farms/" + idPath(farmID) + "/sla", out: &out})
	return out, err
}

// CreateContract makes a contract for the client's twin: POST /contracts.
// ErrConflict when the node is not available to the twin (rented by
// another, in a dedicated farm and not rented by the twin, ...).
func (c *Client) CreateContract(ctx context.Context, req api.CreateContractRequest) (api.Contract, error) {
	var out api.Contract
	err := c.do(ctx, request{method: http.MethodPost, path: "/contracts", in: req, signed: true, out: &out})
	return out, err
}

// CreateNodeContract makes a node contract for the deployment with hash
// on node, reserving res: POST /contracts.
func (c *Client) CreateNodeContract(ctx context.Context, nodeID uint64, hash string, res api.Capacity) (api.Contract, error) {
	return c.CreateContract(ctx, api.CreateContractRequest{Type: api.ContractNode, NodeID: nodeID, DeploymentHash: hash, Resources: &res})
}

// Contract returns one contract: GET /contracts/{id}.
func (c *Client) Contract(ctx context.Context, contractID uint64) (api.Contract, error) {
	return getByID[api.Contract](ctx, c, "/contracts", contractID)
}

// ContractFilter selects contracts; zero fields match any.
type ContractFilter struct {
	TwinID, NodeID uint64
	// State is "active", "grace", "deleted" or "" (any).
	State string
	// AfterID keeps contracts with larger ids (paging).
	AfterID uint64
	// Size is the page size (0: the registrar's default).
	Size uint64
}

// query returns f as query parameters.
func (f ContractFilter) query() url.Values {
	q := url.Values{}
	setUint(q, "twin_id", f.TwinID)
	setUint(q, "node_id", f.NodeID)
	setUint(q, "after_id", f.AfterID)
	setUint(q, "size", f.Size)
	if f.State != "" {
		q.Set("state", f.State)
	}
	return q
}

// ListContracts returns one page of the contracts matching f, in id
// order: GET /contracts. The next page starts after the last id.
func (c *Client) ListContracts(ctx context.Context, f ContractFilter) ([]api.Contract, error) {
	out := []api.Contract{}
	err := c.do(ctx, request{method: http.MethodGet, path: "/contracts", query: f.query(), out: &out})
	return out, err
}

// Contracts iterates over every contract matching f (whose AfterID and
// Size it sets), in id order, fetching pages of DefaultPageSize as it goes.
// An error ends the iteration after being yielded once.
func (c *Client) Contracts(ctx context.Context, f ContractFilter) iter.Seq2[api.Contract, error] {
	return contractPages(func(after uint64) ([]api.Contract, error) {
		f.AfterID, f.Size = after, DefaultPageSize
		return c.ListContracts(ctx, f)
	})
}

// UpdateContract changes a node contract of the client's twin (its
// deployment hash, its resources): PATCH /contracts/{id}.
func (c *Client) UpdateContract(ctx context.Context, contractID uint64, u api.UpdateContractRequest) (api.Contract, error) {
	var out api.Contract
	err := c.do(ctx, request{method: http.MethodPatch, path: "/contracts/" + idPath(contractID), in: u, signed: true, out: &out})
	return out, err
}

// CancelContract deletes a contract of the client's twin: DELETE
// /contracts/{id}. Cancelling a deleted contract returns it unchanged.
func (c *Client) CancelContract(ctx context.Context, contractID uint64) (api.Contract, error) {
	var out api.Contract
	err := c.do(ctx, request{method: http.MethodDelete, path: "/contracts/" + idPath(contractID), signed: true, out: &out})
	return out, err
}

// NodeContracts returns every contract a node follows: its active and
// grace contracts and those deleted within the last day (GET
// /nodes/{id}/contracts, all pages).
func (c *Client) NodeContracts(ctx context.Context, nodeID uint64) ([]api.Contract, error) {
	out := []api.Contract{}
	for k, err := range contractPages(func(after uint64) ([]api.Contract, error) {
		q := url.Values{"size": {strconv.Itoa(DefaultPageSize)}}
		setUint(q, "after_id", after)
		var page []api.Contract
		err := c.do(ctx, request{method: http.MethodGet, path: "/nodes/" + idPath(nodeID) + "/contracts", query: q, out: &page})
		return page, err
	}) {
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// contractPages turns a fetcher of the page of contracts after an id into
// an iterator over all of them: pages of DefaultPageSize, each after the
// last id of the one before, until a short page. An error ends the
// iteration after being yielded once.
func contractPages(fetch func(afterID uint64) ([]api.Contract, error)) iter.Seq2[api.Contract, error] {
	return eachPage(uint64(0), func(_ uint64, page []api.Contract) uint64 { return page[len(page)-1].ContractID }, fetch)
}

// ReportUsage tells what a node's contracts used during the hour starting
// at period: POST /nodes/{id}/usage, signed by the node's twin. It is
// idempotent: the same report again succeeds; ErrConflict means figures
// other than those reported before for a contract and period.
func (c *Client) ReportUsage(ctx context.Context, nodeID uint64, period time.Time, usage []api.Usage) error {
	if usage == nil {
		usage = []api.Usage{}
	}
	rep := api.UsageReport{PeriodStart: period.UTC(), Contracts: usage}
	return c.do(ctx, request{method: http.MethodPost, path: "/nodes/" + idPath(nodeID) + "/usage", in: rep, signed: true})
}

// Credit adds amount µTFT to a twin's balance (the client's twin must be
// an admin of the registrar): POST /accounts/{id}/credit. The reference
// makes it idempotent; ErrConflict when it was used with another amount.
func (c *Client) Credit(ctx context.Context, twinID uint64, amount int64, reference string) (api.Balance, error) {
	var out api.Balance
	err := c.do(ctx, request{method: http.MethodPost, path: "/accounts/" + idPath(twinID) + "/credit",
		in: api.CreditRequest{Amount: amount, Reference: reference}, signed: true, out: &out})
	return out, err
}

// accountTwin is twinID, or the client's twin for 0.
func (c *Client) accountTwin(ctx context.Context, twinID uint64) (uint64, error) {
	if twinID != 0 {
		return twinID, nil
	}
	return c.TwinID(ctx)
}

// Balance returns a twin's balance (0: the client's twin): GET
// /accounts/{id}/balance, signed by that twin or an admin.
func (c *Client) Balance(ctx context.Context, twinID uint64) (api.Balance, error) {
	twin, err := c.accountTwin(ctx, twinID)
	if err != nil {
		return api.Balance{}, fmt.Errorf("GET /accounts/{id}/balance: %w", err)
	}
	var out api.Balance
	err = c.do(ctx, request{method: http.MethodGet, path: "/accounts/" + idPath(twin) + "/balance", signed: true, out: &out})
	return out, err
}

// Ledger returns up to size (0: the registrar's default) ledger lines of
// a twin (0: the client's twin) with ids above afterID, oldest first: GET
// /accounts/{id}/ledger.
func (c *Client) Ledger(ctx context.Context, twinID, afterID, size uint64) ([]api.LedgerLine, error) {
	twin, err := c.accountTwin(ctx, twinID)
	if err != nil {
		return nil, fmt.Errorf("GET /accounts/{id}/ledger: %w", err)
	}
	return c.ledger(ctx, "/accounts/"+idPath(twin)+"/ledger", afterID, size)
}

// FarmLedger returns up to size ledger lines of a farm the client's twin
// owns, with ids above afterID: GET /farms/{id}/ledger.
func (c *Client) FarmLedger(ctx context.Context, farmID, afterID, size uint64) ([]api.LedgerLine, error) {
	return c.ledger(ctx, "/farms/"+idPath(farmID)+"/ledger", afterID, size)
}

// ledger fetches a page of ledger lines at path.
func (c *Client) ledger(ctx context.Context, path string, afterID, size uint64) ([]api.LedgerLine, error) {
	q := url.Values{}
	setUint(q, "after_id", afterID)
	setUint(q, "size", size)
	out := []api.LedgerLine{}
	err := c.do(ctx, request{method: http.MethodGet, path: path, query: q, signed: true, out: &out})
	return out, err
}
