// Package client is the Go client of the node-to-node API (package
// node/noderpc): a node calls another, every request signed with the
// calling node's key (signed requests v2, covering the target node and
// the deadline: api.SignedFields). JSON-RPC errors are *jsonrpc.Error,
// refusals before JSON-RPC *jsonrpc.HTTPError.
package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/internal/jsonrpc"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/noderpc/api"
)

// DefaultTimeout is a call's deadline when its context has none.
const DefaultTimeout = 10 * time.Second

// Client calls other nodes as one node. It is safe for concurrent use.
type Client struct {
	hc *http.Client
}

// New returns a client signing as the node's twin twinID with key (the
// node key; identityd.RemoteKey signs through identityd). base sends the
// requests (nil: http.DefaultTransport).
func New(key keys.KeyPair, twinID uint64, base http.RoundTripper) (*Client, error) {
	if key == nil || twinID == 0 {
		return nil, errors.New("noderpc: a client needs the node's key and twin id")
	}
	t := &auth.Transport{Base: base, Signer: auth.Signer{Key: key, TwinID: twinID, Components: api.SignedFields}}
	return &Client{hc: &http.Client{Transport: t}}, nil
}

// Endpoint returns the node-to-node API's URL of a node from one of the
// zos-api-light endpoints it published on the registrar: the same origin
// and path prefix, with the zos-api-light path (/api/v1/rpc or /rpc)
// replaced by api.RPCPath (without user information, query or fragment).
func Endpoint(apiEndpoint string) (string, error) {
	u, err := url.Parse(apiEndpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("API endpoint %q: want http(s)://host[:port][/path]", apiEndpoint)
	}
	p := strings.TrimSuffix(u.Path, "/")
	switch {
	case strings.HasSuffix(p, "/api/v1/rpc"):
		p = strings.TrimSuffix(p, "/api/v1/rpc")
	case strings.HasSuffix(p, "/rpc"):
		p = strings.TrimSuffix(p, "/rpc")
	}
	u.Path, u.RawPath = p+api.RPCPath, ""
	// The registrar refuses these in published endpoints; an endpoint
	// from elsewhere does not carry them to the API either.
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String(), nil
}

// Call calls method on the node nodeID at endpoint (its node-to-node
// URL, see Endpoint) and decodes the result into result (nil: dropped).
// The call's deadline is ctx's, or DefaultTimeout.
func (c *Client) Call(ctx context.Context, endpoint string, nodeID uint64, method string, params, result any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	dl, _ := ctx.Deadline()
	ms := max(time.Until(dl).Milliseconds(), 1)
	rc := &jsonrpc.Client{Endpoint: endpoint, HTTP: c.hc, Header: http.Header{
		api.HeaderNode:    {strconv.FormatUint(nodeID, 10)},
		api.HeaderTimeout: {strconv.FormatInt(ms, 10)},
	}}
	if err := rc.Call(ctx, method, params, result); err != nil {
		return fmt.Errorf("node %d: %s: %w", nodeID, method, err)
	}
	return nil
}

// Ping calls node.v1.ping.
func (c *Client) Ping(ctx context.Context, endpoint string, nodeID uint64) (api.Pong, error) {
	var p api.Pong
	err := c.Call(ctx, endpoint, nodeID, api.MethodPing, nil, &p)
	return p, err
}

// FarmStatus calls farm.v1.status (only nodes of the same farm may).
func (c *Client) FarmStatus(ctx context.Context, endpoint string, nodeID uint64) (api.FarmStatus, error) {
	var s api.FarmStatus
	err := c.Call(ctx, endpoint, nodeID, api.MethodFarmStatus, nil, &s)
	return s, err
}
