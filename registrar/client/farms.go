package client

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"

	"github.com/grid4/grid4/registrar/api"
)

// Page selects one page of a list: Number counts from 1, Size is at most
// DefaultPageSize (the registrar refuses more). Zero fields let the
// registrar choose (page 1, its default size).
type Page struct {
	// Number is the page, from 1.
	Number uint64
	// Size is the number of items per page, at most DefaultPageSize.
	Size uint64
}

// set adds page and size to q.
func (p Page) set(q url.Values) {
	setUint(q, "page", p.Number)
	setUint(q, "size", p.Size)
}

// setUint sets key in q to v, unless v is 0: a zero field selects
// nothing.
func setUint(q url.Values, key string, v uint64) {
	if v != 0 {
		q.Set(key, strconv.FormatUint(v, 10))
	}
}

// FarmFilter selects farms; zero fields match any farm.
type FarmFilter struct {
	// FarmID keeps the farm with this id.
	FarmID uint64
	// TwinID keeps the farms of this owner.
	TwinID uint64
	// Name matches farms whose name contains it, ignoring case.
	Name string
}

// query returns f as query parameters.
func (f FarmFilter) query() url.Values {
	q := url.Values{}
	setUint(q, "farm_id", f.FarmID)
	setUint(q, "twin_id", f.TwinID)
	if f.Name != "" {
		q.Set("farm_name", f.Name)
	}
	return q
}

// NewFarm is a farm to create.
type NewFarm struct {
	// Name is ASCII letters and digits, 1 to 40 of them, unique on the
	// registrar regardless of case.
	Name string
	// StellarAddress is the farmer's Stellar account ("G…") that receives
	// rewards; optional.
	StellarAddress string
	// Dedicated farms rent whole nodes only.
	Dedicated bool
}

// createFarmRequest is the body of POST /farms.
type createFarmRequest struct {
	FarmName       string `json:"farm_name"`
	TwinID         uint64 `json:"twin_id"`
	StellarAddress string `json:"stellar_address,omitempty"`
	Dedicated      bool   `json:"dedicated"`
}

// CreateFarm creates a farm owned by the client's twin: POST /farms. It
// returns the new farm's id; ErrConflict means the name is taken.
func (c *Client) CreateFarm(ctx context.Context, f NewFarm) (uint64, error) {
	twin, err := c.TwinID(ctx)
	if err != nil {
		return 0, fmt.Errorf("POST /farms: %w", err)
	}
	in := createFarmRequest{FarmName: f.Name, TwinID: twin, StellarAddress: f.StellarAddress, Dedicated: f.Dedicated}
	return create(ctx, c, "/farms", in, "farm_id", func(out api.FarmID) uint64 { return out.FarmID })
}

// Farm returns one farm: GET /farms/{id}.
func (c *Client) Farm(ctx context.Context, farmID uint64) (api.Farm, error) {
	return getByID[api.Farm](ctx, c, "/farms", farmID)
}

// ListFarms returns one page of the farms matching filter, ordered by id:
// GET /farms.
func (c *Client) ListFarms(ctx context.Context, filter FarmFilter, page Page) ([]api.Farm, error) {
	return listPage[api.Farm](ctx, c, "/farms", filter.query(), page)
}

// Farms iterates over every farm matching filter, fetching pages of
// DefaultPageSize as it goes. An error ends the iteration after being
// yielded once.
func (c *Client) Farms(ctx context.Context, filter FarmFilter) iter.Seq2[api.Farm, error] {
	return paged(func(p Page) ([]api.Farm, error) { return c.ListFarms(ctx, filter, p) })
}

// UpdateFarm changes a farm the client's twin owns: PATCH /farms/{id}. Nil
// fields of u are left unchanged.
func (c *Client) UpdateFarm(ctx context.Context, farmID uint64, u api.UpdateFarmRequest) error {
	return c.do(ctx, request{
		method: http.MethodPatch,
		path:   "/farms/" + strconv.FormatUint(farmID, 10),
		in:     u,
		signed: true,
	})
}

// ApproveNodes approves nodes of a farm the client's twin owns:
// POST /farms/{id}/approve. All or none are approved; ErrNotFound names the
// nodes that are not in the farm.
func (c *Client) ApproveNodes(ctx context.Context, farmID uint64, nodeIDs ...uint64) error {
	return c.approval(ctx, farmID, "approve", nodeIDs)
}

// RejectNodes withdraws the approval of nodes of a farm the client's twin
// owns: POST /farms/{id}/reject. All or none are changed.
func (c *Client) RejectNodes(ctx context.Context, farmID uint64, nodeIDs ...uint64) error {
	return c.approval(ctx, farmID, "reject", nodeIDs)
}

func (c *Client) approval(ctx context.Context, farmID uint64, action string, nodeIDs []uint64) error {
	if len(nodeIDs) == 0 {
		return fmt.Errorf("%w: %s: no node ids", ErrInvalid, action)
	}
	return c.do(ctx, request{
		method: http.MethodPost,
		path:   "/farms/" + strconv.FormatUint(farmID, 10) + "/" + action,
		in:     api.ApprovalRequest{NodeIDs: nodeIDs},
		signed: true,
	})
}

// create POSTs in, signed, to the collection at path and returns the id
// of the new item, which id reads from the answer (the member field); an
// answer without one is ErrBadResponse.
func create[T any](ctx context.Context, c *Client, path string, in any, field string, id func(T) uint64) (uint64, error) {
	var out T
	if err := c.do(ctx, request{method: http.MethodPost, path: path, in: in, signed: true, out: &out}); err != nil {
		return 0, err
	}
	n := id(out)
	if n == 0 {
		return 0, fmt.Errorf("%w: POST %s: no %s in the answer", ErrBadResponse, path, field)
	}
	return n, nil
}

// getByID fetches one item of the collection at path: GET path/{id}.
func getByID[T any](ctx context.Context, c *Client, path string, id uint64) (T, error) {
	var v T
	err := c.do(ctx, request{method: http.MethodGet, path: path + "/" + strconv.FormatUint(id, 10), out: &v})
	return v, err
}

// listPage fetches one page of a collection: GET path with the query q
// and the page. The slice is never nil, so that an empty page encodes as
// [] as the registrar sends it.
func listPage[T any](ctx context.Context, c *Client, path string, q url.Values, page Page) ([]T, error) {
	page.set(q)
	items := []T{}
	err := c.do(ctx, request{method: http.MethodGet, path: path, query: q, out: &items})
	if items == nil {
		items = []T{}
	}
	return items, err
}

// paged turns a page fetcher into an iterator over all items: pages of
// DefaultPageSize from 1 until a short page.
func paged[T any](fetch func(Page) ([]T, error)) iter.Seq2[T, error] {
	return eachPage(uint64(1), func(n uint64, _ []T) uint64 { return n + 1 },
		func(n uint64) ([]T, error) { return fetch(Page{Number: n, Size: DefaultPageSize}) })
}

// eachPage iterates over the items of the pages fetch returns, from the
// page at first, each next one at next(this one's cursor, its items),
// until a page shorter than DefaultPageSize. An error ends the iteration
// after being yielded once.
func eachPage[T, C any](first C, next func(C, []T) C, fetch func(C) ([]T, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for at := first; ; {
			items, err := fetch(at)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if len(items) < DefaultPageSize {
				return
			}
			at = next(at, items)
		}
	}
}
