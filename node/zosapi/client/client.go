// Package client is the Go client of zos-api-light (package node/zosapi):
// one method per JSON-RPC method, every request signed as the caller's twin
// (signed requests v2, package auth). Deployments and answers are the types
// of package gridtypes and the JSON-RPC envelope is node/zosapi/api, so a
// program using the client links neither the server nor the engine, and no
// database, bus or metrics library.
//
// JSON-RPC errors are *api.Error, which match the sentinels of gridtypes
// (ErrInvalid, ErrCapacity...) with errors.Is; refusals before JSON-RPC
// (authentication, size) are *HTTPError, which matches ErrUnauthorized for
// 401.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/internal/jsonrpc"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/zosapi/api"
)

// ErrUnauthorized is matched by HTTPError for 401 answers (the node did
// not accept the request's signature).
var ErrUnauthorized = jsonrpc.ErrUnauthorized

// HTTPError is an answer that is not JSON-RPC: the node refused the
// request before reading it (authentication, size), or something else
// answered.
type HTTPError = jsonrpc.HTTPError

// Client calls a node's zos-api-light, signing every request as a twin.
// It is safe for concurrent use.
type Client struct {
	rpc *jsonrpc.Client
}

// New returns a client of the node at nodeURL (its base URL, e.g.
// http://node:2021; a URL with a path is used as the endpoint as it is)
// signing as twinID with key. base sends the signed requests (nil:
// http.DefaultTransport).
func New(nodeURL string, key keys.KeyPair, twinID uint64, base http.RoundTripper) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(nodeURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("node URL %q: want http(s)://host[:port]", nodeURL)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = api.RPCPath
	}
	if key == nil || twinID == 0 {
		return nil, errors.New("zosapi: a client needs a key and its twin id")
	}
	return &Client{rpc: &jsonrpc.Client{Endpoint: u.String(), HTTP: &http.Client{Transport: auth.NewTransport(base, key, twinID)}}}, nil
}

// Endpoint is the URL the client posts to.
func (c *Client) Endpoint() string { return c.rpc.Endpoint }

// Call calls method with by-name params (nil for none) and decodes the
// result into result (nil to drop it). JSON-RPC errors are *Error, which
// match the gridtypes sentinels with errors.Is; refusals before JSON-RPC
// are *HTTPError.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	err := c.rpc.Call(ctx, method, params, result)
	var re *jsonrpc.Error
	if errors.As(err, &re) {
		return (*api.Error)(re)
	}
	return err
}

func (c *Client) record(ctx context.Context, method string, params any) (gridtypes.Record, error) {
	var r gridtypes.Record
	err := c.Call(ctx, method, params, &r)
	return r, err
}

// Deploy sends a new, signed deployment.
func (c *Client) Deploy(ctx context.Context, d gridtypes.Deployment) (gridtypes.Record, error) {
	return c.record(ctx, api.MethodDeploy, map[string]any{"deployment": d})
}

// Update sends a new, signed version of a deployment.
func (c *Client) Update(ctx context.Context, d gridtypes.Deployment) (gridtypes.Record, error) {
	return c.record(ctx, api.MethodUpdate, map[string]any{"deployment": d})
}

// Delete removes a deployment's workloads.
func (c *Client) Delete(ctx context.Context, id uint64) (gridtypes.Record, error) {
	return c.record(ctx, api.MethodDelete, api.IDParams{ID: id})
}

// Get returns a deployment.
func (c *Client) Get(ctx context.Context, id uint64) (gridtypes.Record, error) {
	return c.record(ctx, api.MethodGet, api.IDParams{ID: id})
}

// Pause suspends a deployment's workloads.
func (c *Client) Pause(ctx context.Context, id uint64) (gridtypes.Record, error) {
	return c.record(ctx, api.MethodPause, api.IDParams{ID: id})
}

// Resume resumes them.
func (c *Client) Resume(ctx context.Context, id uint64) (gridtypes.Record, error) {
	return c.record(ctx, api.MethodResume, api.IDParams{ID: id})
}

// List returns the caller's deployments.
func (c *Client) List(ctx context.Context) ([]gridtypes.Summary, error) {
	var out []gridtypes.Summary
	err := c.Call(ctx, api.MethodList, nil, &out)
	return out, err
}

// Changes returns a deployment's history.
func (c *Client) Changes(ctx context.Context, id uint64) ([]gridtypes.Change, error) {
	var out []gridtypes.Change
	err := c.Call(ctx, api.MethodChanges, api.IDParams{ID: id}, &out)
	return out, err
}

// Capacity returns the node's capacity.
func (c *Client) Capacity(ctx context.Context) (gridtypes.CapacityReport, error) {
	var out gridtypes.CapacityReport
	err := c.Call(ctx, api.MethodCapacity, nil, &out)
	return out, err
}

// Statistics returns the node's statistics.
func (c *Client) Statistics(ctx context.Context) (gridtypes.Statistics, error) {
	var out gridtypes.Statistics
	err := c.Call(ctx, api.MethodStatistics, nil, &out)
	return out, err
}

// Version returns the node's versions.
func (c *Client) Version(ctx context.Context) (api.NodeVersion, error) {
	var out api.NodeVersion
	err := c.Call(ctx, api.MethodVersion, nil, &out)
	return out, err
}

// Interfaces returns the node's network interfaces.
func (c *Client) Interfaces(ctx context.Context) ([]api.Interface, error) {
	var out []api.Interface
	err := c.Call(ctx, api.MethodInterfaces, nil, &out)
	return out, err
}

// Discover returns the node's OpenRPC document.
func (c *Client) Discover(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.Call(ctx, api.MethodDiscover, nil, &out)
	return out, err
}
