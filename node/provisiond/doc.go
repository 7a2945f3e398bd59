// Package provisiond is the node's provisioning engine (provisiond): it
// keeps the deployments of twins, checks them, queues the operations that
// bring the node to what they ask for, and runs those operations through
// one type manager per workload type.
//
// Deployments, their workloads, hashing, validation and signatures are the
// wire format, package gridtypes, which users' programs import without the
// engine. The Engine validates a deployment completely with it (the schema,
// the per-type data, the references between workloads, the signatures) and
// checks the node's free capacity before it queues anything. Its queue lives
// in a bbolt file in the node's data directory. A single worker takes the
// jobs in order; each job is a list of workload operations sorted storage
// first, then networks, then machines, then logs (the reverse on removal).
// Before an operation runs the worker writes an intent record; after it,
// the result. A process killed at any point therefore finds, on restart,
// exactly the operation that was in flight and runs it again (managers are
// idempotent) or, when it keeps being interrupted, rolls it back.
//
// docs/provisioning.md describes the types, states, ordering and recovery
// for users; gridtypes' tests load that document's examples.
package provisiond
