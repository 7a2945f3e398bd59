// Package load drives the registrar with a benchmark fleet: it seeds N
// nodes straight into the store (each with a twin and an ed25519 key of its
// own, derived from the node's index so a rerun can reuse a seeded
// database, and a status report), starts the registrar as a separate process or targets one that
// runs, and sends signed uptime or status reports (signed requests v2 or
// legacy X-Auth) or node listings (by farm or over the fleet, with the
// status filters) over loopback, measuring
// throughput, latency percentiles, answers by status and the registrar's
// memory.
//
// Requests go out through a minimal HTTP/1.1 client of its own (wire.go):
// one keep-alive connection per worker, each request serialized to bytes
// beforehand where it can be and written at once, answers parsed only as
// far as status, length and body. On a machine the load generator shares
// with the registrar and its database, it costs a third of net/http's
// client CPU per request (BenchmarkClient).
//
// The command is bench/loadgen; the figures are in docs/benchmarks.md.
package load
