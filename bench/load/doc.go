// Package load drives the registrar with a benchmark fleet: it seeds N
// nodes straight into the store (each with a twin and an ed25519 key of its
// own, derived from the node's index so a rerun can reuse a seeded
// database), starts the registrar as a separate process or targets one that
// runs, and sends signed uptime reports (signed requests v2 or legacy
// X-Auth) or farm-filtered node listings over loopback, measuring
// throughput, latency percentiles, answers by status and the registrar's
// memory.
//
// The command is bench/loadgen; the figures are in docs/benchmarks.md.
package load
