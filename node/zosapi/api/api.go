// Package api is the wire format of zos-api-light around the deployment
// types of package gridtypes: the JSON-RPC 2.0 envelope (Request, Response,
// Error and its codes), the method names and their parameters, the routes,
// and the node's own answers (NodeVersion, Interface). The server (package
// node/zosapi) and its Go client (node/zosapi/client) both import it and it
// imports neither, so it links nothing but gridtypes, the JSON-RPC
// envelope of internal/jsonrpc and the standard library.
package api

import (
	"encoding/json"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/internal/jsonrpc"
)

// JSON-RPC 2.0 error codes. The first five are the specification's; the
// others are zos-api-light's (in the range the specification leaves to
// servers).
const (
	CodeParseError     = jsonrpc.CodeParseError
	CodeInvalidRequest = jsonrpc.CodeInvalidRequest
	CodeMethodNotFound = jsonrpc.CodeMethodNotFound
	// CodeInvalidParams: malformed parameters, or a deployment refused by
	// validation (data.field names the field).
	CodeInvalidParams = jsonrpc.CodeInvalidParams
	CodeInternal      = jsonrpc.CodeInternal
	// CodeNotFound: no deployment with that id.
	CodeNotFound = -32001
	// CodeForbidden: the deployment belongs to another twin.
	CodeForbidden = -32002
	// CodeConflict: wrong version, deployment deleted, nothing to pause...
	CodeConflict = -32003
	// CodeBusy: an operation on the deployment is still queued or running.
	CodeBusy = -32004
	// CodeCapacity: the node does not have the free capacity.
	CodeCapacity = -32005
	// CodeSignature: the deployment's signatures do not verify or do not
	// meet its signature requirement.
	CodeSignature = -32006
	// CodeContract: the deployment's contract does not allow it on this
	// node (or the node cannot check it); the message says why.
	CodeContract = -32007
)

// Version is the JSON-RPC version string.
const Version = jsonrpc.Version

// Request is a JSON-RPC 2.0 request (a notification when ID is absent).
type Request = jsonrpc.Request

// Response is a JSON-RPC 2.0 response.
type Response = jsonrpc.Response

// Error is a JSON-RPC error object (a jsonrpc.Error that matches the
// gridtypes sentinels). It is the error type of the calls of
// node/zosapi/client.
type Error jsonrpc.Error

// Error returns "<message> (<code>)".
func (e *Error) Error() string { return (*jsonrpc.Error)(e).Error() }

// Is matches the gridtypes sentinel of the code, so errors.Is works the
// same on both sides of the API.
func (e *Error) Is(target error) bool {
	switch e.Code {
	case CodeInvalidParams:
		return target == gridtypes.ErrInvalid
	case CodeNotFound:
		return target == gridtypes.ErrNotFound
	case CodeForbidden:
		return target == gridtypes.ErrForbidden
	case CodeConflict:
		return target == gridtypes.ErrConflict
	case CodeBusy:
		return target == gridtypes.ErrBusy
	case CodeCapacity:
		return target == gridtypes.ErrCapacity
	case CodeSignature:
		return target == gridtypes.ErrSignature
	case CodeContract:
		return target == gridtypes.ErrContract
	}
	return false
}

// Routes of the API.
const (
	// RPCPath is where JSON-RPC requests are POSTed (RPCPathShort too).
	RPCPath      = "/api/v1/rpc"
	RPCPathShort = "/rpc"
	// OpenRPCPath serves the OpenRPC document without authentication
	// (the same document rpc.discover returns).
	OpenRPCPath = "/api/v1/openrpc.json"
	// MetricsPath serves Prometheus metrics.
	MetricsPath = "/metrics"
)

// APIVersion is the version of the method set described by the OpenRPC
// document.
const APIVersion = "1.0.0"

// Method names.
const (
	MethodDeploy     = "deployment.deploy"
	MethodUpdate     = "deployment.update"
	MethodDelete     = "deployment.delete"
	MethodGet        = "deployment.get"
	MethodList       = "deployment.list"
	MethodChanges    = "deployment.changes"
	MethodPause      = "deployment.pause"
	MethodResume     = "deployment.resume"
	MethodCapacity   = "node.capacity"
	MethodStatistics = "node.statistics"
	MethodVersion    = "node.version"
	MethodInterfaces = "node.interfaces"
	MethodDiscover   = "rpc.discover"
)

// DeploymentParams are the parameters of deployment.deploy and
// deployment.update.
type DeploymentParams struct {
	// Deployment is the signed deployment document.
	Deployment json.RawMessage `json:"deployment"`
}

// IDParams are the parameters of the calls on one deployment.
type IDParams struct {
	// ID is the deployment's id.
	ID uint64 `json:"id"`
}

// NodeVersion is the result of node.version.
type NodeVersion struct {
	// Version is the node software's version.
	Version string `json:"version"`
	// API is APIVersion.
	API string `json:"api"`
	// Go is the Go version the node was built with.
	Go string `json:"go"`
	// NodeID and TwinID identify the node (0 when not registered).
	NodeID uint64 `json:"node_id"`
	TwinID uint64 `json:"twin_id"`
	// Types are the workload types this node deploys.
	Types []gridtypes.WorkloadType `json:"types"`
}

// Interface is a network interface of the node (node.interfaces).
type Interface struct {
	// Name is the interface's name (eth0).
	Name string `json:"name"`
	// MAC is its hardware address ("" for none).
	MAC string `json:"mac"`
	// IPs are its addresses with prefix length.
	IPs []string `json:"ips"`
	// Up is whether it is administratively up.
	Up bool `json:"up"`
	// MTU is its MTU.
	MTU int `json:"mtu"`
}
