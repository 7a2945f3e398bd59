// Package provision is the node's provisioning engine (provisiond): it keeps
// the deployments of twins, checks them, queues the operations that bring
// the node to what they ask for, and runs those operations through one type
// manager per workload type.
//
// A Deployment belongs to a twin and holds Workloads (ZMount, Volume,
// QuantumSafeFS, NetworkLight, PublicIPv4, ZMachineLight, ZLogs). Every
// deployment is signed by its owner, and by more twins when its
// SignatureRequirement says so; the signatures cover Hash, a SHA-256 of the
// deployment's canonical JSON form (RFC 8785).
//
// The Engine validates a deployment completely (ParseDeployment, the
// per-type data schemas, the references between workloads, the signatures
// and the node's free capacity) before it queues anything. Its queue lives
// in a bbolt file in the node's data directory. A single worker takes the
// jobs in order; each job is a list of workload operations sorted storage
// first, then networks, then machines, then logs (the reverse on removal).
// Before an operation runs the worker writes an intent record; after it,
// the result. A process killed at any point therefore finds, on restart,
// exactly the operation that was in flight and runs it again (managers are
// idempotent) or, when it keeps being interrupted, rolls it back.
//
// docs/provisioning.md describes the types, states, ordering and recovery
// for users; this package's tests load that document's examples.
package provisiond
