// Package noderpc is the node-to-node API and the zosd module that serves
// and calls it: JSON-RPC 2.0 over HTTP (internal/jsonrpc), described by an
// OpenRPC document (rpc.discover, GET /api/v1/node/openrpc.json), every
// request signed by the calling node's key with signed requests v2
// (package auth) and covering its target node and deadline.
//
// A caller is accepted only if its twin is a registered node's (the
// registrar's node records, Peers); farm.* methods only from the nodes of
// the same farm. Nonces are kept against replay; the caller's deadline
// bounds the call. Method names carry their major version (node.v1.ping)
// so nodes of two releases talk during a rollout.
//
// The module listens on loopback and the node's zos-api-light forwards
// the API's routes to it (provisiond), so a node's published API endpoint
// is also where other nodes reach it. Other modules call peers through
// the module's bus object (Stub). Its wire format is node/noderpc/api,
// its Go client node/noderpc/client. docs/node-rpc.md describes the
// methods.
package noderpc
