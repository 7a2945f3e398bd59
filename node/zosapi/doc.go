// Package zosapi is zos-api-light, the node's user-facing API: JSON-RPC 2.0
// over HTTP (POST /api/v1/rpc or /rpc) in front of the provisioning engine,
// described by an OpenRPC document (rpc.discover, and GET
// /api/v1/openrpc.json).
//
// Every request is signed by the caller's twin with signed requests v2
// (package auth; legacy X-Auth is accepted too unless switched off). The
// twin's key comes from its registrar account through a TwinKeyCache, so a
// key that changes on the registrar is picked up. Authentication failures
// are HTTP errors before JSON-RPC; everything after is a JSON-RPC answer,
// with the error codes of rpc.go. Only a deployment's owner may read or
// change it.
//
// This package is the server. Its wire format is package node/zosapi/api
// (with the deployment types of gridtypes) and its Go client, the one
// gridctl uses, is package node/zosapi/client; neither imports the server.
// docs/zos-api.md describes the methods, errors and a gridctl walkthrough.
package zosapi
