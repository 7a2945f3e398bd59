// Package api is the wire format of the node-to-node API (package
// node/noderpc): its routes, the signed header fields that bind a request
// to its target and deadline, the method names, their parameters and
// results, and its error codes. The JSON-RPC envelope is
// internal/jsonrpc's. The server and its Go client (node/noderpc/client)
// both import it; it imports neither.
package api

import "time"

// Routes, on the node's zos-api-light listener (whose published endpoints
// are on the registrar): the node forwards them to its noderpc module.
const (
	// PathPrefix is the prefix of the API's routes, the part of the
	// zos-api-light listener that is forwarded.
	PathPrefix = "/api/v1/node/"
	// RPCPath is where JSON-RPC requests are POSTed.
	RPCPath = "/api/v1/node/rpc"
	// OpenRPCPath serves the OpenRPC document without authentication (the
	// same document rpc.discover returns).
	OpenRPCPath = "/api/v1/node/openrpc.json"
)

// Header fields every request carries, covered by its signature (so a
// request signed for one node or deadline cannot be used for another).
const (
	// HeaderNode is the id of the node the request is for; a node
	// refuses requests for another (HTTP 421).
	HeaderNode = "Grid-Node"
	// HeaderTimeout is the caller's deadline for the call, in
	// milliseconds from the request; the server stops the call then (and
	// after MaxTimeout at the most).
	HeaderTimeout = "Grid-Timeout"
)

// SignedFields are the fields of the headers above as signature
// components.
var SignedFields = []string{"grid-node", "grid-timeout"}

// MaxTimeout bounds the time a node gives one call, whatever the caller
// asks.
const MaxTimeout = 30 * time.Second

// APIVersion is the version of the method set of the OpenRPC document.
// Method names carry their major version (node.v1.ping): a node serves
// the versions of the previous release too, so nodes on two releases
// during a rollout still talk.
const APIVersion = "1.0.0"

// Method names. node.* may be called by any registered node; farm.* only
// by the nodes of the same farm.
const (
	MethodPing       = "node.v1.ping"
	MethodFarmStatus = "farm.v1.status"
	// MethodFarmGoingDown (no params, null): the caller powers off on
	// purpose (its farmer's power target); the callee wakes it when the
	// target is on again.
	MethodFarmGoingDown = "farm.v1.going_down"
	MethodDiscover      = "rpc.discover"
)

// Error codes of the node-to-node API, after the specification's
// (internal/jsonrpc).
const (
	// CodeForbidden: the caller may not call this method (a farm-level
	// method called by a node of another farm).
	CodeForbidden = -32010
	// CodeUnavailable: what the method needs on this node is not running
	// (try again later).
	CodeUnavailable = -32011
	// CodeNotFound: this node has nothing the call is about (no part of
	// that network).
	CodeNotFound = -32012
	// CodeConflict: the call contradicts what this node has (a subnet
	// overlapping another part).
	CodeConflict = -32013
)

// Pong is the result of node.v1.ping: who answered.
type Pong struct {
	// NodeID, FarmID and TwinID identify the node that answered.
	NodeID uint64 `json:"node_id"`
	FarmID uint64 `json:"farm_id"`
	TwinID uint64 `json:"twin_id"`
	// Version is the node's ZOS version.
	Version string `json:"version"`
	// API is the node's APIVersion.
	API string `json:"api"`
	// Time is the node's clock.
	Time time.Time `json:"time"`
	// Caller is the node id the answering node saw the call from.
	Caller uint64 `json:"caller"`
}

// FarmStatus is the result of farm.v1.status: the node's health, for the
// nodes of its farm.
type FarmStatus struct {
	// NodeID is the node that answered.
	NodeID uint64 `json:"node_id"`
	// UptimeSeconds is the time since the node booted.
	UptimeSeconds float64 `json:"uptime_seconds"`
	// Healthy is the node's own verdict (powerd's health checks).
	Healthy bool `json:"healthy"`
	// Reasons name the failing checks.
	Reasons []string `json:"reasons,omitempty"`
}
